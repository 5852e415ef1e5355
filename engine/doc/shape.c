/*
 * shape.c — Find's projection ({"a":1} / {"a":0}, dotted paths into nested
 * objects and arrays of objects) and sort keys ({"a":1,"b":-1}).
 *
 * A sort key is the concatenation of each field's order-preserving key
 * encoding (value.c), inverted for descending fields, so sorting documents is
 * a memcmp of their keys. As in MongoDB, an array field sorts by its smallest
 * element ascending and its largest descending, and a missing field as null.
 */
#include <stdlib.h>
#include <string.h>

#include "doc_int.h"

typedef struct pnode {
    const char *name;
    size_t len;
    struct pnode *kids;
    int nkids, cap;
    bool leaf;
} pnode;

struct prj_spec {
    bool include;
    bool id; /* include _id (inclusion mode) / exclude _id (exclusion mode) */
    pnode root;
};

static void pnode_free(pnode *n)
{
    for (int i = 0; i < n->nkids; i++)
        pnode_free(&n->kids[i]);
    free(n->kids);
}

void prj_free(prj_spec *p)
{
    if (p == NULL)
        return;
    pnode_free(&p->root);
    free(p);
}

static pnode *pnode_child(pnode *n, const char *name, size_t len, bool add)
{
    for (int i = 0; i < n->nkids; i++)
        if (n->kids[i].len == len && memcmp(n->kids[i].name, name, len) == 0)
            return &n->kids[i];
    if (!add)
        return NULL;
    if (n->nkids == n->cap) {
        int cap = n->cap ? n->cap * 2 : 4;
        pnode *k = realloc(n->kids, (size_t)cap * sizeof *k);
        if (k == NULL)
            return NULL;
        n->kids = k;
        n->cap = cap;
    }
    pnode *c = &n->kids[n->nkids++];
    memset(c, 0, sizeof *c);
    c->name = name;
    c->len = len;
    return c;
}

ndb_status prj_compile(const ndb_doc_val *v, prj_spec **out, ndb_errmsg *msg)
{
    if (v->type != NDB_DOC_OBJECT)
        return ndb_errmsg_set(msg, NDB_EINVAL, "projection must be an object");
    prj_spec *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NDB_ENOMEM;
    int inc = 0, exc = 0, id = -1;
    ndb_status st = NDB_OK;
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, v);
    const char *k;
    size_t kl;
    ndb_doc_val e;
    while (st == NDB_OK && ndb_doc_iter_next(&it, &k, &kl, &e)) {
        bool on;
        if (e.type == NDB_DOC_BOOL)
            on = e.u.b;
        else if (val_is_num(&e))
            on = ndb_doc_num(&e) != 0;
        else {
            st = ndb_errmsg_set(msg, NDB_EINVAL,
                                "projection.%.*s must be 0/1 or true/false (use aggregate "
                                "$project for expressions)",
                                (int)kl, k);
            break;
        }
        dpath path;
        if (path_split(k, kl, &path) != NDB_OK || k[0] == '$') {
            st = ndb_errmsg_set(msg, NDB_EINVAL, "bad projection path '%.*s'", (int)kl, k);
            break;
        }
        if (kl == 3 && memcmp(k, "_id", 3) == 0) {
            id = on;
            continue;
        }
        on ? inc++ : exc++;
        pnode *n = &p->root;
        for (int i = 0; i < path.n && n; i++) {
            n = pnode_child(n, path.c[i], path.l[i], true);
            if (n && n->leaf)
                break; /* a parent already covers it */
        }
        if (n == NULL) {
            st = NDB_ENOMEM;
            break;
        }
        n->leaf = true;
        pnode_free(n);
        n->kids = NULL;
        n->nkids = n->cap = 0;
    }
    if (st == NDB_OK && inc && exc)
        st = ndb_errmsg_set(msg, NDB_EINVAL,
                            "projection cannot mix inclusion and exclusion (except _id)");
    if (st != NDB_OK) {
        prj_free(p);
        return st;
    }
    p->include = inc > 0 || (exc == 0 && id == 1);
    p->id = p->include ? id != 0 : id == 0;
    *out = p;
    return NDB_OK;
}

bool prj_id_only(const prj_spec *p) { return p->include && p->id && p->root.nkids == 0; }

static void prj_inc(const pnode *n, const ndb_doc_val *v, ndb_doc_builder *b, bool top, bool id);

static void prj_inc_value(const pnode *c, const ndb_doc_val *e, ndb_doc_builder *b)
{
    if (c->leaf) {
        ndb_doc_value(b, e);
    } else if (e->type == NDB_DOC_OBJECT) {
        prj_inc(c, e, b, false, false);
    } else if (e->type == NDB_DOC_ARRAY) {
        /* project into the array's objects; other elements are dropped */
        ndb_doc_begin_array(b);
        ndb_doc_iter it;
        ndb_doc_iter_init(&it, e);
        ndb_doc_val x;
        while (ndb_doc_iter_next(&it, NULL, NULL, &x))
            if (x.type == NDB_DOC_OBJECT || x.type == NDB_DOC_ARRAY)
                prj_inc_value(c, &x, b);
        ndb_doc_end_array(b);
    }
}

static void prj_inc(const pnode *n, const ndb_doc_val *v, ndb_doc_builder *b, bool top, bool id)
{
    ndb_doc_begin_object(b);
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, v);
    const char *k;
    size_t kl;
    ndb_doc_val e;
    while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
        if (top && kl == 3 && memcmp(k, "_id", 3) == 0) {
            if (id) {
                ndb_doc_key(b, k, kl);
                ndb_doc_value(b, &e);
            }
            continue;
        }
        const pnode *c = pnode_child((pnode *)n, k, kl, false);
        if (c == NULL)
            continue;
        if (!c->leaf && e.type != NDB_DOC_OBJECT && e.type != NDB_DOC_ARRAY)
            continue;
        ndb_doc_key(b, k, kl);
        prj_inc_value(c, &e, b);
    }
    ndb_doc_end_object(b);
}

