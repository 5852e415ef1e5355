#include "cache.h"

#include <pthread.h>
#include <stdlib.h>

#define SHARDS 16

struct kv_cache_entry {
    uint64_t id, off;
    char *data;
    size_t size;
    int refs;      /* one for the table while in_table, one per handle */
    int in_table;
    int referenced; /* hit since it last reached the old end (second chance) */
    int borrowed;   /* data is not ours to free */
    struct kv_cache_entry *hnext;      /* hash chain */
    struct kv_cache_entry *prev, *next; /* LRU list (only while in_table) */
};

typedef struct shard {
    pthread_mutex_t mu;
    size_t cap, usage;
    kv_cache_entry **tab;
    size_t nbuckets, count;
    kv_cache_entry lru; /* sentinel: lru.next oldest, lru.prev newest */
    uint64_t hits, misses; /* lookups that found / did not find their entry */
} shard;

struct kv_cache {
    shard s[SHARDS];
    uint64_t next_id;
};

static inline uint64_t hkey(uint64_t id, uint64_t off)
{
    uint64_t h = id * 0x9e3779b97f4a7c15ull ^ (off + 0x632be59bd9b4e019ull);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 29);
}

kv_cache *kv_cache_new(size_t capacity_bytes)
{
    kv_cache *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &c->s[i];
        pthread_mutex_init(&s->mu, NULL);
        s->cap = capacity_bytes / SHARDS;
        s->nbuckets = 256;
        s->tab = calloc(s->nbuckets, sizeof *s->tab);
        s->lru.next = s->lru.prev = &s->lru;
        if (s->tab == NULL) {
            for (int j = 0; j <= i; j++) free(c->s[j].tab);
            free(c);
            return NULL;
        }
    }
    return c;
}

static void entry_unref(kv_cache_entry *e)
{
    if (--e->refs == 0) {
        if (!e->borrowed) free(e->data);
        free(e);
    }
}

void kv_cache_free(kv_cache *c)
{
    if (c == NULL) return;
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &c->s[i];
        for (size_t b = 0; b < s->nbuckets; b++) {
            kv_cache_entry *e = s->tab[b];
            while (e) {
                kv_cache_entry *n = e->hnext;
                entry_unref(e);
                e = n;
            }
        }
        free(s->tab);
        pthread_mutex_destroy(&s->mu);
    }
    free(c);
}

static inline shard *shard_of(kv_cache *c, uint64_t h) { return &c->s[h >> 60]; }

static void lru_remove(kv_cache_entry *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
}
static void lru_append(shard *s, kv_cache_entry *e)
{
    e->next = &s->lru;
    e->prev = s->lru.prev;
    e->prev->next = e;
    e->next->prev = e;
}

/* Unlinks e from the hash chain and LRU (caller holds the lock). */
static void table_remove(shard *s, kv_cache_entry *e, uint64_t h)
{
    kv_cache_entry **pp = &s->tab[h & (s->nbuckets - 1)];
    while (*pp != e) pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_remove(e);
    e->in_table = 0;
    s->usage -= e->size;
    s->count--;
    entry_unref(e);
}

