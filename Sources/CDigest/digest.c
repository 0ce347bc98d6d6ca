#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "tessera_digest.h"
#include <openssl/sha.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(tsr_sha256_ctx), "tsr_sha256_ctx too small for SHA256_CTX");

void tsr_sha256_init(tsr_sha256_ctx *ctx) { SHA256_Init((SHA256_CTX *) ctx); }
void tsr_sha256_update(tsr_sha256_ctx *ctx, const void *data, size_t len) { SHA256_Update((SHA256_CTX *) ctx, data, len); }
void tsr_sha256_final(tsr_sha256_ctx *ctx, uint8_t digest[32]) { SHA256_Final(digest, (SHA256_CTX *) ctx); }

#if defined(__x86_64__)
#include <immintrin.h>
#include <cpuid.h>
#include <pthread.h>
#include <string.h>

int tsr_crc32c_hardware_available(void) { return __builtin_cpu_supports("sse4.2"); }

// Three independent CRC chains hide the instruction's 3-cycle latency (≈3× throughput). Lanes are
// joined with the linearity of CRCs: crc(A‖B) = shift_B(crc(A)) ⊕ crc₀(B), where shift_B appends
// B zero bytes — a linear map on 32 bits, tabulated once per lane size (4 tables × 256 entries).
enum { LANE = 4096 };
static uint32_t shift_table[4][256];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

__attribute__((target("sse4.2")))
static uint32_t raw_zeros(uint32_t s, size_t n) {
    uint64_t c = s;
    for (size_t i = 0; i < n / 8; i++) c = _mm_crc32_u64(c, 0);
    return (uint32_t) c;
}

static void init_shift(void) {
    uint32_t basis[32];
    for (int b = 0; b < 32; b++) basis[b] = raw_zeros(1u << b, LANE);
    for (int j = 0; j < 4; j++)
        for (int v = 0; v < 256; v++) {
            uint32_t r = 0;
            for (int b = 0; b < 8; b++) if (v & (1 << b)) r ^= basis[8 * j + b];
            shift_table[j][v] = r;
        }
}

static inline uint32_t shift_lane(uint32_t c) {
    return shift_table[0][c & 0xFF] ^ shift_table[1][(c >> 8) & 0xFF] ^ shift_table[2][(c >> 16) & 0xFF] ^ shift_table[3][c >> 24];
}

// The crc32 instruction retires one 8-byte word per cycle at best. Carry-less multiplication folds
// much wider: with AVX-512 VPCLMULQDQ, four 512-bit accumulators (sixteen 128-bit lanes) each
// absorb 16 bytes per step, so 256 bytes cost 8 multiplies and 4 three-way XORs. Folding rests on
// CRCs being remainders of polynomials over GF(2): a 128-bit block X = L·x⁶⁴ + H (L = its first 8
// bytes, H = the next 8, bit order reflected as the CRC register) that lies D bits before another
// block Y contributes X·x^D ≡ L·(x^(D+64) mod P) + H·(x^D mod P), a 96-bit value placed over Y. The
// product of two reflected 64-bit values lands one bit short of the 128-bit block, so the stored
// constants are x^(D+63) and x^(D−1) mod P. The last block is reduced by two crc32 instructions,
// which compute exactly "append 64 bits and take the remainder".
static uint64_t fold_const(unsigned n) {  // x^n mod P, reflected, in the top 32 bits of 64
    uint32_t v = 0x80000000u;             // x⁰
    while (n--) v = (v >> 1) ^ ((v & 1) ? 0x82F63B78u : 0);
    return (uint64_t) v << 32;
}

static uint64_t k_fold2048[2], k_fold512[2], k_lanes[8];
static int have_vpclmul;
static pthread_once_t fold_once = PTHREAD_ONCE_INIT;

