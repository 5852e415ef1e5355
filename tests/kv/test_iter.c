/* Merging iterator over memtables: order, duplicates across children, direction changes. */
#include <criterion/criterion.h>
#include <stdio.h>

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
