#include "memtable.h"

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "bloom.h"
#include "dbformat.h"

#define MEM_MAX_HEIGHT 12
#define MEM_FILTER_PROBES 6

typedef struct node {
    uint32_t klen; /* internal key length (user key + 8) */
    uint32_t vlen;
    uint32_t height;
    uint32_t pad;
    struct node *next[]; /* height slots, accessed atomically; key and value follow */
} node;

struct kv_mem {
    int refs;
    int max_height; /* atomic: readers start their search here */
    uint64_t rnd;
    uint64_t entries;
    kv_arena *arena;
    node *head;
    char *filter; /* bloom over user keys (NULL: none): lets a get skip the search */
    size_t filter_lines;
};

static inline char *node_data(node *n) { return (char *)&n->next[n->height]; }
static inline kv_slice node_key(node *n) { return (kv_slice){node_data(n), n->klen}; }
static inline node *nx(node *n, int l) { return __atomic_load_n(&n->next[l], __ATOMIC_ACQUIRE); }

kv_mem *kv_mem_new(size_t arena_block, size_t filter_bytes)
{
    kv_mem *m = calloc(1, sizeof *m);
    if (m == NULL) return NULL;
    m->arena = kv_arena_new(arena_block);
    m->filter_lines = filter_bytes / 64;
    if (m->filter_lines) m->filter = calloc(m->filter_lines, 64);
    if (m->arena == NULL || (m->filter_lines && m->filter == NULL)) {
        kv_arena_free(m->arena);
        free(m->filter);
        free(m);
        return NULL;
    }
    m->head = kv_arena_alloc(m->arena, sizeof(node) + MEM_MAX_HEIGHT * sizeof(node *));
    if (m->head == NULL) {
        kv_arena_free(m->arena);
        free(m->filter);
        free(m);
        return NULL;
    }
    memset(m->head, 0, sizeof(node) + MEM_MAX_HEIGHT * sizeof(node *));
    m->head->height = MEM_MAX_HEIGHT;
    m->max_height = 1;
    m->refs = 1;
    m->rnd = 0x9e3779b97f4a7c15ull;
    return m;
}

void kv_mem_ref(kv_mem *m) { __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED); }
void kv_mem_unref(kv_mem *m)
{
    if (m && __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        kv_arena_free(m->arena);
        free(m->filter);
        free(m);
    }
}

size_t kv_mem_bytes(const kv_mem *m) { return kv_arena_usage(m->arena); }
uint64_t kv_mem_entries(const kv_mem *m) { return __atomic_load_n(&m->entries, __ATOMIC_RELAXED); }

static int random_height(kv_mem *m)
{
    int h = 1;
    for (;;) {
        m->rnd ^= m->rnd << 13;
        m->rnd ^= m->rnd >> 7;
        m->rnd ^= m->rnd << 17;
        if (h < MEM_MAX_HEIGHT && (m->rnd & 3) == 0)
            h++;
        else
            break;
    }
    return h;
}

/* Compares the node's internal key with target (an internal key). */
static inline int node_cmp(node *n, kv_slice target) { return ikey_cmp(node_key(n), target); }

/* First node >= target; fills prev[] with the last node < target per level. */
static node *find_ge(kv_mem *m, kv_slice target, node **prev)
{
    node *x = m->head;
    node *known_ge = NULL; /* a node already compared >= target: skip comparing it again */
    int level = __atomic_load_n(&m->max_height, __ATOMIC_RELAXED) - 1;
    for (;;) {
        node *n = nx(x, level);
        if (n != NULL && n != known_ge && node_cmp(n, target) < 0) {
            x = n;
        } else {
            known_ge = n;
            if (prev) prev[level] = x;
            if (level == 0) return n;
            level--;
        }
    }
}

static node *find_lt(kv_mem *m, kv_slice target)
{
    node *x = m->head;
    int level = __atomic_load_n(&m->max_height, __ATOMIC_RELAXED) - 1;
    for (;;) {
        node *n = nx(x, level);
        if (n != NULL && node_cmp(n, target) < 0) {
            x = n;
        } else {
            if (level == 0) return x == m->head ? NULL : x;
            level--;
        }
    }
}

static node *find_last(kv_mem *m)
{
    node *x = m->head;
    int level = __atomic_load_n(&m->max_height, __ATOMIC_RELAXED) - 1;
    for (;;) {
        node *n = nx(x, level);
        if (n != NULL) {
            x = n;
        } else {
            if (level == 0) return x == m->head ? NULL : x;
            level--;
        }
    }
}

