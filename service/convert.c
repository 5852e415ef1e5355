#include "convert.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>


static int key_cmp(const void *a, const void *b)
{
    const Google__Protobuf__Struct__FieldsEntry *x = *(const Google__Protobuf__Struct__FieldsEntry *const *)a;
    const Google__Protobuf__Struct__FieldsEntry *y = *(const Google__Protobuf__Struct__FieldsEntry *const *)b;
    return strcmp(x->key, y->key);
}

/* A map on the wire may repeat a key; a document may not. */
static ndb_status check_unique_keys(const Google__Protobuf__Struct *s, ndb_errmsg *msg)
{
    size_t n = s->n_fields;
    if (n < 2)
        return NDB_OK;
    if (n <= 16) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (strcmp(s->fields[i]->key, s->fields[j]->key) == 0)
                    return ndb_errmsg_set(msg, NDB_EINVAL, "duplicate key '%.100s'", s->fields[i]->key);
        return NDB_OK;
    }
    Google__Protobuf__Struct__FieldsEntry **copy = malloc(n * sizeof *copy);
    if (copy == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    memcpy(copy, s->fields, n * sizeof *copy);
    qsort(copy, n, sizeof *copy, key_cmp);
    ndb_status st = NDB_OK;
    for (size_t i = 1; i < n && st == NDB_OK; i++)
        if (strcmp(copy[i - 1]->key, copy[i]->key) == 0)
            st = ndb_errmsg_set(msg, NDB_EINVAL, "duplicate key '%.100s'", copy[i]->key);
    free(copy);
    return st;
}

ndb_status svc_struct_encode(ndb_doc_builder *b, const Google__Protobuf__Struct *s, ndb_errmsg *msg)
{
    ndb_status st = ndb_doc_begin_object(b);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "document nested too deeply or too large");
    if (s != NULL) {
        if ((st = check_unique_keys(s, msg)) != NDB_OK)
            return st;
        for (size_t i = 0; i < s->n_fields; i++) {
            const Google__Protobuf__Struct__FieldsEntry *f = s->fields[i];
            if ((st = ndb_doc_key(b, f->key, strlen(f->key))) != NDB_OK)
                return ndb_errmsg_set(msg, st, "field '%.100s': %s", f->key, ndb_strerror(st));
            if (f->value == NULL)
                return ndb_errmsg_set(msg, NDB_EINVAL, "field '%.100s' has no value", f->key);
            if ((st = svc_value_encode(b, f->value, msg)) != NDB_OK)
                return st;
        }
    }
    st = ndb_doc_end_object(b);
    return st == NDB_OK ? NDB_OK : ndb_errmsg_set(msg, st, "document too large");
}

ndb_status svc_value_encode(ndb_doc_builder *b, const Google__Protobuf__Value *v, ndb_errmsg *msg)
{
    ndb_status st;
    switch (v->kind_case) {
    case GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE: st = ndb_doc_null(b); break;
    case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE:
        st = ndb_doc_double(b, v->number_value);
        if (st != NDB_OK)
            return ndb_errmsg_set(msg, NDB_EINVAL, "numbers must be finite (NaN and infinities cannot be stored)");
        break;
    case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE: st = ndb_doc_string(b, v->string_value, strlen(v->string_value)); break;
    case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE: st = ndb_doc_bool(b, v->bool_value != 0); break;
    case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE: return svc_struct_encode(b, v->struct_value, msg);
    case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE:
        if ((st = ndb_doc_begin_array(b)) != NDB_OK)
            return ndb_errmsg_set(msg, st, "document nested too deeply or too large");
        for (size_t i = 0; v->list_value != NULL && i < v->list_value->n_values; i++)
            if ((st = svc_value_encode(b, v->list_value->values[i], msg)) != NDB_OK)
                return st;
        st = ndb_doc_end_array(b);
        break;
    default: return ndb_errmsg_set(msg, NDB_EINVAL, "a value has no kind set");
    }
    return st == NDB_OK ? NDB_OK : ndb_errmsg_set(msg, st, "value rejected: %s", ndb_strerror(st));
}

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
                              st == NDB_ETOOBIG ? "too large" : inner->text[0] ? inner->text : ndb_strerror(st));
    void *copy = svc_arena_alloc(arena, *len);
    if (copy == NULL)
        return ndb_errmsg_set(msg, NDB_ELIMIT, "%s: over the call's memory bound", what);
    memcpy(copy, tmp, *len);
    *doc = copy;
    return NDB_OK;
}

