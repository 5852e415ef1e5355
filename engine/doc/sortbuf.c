/*
 * sortbuf.c — the one sort buffer: (key, payload) records in, out in key
 * order (memcmp of the keys; equal keys in the order they came), within a
 * memory bound. Find's sort, $sort and a spilling $group use it.
 *
 * Records are kept in memory until they would pass the bound; then the
 * buffer is sorted and written to a run file in the spill directory, and
 * emptied. Reading merges the runs (and what is still in memory) with a heap
 * keyed by (key, run number), so equal keys keep their arrival order. A run
 * file never has a name (O_TMPFILE; where the file system has none, mkstemp
 * then unlink at once): its space goes back to the system when it is closed,
 * or when the process dies, and a crash leaves no file behind (ndb_doc_open
 * also removes any a crash left between mkstemp and unlink). Without a spill directory, passing the bound is NDB_ELIMIT, as
 * it was before spilling existed.
 *
 * A top-k buffer (topk > 0) keeps only the topk first records in a heap.
 * When those outgrow the bound it becomes a plain buffer that spills: every
 * record from then on is kept, and the reader stops after its k.
 *
 * Run format: per record, varint key length, key, varint payload length,
 * payload. Nothing is fsynced: a run lives as long as one request.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "doc_int.h"

#define RUN_WRITE_CHUNK (1u << 20) /* bytes written per write(2) */
#define RUN_READ_CHUNK (256u << 10) /* bytes read ahead per run while merging */

int memdoc_cmp(const void *a, const void *b)
{
    const memdoc *x = a, *y = b;
    size_t m = x->klen < y->klen ? x->klen : y->klen;
    int r = memcmp(x->key, y->key, m);
    if (r)
        return r;
    if (x->klen != y->klen)
        return x->klen < y->klen ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* A new last element of the growable array *arr (NULL: out of memory). */
static memdoc *memdoc_grow(memdoc **arr, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        memdoc *a = realloc(*arr, nc * sizeof *a);
        if (a == NULL)
            return NULL;
        *arr = a;
        *cap = nc;
    }
    return &(*arr)[(*n)++];
}

ndb_status memdoc_push(memdoc **arr, size_t *n, size_t *cap, const dbuf *key, const void *doc, size_t dl,
                       uint64_t seq)
{
    memdoc *m = memdoc_grow(arr, n, cap);
    if (m == NULL)
        return NDB_ENOMEM;
    if ((m->key = malloc(key->len + dl)) == NULL) {
        (*n)--;
        return NDB_ENOMEM;
    }
    if (key->len) /* $sample and $facet buffer without a key: no NULL + 0 to memcpy */
        memcpy(m->key, key->data, key->len);
    m->klen = key->len;
    m->doc = m->key + key->len;
    memcpy(m->doc, doc, dl);
    m->dlen = dl;
    m->seq = seq;
    return NDB_OK;
}

/* Compares keys a and b that are equal before byte `from`: memcmp order,
 * a prefix first. */
static int key_cmp_from(const uint8_t *a, size_t al, const uint8_t *b, size_t bl, size_t from)
{
    size_t m = al < bl ? al : bl;
    int r = m > from ? memcmp(a + from, b + from, m - from) : 0;
    return r ? r : (al > bl) - (al < bl);
}

/* The 8 bytes of key from `at` as a big-endian integer, zeros past its end:
 * comparing two keys' words compares those bytes (a word can tie on keys
 * that differ only in how soon they end). */
static uint64_t key_word(const uint8_t *key, size_t klen, size_t at)
{
    uint64_t w = 0;
    if (at + 8 <= klen) {
        memcpy(&w, key + at, 8);
        return __builtin_bswap64(w);
    }
    for (size_t i = 0; i < 8; i++)
        w = w << 8 | (at + i < klen ? key[at + i] : 0);
    return w;
}

/* What the sort moves: one record's word at the current depth, and which
 * record it is. */
typedef struct sortent {
    uint64_t w;
    size_t i;
} sortent;

typedef struct sortctx {
    const memdoc *m;
    const ndb_interrupt *intr;
    uint32_t tick;
    ndb_status st;
} sortctx;

static int ent_cmp_from(const sortctx *c, const sortent *x, const sortent *y, size_t from)
{
    const memdoc *a = &c->m[x->i], *b = &c->m[y->i];
    int r = key_cmp_from(a->key, a->klen, b->key, b->klen, from);
    return r ? r : (a->seq > b->seq) - (a->seq < b->seq);
}

static void ent_swap(sortent *a, sortent *b)
{
    sortent t = *a;
    *a = *b;
    *b = t;
}