static void init_fold(void) {
    k_fold2048[0] = fold_const(2048 + 63); k_fold2048[1] = fold_const(2048 - 1);
    k_fold512[0] = fold_const(512 + 63);   k_fold512[1] = fold_const(512 - 1);
    // Lanes 0, 1, 2 of a 512-bit register lie 384, 256, 128 bits before lane 3.
    for (int l = 0; l < 3; l++) {
        unsigned d = 128u * (unsigned) (3 - l);
        k_lanes[2 * l] = fold_const(d + 63);
        k_lanes[2 * l + 1] = fold_const(d - 1);
    }
    k_lanes[6] = k_lanes[7] = 0;
    have_vpclmul = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.2");
}

int tsr_crc32c_vpclmul_available(void) {
    pthread_once(&fold_once, init_fold);
    return have_vpclmul;
}

#define FOLD_TARGET __attribute__((target("avx512f,avx512vl,vpclmulqdq,pclmul,sse4.2")))

FOLD_TARGET static inline __m512i fold512(__m512i x, __m512i k, __m512i next) {
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11), next, 0x96);
}

// Consumes a multiple of 64 bytes (len ≥ 256) from the raw (uninverted) register c.
FOLD_TARGET static uint32_t fold_blocks(uint32_t c, const uint8_t **pp, size_t *lenp) {
    const uint8_t *p = *pp;
    size_t len = *lenp;
    __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_zextsi128_si512(_mm_cvtsi32_si128((int) c)));
    __m512i x1 = _mm512_loadu_si512(p + 64), x2 = _mm512_loadu_si512(p + 128), x3 = _mm512_loadu_si512(p + 192);
    p += 256;
    len -= 256;
    const __m512i k4 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *) k_fold2048));
    while (len >= 256) {
        x0 = fold512(x0, k4, _mm512_loadu_si512(p));
        x1 = fold512(x1, k4, _mm512_loadu_si512(p + 64));
        x2 = fold512(x2, k4, _mm512_loadu_si512(p + 128));
        x3 = fold512(x3, k4, _mm512_loadu_si512(p + 192));
        p += 256;
        len -= 256;
    }
    const __m512i k1 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *) k_fold512));
    __m512i x = fold512(x0, k1, x1);
    x = fold512(x, k1, x2);
    x = fold512(x, k1, x3);
    while (len >= 64) {
        x = fold512(x, k1, _mm512_loadu_si512(p));
        p += 64;
        len -= 64;
    }
    const __m512i kl = _mm512_loadu_si512(k_lanes);
    __m512i t = _mm512_xor_si512(_mm512_clmulepi64_epi128(x, kl, 0x00), _mm512_clmulepi64_epi128(x, kl, 0x11));
    __m128i y = _mm_xor_si128(_mm_xor_si128(_mm512_extracti32x4_epi32(t, 0), _mm512_extracti32x4_epi32(t, 1)),
                              _mm_xor_si128(_mm512_extracti32x4_epi32(t, 2), _mm512_extracti32x4_epi32(x, 3)));
    uint64_t r = _mm_crc32_u64(0, (uint64_t) _mm_cvtsi128_si64(y));
    r = _mm_crc32_u64(r, (uint64_t) _mm_extract_epi64(y, 1));
    *pp = p;
    *lenp = len;
    return (uint32_t) r;
}

// Three crc32 chains (3-cycle latency, 1 per cycle throughput) for CPUs without VPCLMULQDQ and
// for what folding leaves over.
__attribute__((target("sse4.2")))
static uint32_t crc_words(uint32_t c32, const uint8_t *p, size_t len) {
    uint64_t c = c32;
    if (len >= 3 * LANE) {
        pthread_once(&shift_once, init_shift);
        while (len >= 3 * LANE) {
            uint64_t c1 = 0, c2 = 0;
            for (size_t i = 0; i < LANE; i += 8) {
                uint64_t w0, w1, w2;
                memcpy(&w0, p + i, 8);
                memcpy(&w1, p + LANE + i, 8);
                memcpy(&w2, p + 2 * LANE + i, 8);
                c = _mm_crc32_u64(c, w0);
                c1 = _mm_crc32_u64(c1, w1);
                c2 = _mm_crc32_u64(c2, w2);
            }
            c = shift_lane(shift_lane((uint32_t) c) ^ (uint32_t) c1) ^ (uint32_t) c2;
            p += 3 * LANE;
            len -= 3 * LANE;
        }
    }
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        len -= 8;
    }
    c32 = (uint32_t) c;
    while (len--) c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}

