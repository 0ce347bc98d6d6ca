#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "tessera_digest.h"
#include <openssl/sha.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(tsr_sha256_ctx), "tsr_sha256_ctx too small for SHA256_CTX");

void tsr_sha256_init(tsr_sha256_ctx *ctx) { SHA256_Init((SHA256_CTX *) ctx); }
void tsr_sha256_update(tsr_sha256_ctx *ctx, const void *data, size_t len) { SHA256_Update((SHA256_CTX *) ctx, data, len); }
void tsr_sha256_final(tsr_sha256_ctx *ctx, uint8_t digest[32]) { SHA256_Final(digest, (SHA256_CTX *) ctx); }

#if defined(__x86_64__)
#include <nmmintrin.h>
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

__attribute__((target("sse4.2")))
uint32_t tsr_crc32c_hardware(uint32_t crc, const void *data, size_t len) {
    const uint8_t *p = data;
    uint64_t c = ~crc;
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
    uint32_t c32 = (uint32_t) c;
    while (len--) c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#else
int tsr_crc32c_hardware_available(void) { return 0; }
uint32_t tsr_crc32c_hardware(uint32_t crc, const void *data, size_t len) { (void) data; (void) len; return crc; }
#endif
