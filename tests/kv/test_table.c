#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "bloom.h"
#include "dbformat.h"
#include "table.h"
#include "testutil.h"

static char *dir;
static char path[4200];
static void setup(void)
{
    dir = tu_tmpdir("table");
    snprintf(path, sizeof path, "%s/000005.sst", dir);
}
static void teardown(void) { tu_rmdir(dir); }
TestSuite(table, .init = setup, .fini = teardown);

static kv_slice ik(char *buf, int i, uint64_t seq, int type)
{
    int n = sprintf(buf, "key%07d", i);
    put_fixed64(buf + n, ikey_pack(seq, type));
    return (kv_slice){buf, (size_t)n + 8};
}

static uint64_t build(ndb_kv_compression c, int n)
{
    kv_table_opts o = {4096, 10, c};
    kv_table_builder *b;
    cr_assert_eq(kv_table_builder_new(kv_env_posix(), path, &o, &b), NDB_OK);
    char kb[32], vb[128];
    for (int i = 0; i < n; i++) {
        int vl = sprintf(vb, "value-%d-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", i);
        /* every 10th key is a tombstone over an older value */
        if (i % 10 == 0) {
            cr_assert_eq(kv_table_builder_add(b, ik(kb, i, 20, KV_TYPE_DELETE), (kv_slice){"", 0}), NDB_OK);
            cr_assert_eq(kv_table_builder_add(b, ik(kb, i, 10, KV_TYPE_VALUE), (kv_slice){vb, (size_t)vl}), NDB_OK);
        } else {
            cr_assert_eq(kv_table_builder_add(b, ik(kb, i, 10, KV_TYPE_VALUE), (kv_slice){vb, (size_t)vl}), NDB_OK);
        }
    }
    uint64_t size;
    cr_assert_eq(kv_table_builder_finish(b, &size), NDB_OK);
    return size;
}

static void check(uint64_t size, kv_cache *cache, int n)
{
    kv_table *t;
    ndb_errmsg msg;
    cr_assert_eq(kv_table_open(kv_env_posix(), path, size, cache, &t, &msg), NDB_OK, "%s", msg.text);
    char kb[32];
    for (int i = 0; i < n; i++) {
        kv_slice l = ik(kb, i, 100, KV_TYPE_SEEK);
        kv_slice u = ikey_user(l);
        int res, skip;
        void *v = NULL;
        size_t vl;
        cr_assert_eq(kv_table_get(t, l, kv_bloom_hash(u.data, u.len), &res, &v, &vl, &skip), NDB_OK);
        if (i % 10 == 0) {
            cr_assert_eq(res, TABLE_GET_DELETED);
            /* the older value is visible at an older sequence */
            l = ik(kb, i, 15, KV_TYPE_SEEK);
            cr_assert_eq(kv_table_get(t, l, kv_bloom_hash(u.data, u.len), &res, &v, &vl, &skip), NDB_OK);
        }
        cr_assert_eq(res, TABLE_GET_VALUE, "key %d", i);
        char want[128];
        int wl = sprintf(want, "value-%d-", i);
        cr_assert(vl > (size_t)wl && memcmp(v, want, (size_t)wl) == 0);
        free(v);
    }
    int misses = 0;
    for (int i = n; i < n + 1000; i++) {
        kv_slice l = ik(kb, i, 100, KV_TYPE_SEEK);
        kv_slice u = ikey_user(l);
        int res, skip;
        cr_assert_eq(kv_table_get(t, l, kv_bloom_hash(u.data, u.len), &res, NULL, NULL, &skip), NDB_OK);
        cr_assert_eq(res, TABLE_GET_MISS);
        misses += skip;
    }
    cr_assert_gt(misses, 950, "bloom must rule out most absent keys (%d)", misses);
    kv_iter *it = kv_table_iter(t, NULL, NULL);
    int cnt = 0;
    for (it_seek_first(it); it_valid(it); it_next(it)) cnt++;
    cr_assert_eq(cnt, n + n / 10);
    cnt = 0;
    for (it_seek_last(it); it_valid(it); it_prev(it)) cnt++;
    cr_assert_eq(cnt, n + n / 10);
    it_seek(it, ik(kb, n / 2 + 1, 100, KV_TYPE_SEEK));
    cr_assert(it_valid(it));
    cr_assert_eq(ikey_cmp(it_key(it), ik(kb, n / 2 + 1, 10, KV_TYPE_VALUE)), 0);
    cr_assert_eq(it_status(it), NDB_OK);
    it_destroy(it);
    kv_table_close(t);
}

Test(table, roundtrip_none) { check(build(NDB_KV_COMPRESS_NONE, 5000), NULL, 5000); }
Test(table, roundtrip_lz4_cached)
{
    kv_cache *c = kv_cache_new(1 << 20);
    uint64_t sz = build(NDB_KV_COMPRESS_LZ4, 5000);
    check(sz, c, 5000);
    check(sz, c, 5000);
    kv_cache_free(c);
}
Test(table, roundtrip_zstd) { check(build(NDB_KV_COMPRESS_ZSTD, 3000), NULL, 3000); }

static void flip_byte(uint64_t off)
{
    FILE *f = fopen(path, "r+b");
    fseek(f, (long)off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, (long)off, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
}

Test(table, corrupt_data_block_gives_ecorrupt)
{
    uint64_t size = build(NDB_KV_COMPRESS_NONE, 2000);
    flip_byte(100); /* inside the first data block */
    kv_table *t;
    ndb_errmsg msg;
    cr_assert_eq(kv_table_open(kv_env_posix(), path, size, NULL, &t, &msg), NDB_OK);
    char kb[32];
    kv_slice l = ik(kb, 1, 100, KV_TYPE_SEEK);
    kv_slice u = ikey_user(l);
    int res, skip;
    void *v;
    size_t vl;
    cr_assert_eq(kv_table_get(t, l, kv_bloom_hash(u.data, u.len), &res, &v, &vl, &skip), NDB_ECORRUPT);
    kv_iter *it = kv_table_iter(t, NULL, NULL);
    it_seek_first(it);
    cr_assert(!it_valid(it));
    cr_assert_eq(it_status(it), NDB_ECORRUPT);
    it_destroy(it);
    kv_table_close(t);
}

Test(table, corrupt_footer_or_index_fails_open)
{
    uint64_t size = build(NDB_KV_COMPRESS_NONE, 2000);
    for (uint64_t off = size - 60; off < size; off += 3) {
        build(NDB_KV_COMPRESS_NONE, 2000);
        flip_byte(off);
        kv_table *t = NULL;
        ndb_errmsg msg;
        ndb_status st = kv_table_open(kv_env_posix(), path, size, NULL, &t, &msg);
        cr_assert_eq(st, NDB_ECORRUPT, "flip at %llu opened", (unsigned long long)off);
    }
    kv_table *t;
    ndb_errmsg msg;
    cr_assert_eq(kv_table_open(kv_env_posix(), path, size - 1, NULL, &t, &msg), NDB_ECORRUPT);
}
