/*
 * fuzz_kv.h — checksum repair for the engine/kv fuzz targets. Blind
 * mutations fail the CRC of the record or block they touch, so the parsers
 * behind the checks are never reached; these rewrite the checksums of a
 * mutated file (in place) where its own bytes say they are.
 */
#ifndef FUZZ_KV_H
#define FUZZ_KV_H

#include <stddef.h>

/* Every whole log record (FORMAT.md "Log records"). */
void fz_fix_log_crcs(char *buf, size_t n);

/* The footer, the filter and index blocks' trailers, and the trailer of every
 * data block an uncompressed index block points at (FORMAT.md "SSTable"). */
void fz_fix_table_crcs(char *buf, size_t n);

#endif /* FUZZ_KV_H */
