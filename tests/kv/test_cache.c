#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"

static char *blob(size_t n, char c)
{
    char *p = malloc(n);
    memset(p, c, n);
    return p;
}

Test(cache, bounded_pinned_and_erased)
{
    kv_cache *c = kv_cache_new(16 * 64 * 1024); /* 64 KiB per shard */
    cr_assert_not_null(c);
    uint64_t id = kv_cache_new_id(c);
    kv_cache_entry *pinned = kv_cache_insert(c, id, 0, blob(4096, 'p'), 4096);
    for (uint64_t off = 1; off < 2000; off++) {
        kv_cache_entry *e = kv_cache_insert(c, id, off * 4096, blob(4096, (char)off), 4096);
        cr_assert_not_null(e);
        kv_cache_release(c, e);
        cr_assert_leq(kv_cache_usage(c), 16 * 64 * 1024 + 4096 * 16);
    }
    /* the pinned block stays readable even if evicted */
    cr_assert_eq(kv_cache_data(pinned)[100], 'p');
    kv_cache_release(c, pinned);
    /* a recent entry is found with its bytes */
    kv_cache_entry *e = kv_cache_lookup(c, id, 1999 * 4096);
    cr_assert_not_null(e);
    cr_assert_eq(kv_cache_size(e), 4096);
    cr_assert_eq(kv_cache_data(e)[0], (char)1999);
    kv_cache_release(c, e);
    cr_assert_null(kv_cache_lookup(c, id + 1, 1999 * 4096));
    kv_cache_erase_id(c, id);
    cr_assert_null(kv_cache_lookup(c, id, 1999 * 4096));
    cr_assert_eq(kv_cache_usage(c), 0);
    kv_cache_free(c);
}

Test(cache, counts_hits_and_misses)
{
    kv_cache *c = kv_cache_new(16 * 64 * 1024);
    cr_assert_not_null(c);
    uint64_t id = kv_cache_new_id(c), hits, misses;
    for (uint64_t off = 0; off < 40; off++) /* 40 keys spread over the shards */
        cr_assert_null(kv_cache_lookup(c, id, off));
    for (uint64_t off = 0; off < 40; off++)
        kv_cache_release(c, kv_cache_insert(c, id, off, blob(64, 'h'), 64));
    for (int round = 0; round < 3; round++)
        for (uint64_t off = 0; off < 40; off++) {
            kv_cache_entry *e = kv_cache_lookup(c, id, off);
            cr_assert_not_null(e);
            kv_cache_release(c, e);
        }
    kv_cache_counters(c, &hits, &misses);
    cr_assert_eq(hits, 120);
    cr_assert_eq(misses, 40);
    kv_cache_free(c);
}

Test(cache, hits_get_a_second_chance)
{
    kv_cache *c = kv_cache_new(16 * 8 * 1024);
    uint64_t id = kv_cache_new_id(c);
    /* keep re-reading block 0 while streaming others through its shard */
    kv_cache_release(c, kv_cache_insert(c, id, 0, blob(1024, 'a'), 1024));
    int found = 0;
    for (uint64_t off = 1; off < 5000; off++) {
        kv_cache_release(c, kv_cache_insert(c, id, off, blob(1024, 'b'), 1024));
        kv_cache_entry *e = kv_cache_lookup(c, id, 0);
        if (e) {
            found++;
            kv_cache_release(c, e);
        }
    }
    cr_assert_eq(found, 4999, "a hot block must survive a scan (%d)", found);
    kv_cache_free(c);
}
