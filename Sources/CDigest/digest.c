#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "tessera_digest.h"
#include <openssl/sha.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(tsr_sha256_ctx), "tsr_sha256_ctx too small for SHA256_CTX");

void tsr_sha256_init(tsr_sha256_ctx *ctx) { SHA256_Init((SHA256_CTX *) ctx); }
void tsr_sha256_update(tsr_sha256_ctx *ctx, const void *data, size_t len) { SHA256_Update((SHA256_CTX *) ctx, data, len); }
void tsr_sha256_final(tsr_sha256_ctx *ctx, uint8_t digest[32]) { SHA256_Final(digest, (SHA256_CTX *) ctx); }

#if defined(__x86_64__)
#include <nmmintrin.h>
#include <string.h>

int tsr_crc32c_hardware_available(void) { return __builtin_cpu_supports("sse4.2"); }

__attribute__((target("sse4.2")))
uint32_t tsr_crc32c_hardware(uint32_t crc, const void *data, size_t len) {
    const uint8_t *p = data;
    uint64_t c = ~crc;
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t) c;
    while (len--) c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#else
int tsr_crc32c_hardware_available(void) { return 0; }
uint32_t tsr_crc32c_hardware(uint32_t crc, const void *data, size_t len) { (void) data; (void) len; return crc; }
#endif
