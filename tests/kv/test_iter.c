/* Merging iterator over memtables: order, duplicates across children, direction changes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "dbformat.h"
#include "memtable.h"

Test(iter, merge_orders_and_switches_direction)
{
    kv_mem *m[3];
    for (int j = 0; j < 3; j++) m[j] = kv_mem_new(64 * 1024, 0);
    char k[16];
    uint64_t seq = 1;
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "%05d", i);
        kv_mem_add(m[i % 3], seq++, KV_TYPE_VALUE, k, 5, "v", 1);
        if (i % 5 == 0) kv_mem_add(m[(i + 1) % 3], seq++, KV_TYPE_VALUE, k, 5, "w", 1); /* newer version elsewhere */
    }
    kv_iter *kids[3];
    for (int j = 0; j < 3; j++) kids[j] = kv_mem_iter(m[j]);
    kv_iter *it = kv_iter_merge(kids, 3);
    int n = 0;
    char last[64];
    size_t ll = 0;
    for (it_seek_first(it); it_valid(it); it_next(it), n++) {
        kv_slice key = it_key(it);
        if (ll) cr_assert_lt(ikey_cmp((kv_slice){last, ll}, key), 0);
        memcpy(last, key.data, key.len);
        ll = key.len;
    }
    cr_assert_eq(n, 300 + 60);
    n = 0;
    for (it_seek_last(it); it_valid(it); it_prev(it)) n++;
    cr_assert_eq(n, 360);
    /* zig-zag: next then prev returns to the same entry */
    it_seek_first(it);
    for (int s = 0; s < 100; s++) {
        char cur[64];
        kv_slice key = it_key(it);
        memcpy(cur, key.data, key.len);
        size_t cl = key.len;
        it_next(it);
        it_prev(it);
        cr_assert_eq(ikey_cmp(it_key(it), (kv_slice){cur, cl}), 0, "step %d", s);
        it_next(it);
    }
    it_destroy(it);
    for (int j = 0; j < 3; j++) kv_mem_unref(m[j]);
}

/* Runs of keys from one child (as compacted tables give): the merge steps
 * within a run by comparing with the runner-up only, and must still hand
 * over to the next child exactly where its keys start, after seeks and
 * after turning back. */
Test(iter, merge_runs_from_one_child)
{
    enum { N = 2000, KIDS = 4 };
    kv_mem *m[KIDS];
    for (int j = 0; j < KIDS; j++) m[j] = kv_mem_new(256 * 1024, 0);
    char k[16];
    unsigned r = 12345;
    int owner = 0, left = 0;
    for (int i = 0; i < N; i++) {
        if (left == 0) { /* the next run: another child, 1..40 keys */
            r = r * 1103515245 + 12345;
            owner = (int)(r >> 16) % KIDS;
            left = 1 + (int)(r >> 8) % 40;
        }
        left--;
        snprintf(k, sizeof k, "%06d", i);
        kv_mem_add(m[owner], (uint64_t)i + 1, KV_TYPE_VALUE, k, 6, "v", 1);
    }
    kv_iter *kids[KIDS];
    for (int j = 0; j < KIDS; j++) kids[j] = kv_mem_iter(m[j]);
    kv_iter *it = kv_iter_merge(kids, KIDS);
    int i = 0;
    for (it_seek_first(it); it_valid(it); it_next(it), i++) {
        snprintf(k, sizeof k, "%06d", i);
        cr_assert(ikey_user(it_key(it)).len == 6 && memcmp(ikey_user(it_key(it)).data, k, 6) == 0, "at %d", i);
    }
    cr_assert_eq(i, N);
    /* seek into the middle of runs, walk on, turn back, walk on again */
    for (int s = 0; s < N; s += 137) {
        char t[32];
        snprintf(k, sizeof k, "%06d", s);
        memcpy(t, k, 6);
        put_fixed64(t + 6, ikey_pack(UINT64_MAX >> 8, KV_TYPE_SEEK));
        it_seek(it, (kv_slice){t, 14});
        for (int x = s; x < s + 60 && x < N; x++) {
            snprintf(k, sizeof k, "%06d", x);
            cr_assert(memcmp(ikey_user(it_key(it)).data, k, 6) == 0, "seek %d: at %d", s, x);
            it_next(it);
        }
        if (s + 60 < N) {
            it_prev(it);
            it_prev(it);
            snprintf(k, sizeof k, "%06d", s + 58);
            cr_assert(memcmp(ikey_user(it_key(it)).data, k, 6) == 0, "back from %d", s);
            it_next(it);
            it_next(it);
            snprintf(k, sizeof k, "%06d", s + 60);
            cr_assert(memcmp(ikey_user(it_key(it)).data, k, 6) == 0, "on again from %d", s);
        }
    }
    it_destroy(it);
    for (int j = 0; j < KIDS; j++) kv_mem_unref(m[j]);
}
