/*
 * crc32c.h — CRC-32C (Castagnoli), shared by every on-disk format: kv WAL
 * records, SSTable blocks and manifest records; vector segments, manifests
 * and logs.
 *
 * Thread safety: all functions are pure; the hardware/software choice is
 * made once, on first use, race-free (idempotent).
 */
#ifndef NDB_CRC32C_H
#define NDB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) over n bytes. Chooses SSE4.2 / ARMv8 CRC when the
 * CPU has it, else a slicing-by-8 table. */
uint32_t crc32c_extend(uint32_t crc, const void *buf, size_t n);
static inline uint32_t crc32c(const void *buf, size_t n) { return crc32c_extend(0, buf, n); }

/* The portable table version, kept compiled and tested against the hardware one. */
uint32_t crc32c_extend_sw(uint32_t crc, const void *buf, size_t n);
/* 1 if crc32c_extend uses a hardware instruction. */
int crc32c_hw_available(void);

/* Stored CRCs are masked so that a CRC over data containing CRCs stays strong. */
static inline uint32_t crc32c_mask(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }
static inline uint32_t crc32c_unmask(uint32_t m)
{
    uint32_t r = m - 0xa282ead8u;
    return (r >> 17) | (r << 15);
}

#endif /* NDB_CRC32C_H */
