/*
 * kv_wal.c — fuzzes the engine/kv log reader (WAL segments and the manifest
 * share it) and the write-batch decoder applied to each WAL_BATCH record.
 * Input: byte 0 (bit 0: recompute each record's CRC first, so mutations
 * reach the payload decoders), then the bytes of a log file.
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "fuzz_kv.h"
#include "env.h"
#include "fuzz_util.h"
#include "wal.h"

static ndb_status count_rec(void *arg, uint64_t seq, int type, const char *key, size_t klen, const char *val,
                            size_t vlen)
{
    (void)seq;
    size_t *sum = arg;
    /* touch every byte the decoder hands out, so ASan sees out-of-bounds views */
    for (size_t i = 0; i < klen; i++)
        *sum += (unsigned char)key[i];
    for (size_t i = 0; i < vlen; i++)
        *sum += (unsigned char)val[i];
    *sum += (size_t)type;
    return NDB_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t mode = fz_byte(&in);
    char *buf = malloc(in.n ? in.n : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, in.p, in.n);
    size = in.n;
    if (mode & 1)
        fz_fix_log_crcs(buf, size);
    const char *path = fz_write("wal.log", buf, size);
    free(buf);
    kv_wal_reader *r = NULL;
    if (kv_wal_reader_open(kv_env_posix(), path, &r) != NDB_OK)
        return 0;
    size_t sum = 0;
    for (;;) {
        int type = 0;
        const char *payload = NULL;
        size_t n = 0;
        ndb_status st = kv_wal_read(r, &type, &payload, &n);
        if (st != NDB_OK)
            break;
        if (type == WAL_BATCH)
            (void)kv_batch_iterate(payload, n, count_rec, &sum);
    }
    if (kv_wal_reader_offset(r) > size)
        abort(); /* the reader claims bytes the file does not have */
    kv_wal_reader_free(r);
    return sum == 0xdeadbeef ? 1 : 0;
}