kv_cache_entry *kv_cache_lookup(kv_cache *c, uint64_t id, uint64_t off)
{
    uint64_t h = hkey(id, off);
    shard *s = shard_of(c, h);
    pthread_mutex_lock(&s->mu);
    kv_cache_entry *e = s->tab[h & (s->nbuckets - 1)];
    while (e && (e->id != id || e->off != off)) e = e->hnext;
    if (e) {
        e->refs++;
        /* CLOCK-style: mark instead of relinking, so a hit touches only e */
        e->referenced = 1;
        s->hits++;
    } else {
        s->misses++;
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

static void resize(shard *s)
{
    size_t nb = s->nbuckets * 2;
    kv_cache_entry **nt = calloc(nb, sizeof *nt);
    if (nt == NULL) return; /* keep the old table: longer chains, still correct */
    for (size_t b = 0; b < s->nbuckets; b++) {
        kv_cache_entry *e = s->tab[b];
        while (e) {
            kv_cache_entry *n = e->hnext;
            size_t i = hkey(e->id, e->off) & (nb - 1);
            e->hnext = nt[i];
            nt[i] = e;
            e = n;
        }
    }
    free(s->tab);
    s->tab = nt;
    s->nbuckets = nb;
}

static kv_cache_entry *insert(kv_cache *c, uint64_t id, uint64_t off, char *data, size_t size, int borrowed);

kv_cache_entry *kv_cache_insert(kv_cache *c, uint64_t id, uint64_t off, char *data, size_t size)
{
    return insert(c, id, off, data, size, 0);
}

kv_cache_entry *kv_cache_insert_borrowed(kv_cache *c, uint64_t id, uint64_t off, const char *data, size_t size)
{
    return insert(c, id, off, (char *)data, size, 1);
}

static kv_cache_entry *insert(kv_cache *c, uint64_t id, uint64_t off, char *data, size_t size, int borrowed)
{
    kv_cache_entry *e = malloc(sizeof *e);
    if (e == NULL) {
        if (!borrowed) free(data);
        return NULL;
    }
    e->borrowed = borrowed;
    e->id = id;
    e->off = off;
    e->data = data;
    e->size = size;
    e->refs = 2; /* table + caller */
    e->in_table = 1;
    e->referenced = 0;
    uint64_t h = hkey(id, off);
    shard *s = shard_of(c, h);
    pthread_mutex_lock(&s->mu);
    kv_cache_entry *old = s->tab[h & (s->nbuckets - 1)];
    while (old && (old->id != id || old->off != off)) old = old->hnext;
    if (old) table_remove(s, old, h);
    if (s->count + 1 > s->nbuckets) resize(s);
    size_t b = h & (s->nbuckets - 1);
    e->hnext = s->tab[b];
    s->tab[b] = e;
    lru_append(s, e);
    s->usage += size;
    s->count++;
    /* evict from the old end; a referenced entry gets a second chance at
     * the new end (bounded: each entry is skipped at most once per pass) */
    size_t skips = s->count;
    while (s->usage > s->cap && s->lru.next != &s->lru) {
        kv_cache_entry *v = s->lru.next;
        if (v->referenced && v != e && skips > 0) {
            v->referenced = 0;
            skips--;
            lru_remove(v);
            lru_append(s, v);
            continue;
        }
        table_remove(s, v, hkey(v->id, v->off));
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

void kv_cache_release(kv_cache *c, kv_cache_entry *e)
{
    shard *s = shard_of(c, hkey(e->id, e->off));
    pthread_mutex_lock(&s->mu);
    entry_unref(e);
    pthread_mutex_unlock(&s->mu);
}

const char *kv_cache_data(const kv_cache_entry *e) { return e->data; }
size_t kv_cache_size(const kv_cache_entry *e) { return e->size; }

uint64_t kv_cache_new_id(kv_cache *c) { return __atomic_add_fetch(&c->next_id, 1, __ATOMIC_RELAXED); }

void kv_cache_erase_id(kv_cache *c, uint64_t id)
{
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &c->s[i];
        pthread_mutex_lock(&s->mu);
        kv_cache_entry *e = s->lru.next;
        while (e != &s->lru) {
            kv_cache_entry *n = e->next;
            if (e->id == id) table_remove(s, e, hkey(e->id, e->off));
            e = n;
        }
        pthread_mutex_unlock(&s->mu);
    }
}

size_t kv_cache_usage(kv_cache *c)
{
    size_t u = 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&c->s[i].mu);
        u += c->s[i].usage;
        pthread_mutex_unlock(&c->s[i].mu);
    }
    return u;
}

void kv_cache_counters(kv_cache *c, uint64_t *hits, uint64_t *misses)
{
    *hits = *misses = 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&c->s[i].mu);
        *hits += c->s[i].hits;
        *misses += c->s[i].misses;
        pthread_mutex_unlock(&c->s[i].mu);
    }
}
