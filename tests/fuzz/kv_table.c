/*
 * kv_table.c — fuzzes the SSTable reader: footer, index block, filter block
 * and data blocks through kv_table_open, a full scan, seeks and point gets;
 * and the block parser on its own (kv_block_iter, kv_block_find).
 * Input: byte 0 (bit 0: 0 an SSTable file, 1 one raw block; bit 1: use a
 * block cache; bit 2: recompute the table's checksums first, see fuzz_kv.h),
 * then the bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "bloom.h"
#include "coding.h"
#include "dbformat.h"
#include "env.h"
#include "fuzz_kv.h"
#include "fuzz_util.h"
#include "table.h"

static size_t sink;

static void scan(kv_iter *it)
{
    int steps = 0;
    for (it_seek_first(it); it_valid(it) && steps < 10000; it_next(it), steps++) {
        kv_slice k = it_key(it), v = it_value(it);
        for (size_t i = 0; i < k.len; i++)
            sink += (unsigned char)k.data[i];
        for (size_t i = 0; i < v.len; i++)
            sink += (unsigned char)v.data[i];
    }
    (void)it_status(it);
    for (it_seek_last(it), steps = 0; it_valid(it) && steps < 100; it_prev(it), steps++)
        sink += it_key(it).len;
    (void)it_status(it);
}

static void raw_block(const uint8_t *data, size_t size)
{
    kv_iter *it = kv_block_iter((const char *)data, size, NULL, NULL);
    if (it != NULL) {
        scan(it);
        it_seek(it, (kv_slice){"k\0\0\0\0\0\0\0\0", 9});
        (void)it_valid(it);
        it_destroy(it);
    }
    char keybuf[256];
    int found = 0;
    kv_slice key = {0}, val = {0};
    if (kv_block_find((const char *)data, size, (kv_slice){"key5\xff\xff\xff\xff\xff\xff\xff\xff", 12}, keybuf,
                      sizeof keybuf, &found, &key, &val) == NDB_OK &&
        found) {
        for (size_t i = 0; i < val.len; i++)
            sink += (unsigned char)val.data[i];
    }
    (void)kv_block_check((const char *)data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t mode = fz_byte(&in);
    if (mode & 1) {
        raw_block(in.p, in.n);
        return 0;
    }
    char *buf = malloc(in.n ? in.n : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, in.p, in.n);
    if (mode & 4)
        fz_fix_table_crcs(buf, in.n);
    const char *path = fz_write("t.sst", buf, in.n);
    free(buf);
    kv_table *t = NULL;
    ndb_errmsg msg;
    kv_cache *cache = (mode & 2) ? kv_cache_new(1 << 20) : NULL;
    if (kv_table_open(kv_env_posix(), path, in.n, cache, &t, &msg) == NDB_OK) {
        kv_iter *it = kv_table_iter(t, NULL, NULL);
        if (it != NULL) {
            scan(it);
            char ik[32];
            for (int i = 0; i < 4; i++) {
                int kl = snprintf(ik, sizeof ik, "key%d", i * 7);
                put_fixed64(ik + kl, ikey_pack(UINT64_MAX >> 8, 1));
                it_seek(it, (kv_slice){ik, (size_t)kl + 8});
                if (it_valid(it))
                    sink += it_value(it).len;
            }
            it_destroy(it);
        }
        for (int i = 0; i < 8; i++) {
            char ik[32];
            int kl = snprintf(ik, sizeof ik, "key%d", i * 3);
            put_fixed64(ik + kl, ikey_pack(UINT64_MAX >> 8, 1));
            int result = 0, skip = 0;
            void *val = NULL;
            size_t vlen = 0;
            if (kv_table_get(t, (kv_slice){ik, (size_t)kl + 8}, kv_bloom_hash(ik, (size_t)kl), &result, &val, &vlen,
                             &skip) == NDB_OK &&
                result == TABLE_GET_VALUE) {
                sink += vlen;
                free(val);
            }
        }
        kv_table_close(t);
    }
    if (cache != NULL)
        kv_cache_free(cache);
    return 0;
}
