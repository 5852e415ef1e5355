/*
 * bloom.h — one bloom filter per SSTable over its user keys, and the
 * memtable's, built one key at a time (internal). Table layout: FORMAT.md
 * "Filter block": bit array, then one byte k (probes).
 *
 * Cache-line blocked: a key's k probes all fall in one 64-byte line.
 *
 * Thread safety: kv_bloom_add is for one writer at a time; kv_bloom_test may
 * run concurrently with it (bits are read and written with relaxed atomic
 * byte accesses). A reader sees an added key once the add has been published
 * to it by a release/acquire pair, as the memtable's sequence number does.
 */
#ifndef KV_BLOOM_H
#define KV_BLOOM_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit hash of a user key (seedless, stable on disk: part of the format). */
uint64_t kv_bloom_hash(const void *key, size_t n);
/* Size in bytes of the filter for nkeys keys at bits_per_key. */
size_t kv_bloom_size(size_t nkeys, int bits_per_key);
/* Builds the filter for hashes[0..n) into out (kv_bloom_size bytes). */
void kv_bloom_build(const uint64_t *hashes, size_t n, int bits_per_key, char *out);
/* 1 if the key may be present, 0 if it is surely absent. A malformed filter
 * (too short, bad k) answers 1. */
int kv_bloom_may_contain(const char *filter, size_t len, uint64_t hash);

/* The bit array alone: lines 64-byte lines (>= 1), k probes (1..30). */
static inline size_t kv_bloom_line(size_t lines, uint64_t hash) { return (size_t)(((uint64_t)(uint32_t)hash * lines) >> 32); }
void kv_bloom_add(char *bits, size_t lines, int k, uint64_t hash);
int kv_bloom_test(const char *bits, size_t lines, int k, uint64_t hash);

#endif /* KV_BLOOM_H */