ndb_status svc_encode(svc_arena *arena, const Google__Protobuf__Struct *s, int empty_ok, const char *what,
                      const void **doc, size_t *len, ndb_errmsg *msg)
{
    *doc = NULL;
    *len = 0;
    if (s == NULL && !empty_ok)
        return NDB_OK;
    ndb_doc_builder *b = svc_builder();
    if (b == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    ndb_doc_builder_reset(b);
    ndb_errmsg inner = {{0}};
    ndb_status st = svc_struct_encode(b, s, &inner);
    return finish_copy(arena, b, st, &inner, what, doc, len, msg);
}

ndb_status svc_encode_array(svc_arena *arena, Google__Protobuf__Struct *const *items, size_t n, const char *what,
                            const void **doc, size_t *len, ndb_errmsg *msg)
{
    ndb_doc_builder *b = svc_builder();
    if (b == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    ndb_doc_builder_reset(b);
    ndb_errmsg inner = {{0}};
    ndb_status st = ndb_doc_begin_array(b);
    for (size_t i = 0; st == NDB_OK && i < n; i++)
        st = svc_struct_encode(b, items[i], &inner);
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

/* ---- encoding → Struct ------------------------------------------------ */

static ndb_status val_to_value(svc_arena *a, const ndb_doc_val *v, Google__Protobuf__Value **out);

static ndb_status obj_to_struct(svc_arena *a, const ndb_doc_val *obj, Google__Protobuf__Struct **out)
{
    Google__Protobuf__Struct *s = svc_arena_alloc(a, sizeof *s);
    if (s == NULL)
        return NDB_ENOMEM;
    google__protobuf__struct__init(s);
    uint32_t n = obj->u.c.count;
    if (n > 0) {
        Google__Protobuf__Struct__FieldsEntry *entries = svc_arena_alloc(a, (size_t)n * sizeof *entries);
        s->fields = svc_arena_alloc(a, (size_t)n * sizeof *s->fields);
        if (entries == NULL || s->fields == NULL)
            return NDB_ENOMEM;
        ndb_doc_iter it;
        ndb_doc_iter_init(&it, obj);
        const char *key;
        size_t klen;
        ndb_doc_val fv;
        while (s->n_fields < n && ndb_doc_iter_next(&it, &key, &klen, &fv)) {
            Google__Protobuf__Struct__FieldsEntry *e = &entries[s->n_fields];
            google__protobuf__struct__fields_entry__init(e);
            e->key = svc_arena_strndup(a, key, klen);
            if (e->key == NULL)
                return NDB_ENOMEM;
            ndb_status st = val_to_value(a, &fv, &e->value);
            if (st != NDB_OK)
                return st;
            s->fields[s->n_fields++] = e;
        }
        if (it.st != NDB_OK)
            return it.st;
    }
    *out = s;
    return NDB_OK;
}

static ndb_status val_to_value(svc_arena *a, const ndb_doc_val *v, Google__Protobuf__Value **out)
{
    Google__Protobuf__Value *pv = svc_arena_alloc(a, sizeof *pv);
    if (pv == NULL)
        return NDB_ENOMEM;
    google__protobuf__value__init(pv);
    switch (v->type) {
    case NDB_DOC_NULL:
        pv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
        pv->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
        break;
    case NDB_DOC_BOOL:
        pv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
        pv->bool_value = v->u.b != 0;
        break;
    case NDB_DOC_INT:
        pv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
        pv->number_value = (double)v->u.i;
        break;
    case NDB_DOC_DOUBLE:
        pv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
        pv->number_value = v->u.d;
        break;
    case NDB_DOC_STRING:
        pv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
        pv->string_value = svc_arena_strndup(a, v->u.s.ptr, v->u.s.len);
        if (pv->string_value == NULL)
            return NDB_ENOMEM;
        break;
    case NDB_DOC_OBJECT: {
        pv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
        ndb_status st = obj_to_struct(a, v, &pv->struct_value);
        if (st != NDB_OK)
            return st;
        break;
    }
    case NDB_DOC_ARRAY: {
        pv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
        Google__Protobuf__ListValue *l = svc_arena_alloc(a, sizeof *l);
        if (l == NULL)
            return NDB_ENOMEM;
        google__protobuf__list_value__init(l);
        uint32_t n = v->u.c.count;
        if (n > 0 && (l->values = svc_arena_alloc(a, (size_t)n * sizeof *l->values)) == NULL)
            return NDB_ENOMEM;
        ndb_doc_iter it;
        ndb_doc_iter_init(&it, v);
        ndb_doc_val ev;
        while (l->n_values < n && ndb_doc_iter_next(&it, NULL, NULL, &ev)) {
            ndb_status st = val_to_value(a, &ev, &l->values[l->n_values]);
            if (st != NDB_OK)
                return st;
            l->n_values++;
        }
        if (it.st != NDB_OK)
            return it.st;
        pv->list_value = l;
        break;
    }
    default: return NDB_ECORRUPT;
    }
    *out = pv;
    return NDB_OK;
}

ndb_status svc_doc_to_struct(svc_arena *arena, const void *doc, size_t len, Google__Protobuf__Struct **out,
                             ndb_errmsg *msg)
{
    ndb_doc_val root;
    ndb_status st = ndb_doc_root(doc, len, &root);
    if (st == NDB_OK && root.type != NDB_DOC_OBJECT)
        st = NDB_ECORRUPT;
    if (st == NDB_OK)
        st = obj_to_struct(arena, &root, out);
    if (st == NDB_ENOMEM)
        return ndb_errmsg_set(msg, NDB_ELIMIT, "result too large for one call's memory bound");
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "stored document could not be read: %s", ndb_strerror(st));
    return NDB_OK;
}
