/* fuzz_kv.c — checksum repair for the engine/kv fuzz targets (see fuzz_kv.h). */
#include "fuzz_kv.h"

#include <stdint.h>

#include "block.h"
#include "coding.h"
#include "crc32c.h"
#include "table.h"
#include "wal.h"

void fz_fix_log_crcs(char *buf, size_t n)
{
    for (size_t off = 0; off + WAL_HEADER <= n;) {
        uint32_t len = get_fixed32(buf + off + 4);
        if (len > n - off - WAL_HEADER)
            break;
        put_fixed32(buf + off, crc32c_mask(crc32c(buf + off + 4, 5 + (size_t)len)));
        off += WAL_HEADER + (size_t)len;
    }
}

/* Fixes the trailer of the block [off, off+size) when it lies inside the file
 * before the footer; returns 1 when it did. */
static int fix_block(char *buf, size_t n, uint64_t off, uint64_t size)
{
    size_t body = n - TABLE_FOOTER;
    if (off > body || size > body - off || BLOCK_TRAILER > body - off - size)
        return 0;
    /* CRC over the stored bytes followed by the compression byte */
    put_fixed32(buf + off + size + 1, crc32c_mask(crc32c(buf + off, (size_t)size + 1)));
    return 1;
}

void fz_fix_table_crcs(char *buf, size_t n)
{
    if (n < TABLE_FOOTER)
        return;
    char *ft = buf + n - TABLE_FOOTER;
    put_fixed32(ft + 36, crc32c_mask(crc32c(ft, 36)));
    uint64_t ioff = get_fixed64(ft), isize = get_fixed64(ft + 8);
    uint64_t foff = get_fixed64(ft + 16), fsize = get_fixed64(ft + 24);
    if (fsize != 0)
        fix_block(buf, n, foff, fsize);
    if (!fix_block(buf, n, ioff, isize) || buf[ioff + isize] != 0)
        return;
    kv_iter *it = kv_block_iter(buf + ioff, (size_t)isize, NULL, NULL);
    if (it == NULL)
        return;
    int steps = 0;
    for (it_seek_first(it); it_valid(it) && steps < 100000; it_next(it), steps++) {
        kv_slice v = it_value(it);
        uint64_t boff, bsize;
        const char *p = get_varint64(v.data, v.data + v.len, &boff);
        if (p == NULL || get_varint64(p, v.data + v.len, &bsize) == NULL)
            continue;
        fix_block(buf, n, boff, bsize);
    }
    it_destroy(it);
}
