/* idmap.c — see idmap.h. */
#include "idmap.h"

#include <stdlib.h>
#include <string.h>

static uint32_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (uint32_t)h;
}

void idmap_init(idmap *m)
{
    m->slots = NULL;
    m->cap = m->count = m->key_bytes = 0;
}

void idmap_free(idmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    idmap_init(m);
}

static ndb_status rehash(idmap *m, size_t ncap)
{
    idmap_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return NDB_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        size_t j = m->slots[i].hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return NDB_OK;
}

ndb_status idmap_reserve(idmap *m, size_t n)
{
    size_t want = m->cap ? m->cap : 64;
    while ((m->count + n) * 4 >= want * 3)
        want *= 2;
    return want != m->cap ? rehash(m, want) : NDB_OK;
}

static size_t find(const idmap *m, const char *id, size_t len, uint32_t h, int *found)
{
    size_t j = h & (m->cap - 1);
    while (m->slots[j].key) {
        if (m->slots[j].hash == h && m->slots[j].len == len && memcmp(m->slots[j].key, id, len) == 0) {
            *found = 1;
            return j;
        }
        j = (j + 1) & (m->cap - 1);
    }
    *found = 0;
    return j;
}

idmap_loc *idmap_get(const idmap *m, const char *id, size_t len)
{
    if (!m->cap)
        return NULL;
    int found;
    size_t j = find(m, id, len, hash_bytes(id, len), &found);
    return found ? &m->slots[j].loc : NULL;
}

ndb_status idmap_put(idmap *m, const char *id, size_t len, idmap_loc loc)
{
    if (idmap_reserve(m, 1) != NDB_OK)
        return NDB_ENOMEM;
    uint32_t h = hash_bytes(id, len);
    int found;
    size_t j = find(m, id, len, h, &found);
    if (found) {
        m->slots[j].loc = loc;
        return NDB_OK;
    }
    char *k = malloc(len ? len : 1);
    if (!k)
        return NDB_ENOMEM;
    memcpy(k, id, len);
    m->slots[j] = (idmap_slot){k, (uint32_t)len, h, loc};
    m->count++;
    m->key_bytes += len ? len : 1;
    return NDB_OK;
}

void idmap_put_owned(idmap *m, char *key, size_t len, idmap_loc loc)
{
    uint32_t h = hash_bytes(key, len);
    int found;
    size_t j = find(m, key, len, h, &found);
    if (found) {
        m->slots[j].loc = loc;
        free(key);
        return;
    }
    m->slots[j] = (idmap_slot){key, (uint32_t)len, h, loc};
    m->count++;
    m->key_bytes += len ? len : 1;
}

int idmap_del(idmap *m, const char *id, size_t len)
{
    if (!m->cap)
        return 0;
    int found;
    size_t j = find(m, id, len, hash_bytes(id, len), &found);
    if (!found)
        return 0;
    free(m->slots[j].key);
    m->key_bytes -= m->slots[j].len ? m->slots[j].len : 1;
    m->slots[j].key = NULL;
    m->count--;
    /* backward shift: move later members of the probe run into the hole */
    size_t hole = j, k = (j + 1) & (m->cap - 1);
    while (m->slots[k].key) {
        size_t home = m->slots[k].hash & (m->cap - 1);
        /* k may move to hole if home is not cyclically in (hole, k] */
        int movable = hole <= k ? (home <= hole || home > k) : (home <= hole && home > k);
        if (movable) {
            m->slots[hole] = m->slots[k];
            m->slots[k].key = NULL;
            hole = k;
        }
        k = (k + 1) & (m->cap - 1);
    }
    return 1;
}
