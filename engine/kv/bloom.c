#include "bloom.h"

#include <string.h>

static inline uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

uint64_t kv_bloom_hash(const void *key, size_t n)
{
    const unsigned char *p = key;
    uint64_t h = 0x243f6a8885a308d3ull ^ (n * 0x9e3779b97f4a7c15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ mix(w)) * 0x9e3779b97f4a7c15ull;
        h = (h << 29) | (h >> 35);
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h ^= mix(w ^ ((uint64_t)n << 56));
    return mix(h);
}

static int probes(int bits_per_key)
{
    int k = (int)(bits_per_key * 0.69); /* ln 2 */
    if (k < 1) k = 1;
    if (k > 30) k = 30;
    return k;
}

size_t kv_bloom_size(size_t nkeys, int bits_per_key)
{
    size_t bits = nkeys * (size_t)bits_per_key;
    size_t lines = (bits + 511) / 512;
    if (lines < 1) lines = 1;
    return lines * 64 + 1;
}

/* Cache-line-blocked bloom: h1 picks one 64-byte line, and all k probes fall
 * inside it (bit j = (h2 + j * delta) mod 512), so a lookup touches one line. */
#define LINE_BITS 512

void kv_bloom_add(char *bits, size_t lines, int k, uint64_t hash)
{
    uint32_t h2 = (uint32_t)(hash >> 32);
    char *line = bits + kv_bloom_line(lines, hash) * 64;
    uint32_t delta = (h2 >> 17) | (h2 << 15) | 1;
    for (int j = 0; j < k; j++) {
        uint32_t b = h2 % LINE_BITS;
        char v = __atomic_load_n(&line[b / 8], __ATOMIC_RELAXED);
        __atomic_store_n(&line[b / 8], (char)(v | (1 << (b % 8))), __ATOMIC_RELAXED);
        h2 += delta;
    }
}

int kv_bloom_test(const char *bits, size_t lines, int k, uint64_t hash)
{
    uint32_t h2 = (uint32_t)(hash >> 32);
    const char *line = bits + kv_bloom_line(lines, hash) * 64;
    uint32_t delta = (h2 >> 17) | (h2 << 15) | 1;
    for (int j = 0; j < k; j++) {
        uint32_t b = h2 % LINE_BITS;
        if (!(__atomic_load_n(&line[b / 8], __ATOMIC_RELAXED) & (1 << (b % 8)))) return 0;
        h2 += delta;
    }
    return 1;
}

void kv_bloom_build(const uint64_t *hashes, size_t n, int bits_per_key, char *out)
{
    size_t bytes = kv_bloom_size(n, bits_per_key) - 1;
    int k = probes(bits_per_key);
    memset(out, 0, bytes);
    out[bytes] = (char)k;
    for (size_t i = 0; i < n; i++) kv_bloom_add(out, bytes / 64, k, hashes[i]);
}

int kv_bloom_may_contain(const char *filter, size_t len, uint64_t hash)
{
    if (len < 65) return 1;
    int k = (unsigned char)filter[len - 1];
    if (k < 1 || k > 30) return 1;
    return kv_bloom_test(filter, (len - 1) / 64, k, hash);
}