/* Sorts a[0..n), whose keys agree before byte depth and whose words hold
 * the 8 bytes from depth: a multikey quicksort (Bentley and Sedgewick) on
 * words instead of bytes. Each partition compares cached integers; a run of
 * equal words moves 8 bytes deeper, loading the next word once per record.
 * So keys with long common prefixes (an index's entries) cost a word load
 * per 8 shared bytes, not a memcmp over them at every comparison. */
static void ent_sort(sortctx *c, sortent *a, size_t n, size_t depth)
{
    while (n > 1 && c->st == NDB_OK) {
        if (n <= 12) { /* insertion sort on the keys' bytes from depth */
            for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && ent_cmp_from(c, &a[j], &a[j - 1], depth) < 0; j--)
                    ent_swap(&a[j], &a[j - 1]);
            return;
        }
        if ((c->st = ndb_interrupt_poll(c->intr, &c->tick)) != NDB_OK)
            return;
        uint64_t x = a[0].w, y = a[n / 2].w, z = a[n - 1].w; /* median of three */
        uint64_t p = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
        size_t lt = 0, i = 0, gt = n; /* [0,lt) < p, [lt,i) == p, [gt,n) > p */
        while (i < gt) {
            if (a[i].w < p)
                ent_swap(&a[lt++], &a[i++]);
            else if (a[i].w > p)
                ent_swap(&a[i], &a[--gt]);
            else
                i++;
        }
        /* the equal words: keys ending within them come first, by length
         * then arrival (words made of both, all different: a key of that
         * group has at most 8 bytes past depth, and the sequence numbers are
         * below 2^60); the others go on with their next 8 bytes */
        size_t fin = lt;
        for (size_t k = lt; k < gt; k++)
            if (c->m[a[k].i].klen <= depth + 8)
                ent_swap(&a[fin++], &a[k]);
        if (fin - lt > 1) { /* in that call every group of equal words is one record */
            for (size_t k = lt; k < fin; k++) {
                const memdoc *d = &c->m[a[k].i];
                assert(d->seq < (1ull << 60));
                a[k].w = (uint64_t)(d->klen - depth) << 60 | d->seq;
            }
            ent_sort(c, a + lt, fin - lt, depth);
        }
        for (size_t k = fin; k < gt; k++)
            a[k].w = key_word(c->m[a[k].i].key, c->m[a[k].i].klen, depth + 8);
        ent_sort(c, a + fin, gt - fin, depth + 8);
        /* the smaller side by recursion, the larger by the loop */
        if (lt < n - gt) {
            ent_sort(c, a, lt, depth);
            a += gt;
            n -= gt;
        } else {
            ent_sort(c, a + gt, n - gt, depth);
            n = lt;
        }
    }
}

ndb_status memdoc_sort(memdoc *a, size_t n, size_t depth, const ndb_interrupt *intr, ndb_errmsg *msg)
{
    if (n < 2)
        return NDB_OK;
    sortent *e = malloc(n * sizeof *e);
    if (e == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "sort: out of memory for %zu documents", n);
    for (size_t i = 0; i < n; i++)
        e[i] = (sortent){key_word(a[i].key, a[i].klen, depth), i};
    sortctx c = {.m = a, .intr = intr};
    ent_sort(&c, e, n, depth);
    /* a[k] = old a[e[k].i], in place: follow each cycle of the
     * permutation once, marking a place done by e[j].i = j */
    for (size_t k = 0; c.st == NDB_OK && k < n; k++) {
        if (e[k].i == k)
            continue;
        memdoc t = a[k];
        size_t j = k;
        for (;;) {
            size_t from = e[j].i;
            e[j].i = j;
            if (from == k) {
                a[j] = t;
                break;
            }
            a[j] = a[from];
            j = from;
        }
    }
    free(e);
    return c.st == NDB_OK ? c.st : ndb_interrupt_msg(msg, c.st, "sort stopped");
}

/* Max-heap on memdoc_cmp: the root is the largest kept document. */
void heap_down(memdoc *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && memdoc_cmp(&h[l], &h[m]) > 0)
            m = l;
        if (r < n && memdoc_cmp(&h[r], &h[m]) > 0)
            m = r;
        if (m == i)
            return;
        memdoc t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

