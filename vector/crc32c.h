/*
 * crc32c.h — CRC-32C (Castagnoli) for segment, manifest and log checksums.
 *
 * engine/kv has its own (engine/kv/crc32c.h) but no library target yet, and
 * compiling its source here as well would clash at link time; this one uses
 * the vcrc_ prefix so the two can be unified later without conflict.
 *
 * Thread safety: pure functions; the hardware choice is made per call from a
 * cached CPU check (idempotent, race-free).
 */
#ifndef NDB_VEC_CRC32C_H
#define NDB_VEC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) over n bytes; SSE4.2 when available. */
uint32_t vcrc_extend(uint32_t crc, const void *buf, size_t n);
/* The portable table version (kept compiled; tested against the other). */
uint32_t vcrc_extend_sw(uint32_t crc, const void *buf, size_t n);
static inline uint32_t vcrc(const void *buf, size_t n) { return vcrc_extend(0, buf, n); }

#endif /* NDB_VEC_CRC32C_H */
