/*
 * vec_seg.c — fuzzes the reader of vector segment files (seg_open: footer,
 * sizes, checksums, row numbers, id table) and the rows it hands out.
 * Checksums stop blind mutation at the first check, so bit 1 of byte 0 asks
 * the harness to recompute them before the file is written, letting the
 * fuzzer reach the checks behind them. The identity the file must match
 * (collection, dims, metric) is read from its own footer, so mutations of
 * those fields are checked for consistency rather than refused outright.
 * Input: byte 0 (bit 1: fix checksums), then the file.
 */
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "env.h"
#include "fuzz_util.h"
#include "seg.h"

static size_t sink;

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t mode = fz_byte(&in);
    uint8_t *buf = malloc(in.n ? in.n : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, in.p, in.n);
    size_t n = in.n;
    seg_identity id = {7, 4, 0};
    if (n >= SEG_FOOTER) {
        uint8_t *ft = buf + n - SEG_FOOTER; /* FORMAT.md: data crc at 64, footer crc at 124 */
        if (mode & 2) {
            wr32(ft + 64, crc32c(buf, n - SEG_FOOTER));
            wr32(ft + 124, crc32c(ft, 124));
        }
        uint64_t coll;
        memcpy(&coll, ft + 24, 8);
        id = (seg_identity){coll, rd32(ft + 12), rd32(ft + 16)};
    }
    const char *path = fz_write("seg-00000001.vseg", buf, n);
    seg *s = NULL;
    ndb_errmsg msg;
    if (seg_open(kv_env_posix(), path, 1, &id, &s, &msg) == NDB_OK) {
        for (uint64_t i = 0; i < s->nrows && i < 4096; i++) {
            size_t len;
            const char *sid = seg_id(s, i, &len);
            for (size_t j = 0; j < len; j++)
                sink += (unsigned char)sid[j];
            uint32_t bits;
            memcpy(&bits, &seg_row(s, i)[s->dims - 1], sizeof bits);
            sink += bits + (size_t)s->rowno[i];
            if (seg_find_row(s, s->rowno[i]) != (int64_t)i)
                abort(); /* row numbers ascend, so each is found where it is */
        }
        seg_close(s);
    }
    free(buf);
    return 0;
}