void heap_up(memdoc *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (memdoc_cmp(&h[i], &h[p]) <= 0)
            return;
        memdoc t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

struct sbrun {
    uint64_t w;    /* the current key's word at the buffer's lcp (key_word) */
    int fd;
    off_t off;     /* next byte to read from the file */
    off_t size;
    dbuf buf;      /* bytes read ahead */
    size_t pos;    /* next unread byte in buf */
    const uint8_t *key, *pay; /* the current record (into buf) */
    size_t klen, plen;
    bool live;     /* has a current record */
};

void sortbuf_init(sortbuf *sb, size_t limit, uint64_t topk, const char *spill_dir, const ndb_interrupt *intr,
                  const char *what)
{
    memset(sb, 0, sizeof *sb);
    sb->limit = limit;
    sb->topk = topk > 0 && topk <= SORTBUF_TOPK_MAX ? topk : 0;
    sb->spill_dir = spill_dir;
    sb->intr = intr;
    sb->what = what;
    sb->last = -1;
}

/* Records of a plain buffer live in chunks of at least SORTBUF_CHUNK
 * bytes, freed together: no allocation per record. (A top-k buffer's
 * records are allocated one by one: it drops them one by one.) */
#define SORTBUF_CHUNK ((size_t)1 << 20)
struct sbchunk {
    struct sbchunk *next;
    size_t used, cap;
    uint8_t data[];
};

static uint8_t *chunk_alloc(sortbuf *sb, size_t n)
{
    struct sbchunk *h = sb->chunks;
    if (h == NULL || h->cap - h->used < n) {
        size_t cap = n > SORTBUF_CHUNK ? n : SORTBUF_CHUNK;
        if ((h = malloc(sizeof *h + cap)) == NULL)
            return NULL;
        h->next = sb->chunks;
        h->used = 0;
        h->cap = cap;
        sb->chunks = h;
    }
    uint8_t *p = h->data + h->used;
    h->used += n;
    return p;
}

static void mem_clear(sortbuf *sb)
{
    if (sb->topk)
        for (size_t i = 0; i < sb->n; i++)
            free(sb->mem[i].key);
    while (sb->chunks) {
        struct sbchunk *h = sb->chunks;
        sb->chunks = h->next;
        free(h);
    }
    sb->n = 0;
    sb->used = 0;
}

void sortbuf_free(sortbuf *sb)
{
    mem_clear(sb);
    free(sb->mem);
    for (int r = 0; r < sb->nruns; r++) {
        if (sb->runs[r].fd >= 0)
            close(sb->runs[r].fd);
        dbuf_free(&sb->runs[r].buf);
    }
    free(sb->runs);
    free(sb->heap);
    dbuf_free(&sb->first);
    memset(sb, 0, sizeof *sb);
}

/* A new, already unlinked file in the spill directory: one that never had a
 * name (O_TMPFILE), or, on a file system without those, one unlinked at once. */
static int run_file(sortbuf *sb, ndb_errmsg *msg)
{
    int fd = open(sb->spill_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/" SORTBUF_FILE_PREFIX "XXXXXX", sb->spill_dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return ndb_errmsg_set(msg, NDB_EINVAL, "spill directory path too long");
    fd = mkstemp(path);
    if (fd < 0)
        return ndb_errmsg_set(msg, errno == ENOSPC ? NDB_ENOSPC : errno == EMFILE || errno == ENFILE ? NDB_EMFILE
                                                                                                    : NDB_EIO,
                              "%s: cannot create a spill file in %s: %s", sb->what, sb->spill_dir, strerror(errno));
    unlink(path); /* gone from the directory; the space lives as long as fd */
    return fd;
}

static ndb_status write_all(sortbuf *sb, int fd, const uint8_t *p, size_t n, ndb_errmsg *msg)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return ndb_errmsg_set(msg, errno == ENOSPC ? NDB_ENOSPC : NDB_EIO, "%s: writing a spill file: %s",
                                  sb->what, strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return NDB_OK;
}

/* Sorts what is in memory and writes it as one more run. */
static ndb_status spill(sortbuf *sb, ndb_errmsg *msg)
{
    ndb_status st = memdoc_sort(sb->mem, sb->n, sb->lcp, sb->intr, msg);
    if (st != NDB_OK)
        return st;
    struct sbrun *runs = realloc(sb->runs, (size_t)(sb->nruns + 1) * sizeof *runs);
    if (runs == NULL)
        return NDB_ENOMEM;
    sb->runs = runs;
    struct sbrun *r = &runs[sb->nruns];
    memset(r, 0, sizeof *r);
    if ((r->fd = run_file(sb, msg)) < 0)
        return (ndb_status)r->fd;
    sb->nruns++;
    dbuf out = {0};
    for (size_t i = 0; st == NDB_OK && i < sb->n; i++) {
        dbuf_varint(&out, sb->mem[i].klen);
        dbuf_put(&out, sb->mem[i].key, sb->mem[i].klen);
        dbuf_varint(&out, sb->mem[i].dlen);
        dbuf_put(&out, sb->mem[i].doc, sb->mem[i].dlen);
        if (out.oom)
            st = NDB_ENOMEM;
        else if (out.len >= RUN_WRITE_CHUNK || i + 1 == sb->n) {
            st = write_all(sb, r->fd, out.data, out.len, msg);
            r->size += (off_t)out.len;
            out.len = 0;
        }
    }
    dbuf_free(&out);
    sb->spilled_bytes += (uint64_t)r->size;
    mem_clear(sb);
    return st;
}

ndb_status sortbuf_add(sortbuf *sb, const dbuf *key, const void *pay, size_t plen, ndb_errmsg *msg)
{
    assert(!sb->merging && sb->i == 0); /* adding ends with sortbuf_finish */
    memdoc probe = {.key = key->data, .klen = key->len, .seq = sb->seq++};
    if (probe.seq == 0) { /* the sorts and the merge skip what every key shares */
        if (!dbuf_put(&sb->first, key->data, key->len))
            return NDB_ENOMEM;
        sb->lcp = key->len;
    } else if (sb->lcp > 0 && (key->len < sb->lcp || memcmp(sb->first.data, key->data, sb->lcp) != 0)) {
        size_t m = key->len < sb->lcp ? key->len : sb->lcp, i = 0;
        while (i < m && sb->first.data[i] == key->data[i])
            i++;
        sb->lcp = i;
    }
    if (sb->topk && sb->n == sb->topk) {
        /* full: keep it only if it sorts before the current largest */
        if (memdoc_cmp(&probe, &sb->mem[0]) >= 0)
            return NDB_OK;
        sb->used -= sb->mem[0].klen + sb->mem[0].dlen + sizeof(memdoc);
        free(sb->mem[0].key);
        sb->mem[0] = sb->mem[--sb->n];
        heap_down(sb->mem, sb->n, 0);
    }
    size_t need = plen + key->len + sizeof(memdoc);
    if (sb->used + need > sb->limit && sb->n > 0) {
        if (sb->spill_dir == NULL)
            return ndb_errmsg_set(msg, NDB_ELIMIT, "%s exceeded the memory limit of %zu bytes; add an index on the "
                                  "sort fields, a limit, or a narrower filter", sb->what, sb->limit);
        ndb_status st = spill(sb, msg); /* the heap's records go to a run like any others */
        if (st != NDB_OK)
            return st;
        sb->topk = 0;
    }
    sb->used += need;
    if (sb->topk) {
        ndb_status st = memdoc_push(&sb->mem, &sb->n, &sb->cap, key, pay, plen, probe.seq);
        if (st == NDB_OK)
            heap_up(sb->mem, sb->n - 1);
        return st;
    }
    uint8_t *p = chunk_alloc(sb, key->len + plen);
    memdoc *m = p ? memdoc_grow(&sb->mem, &sb->n, &sb->cap) : NULL;
    if (m == NULL)
        return NDB_ENOMEM;
    if (key->len)
        memcpy(p, key->data, key->len);
    if (plen)
        memcpy(p + key->len, pay, plen);
    *m = (memdoc){.key = p, .klen = key->len, .doc = p + key->len, .dlen = plen, .seq = probe.seq};
    return NDB_OK;
}

/* Makes the next record of run r current: 1, 0 at its end, or a failure. */
static int run_next(sortbuf *sb, struct sbrun *r, ndb_errmsg *msg)
{
    for (int pass = 0;; pass++) {
        const uint8_t *p = r->buf.data + r->pos, *end = r->buf.data + r->buf.len;
        uint64_t kl, pl;
        const uint8_t *q = r->buf.len > r->pos ? varint_get(p, end, &kl, 10) : NULL;
        if (q && (uint64_t)(end - q) >= kl) {
            const uint8_t *k = q;
            q = varint_get(q + kl, end, &pl, 10);
            if (q && (uint64_t)(end - q) >= pl) {
                r->key = k;
                r->klen = (size_t)kl;
                r->pay = q;
                r->plen = (size_t)pl;
                r->w = key_word(k, r->klen, sb->lcp);
                r->pos = (size_t)(q + pl - r->buf.data);
                return r->live = 1;
            }
        }
        /* the record is not all in the buffer: keep its start, read more */
        if (r->off >= r->size) {
            r->live = 0;
            if (r->pos != r->buf.len)
                return ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: a spill file ends inside a record", sb->what);
            return 0;
        }
        size_t keep = r->buf.len - r->pos;
        if (keep) /* the buffer is not allocated before the first read */
            memmove(r->buf.data, r->buf.data + r->pos, keep);
        r->buf.len = keep;
        r->pos = 0;
        size_t want = RUN_READ_CHUNK << (pass < 8 ? pass : 8); /* a record larger than the buffer grows it */
        if ((off_t)want > r->size - r->off)
            want = (size_t)(r->size - r->off);
        if (!dbuf_reserve(&r->buf, want))
            return NDB_ENOMEM;
        ssize_t got = pread(r->fd, r->buf.data + r->buf.len, want, r->off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return ndb_errmsg_set(msg, NDB_EIO, "%s: reading a spill file: %s", sb->what,
                                  got < 0 ? strerror(errno) : "short file");
        r->buf.len += (size_t)got;
        r->off += got;
    }
}

/* Heap of run numbers by (current key, run number). */
static bool run_before(const sortbuf *sb, int a, int b)
{
    const struct sbrun *x = &sb->runs[a], *y = &sb->runs[b];
    if (x->w != y->w)
        return x->w < y->w;
    int r = key_cmp_from(x->key, x->klen, y->key, y->klen, sb->lcp + 8);
    return r < 0 || (r == 0 && a < b);
}

static void run_heap_down(sortbuf *sb, int i)
{
    for (;;) {
        int l = 2 * i + 1, rr = l + 1, m = i;
        if (l < sb->nheap && run_before(sb, sb->heap[l], sb->heap[m]))
            m = l;
        if (rr < sb->nheap && run_before(sb, sb->heap[rr], sb->heap[m]))
            m = rr;
        if (m == i)
            return;
        int t = sb->heap[i];
        sb->heap[i] = sb->heap[m];
        sb->heap[m] = t;
        i = m;
    }
}

ndb_status sortbuf_finish(sortbuf *sb, ndb_errmsg *msg)
{
    if (sb->nruns == 0)
        return memdoc_sort(sb->mem, sb->n, sb->lcp, sb->intr, msg);
    ndb_status st = sb->n > 0 ? spill(sb, msg) : NDB_OK; /* what is left in memory is the last run */
    if (st != NDB_OK)
        return st;
    if ((sb->heap = malloc((size_t)sb->nruns * sizeof *sb->heap)) == NULL)
        return NDB_ENOMEM;
    for (int r = 0; r < sb->nruns; r++) {
        int got = run_next(sb, &sb->runs[r], msg);
        if (got < 0)
            return (ndb_status)got;
        if (got)
            sb->heap[sb->nheap++] = r;
    }
    for (int i = sb->nheap / 2 - 1; i >= 0; i--)
        run_heap_down(sb, i);
    sb->merging = true;
    return NDB_OK;
}

int sortbuf_next(sortbuf *sb, const uint8_t **key, size_t *klen, const uint8_t **pay, size_t *plen,
                 ndb_errmsg *msg)
{
    if (!sb->merging) {
        if (sb->i >= sb->n)
            return 0;
        const memdoc *m = &sb->mem[sb->i++];
        *key = m->key;
        *klen = m->klen;
        *pay = m->doc;
        *plen = m->dlen;
        return 1;
    }
    /* the record handed out last time is replaced now: its bytes stay valid
     * until this call, as with the in-memory records */
    if (sb->last >= 0) {
        int got = run_next(sb, &sb->runs[sb->last], msg);
        if (got < 0)
            return got;
        if (!got)
            sb->heap[0] = sb->heap[--sb->nheap];
        if (sb->nheap > 0)
            run_heap_down(sb, 0);
        sb->last = -1;
    }
    if (sb->nheap == 0)
        return 0;
    struct sbrun *r = &sb->runs[sb->heap[0]];
    assert(r->live && r->pos <= r->buf.len); /* a run in the heap has a current record */
    *key = r->key;
    *klen = r->klen;
    *pay = r->pay;
    *plen = r->plen;
    sb->last = sb->heap[0];
    return 1;
}

bool sortbuf_drained(const sortbuf *sb)
{
    if (sb->merging)
        return sb->nheap == 0 && sb->last < 0;
    return sb->i >= sb->n && (sb->topk == 0 || sb->seq <= sb->topk);
}

void sortbuf_clean_dir(const char *dir)
{
    char cmdpath[4096];
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    size_t pl = strlen(SORTBUF_FILE_PREFIX);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, SORTBUF_FILE_PREFIX, pl) != 0)
            continue;
        int n = snprintf(cmdpath, sizeof cmdpath, "%s/%s", dir, e->d_name);
        if (n > 0 && (size_t)n < sizeof cmdpath)
            unlink(cmdpath);
    }
    closedir(d);
}
