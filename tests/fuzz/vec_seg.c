/*
 * vec_seg.c — fuzzes the vector store's file readers: the sealed segment
 * header and id table (seg_open) and the per-collection log replay
 * (wal_replay). Checksums stop blind mutation at the first check, so bit 1
 * of byte 0 asks the harness to recompute them before the file is written,
 * letting the fuzzer reach the checks behind them.
 * Input: byte 0 (bit 0: 0 segment, 1 log; bit 1: fix checksums), byte 1
 * (log: dims 1..64; metric for segments), then the file.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "fuzz_util.h"
#include "seg.h"
#include "wal.h"

static size_t sink;

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static ndb_status apply(void *ctx, int type, uint64_t lsn, const char *id, size_t id_len, const unsigned char *vec)
{
    (void)ctx;
    (void)lsn;
    for (size_t i = 0; i < id_len; i++)
        sink += (unsigned char)id[i];
    if (type == WAL_PUT && vec != NULL)
        sink += vec[0];
    return NDB_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t mode = fz_byte(&in);
    uint8_t arg = fz_byte(&in);
    uint8_t *buf = malloc(in.n ? in.n : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, in.p, in.n);
    size_t n = in.n;
    ndb_errmsg msg;
    if (!(mode & 1)) {
        if ((mode & 2) && n >= SEG_HEADER) {
            wr32(buf + 48, crc32c(buf + SEG_HEADER, n - SEG_HEADER));
            wr32(buf + 60, crc32c(buf, 60));
        }
        uint32_t dims = n >= 16 ? rd32(buf + 12) : 4;
        const char *path = fz_write("seg-00000001.vseg", buf, n);
        seg *s = NULL;
        if (seg_open(path, 1, dims, arg % 3, &s, &msg) == NDB_OK) {
            for (uint64_t i = 0; i < s->nrows && i < 4096; i++) {
                size_t len;
                const char *id = seg_id(s, i, &len);
                for (size_t j = 0; j < len; j++)
                    sink += (unsigned char)id[j];
                uint32_t bits;
                memcpy(&bits, &seg_row(s, i)[s->dims - 1], sizeof bits);
                sink += bits;
            }
            seg_close(s);
        }
    } else {
        uint32_t dims = 1 + arg % 64;
        if (mode & 2) /* records: crc | len | len bytes */
            for (size_t off = 0; off + 8 <= n;) {
                uint32_t len = rd32(buf + off + 4);
                if (len > n - off - 8)
                    break;
                wr32(buf + off, crc32c(buf + off + 4, 4 + (size_t)len));
                off += 8 + (size_t)len;
            }
        const char *path = fz_write("wal.log", buf, n);
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            uint64_t valid_end = 0, last = 0;
            if (wal_replay(fd, path, dims, mode >> 4, apply, NULL, &valid_end, &last, &msg) == NDB_OK &&
                valid_end > n)
                abort(); /* the valid prefix cannot be longer than the file */
            close(fd);
        }
    }
    free(buf);
    return 0;
}
