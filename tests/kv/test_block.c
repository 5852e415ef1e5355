#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "block.h"
#include "dbformat.h"

static kv_slice ik(char *buf, int i)
{
    int n = sprintf(buf, "key%05d", i);
    put_fixed64(buf + n, ikey_pack(100, KV_TYPE_VALUE));
    return (kv_slice){buf, (size_t)n + 8};
}

Test(block, build_seek_iterate_both_ways)
{
    kv_block_builder b;
    kv_block_builder_init(&b, BLOCK_RESTART_INTERVAL);
    char kb[32];
    for (int i = 0; i < 500; i += 2) kv_block_builder_add(&b, ik(kb, i), (kv_slice){kb, 8});
    kv_slice raw = kv_block_builder_finish(&b);
    cr_assert_not_null(raw.data);
    kv_iter *it = kv_block_iter(raw.data, raw.len, NULL, NULL);
    int n = 0;
    for (it_seek_first(it); it_valid(it); it_next(it), n++) {
        char want[32];
        kv_slice w = ik(want, n * 2);
        cr_assert_eq(ikey_cmp(it_key(it), w), 0);
        cr_assert(it_value(it).len == 8 && memcmp(it_value(it).data, want, 8) == 0);
    }
    cr_assert_eq(n, 250);
    n = 0;
    for (it_seek_last(it); it_valid(it); it_prev(it)) n++;
    cr_assert_eq(n, 250);
    for (int i = 0; i < 500; i++) {
        char t[32];
        it_seek(it, ik(t, i));
        int want = (i + 1) / 2 * 2;
        if (want >= 500) {
            cr_assert(!it_valid(it));
            continue;
        }
        cr_assert(it_valid(it));
        char w[32];
        cr_assert_eq(ikey_cmp(it_key(it), ik(w, want)), 0, "seek %d", i);
    }
    cr_assert_eq(it_status(it), NDB_OK);
    it_destroy(it);
    kv_block_builder_destroy(&b);
}

Test(block, garbage_is_corrupt_not_crash)
{
    char junk[256];
    srand(3);
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(rand() % 256);
        for (size_t i = 0; i < n; i++) junk[i] = (char)rand();
        kv_iter *it = kv_block_iter(junk, n, NULL, NULL);
        cr_assert_not_null(it);
        int steps = 0;
        for (it_seek_first(it); it_valid(it) && steps < 1000; it_next(it)) steps++;
        char t[32];
        it_seek(it, ik(t, 5));
        char kb[64];
        int found;
        kv_slice fk, fv;
        ndb_status st = kv_block_find(junk, n, ik(t, 5), kb, sizeof kb, &found, &fk, &fv);
        cr_assert(st == NDB_OK || st == NDB_ECORRUPT || st == NDB_ETOOBIG);
        if (st == NDB_OK && found) cr_assert(fv.data >= junk && fv.data + fv.len <= junk + n);
        it_seek_last(it);
        if (it_valid(it)) it_prev(it);
        it_destroy(it);
    }
}

Test(block, find_matches_iterator_seek)
{
    for (int interval = 1; interval <= 16; interval += 15) {
        kv_block_builder b;
        kv_block_builder_init(&b, interval);
        char kb[32];
        for (int i = 0; i < 300; i += 3) kv_block_builder_add(&b, ik(kb, i), (kv_slice){kb, 8});
        kv_slice raw = kv_block_builder_finish(&b);
        kv_iter *it = kv_block_iter(raw.data, raw.len, NULL, NULL);
        for (int i = 0; i < 310; i++) {
            char t[32], buf[64];
            kv_slice target = ik(t, i), fk, fv;
            int found;
            cr_assert_eq(kv_block_find(raw.data, raw.len, target, buf, sizeof buf, &found, &fk, &fv), NDB_OK);
            it_seek(it, target);
            cr_assert_eq(found, it_valid(it), "interval %d seek %d", interval, i);
            if (found) {
                cr_assert_eq(ikey_cmp(fk, it_key(it)), 0);
                cr_assert(fv.len == it_value(it).len && memcmp(fv.data, it_value(it).data, fv.len) == 0);
            }
            int f2;
            cr_assert_eq(kv_block_find(raw.data, raw.len, target, buf, 4, &f2, &fk, &fv), NDB_ETOOBIG);
        }
        it_destroy(it);
        kv_block_builder_destroy(&b);
    }
}
