/*
 * convert.c — nexadb.v1.Document (BSON bytes) ⇄ the document encoding.
 */
#include "convert.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_key_t builder_key;
static pthread_once_t builder_once = PTHREAD_ONCE_INIT;

static void builder_destroy(void *b)
{
    ndb_doc_builder_free(b);
}

static void builder_key_init(void)
{
    pthread_key_create(&builder_key, builder_destroy);
}

ndb_doc_builder *svc_builder(void)
{
    pthread_once(&builder_once, builder_key_init);
    ndb_doc_builder *b = pthread_getspecific(builder_key);
    if (b == NULL && ndb_doc_builder_new(&b) == NDB_OK && pthread_setspecific(builder_key, b) != 0) {
        ndb_doc_builder_free(b);
        b = NULL;
    }
    return b;
}

/* Finishes b's document and copies it into arena. inner carries the detail of
 * an earlier failure (st), if any. */
static ndb_status finish_copy(svc_arena *arena, ndb_doc_builder *b, ndb_status st, const ndb_errmsg *inner,
                              const char *what, const void **doc, size_t *len, ndb_errmsg *msg)
{
    const void *tmp = NULL;
    if (st == NDB_OK)
        st = ndb_doc_builder_finish(b, &tmp, len);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "%s: %s", what,
                              inner->text[0] ? inner->text : st == NDB_ETOOBIG ? "too large" : ndb_strerror(st));
    void *copy = svc_arena_alloc(arena, *len);
    if (copy == NULL)
        return ndb_errmsg_set(msg, NDB_ELIMIT, "%s: over the call's memory bound", what);
    memcpy(copy, tmp, *len);
    *doc = copy;
    return NDB_OK;
}

/* Appends d's BSON as an object to b; an absent or empty Document is {}. */
static ndb_status append_document(ndb_doc_builder *b, const Nexadb__V1__Document *d, ndb_errmsg *inner)
{
    if (d == NULL || d->bson.len == 0) {
        ndb_status st = ndb_doc_begin_object(b);
        return st == NDB_OK ? ndb_doc_end_object(b) : st;
    }
    return ndb_doc_append_bson(b, d->bson.data, d->bson.len, inner);
}

ndb_status svc_encode(svc_arena *arena, const Nexadb__V1__Document *d, int empty_ok, const char *what,
                      const void **doc, size_t *len, ndb_errmsg *msg)
{
    *doc = NULL;
    *len = 0;
    if ((d == NULL || d->bson.len == 0) && !empty_ok)
        return NDB_OK;
    ndb_doc_builder *b = svc_builder();
    if (b == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    ndb_doc_builder_reset(b);
    ndb_errmsg inner = {{0}};
    ndb_status st = append_document(b, d, &inner);
    return finish_copy(arena, b, st, &inner, what, doc, len, msg);
}

ndb_status svc_encode_nth(svc_arena *arena, const Nexadb__V1__Document *d, const char *list, size_t i,
                          const char *field, const void **doc, size_t *len, ndb_errmsg *msg)
{
    ndb_errmsg inner = {{0}};
    ndb_status st = svc_encode(arena, d, 1, "", doc, len, &inner); /* inner: ": why" */
    return st == NDB_OK ? NDB_OK : ndb_errmsg_set(msg, st, "%s[%zu]%s%s", list, i, field, inner.text);
}

ndb_status svc_encode_array(svc_arena *arena, Nexadb__V1__Document *const *items, size_t n, const char *what,
                            const void **doc, size_t *len, ndb_errmsg *msg)
{
    ndb_doc_builder *b = svc_builder();
    if (b == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    ndb_doc_builder_reset(b);
    ndb_errmsg inner = {{0}};
    ndb_status st = ndb_doc_begin_array(b);
    for (size_t i = 0; st == NDB_OK && i < n; i++)
        st = append_document(b, items[i], &inner);
    if (st == NDB_OK)
        st = ndb_doc_end_array(b);
    return finish_copy(arena, b, st, &inner, what, doc, len, msg);
}

ndb_status svc_encode_keys(svc_arena *arena, const svc_key *keys, size_t n, const char *what, const void **doc,
                           size_t *len, ndb_errmsg *msg)
{
    *doc = NULL;
    *len = 0;
    if (n == 0)
        return NDB_OK;
    ndb_doc_builder *b = svc_builder();
    if (b == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    ndb_doc_builder_reset(b);
    ndb_errmsg inner = {{0}};
    ndb_status st = ndb_doc_begin_object(b);
    for (size_t i = 0; st == NDB_OK && i < n; i++) {
        if (keys[i].field == NULL || keys[i].field[0] == '\0')
            st = ndb_errmsg_set(&inner, NDB_EINVAL, "key %zu names no field", i);
        else if ((st = ndb_doc_key(b, keys[i].field, strlen(keys[i].field))) == NDB_OK)
            st = ndb_doc_int(b, keys[i].descending ? -1 : 1);
    }
    if (st == NDB_OK)
        st = ndb_doc_end_object(b);
    return finish_copy(arena, b, st, &inner, what, doc, len, msg);
}

/* ---- encoding → Document ---------------------------------------------- */

ndb_status svc_doc_to_document(svc_arena *arena, const void *doc, size_t len, Nexadb__V1__Document **out,
                               ndb_errmsg *msg)
{
    ndb_doc_val root;
    uint8_t *bson = NULL;
    size_t n = 0;
    ndb_status st = ndb_doc_root(doc, len, &root);
    if (st == NDB_OK && root.type != NDB_DOC_OBJECT)
        st = NDB_ECORRUPT;
    if (st == NDB_OK && (st = ndb_doc_to_bson(&root, &bson, &n)) == NDB_EINVAL)
        return ndb_errmsg_set(msg, NDB_EINVAL, "a key holds a NUL byte (\\u0000), which BSON cannot carry");
    if (st != NDB_OK && st != NDB_ENOMEM)
        return ndb_errmsg_set(msg, st, "stored document could not be read: %s", ndb_strerror(st));
    Nexadb__V1__Document *d = st == NDB_OK ? svc_arena_alloc(arena, sizeof *d) : NULL;
    uint8_t *copy = d != NULL ? svc_arena_alloc(arena, n) : NULL;
    if (copy != NULL) {
        nexadb__v1__document__init(d);
        memcpy(copy, bson, n);
        d->bson.data = copy;
        d->bson.len = n;
        *out = d;
    }
    free(bson);
    return copy != NULL ? NDB_OK : ndb_errmsg_set(msg, NDB_ELIMIT, "result too large for one call's memory bound");
}