uint32_t tsr_crc32c_sse42(uint32_t crc, const void *data, size_t len) {
    return ~crc_words(~crc, data, len);
}

uint32_t tsr_crc32c_vpclmul(uint32_t crc, const void *data, size_t len) {
    const uint8_t *p = data;
    uint32_t c = ~crc;
    if (len >= 256) c = fold_blocks(c, &p, &len);
    return ~crc_words(c, p, len);
}

uint32_t tsr_crc32c_hardware(uint32_t crc, const void *data, size_t len) {
    if (len >= 256 && tsr_crc32c_vpclmul_available()) return tsr_crc32c_vpclmul(crc, data, len);
    return tsr_crc32c_sse42(crc, data, len);
}

int tsr_cpu_haswell_features(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    // FMA, MOVBE, POPCNT, OSXSAVE, AVX, F16C.
    const unsigned leaf1 = (1u << 12) | (1u << 22) | (1u << 23) | (1u << 27) | (1u << 28) | (1u << 29);
    if ((c & leaf1) != leaf1) return 0;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    if ((xlo & 6) != 6) return 0;   // the OS saves XMM and YMM registers
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const unsigned leaf7 = (1u << 3) | (1u << 5) | (1u << 8);   // BMI1, AVX2, BMI2
    if ((b & leaf7) != leaf7) return 0;
    if (!__get_cpuid(0x80000001, &a, &b, &c, &d)) return 0;
    return (c & (1u << 5)) ? 1 : 0;   // LZCNT
}

int tsr_cpu_avx512_features(void) {
    if (!tsr_cpu_haswell_features()) return 0;
    unsigned a, b, c, d;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    if ((xlo & 0xE6) != 0xE6) return 0;   // the OS saves XMM, YMM, opmask and all ZMM registers
    // -target-cpu skylake-avx512 is Haswell plus AVX512F/DQ/CD/BW/VL and the smaller extensions of
    // those CPUs; all of them are checked, not only those float loops are likely to use.
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const unsigned leaf1 = (1u << 1) | (1u << 25) | (1u << 30);   // PCLMUL, AES, RDRND
    if ((c & leaf1) != leaf1) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    // FSGSBASE, AVX512F, AVX512DQ, RDSEED, ADX, CLFLUSHOPT, CLWB, AVX512CD, AVX512BW, AVX512VL.
    const unsigned leaf7 = (1u << 0) | (1u << 16) | (1u << 17) | (1u << 18) | (1u << 19) | (1u << 23) | (1u << 24) |
                           (1u << 28) | (1u << 30) | (1u << 31);
    if ((b & leaf7) != leaf7) return 0;
    if (!__get_cpuid(0x80000001, &a, &b, &c, &d)) return 0;
    return (c & (1u << 8)) ? 1 : 0;   // PREFETCHW
}
#else
int tsr_cpu_haswell_features(void) { return 0; }
int tsr_cpu_avx512_features(void) { return 0; }
int tsr_crc32c_hardware_available(void) { return 0; }
int tsr_crc32c_vpclmul_available(void) { return 0; }
uint32_t tsr_crc32c_hardware(uint32_t crc, const void *data, size_t len) { (void) data; (void) len; return crc; }
uint32_t tsr_crc32c_sse42(uint32_t crc, const void *data, size_t len) { (void) data; (void) len; return crc; }
uint32_t tsr_crc32c_vpclmul(uint32_t crc, const void *data, size_t len) { (void) data; (void) len; return crc; }
#endif
