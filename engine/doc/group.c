/* group.c — the $group stage; see group.h. */
#include <assert.h>
#include "group.h"

#include <stdlib.h>
#include <string.h>

ndb_status grp_compile(grp *g, const ndb_doc_val *v, ndb_errmsg *msg)
{
    if (v->type != NDB_DOC_OBJECT)
        return ndb_errmsg_set(msg, NDB_EINVAL, "$group needs an object");
    ndb_doc_val idv;
    if (ndb_doc_get_field(v, "_id", 3, &idv) != NDB_OK)
        return ndb_errmsg_set(msg, NDB_EINVAL, "$group needs an _id");
    ndb_status st = expr_compile(&idv, "$group._id", &g->gid, 0, msg);
    if (st != NDB_OK)
        return st;
    g->accs = calloc(v->u.c.count, sizeof *g->accs);
    if (g->accs == NULL)
        return NDB_ENOMEM;
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, v);
    const char *k;
    size_t kl;
    ndb_doc_val e;
    while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
        if (key_is(k, kl, "_id"))
            continue;
        if (kl == 0 || k[0] == '$' || memchr(k, '.', kl))
            return ndb_errmsg_set(msg, NDB_EINVAL, "$group: field name '%.*s' may not be empty, start "
                                  "with '$' or contain '.'", (int)kl, k);
        if ((st = accum_compile(&g->accs[g->nacc++], k, kl, &e, msg)) != NDB_OK)
            return st;
    }
    return NDB_OK;
}

void grp_start(grp *g, size_t limit, const char *spill_dir, const ndb_interrupt *intr)
{
    /* the table and the sort buffer's memory share the bound */
    g->limit = spill_dir ? limit / 4 * 3 : limit;
    g->spill_dir = spill_dir;
    sortbuf_init(&g->sb, limit / 4, 0, spill_dir, intr, "$group");
}

static void states_clear(accst *s, int n)
{
    for (int a = 0; a < n; a++)
        accum_state_clear(&s[a]);
}

/* Writes the table to the sort buffer and empties it. */
static ndb_status flush(grp *g, ndb_errmsg *msg)
{
    dbuf key = {0}, pay = {0};
    ndb_status st = NDB_OK;
    for (size_t x = 0; st == NDB_OK && x < g->ngroups; x++) {
        key.len = pay.len = 0;
        dbuf_put(&key, g->gkeys.data + g->gkoff[x], g->gkoff[x + 1] - g->gkoff[x]);
        for (int a = 0; a < g->nacc; a++)
            accum_state_put(&g->gst[x * (size_t)g->nacc + a], &pay);
        st = key.oom || pay.oom ? NDB_ENOMEM : sortbuf_add(&g->sb, &key, pay.data, pay.len, msg);
        states_clear(&g->gst[x * (size_t)g->nacc], g->nacc);
    }
    dbuf_free(&key);
    dbuf_free(&pay);
    /* give the table's memory back: its capacity counts against the bound */
    bmap_free(&g->groups);
    dbuf_free(&g->gkeys);
    free(g->gst);
    free(g->gkoff);
    g->gst = NULL;
    g->gkoff = NULL;
    g->gcap = g->ngroups = 0;
    g->mem_used = 0;
    g->spilled = true;
    assert(g->ngroups == 0 && g->gst == NULL); /* the table is empty for what comes next */
    return st;
}

ndb_status grp_add(grp *g, const ndb_doc_val *root, ndb_errmsg *msg)
{
    ndb_doc_val key;
    uint8_t nullb[2];
    int r = expr_eval(&g->gid, root, &key, msg);
    if (r < 0)
        return (ndb_status)r;
    if (r == 0)
        val_make_null(&key, nullb);
    bool fresh;
    uint64_t *slot = bmap_upsert(&g->groups, key.raw, key.raw_len, g->ngroups, &fresh);
    if (slot == NULL)
        return NDB_ENOMEM;
    size_t x = (size_t)*slot;
    if (fresh) {
        if (g->ngroups == g->gcap) {
            size_t cap = g->gcap ? g->gcap * 2 : 64;
            accst *ns = realloc(g->gst, cap * (size_t)(g->nacc ? g->nacc : 1) * sizeof *ns);
            size_t *nk = realloc(g->gkoff, (cap + 1) * sizeof *nk);
            if (ns)
                g->gst = ns;
            if (nk)
                g->gkoff = nk;
            if (!ns || !nk)
                return NDB_ENOMEM;
            g->gcap = cap;
        }
        memset(&g->gst[x * (size_t)g->nacc], 0, (size_t)g->nacc * sizeof *g->gst);
        g->gkoff[x] = g->gkeys.len;
        if (!dbuf_put(&g->gkeys, key.raw, key.raw_len))
            return NDB_ENOMEM;
        g->gkoff[x + 1] = g->gkeys.len;
        g->ngroups++;
        g->mem_used = bmap_bytes(&g->groups) + g->gkeys.cap + g->gcap * (size_t)g->nacc * sizeof(accst);
    }
    for (int a = 0; a < g->nacc; a++) {
        int ar = accum_add(&g->accs[a], &g->gst[x * (size_t)g->nacc + a], root, &g->mem_used, msg);
        if (ar < 0)
            return (ndb_status)ar;
    }
    if (g->mem_used <= g->limit)
        return NDB_OK;
    if (g->spill_dir == NULL)
        return ndb_errmsg_set(msg, NDB_ELIMIT, "$group exceeded the memory limit of %zu bytes (%zu groups)",
                              g->limit, g->ngroups);
    return flush(g, msg);
}

