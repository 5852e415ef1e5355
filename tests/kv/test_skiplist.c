/* Memtable (skiplist + arena) tests, including concurrent readers. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "bloom.h"
#include "dbformat.h"
#include "memtable.h"

Test(skiplist, versions_and_lookup)
{
    kv_mem *m = kv_mem_new(64 * 1024, 0);
    cr_assert_eq(kv_mem_add(m, 1, KV_TYPE_VALUE, "a", 1, "v1", 2), NDB_OK);
    cr_assert_eq(kv_mem_add(m, 2, KV_TYPE_VALUE, "a", 1, "v2", 2), NDB_OK);
    cr_assert_eq(kv_mem_add(m, 3, KV_TYPE_DELETE, "a", 1, NULL, 0), NDB_OK);
    cr_assert_eq(kv_mem_add(m, 4, KV_TYPE_VALUE, "ab", 2, "x", 1), NDB_OK);
    const char *v;
    size_t n;
    int del;
    cr_assert(kv_mem_get(m, "a", 1, kv_bloom_hash("a", 1), 1, &v, &n, &del) && !del && n == 2 && memcmp(v, "v1", 2) == 0);
    cr_assert(kv_mem_get(m, "a", 1, kv_bloom_hash("a", 1), 2, &v, &n, &del) && !del && memcmp(v, "v2", 2) == 0);
    cr_assert(kv_mem_get(m, "a", 1, kv_bloom_hash("a", 1), 100, &v, &n, &del) && del);
    cr_assert(!kv_mem_get(m, "a", 1, kv_bloom_hash("a", 1), 0, &v, &n, &del));
    cr_assert(!kv_mem_get(m, "b", 1, kv_bloom_hash("b", 1), 100, &v, &n, &del));
    cr_assert(!kv_mem_get(m, "", 0, kv_bloom_hash("", 0), 100, &v, &n, &del));
    cr_assert_eq(kv_mem_entries(m), 4);
    kv_mem_unref(m);
}

/* With a filter, a get finds every key added (never a false "absent") and
 * every version rule still holds; absent keys are answered as before. */
Test(skiplist, filter_never_hides_a_key)
{
    kv_mem *m = kv_mem_new(64 * 1024, 4096);
    char k[16];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "key%05d", i * 2);
        cr_assert_eq(kv_mem_add(m, (uint64_t)i + 1, i % 7 ? KV_TYPE_VALUE : KV_TYPE_DELETE, k, 8, k, 8), NDB_OK);
    }
    const char *v;
    size_t n;
    int del;
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "key%05d", i * 2);
        cr_assert(kv_mem_get(m, k, 8, kv_bloom_hash(k, 8), KV_MAX_SEQ, &v, &n, &del), "%s", k);
        cr_assert_eq(del, i % 7 == 0);
        if (!del) cr_assert(n == 8 && memcmp(v, k, 8) == 0);
        cr_assert(!kv_mem_get(m, k, 8, kv_bloom_hash(k, 8), (uint64_t)i, &v, &n, &del), "%s before its sequence", k);
        snprintf(k, sizeof k, "key%05d", i * 2 + 1);
        cr_assert(!kv_mem_get(m, k, 8, kv_bloom_hash(k, 8), KV_MAX_SEQ, &v, &n, &del), "%s was never added", k);
    }
    cr_assert(!kv_mem_get(m, "", 0, kv_bloom_hash("", 0), KV_MAX_SEQ, &v, &n, &del));
    kv_mem_unref(m);
}

Test(skiplist, iterator_order_and_prev)
{
    kv_mem *m = kv_mem_new(64 * 1024, 0);
    char k[16];
    for (int i = 999; i >= 0; i--) {
        snprintf(k, sizeof k, "%04d", (i * 7919) % 1000);
        cr_assert_eq(kv_mem_add(m, (uint64_t)i + 1, KV_TYPE_VALUE, k, 4, k, 4), NDB_OK);
    }
    kv_iter *it = kv_mem_iter(m);
    int count = 0;
    kv_slice prev = {0};
    char pbuf[16];
    for (it_seek_first(it); it_valid(it); it_next(it)) {
        kv_slice key = it_key(it);
        if (count) cr_assert_lt(ikey_cmp((kv_slice){pbuf, prev.len}, key), 0);
        memcpy(pbuf, key.data, key.len);
        prev.len = key.len;
        count++;
    }
    cr_assert_eq(count, 1000);
    count = 0;
    for (it_seek_last(it); it_valid(it); it_prev(it)) count++;
    cr_assert_eq(count, 1000);
    char sk[12];
    memcpy(sk, "0500", 4);
    put_fixed64(sk + 4, ikey_pack(KV_MAX_SEQ, KV_TYPE_SEEK));
    it_seek(it, (kv_slice){sk, 12});
    cr_assert(it_valid(it));
    cr_assert(memcmp(it_key(it).data, "0500", 4) == 0);
    it_destroy(it);
    kv_mem_unref(m);
}

static kv_mem *shared;
static volatile int stop;

static void *reader(void *p)
{
    (void)p;
    long checks = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        kv_iter *it = kv_mem_iter(shared);
        kv_slice last = {0};
        char lb[32];
        for (it_seek_first(it); it_valid(it); it_next(it)) {
            kv_slice k = it_key(it);
            if (last.len && ikey_cmp((kv_slice){lb, last.len}, k) >= 0) return (void *)1;
            memcpy(lb, k.data, k.len);
            last.len = k.len;
            checks++;
        }
        it_destroy(it);
    }
    return (void *)(checks >= 0 ? NULL : (void *)2);
}

Test(skiplist, concurrent_readers_see_sorted_list, .timeout = 60)
{
    shared = kv_mem_new(64 * 1024, 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, reader, NULL);
    char k[32];
    for (int i = 0; i < 50000; i++) {
        snprintf(k, sizeof k, "k%08lld", ((long long)i * 104729) % 50000);
        cr_assert_eq(kv_mem_add(shared, (uint64_t)i + 1, KV_TYPE_VALUE, k, strlen(k), "v", 1), NDB_OK);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        cr_assert_null(r);
    }
    kv_mem_unref(shared);
}