ndb_status kv_mem_add(kv_mem *m, uint64_t seq, int type, const void *key, size_t klen,
                      const void *val, size_t vlen)
{
    if (klen > UINT32_MAX - 8 || vlen > UINT32_MAX) return NDB_ETOOBIG;
    /* the filter line is fetched while the node is filled and linked */
    uint64_t hash = m->filter ? kv_bloom_hash(key, klen) : 0;
    if (m->filter) __builtin_prefetch(m->filter + kv_bloom_line(m->filter_lines, hash) * 64, 1);
    int h = random_height(m);
    size_t sz = sizeof(node) + (size_t)h * sizeof(node *) + klen + 8 + vlen;
    node *n = kv_arena_alloc(m->arena, sz);
    if (n == NULL) return NDB_ENOMEM;
    n->klen = (uint32_t)(klen + 8);
    n->vlen = (uint32_t)vlen;
    n->height = (uint32_t)h;
    n->pad = 0;
    char *d = node_data(n);
    if (klen) memcpy(d, key, klen);
    put_fixed64(d + klen, ikey_pack(seq, type));
    if (vlen) memcpy(d + klen + 8, val, vlen);
    node *prev[MEM_MAX_HEIGHT];
    find_ge(m, node_key(n), prev);
    if (m->filter) kv_bloom_add(m->filter, m->filter_lines, MEM_FILTER_PROBES, hash);
    int mh = m->max_height;
    if (h > mh) {
        for (int i = mh; i < h; i++) prev[i] = m->head;
        /* Readers seeing the new height before the links find NULL at the
         * top levels of head and drop down: safe. */
        __atomic_store_n(&m->max_height, h, __ATOMIC_RELAXED);
    }
    for (int i = 0; i < h; i++) {
        __atomic_store_n(&n->next[i], nx(prev[i], i), __ATOMIC_RELAXED);
        __atomic_store_n(&prev[i]->next[i], n, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&m->entries, m->entries + 1, __ATOMIC_RELAXED);
    return NDB_OK;
}

int kv_mem_get(kv_mem *m, const void *key, size_t klen, uint64_t hash, uint64_t seq, const char **val,
               size_t *vlen, int *deleted)
{
    if (m->filter && !kv_bloom_test(m->filter, m->filter_lines, MEM_FILTER_PROBES, hash)) return 0;
    char stackbuf[256];
    char *buf = klen + 8 <= sizeof stackbuf ? stackbuf : malloc(klen + 8);
    if (buf == NULL) return 0;
    if (klen) memcpy(buf, key, klen);
    put_fixed64(buf + klen, ikey_pack(seq, KV_TYPE_SEEK));
    node *n = find_ge(m, (kv_slice){buf, klen + 8}, NULL);
    if (buf != stackbuf) free(buf);
    if (n == NULL || n->klen - 8 != klen || (klen && memcmp(node_data(n), key, klen) != 0))
        return 0;
    kv_slice k = node_key(n);
    *deleted = ikey_type(k) == KV_TYPE_DELETE;
    *val = node_data(n) + n->klen;
    *vlen = n->vlen;
    return 1;
}

/* ---- iterator */

typedef struct mem_iter {
    kv_iter base;
    kv_mem *m;
    node *cur;
} mem_iter;

static void mi_go(mem_iter *mi, node *n)
{
    mi->cur = n;
    kv_iter_publish(&mi->base, n != NULL, n ? node_key(n) : (kv_slice){"", 0});
}
static void mi_seek_first(kv_iter *it)
{
    mem_iter *mi = (mem_iter *)it;
    mi_go(mi, nx(mi->m->head, 0));
}
static void mi_seek_last(kv_iter *it)
{
    mem_iter *mi = (mem_iter *)it;
    mi_go(mi, find_last(mi->m));
}
static void mi_seek(kv_iter *it, kv_slice t)
{
    mem_iter *mi = (mem_iter *)it;
    mi_go(mi, find_ge(mi->m, t, NULL));
}
static void mi_next(kv_iter *it)
{
    mem_iter *mi = (mem_iter *)it;
    mi_go(mi, nx(mi->cur, 0));
}
static void mi_prev(kv_iter *it)
{
    mem_iter *mi = (mem_iter *)it;
    mi_go(mi, find_lt(mi->m, node_key(mi->cur)));
}
static kv_slice mi_value(kv_iter *it)
{
    node *n = ((mem_iter *)it)->cur;
    return (kv_slice){node_data(n) + n->klen, n->vlen};
}
static ndb_status mi_status(kv_iter *it)
{
    (void)it;
    return NDB_OK;
}
static void mi_destroy(kv_iter *it)
{
    mem_iter *mi = (mem_iter *)it;
    kv_mem_unref(mi->m);
    free(mi);
}

static const kv_iter_vtbl mem_vtbl = {mi_seek_first, mi_seek_last, mi_seek,    mi_next,
                                      mi_prev,       mi_value,     mi_status, mi_destroy};

kv_iter *kv_mem_iter(kv_mem *m)
{
    mem_iter *mi = malloc(sizeof *mi);
    if (mi == NULL) return NULL;
    kv_iter_init(&mi->base, &mem_vtbl);
    kv_mem_ref(m);
    mi->m = m;
    mi->cur = NULL;
    return &mi->base;
}