ndb_status grp_finish(grp *g, ndb_errmsg *msg)
{
    if (!g->spilled)
        return NDB_OK;
    ndb_status st = flush(g, msg);
    if (st == NDB_OK)
        st = sortbuf_finish(&g->sb, msg);
    if (st == NDB_OK && ((g->cur = calloc((size_t)g->nacc + 1, sizeof *g->cur)) == NULL ||
                         (g->pend = calloc((size_t)g->nacc + 1, sizeof *g->pend)) == NULL))
        st = NDB_ENOMEM;
    return st;
}

/* Reads the sort buffer's next record into key and states: 1, 0, or a failure. */
static int read_record(grp *g, dbuf *key, accst *states, ndb_errmsg *msg)
{
    const uint8_t *k, *p;
    size_t kl, pl;
    int r = sortbuf_next(&g->sb, &k, &kl, &p, &pl, msg);
    if (r <= 0)
        return r;
    key->len = 0;
    if (!dbuf_put(key, k, kl))
        return NDB_ENOMEM;
    const uint8_t *end = p + pl;
    for (int a = 0; a < g->nacc; a++) {
        accum_state_clear(&states[a]);
        if ((p = accum_state_get(&states[a], p, end)) == NULL)
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "$group: a spilled group state does not read back");
    }
    return 1;
}

static void write_group(const grp *g, const uint8_t *key, size_t klen, const accst *states, ndb_doc_builder *b)
{
    ndb_doc_val k;
    ndb_doc_builder_reset(b);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "_id", 3);
    cod_read(key, key + klen, &k);
    ndb_doc_value(b, &k);
    for (int x = 0; x < g->nacc; x++) {
        ndb_doc_key(b, g->accs[x].name, g->accs[x].nlen);
        accum_out(&g->accs[x], &states[x], b);
    }
    ndb_doc_end_object(b);
}

int grp_next(grp *g, ndb_doc_builder *b, ndb_errmsg *msg)
{
    if (!g->spilled) {
        if (g->gi >= g->ngroups)
            return 0;
        size_t x = g->gi++;
        write_group(g, g->gkeys.data + g->gkoff[x], g->gkoff[x + 1] - g->gkoff[x], &g->gst[x * (size_t)g->nacc],
                    b);
        return 1;
    }
    int r;
    if (g->have_pend) { /* the record read past the last group starts this one */
        dbuf tk = g->key;
        g->key = g->pkey;
        g->pkey = tk;
        accst *ts = g->cur;
        g->cur = g->pend;
        g->pend = ts;
        g->have_pend = false;
    } else if ((r = read_record(g, &g->key, g->cur, msg)) <= 0) {
        return r;
    }
    /* equal keys are adjacent, from earlier flushes first: merge them */
    while ((r = read_record(g, &g->pkey, g->pend, msg)) > 0) {
        if (g->pkey.len != g->key.len || memcmp(g->pkey.data, g->key.data, g->key.len) != 0) {
            g->have_pend = true;
            break;
        }
        assert(g->pkey.len == g->key.len); /* only the states of one key merge */
        for (int a = 0; a < g->nacc; a++)
            accum_merge(&g->accs[a], &g->cur[a], &g->pend[a]);
    }
    if (r < 0)
        return r;
    write_group(g, g->key.data, g->key.len, g->cur, b);
    return 1;
}

uint64_t grp_spilled_bytes(const grp *g) { return g->sb.spilled_bytes; }

void grp_free(grp *g)
{
    expr_clear(&g->gid);
    for (size_t x = 0; g->gst && x < g->ngroups; x++)
        states_clear(&g->gst[x * (size_t)g->nacc], g->nacc);
    free(g->gst);
    if (g->cur)
        states_clear(g->cur, g->nacc);
    if (g->pend)
        states_clear(g->pend, g->nacc);
    free(g->cur);
    free(g->pend);
    for (int a = 0; a < g->nacc; a++)
        accum_clear(&g->accs[a]);
    free(g->accs);
    bmap_free(&g->groups);
    dbuf_free(&g->gkeys);
    dbuf_free(&g->key);
    dbuf_free(&g->pkey);
    free(g->gkoff);
    sortbuf_free(&g->sb);
}
