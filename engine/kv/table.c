#include "table.h"

#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "block.h"
#include "bloom.h"
#include "coding.h"
#include "crc32c.h"
#include "dbformat.h"

static kv_table_counters g_counters;

void kv_table_counters_get(kv_table_counters *out)
{
    out->bloom_useful = __atomic_load_n(&g_counters.bloom_useful, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ builder */

struct kv_table_builder {
    kv_file *f;
    kv_table_opts o;
    uint64_t offset;
    uint64_t entries;
    kv_block_builder data, index;
    char *last_key;
    size_t last_len, last_cap;
    int pending_index; /* a finished block awaits its index entry */
    uint64_t pend_off, pend_size;
    uint64_t *hashes;
    size_t nhash, caphash;
    uint64_t last_hash;
    char *cbuf; /* compression scratch */
    size_t ccap;
    ndb_status st;
};

ndb_status kv_table_builder_new(kv_env *env, const char *path, const kv_table_opts *o,
                                kv_table_builder **out)
{
    kv_table_builder *b = calloc(1, sizeof *b);
    if (b == NULL) return NDB_ENOMEM;
    ndb_status st = env->v->open_append(env, path, 0, &b->f);
    if (st != NDB_OK) {
        free(b);
        return st;
    }
    b->o = *o;
    if (b->o.block_bytes < 256) b->o.block_bytes = 256;
    kv_block_builder_init(&b->data, BLOCK_RESTART_INTERVAL);
    kv_block_builder_init(&b->index, 1); /* full keys: binary search needs no rebuild */
    *out = b;
    return NDB_OK;
}

/* Writes block contents + trailer, compressing if asked and worthwhile. */
static ndb_status write_block(kv_table_builder *b, kv_slice raw, int allow_compress, uint64_t *off,
                              uint64_t *size)
{
    const char *out = raw.data;
    size_t outlen = raw.len;
    char type = 0;
    if (allow_compress && b->o.compression != NDB_KV_COMPRESS_NONE && raw.len <= INT32_MAX) {
        size_t bound = b->o.compression == NDB_KV_COMPRESS_LZ4 ? (size_t)LZ4_compressBound((int)raw.len)
                                                               : ZSTD_compressBound(raw.len);
        bound += 10;
        if (bound > b->ccap) {
            char *nb = realloc(b->cbuf, bound);
            if (nb == NULL) return NDB_ENOMEM;
            b->cbuf = nb;
            b->ccap = bound;
        }
        char *p = put_varint64(b->cbuf, raw.len);
        size_t hdr = (size_t)(p - b->cbuf), clen = 0;
        if (b->o.compression == NDB_KV_COMPRESS_LZ4) {
            int r = LZ4_compress_default(raw.data, p, (int)raw.len, (int)(b->ccap - hdr));
            clen = r > 0 ? (size_t)r : 0;
        } else {
            size_t r = ZSTD_compress(p, b->ccap - hdr, raw.data, raw.len, 1);
            clen = ZSTD_isError(r) ? 0 : r;
        }
        if (clen > 0 && hdr + clen < raw.len - raw.len / 8) {
            out = b->cbuf;
            outlen = hdr + clen;
            type = (char)b->o.compression;
        }
    }
    char trailer[BLOCK_TRAILER];
    trailer[0] = type;
    uint32_t crc = crc32c_extend(crc32c(out, outlen), &type, 1);
    put_fixed32(trailer + 1, crc32c_mask(crc));
    ndb_status st = kv_file_append(b->f, out, outlen);
    if (st == NDB_OK) st = kv_file_append(b->f, trailer, BLOCK_TRAILER);
    if (st != NDB_OK) return st;
    *off = b->offset;
    *size = outlen;
    b->offset += outlen + BLOCK_TRAILER;
    return NDB_OK;
}

static void add_index_entry(kv_table_builder *b)
{
    char h[20];
    char *p = put_varint64(h, b->pend_off);
    p = put_varint64(p, b->pend_size);
    kv_block_builder_add(&b->index, (kv_slice){b->last_key, b->last_len}, (kv_slice){h, (size_t)(p - h)});
    b->pending_index = 0;
}

static ndb_status flush_data(kv_table_builder *b)
{
    if (kv_block_builder_empty(&b->data)) return NDB_OK;
    kv_slice raw = kv_block_builder_finish(&b->data);
    if (raw.data == NULL) return NDB_ENOMEM;
    ndb_status st = write_block(b, raw, 1, &b->pend_off, &b->pend_size);
    kv_block_builder_reset(&b->data);
    if (st == NDB_OK) add_index_entry(b); /* index key: the block's last key */
    return st;
}

ndb_status kv_table_builder_add(kv_table_builder *b, kv_slice ikey, kv_slice val)
{
    if (b->st != NDB_OK) return b->st;
    if (ikey.len < 8) return b->st = NDB_EINVAL;
    if (ikey.len > b->last_cap) {
        size_t nc = b->last_cap ? b->last_cap * 2 : 64;
        while (nc < ikey.len) nc *= 2;
        char *nk = realloc(b->last_key, nc);
        if (nk == NULL) return b->st = NDB_ENOMEM;
        b->last_key = nk;
        b->last_cap = nc;
    }
    if (b->o.bloom_bits > 0) {
        kv_slice u = ikey_user(ikey);
        uint64_t h = kv_bloom_hash(u.data, u.len);
        if (b->nhash == 0 || h != b->last_hash) {
            if (b->nhash == b->caphash) {
                size_t nc = b->caphash ? b->caphash * 2 : 1024;
                uint64_t *nh = realloc(b->hashes, nc * sizeof *nh);
                if (nh == NULL) return b->st = NDB_ENOMEM;
                b->hashes = nh;
                b->caphash = nc;
            }
            b->hashes[b->nhash++] = h;
            b->last_hash = h;
        }
    }
    kv_block_builder_add(&b->data, ikey, val);
    memcpy(b->last_key, ikey.data, ikey.len);
    b->last_len = ikey.len;
    b->entries++;
    if (kv_block_builder_size(&b->data) >= b->o.block_bytes) b->st = flush_data(b);
    return b->st;
}

uint64_t kv_table_builder_entries(const kv_table_builder *b) { return b->entries; }
uint64_t kv_table_builder_size(const kv_table_builder *b)
{
    return b->offset + kv_block_builder_size(&b->data);
}

static void builder_free(kv_table_builder *b)
{
    kv_block_builder_destroy(&b->data);
    kv_block_builder_destroy(&b->index);
    free(b->last_key);
    free(b->hashes);
    free(b->cbuf);
    free(b);
}

ndb_status kv_table_builder_finish(kv_table_builder *b, uint64_t *size)
{
    ndb_status st = b->st;
    if (st == NDB_OK) st = flush_data(b);
    uint64_t foff = 0, fsize = 0, ioff = 0, isize = 0;
    if (st == NDB_OK && b->o.bloom_bits > 0) {
        size_t n = kv_bloom_size(b->nhash, b->o.bloom_bits);
        char *filt = malloc(n);
        if (filt == NULL) {
            st = NDB_ENOMEM;
        } else {
            kv_bloom_build(b->hashes, b->nhash, b->o.bloom_bits, filt);
            st = write_block(b, (kv_slice){filt, n}, 0, &foff, &fsize);
            free(filt);
        }
    }
    if (st == NDB_OK) {
        kv_slice raw = kv_block_builder_finish(&b->index);
        st = raw.data ? write_block(b, raw, 0, &ioff, &isize) : NDB_ENOMEM;
    }
    if (st == NDB_OK) {
        char ft[TABLE_FOOTER];
        put_fixed64(ft, ioff);
        put_fixed64(ft + 8, isize);
        put_fixed64(ft + 16, foff);
        put_fixed64(ft + 24, fsize);
        put_fixed32(ft + 32, TABLE_VERSION);
        put_fixed32(ft + 36, crc32c_mask(crc32c(ft, 36)));
        put_fixed64(ft + 40, TABLE_MAGIC);
        st = kv_file_append(b->f, ft, TABLE_FOOTER);
        b->offset += TABLE_FOOTER;
    }
    if (st == NDB_OK) st = kv_file_sync(b->f);
    ndb_status cs = kv_file_close(b->f);
    if (st == NDB_OK) st = cs;
    if (st == NDB_OK && size) *size = b->offset;
    builder_free(b);
    return st;
}

void kv_table_builder_abandon(kv_table_builder *b)
{
    kv_file_close(b->f);
    builder_free(b);
}

/* ------------------------------------------------------------------ reader */

struct kv_table {
    kv_env *env;
    kv_file *f;
    uint64_t size;
    const char *map; /* the whole file mapped read-only, or NULL (pread) */
    kv_cache *cache;
    uint64_t cache_id;
    char *index; /* index block contents, owned */
    size_t index_len;
    char *filter; /* filter contents, owned; NULL if none */
    size_t filter_len;
    /* Mapped uncompressed blocks whose CRC has been checked, one bit per
     * index entry (atomic): they are then read in place, bypassing the
     * block cache, whose job the page cache does for them. */
    uint64_t *verified;
    uint32_t nblocks;
};

/* Reads the block at (off, size), checks its CRC, decompresses. *data points
 * into the mapping (*own NULL) or into *own, malloc'd: caller frees it. */
static ndb_status read_block(kv_table *t, uint64_t off, uint64_t size, const char **data, size_t *outlen,
                             char **own)
{
    *own = NULL;
    if (size > TABLE_MAX_BLOCK || off > t->size || size + BLOCK_TRAILER > t->size - off)
        return NDB_ECORRUPT;
    char *buf = NULL;
    const char *src;
    if (t->map) {
        src = t->map + off;
    } else {
        buf = malloc(size + BLOCK_TRAILER);
        if (buf == NULL) return NDB_ENOMEM;
        size_t got;
        ndb_status st = kv_file_pread(t->f, off, buf, size + BLOCK_TRAILER, &got);
        if (st == NDB_OK && got != size + BLOCK_TRAILER) st = NDB_ECORRUPT;
        if (st != NDB_OK) {
            free(buf);
            return st;
        }
        src = buf;
    }
    uint32_t want = crc32c_unmask(get_fixed32(src + size + 1));
    if (crc32c_extend(crc32c(src, size), src + size, 1) != want) {
        free(buf);
        return NDB_ECORRUPT;
    }
    int type = (unsigned char)src[size];
    if (type == NDB_KV_COMPRESS_NONE) {
        *data = src;
        *own = buf;
        *outlen = size;
        return NDB_OK;
    }
    uint64_t rawlen;
    const char *p = get_varint64(src, src + size, &rawlen);
    if (p == NULL || rawlen > TABLE_MAX_BLOCK || rawlen > INT32_MAX ||
        (type != NDB_KV_COMPRESS_LZ4 && type != NDB_KV_COMPRESS_ZSTD)) {
        free(buf);
        return NDB_ECORRUPT;
    }
    char *raw = malloc(rawlen ? rawlen : 1);
    if (raw == NULL) {
        free(buf);
        return NDB_ENOMEM;
    }
    size_t clen = size - (size_t)(p - src);
    int ok;
    if (type == NDB_KV_COMPRESS_LZ4) {
        int r = LZ4_decompress_safe(p, raw, (int)clen, (int)rawlen);
        ok = r >= 0 && (uint64_t)r == rawlen;
    } else {
        size_t r = ZSTD_decompress(raw, rawlen, p, clen);
        ok = !ZSTD_isError(r) && r == rawlen;
    }
    free(buf);
    if (!ok) {
        free(raw);
        return NDB_ECORRUPT;
    }
    *data = raw;
    *own = raw;
    *outlen = rawlen;
    return NDB_OK;
}

/* As read_block, always into a malloc'd copy: caller frees *out with free(). */
static ndb_status read_block_raw(kv_table *t, uint64_t off, uint64_t size, char **out, size_t *outlen)
{
    const char *data;
    char *own;
    ndb_status st = read_block(t, off, size, &data, outlen, &own);
    if (st != NDB_OK) return st;
    if (own == NULL) {
        own = malloc(*outlen ? *outlen : 1);
        if (own == NULL) return NDB_ENOMEM;
        memcpy(own, data, *outlen);
    }
    *out = own;
    return NDB_OK;
}

/* Makes block (off, size) readable: a cache hit, or a read that is inserted
 * into the cache when fill is set. Release with *e (kv_cache_release) or
 * *own (free); with neither, *data lies in the table's mapping. */
static ndb_status fetch_block(kv_table *t, uint64_t off, uint64_t size, uint32_t ordinal, int fill,
                              const char **data, size_t *len, kv_cache_entry **e, char **own)
{
    *e = NULL;
    *own = NULL;
    int trackable = t->map && t->verified && ordinal < t->nblocks && size <= TABLE_MAX_BLOCK && off <= t->size &&
                    size + BLOCK_TRAILER <= t->size - off;
    if (trackable && (__atomic_load_n(&t->verified[ordinal / 64], __ATOMIC_ACQUIRE) >> (ordinal % 64)) & 1) {
        *data = t->map + off; /* in bounds (checked above); CRC checked when the bit was set */
        *len = size;
        return NDB_OK;
    }
    if (t->cache && (*e = kv_cache_lookup(t->cache, t->cache_id, off)) != NULL) {
        *data = kv_cache_data(*e);
        *len = kv_cache_size(*e);
        return NDB_OK;
    }
    ndb_status st = read_block(t, off, size, data, len, own);
    if (st != NDB_OK) return st;
    if (trackable && *own == NULL && *len == size) { /* mapped and uncompressed: remember it is sound */
        __atomic_or_fetch(&t->verified[ordinal / 64], (uint64_t)1 << (ordinal % 64), __ATOMIC_RELEASE);
        return NDB_OK;
    }
    if (!t->cache || !fill) return st;
    if (*own) {
        *e = kv_cache_insert(t->cache, t->cache_id, off, *own, *len);
        *own = NULL;
    } else {
        *e = kv_cache_insert_borrowed(t->cache, t->cache_id, off, *data, *len);
    }
    if (*e == NULL) return NDB_ENOMEM;
    *data = kv_cache_data(*e);
    return NDB_OK;
}

ndb_status kv_table_open(kv_env *env, const char *path, uint64_t size, kv_cache *cache,
                         kv_table **out, ndb_errmsg *msg)
{
    if (size < TABLE_FOOTER) return ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: too short for a table", path);
    kv_table *t = calloc(1, sizeof *t);
    if (t == NULL) return NDB_ENOMEM;
    t->size = size;
    t->env = env;
    t->cache = cache;
    t->cache_id = cache ? kv_cache_new_id(cache) : 0;
    ndb_status st = env->v->open_read(env, path, &t->f);
    if (st == NDB_OK) {
        uint64_t real;
        if (kv_file_size(t->f, &real) == NDB_OK && real < size) st = NDB_ECORRUPT; /* never map past the end */
        const void *base;
        if (st == NDB_OK && env->v->map(env, path, size, &base) == NDB_OK) t->map = base;
    }
    if (st == NDB_ECORRUPT) {
        kv_table_close(t);
        return ndb_errmsg_set(msg, st, "%s: shorter than its recorded size", path);
    }
    if (st != NDB_OK) {
        free(t);
        return ndb_errmsg_set(msg, st, "%s: open failed", path);
    }
    char ft[TABLE_FOOTER];
    size_t got;
    st = kv_file_pread(t->f, size - TABLE_FOOTER, ft, TABLE_FOOTER, &got);
    if (st == NDB_OK && got != TABLE_FOOTER) st = NDB_ECORRUPT;
    if (st == NDB_OK && (get_fixed64(ft + 40) != TABLE_MAGIC || get_fixed32(ft + 32) != TABLE_VERSION ||
                         crc32c_unmask(get_fixed32(ft + 36)) != crc32c(ft, 36)))
        st = NDB_ECORRUPT;
    if (st == NDB_OK) {
        t->size = size - TABLE_FOOTER; /* blocks must lie before the footer */
        st = read_block_raw(t, get_fixed64(ft), get_fixed64(ft + 8), &t->index, &t->index_len);
        if (st == NDB_OK) st = kv_block_check(t->index, t->index_len);
        if (st == NDB_OK && t->map) {
            t->nblocks = get_fixed32(t->index + t->index_len - 4); /* one restart per index entry */
            t->verified = calloc((t->nblocks + 63) / 64 + 1, sizeof(uint64_t));
            if (t->verified == NULL) t->nblocks = 0;
        }
        uint64_t fsize = get_fixed64(ft + 24);
        if (st == NDB_OK && fsize > 0)
            st = read_block_raw(t, get_fixed64(ft + 16), fsize, &t->filter, &t->filter_len);
        t->size = size;
    }
    if (st != NDB_OK) {
        kv_table_close(t);
        return ndb_errmsg_set(msg, st, "%s: bad table footer, index or filter", path);
    }
    *out = t;
    return NDB_OK;
}

void kv_table_close(kv_table *t)
{
    if (t == NULL) return;
    if (t->cache) kv_cache_erase_id(t->cache, t->cache_id); /* before unmapping: entries may point into it */
    if (t->map) t->env->v->unmap(t->env, t->map, t->size);
    kv_file_close(t->f);
    free(t->index);
    free(t->filter);
    free(t->verified);
    free(t);
}

/* A pinned block behind a block iterator. */
typedef struct pinned {
    kv_table *t;
    kv_cache_entry *e;
    char *own;
} pinned;

static void release_pinned(void *arg)
{
    pinned *p = arg;
    if (p->e) kv_cache_release(p->t->cache, p->e);
    free(p->own);
    free(p);
}

/* Returns an iterator over the block whose handle is encoded in hv. */
static kv_iter *block_from_handle(kv_table *t, kv_slice hv)
{
    uint64_t off, size;
    const char *p = get_varint64(hv.data, hv.data + hv.len, &off);
    if (p) p = get_varint64(p, hv.data + hv.len, &size);
    if (p == NULL) return kv_iter_empty(NDB_ECORRUPT);
    pinned *pn = malloc(sizeof *pn);
    if (pn == NULL) return NULL;
    pn->t = t;
    const char *data;
    size_t len;
    ndb_status st = fetch_block(t, off, size, UINT32_MAX, 1, &data, &len, &pn->e, &pn->own);
    if (st != NDB_OK) {
        free(pn);
        return st == NDB_ENOMEM ? NULL : kv_iter_empty(st);
    }
    return kv_block_iter(data, len, release_pinned, pn);
}

/* Iterator-based lookup: the fallback for keys longer than the stack buffer. */
static ndb_status table_get_iter(kv_table *t, kv_slice lookup, int *result, void **val, size_t *vlen)
{
    kv_iter *ix = kv_block_iter(t->index, t->index_len, NULL, NULL);
    if (ix == NULL) return NDB_ENOMEM;
    it_seek(ix, lookup);
    ndb_status st = it_status(ix);
    if (st == NDB_OK && it_valid(ix)) {
        kv_iter *bi = block_from_handle(t, it_value(ix));
        if (bi == NULL) {
            st = NDB_ENOMEM;
        } else {
            it_seek(bi, lookup);
            st = it_status(bi);
            if (st == NDB_OK && it_valid(bi)) {
                kv_slice k = it_key(bi);
                kv_slice u = ikey_user(k), lu = ikey_user(lookup);
                if (u.len == lu.len && memcmp(u.data, lu.data, u.len) == 0) {
                    if (ikey_type(k) == KV_TYPE_DELETE) {
                        *result = TABLE_GET_DELETED;
                    } else {
                        kv_slice v = it_value(bi);
                        *result = TABLE_GET_VALUE;
                        if (val) {
                            *val = malloc(v.len ? v.len : 1);
                            if (*val == NULL) {
                                st = NDB_ENOMEM;
                            } else {
                                memcpy(*val, v.data, v.len);
                                *vlen = v.len;
                            }
                        }
                    }
                }
            }
            it_destroy(bi);
        }
    }
    it_destroy(ix);
    return st;
}

ndb_status kv_table_get(kv_table *t, kv_slice lookup, uint64_t ukey_hash, int *result, void **val,
                        size_t *vlen, int *bloom_skip)
{
    *result = TABLE_GET_MISS;
    *bloom_skip = 0;
    if (t->filter && !kv_bloom_may_contain(t->filter, t->filter_len, ukey_hash)) {
        __atomic_add_fetch(&g_counters.bloom_useful, 1, __ATOMIC_RELAXED);
        *bloom_skip = 1;
        return NDB_OK;
    }
    /* Fast path: no allocation except the returned value. */
    char kbuf[512];
    int found;
    kv_slice k, v;
    uint32_t ordinal;
    ndb_status st = kv_block_find_at(t->index, t->index_len, lookup, kbuf, sizeof kbuf, &found, &k, &v, &ordinal);
    if (st == NDB_ETOOBIG) return table_get_iter(t, lookup, result, val, vlen);
    if (st != NDB_OK || !found) return st;
    uint64_t off, size;
    const char *p = get_varint64(v.data, v.data + v.len, &off);
    if (p) p = get_varint64(p, v.data + v.len, &size);
    if (p == NULL) return NDB_ECORRUPT;
    kv_cache_entry *e;
    char *own;
    const char *data;
    size_t len;
    st = fetch_block(t, off, size, ordinal, 1, &data, &len, &e, &own);
    if (st != NDB_OK) return st;
    st = kv_block_find(data, len, lookup, kbuf, sizeof kbuf, &found, &k, &v);
    if (st == NDB_OK && found) {
        kv_slice u = ikey_user(k), lu = ikey_user(lookup);
        if (u.len == lu.len && memcmp(u.data, lu.data, u.len) == 0) {
            if (ikey_type(k) == KV_TYPE_DELETE) {
                *result = TABLE_GET_DELETED;
            } else {
                *result = TABLE_GET_VALUE;
                if (val) {
                    *val = malloc(v.len ? v.len : 1);
                    if (*val == NULL) {
                        st = NDB_ENOMEM;
                    } else {
                        memcpy(*val, v.data, v.len);
                        *vlen = v.len;
                    }
                }
            }
        }
    }
    if (e) kv_cache_release(t->cache, e);
    free(own);
    if (st == NDB_ETOOBIG) {
        *result = TABLE_GET_MISS;
        return table_get_iter(t, lookup, result, val, vlen);
    }
    return st;
}

/* ---- two-level iterator: index block -> data blocks. One block iterator is
 * reused across blocks; a seek that lands in the current block reuses it. */

typedef struct table_iter {
    kv_iter base;
    kv_table *t;
    kv_iter *index;
    kv_iter *data;     /* reusable block iterator */
    int has_data;      /* data holds a block */
    uint64_t data_off; /* offset of that block */
    kv_cache_entry *e; /* its pin, or */
    char *own;         /* its private copy (no cache) */
    ndb_status st;
    void (*release)(void *); /* run on destroy */
    void *arg;
} table_iter;

static void unpin(table_iter *ti)
{
    if (ti->e) kv_cache_release(ti->t->cache, ti->e);
    free(ti->own);
    ti->e = NULL;
    ti->own = NULL;
}

static void drop_data(table_iter *ti)
{
    if (ti->has_data) {
        ndb_status s = it_status(ti->data);
        if (s != NDB_OK && ti->st == NDB_OK) ti->st = s;
    }
    ti->has_data = 0;
}

/* Points data at the block the index is on (reusing it if already there).
 * fill: insert a block read from the file into the cache (seeks do; steps
 * from one block to the next in a scan do not, so a scan does not flush the
 * cache). */
static void init_data(table_iter *ti, int fill)
{
    if (!it_valid(ti->index)) {
        drop_data(ti);
        return;
    }
    kv_slice hv = it_value(ti->index);
    uint64_t off, size;
    const char *p = get_varint64(hv.data, hv.data + hv.len, &off);
    if (p) p = get_varint64(p, hv.data + hv.len, &size);
    if (p == NULL) {
        drop_data(ti);
        ti->st = NDB_ECORRUPT;
        return;
    }
    if (ti->has_data && off == ti->data_off) return;
    drop_data(ti);
    kv_cache_entry *e;
    char *own;
    const char *data;
    size_t len;
    ndb_status st = fetch_block(ti->t, off, size, kv_block_iter_restart(ti->index), fill, &data, &len, &e, &own);
    if (st != NDB_OK) {
        ti->st = st;
        return;
    }
    kv_block_iter_reset(ti->data, data, len, NULL, NULL);
    unpin(ti);
    ti->e = e;
    ti->own = own;
    ti->data_off = off;
    ti->has_data = 1;
    if (it_status(ti->data) != NDB_OK) drop_data(ti);
}

static void skip_empty_fwd(table_iter *ti)
{
    while (ti->st == NDB_OK && (!ti->has_data || !it_valid(ti->data))) {
        if (!it_valid(ti->index)) {
            drop_data(ti);
            return;
        }
        it_next(ti->index);
        init_data(ti, 0);
        if (ti->has_data) it_seek_first(ti->data);
    }
}

static void skip_empty_back(table_iter *ti)
{
    while (ti->st == NDB_OK && (!ti->has_data || !it_valid(ti->data))) {
        if (!it_valid(ti->index)) {
            drop_data(ti);
            return;
        }
        it_prev(ti->index);
        init_data(ti, 0);
        if (ti->has_data) it_seek_last(ti->data);
    }
}

static void ti_publish(table_iter *ti)
{
    kv_iter_publish(&ti->base, ti->st == NDB_OK && ti->has_data && it_valid(ti->data), it_key(ti->data));
}
static void ti_seek_first(kv_iter *it)
{
    table_iter *ti = (table_iter *)it;
    it_seek_first(ti->index);
    init_data(ti, 1);
    if (ti->has_data) it_seek_first(ti->data);
    skip_empty_fwd(ti);
    ti_publish(ti);
}
static void ti_seek_last(kv_iter *it)
{
    table_iter *ti = (table_iter *)it;
    it_seek_last(ti->index);
    init_data(ti, 1);
    if (ti->has_data) it_seek_last(ti->data);
    skip_empty_back(ti);
    ti_publish(ti);
}
static void ti_seek(kv_iter *it, kv_slice target)
{
    table_iter *ti = (table_iter *)it;
    it_seek(ti->index, target);
    init_data(ti, 1);
    if (ti->has_data) it_seek(ti->data, target);
    skip_empty_fwd(ti);
    ti_publish(ti);
}
static void ti_next(kv_iter *it)
{
    table_iter *ti = (table_iter *)it;
    it_next(ti->data);
    skip_empty_fwd(ti);
    ti_publish(ti);
}
static void ti_prev(kv_iter *it)
{
    table_iter *ti = (table_iter *)it;
    it_prev(ti->data);
    skip_empty_back(ti);
    ti_publish(ti);
}
static kv_slice ti_value(kv_iter *it) { return it_value(((table_iter *)it)->data); }
static ndb_status ti_status(kv_iter *it)
{
    table_iter *ti = (table_iter *)it;
    if (ti->st != NDB_OK) return ti->st;
    ndb_status s = it_status(ti->index);
    if (s != NDB_OK) return s;
    return ti->has_data ? it_status(ti->data) : NDB_OK;
}
static void ti_destroy(kv_iter *it)
{
    table_iter *ti = (table_iter *)it;
    it_destroy(ti->data);
    unpin(ti);
    it_destroy(ti->index);
    if (ti->release) ti->release(ti->arg);
    free(ti);
}
static const kv_iter_vtbl table_vtbl = {ti_seek_first, ti_seek_last, ti_seek,   ti_next,
                                        ti_prev,       ti_value,     ti_status, ti_destroy};

kv_iter *kv_table_iter(kv_table *t, void (*release)(void *), void *arg)
{
    table_iter *ti = calloc(1, sizeof *ti);
    if (ti == NULL) return NULL;
    kv_iter_init(&ti->base, &table_vtbl);
    ti->t = t;
    ti->release = release;
    ti->arg = arg;
    ti->index = kv_block_iter_blank(); /* always a block iterator: its restart index is the block ordinal */
    if (ti->index) kv_block_iter_reset(ti->index, t->index, t->index_len, NULL, NULL);
    ti->data = kv_block_iter_blank();
    if (ti->index == NULL || ti->data == NULL) {
        it_destroy(ti->index);
        it_destroy(ti->data);
        free(ti);
        return NULL;
    }
    return &ti->base;
}
