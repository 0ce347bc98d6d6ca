// SHA-256 from the system's libcrypto (OpenSSL), which uses the CPU's SHA extensions where present
// (measured here: 1.4 GB/s against 0.32 GB/s for portable Swift). The context is a plain C struct,
// so a Swift value holding it copies the hashing state with it.
#ifndef TESSERA_DIGEST_H
#define TESSERA_DIGEST_H
#include <stddef.h>
#include <stdint.h>

typedef struct tsr_sha256_ctx {
    // Large enough for OpenSSL's SHA256_CTX (112 bytes); checked at compile time in the .c file.
    uint64_t opaque[16];
} tsr_sha256_ctx;

void tsr_sha256_init(tsr_sha256_ctx *ctx);
void tsr_sha256_update(tsr_sha256_ctx *ctx, const void *data, size_t len);
void tsr_sha256_final(tsr_sha256_ctx *ctx, uint8_t digest[32]);

/// 1 when the CPU has the SSE4.2 CRC32 instruction (x86-64), else 0.
int tsr_crc32c_hardware_available(void);
/// CRC-32C (Castagnoli) with the SSE4.2 instruction; call only when available. Same convention as
/// the table-driven Swift version: `crc` is the previous result (0 to start).
uint32_t tsr_crc32c_hardware(uint32_t crc, const void *data, size_t len);
/// 1 when the CPU (and OS) support AVX-512 with VPCLMULQDQ, which `tsr_crc32c_hardware` then uses
/// for buffers of 256 bytes and more.
int tsr_crc32c_vpclmul_available(void);
/// The two paths of `tsr_crc32c_hardware`, callable directly so tests can check each one:
/// three interleaved crc32 chains (SSE4.2), and carry-less-multiply folding (call only when
/// `tsr_crc32c_vpclmul_available()`).
uint32_t tsr_crc32c_sse42(uint32_t crc, const void *data, size_t len);
uint32_t tsr_crc32c_vpclmul(uint32_t crc, const void *data, size_t len);
/// 1 when the CPU and OS support everything `-target-cpu haswell` code may use (AVX and AVX2 with
/// the OS saving YMM state, FMA, BMI1, BMI2, F16C, MOVBE, LZCNT, POPCNT), else 0. TesseraAugment
/// uses it to choose between the baseline and the Haswell build of its view kernels.
int tsr_cpu_haswell_features(void);
/// 1 when, on top of that, the CPU and OS support what `-target-cpu skylake-avx512` code may use
/// (AVX-512 F, CD, BW, DQ and VL with the OS saving opmask and ZMM state; AES, PCLMUL, RDRND,
/// RDSEED, ADX, FSGSBASE, CLFLUSHOPT, CLWB, PREFETCHW), else 0.
int tsr_cpu_avx512_features(void);
#endif