static void prj_exc(const pnode *n, const ndb_doc_val *v, ndb_doc_builder *b, bool top, bool noid)
{
    if (v->type == NDB_DOC_ARRAY) {
        ndb_doc_begin_array(b);
        ndb_doc_iter it;
        ndb_doc_iter_init(&it, v);
        ndb_doc_val x;
        while (ndb_doc_iter_next(&it, NULL, NULL, &x)) {
            if (x.type == NDB_DOC_OBJECT || x.type == NDB_DOC_ARRAY)
                prj_exc(n, &x, b, false, false);
            else
                ndb_doc_value(b, &x);
        }
        ndb_doc_end_array(b);
        return;
    }
    ndb_doc_begin_object(b);
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, v);
    const char *k;
    size_t kl;
    ndb_doc_val e;
    while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
        if (top && noid && kl == 3 && memcmp(k, "_id", 3) == 0)
            continue;
        const pnode *c = pnode_child((pnode *)n, k, kl, false);
        if (c && c->leaf)
            continue;
        ndb_doc_key(b, k, kl);
        if (c && (e.type == NDB_DOC_OBJECT || e.type == NDB_DOC_ARRAY))
            prj_exc(c, &e, b, false, false);
        else
            ndb_doc_value(b, &e);
    }
    ndb_doc_end_object(b);
}

ndb_status prj_apply(const prj_spec *p, const ndb_doc_val *doc, ndb_doc_builder *out)
{
    if (p->include)
        prj_inc(&p->root, doc, out, true, p->id);
    else
        prj_exc(&p->root, doc, out, true, p->id);
    return NDB_OK;
}

/* ------------------------------------------------------------------ sort */

/* Adds one sort key (path k, direction e) to out. */
static ndb_status srt_add(srt_spec *out, const char *k, size_t kl, const ndb_doc_val *e, ndb_errmsg *msg)
{
    if (out->n == PATH_MAX_COMP)
        return ndb_errmsg_set(msg, NDB_EINVAL, "sort has more than %d keys", PATH_MAX_COMP);
    srt_key *sk = &out->k[out->n];
    if (path_split(k, kl, &sk->path) != NDB_OK || k[0] == '$')
        return ndb_errmsg_set(msg, NDB_EINVAL, "bad sort path '%.*s'", (int)kl, k);
    if (e->type != NDB_DOC_INT || (e->u.i != 1 && e->u.i != -1))
        return ndb_errmsg_set(msg, NDB_EINVAL, "sort.%.*s must be 1 or -1", (int)kl, k);
    sk->desc = e->u.i == -1;
    out->n++;
    return NDB_OK;
}

/* A sort spec is an object {"a": 1, "b": -1}, keys in order (MongoDB's shape;
 * every transport keeps key order). */
ndb_status srt_compile(const ndb_doc_val *v, srt_spec *out, ndb_errmsg *msg)
{
    out->n = 0;
    if (v->type != NDB_DOC_OBJECT)
        return ndb_errmsg_set(msg, NDB_EINVAL, "sort must be an object such as {\"age\": -1, \"_id\": 1}");
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, v);
    const char *k;
    size_t kl;
    ndb_doc_val e;
    while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
        ndb_status st = srt_add(out, k, kl, &e, msg);
        if (st != NDB_OK)
            return st;
    }
    if (it.st != NDB_OK)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "corrupt sort document");
    return NDB_OK;
}

typedef struct pick {
    bool desc;
    bool have;
    bool empty_array; /* only an empty array was seen */
    ndb_doc_val best;
} pick;

static void pick_one(pick *p, const ndb_doc_val *v)
{
    if (!p->have) {
        p->best = *v;
        p->have = true;
        return;
    }
    int r = ndb_doc_compare(v, &p->best);
    if (p->desc ? r > 0 : r < 0)
        p->best = *v;
}

/* path_walk's leaf for a sort key: an array at the path's end offers its
 * elements (an empty one is noted: it sorts before null), a missing value is
 * null (so an array element lacking the field counts as null, as MongoDB's
 * sort keys, like its index keys, see it). */
static bool sort_leaf(void *ctx, const ndb_doc_val *v, bool in_array)
{
    (void)in_array;
    pick *p = ctx;
    if (v == NULL) {
        uint8_t nb[2];
        ndb_doc_val nv;
        val_make_null(&nv, nb);
        pick_one(p, &nv);
        return false;
    }
    if (v->type != NDB_DOC_ARRAY) {
        pick_one(p, v);
        return false;
    }
    if (v->u.c.count == 0)
        p->empty_array = true;
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, v);
    ndb_doc_val e;
    while (ndb_doc_iter_next(&it, NULL, NULL, &e))
        pick_one(p, &e);
    return false;
}

bool srt_key_of(const srt_spec *s, const ndb_doc_val *doc, dbuf *out)
{
    for (int i = 0; i < s->n; i++) {
        pick p = {.desc = s->k[i].desc};
        path_walk(doc, &s->k[i].path, 0, false, sort_leaf, &p);
        if (p.have) {
            if (!kenc_value(out, &p.best, s->k[i].desc))
                return false;
        } else if (p.empty_array) {
            /* an empty array sorts before null */
            dbuf_byte(out, s->k[i].desc ? (uint8_t)~0x04 : 0x04);
        } else {
            kenc_null(out, s->k[i].desc);
        }
    }
    return !out->oom;
}
