/*
 * doc_codec.c — fuzzes the document codec (engine/doc/FORMAT.md).
 * Input byte 0 even: the rest is an encoded document from an untrusted
 * source: ndb_doc_validate; when valid, every reader (root, iteration, field
 * and path lookups, compare, JSON out and back) must work and round-trip.
 * Odd: the rest is JSON text: ndb_doc_from_json; what it accepts must
 * validate, print, and re-encode to the same bytes. Byte 0 == 2 (mod 4):
 * the rest is BSON: what ndb_doc_append_bson accepts must validate and
 * convert back to BSON that reads as the same document.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ndb_doc.h"

static size_t sink;

static void walk(const ndb_doc_val *v, int depth)
{
    if (depth > 300)
        abort(); /* validate bounds the depth */
    if (v->type != NDB_DOC_OBJECT && v->type != NDB_DOC_ARRAY) {
        double d = ndb_doc_num(v);
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        sink += (size_t)bits;
        return;
    }
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, v);
    const char *key;
    size_t klen;
    ndb_doc_val child;
    uint32_t i = 0;
    while (ndb_doc_iter_next(&it, &key, &klen, &child)) {
        ndb_doc_val again;
        if (v->type == NDB_DOC_OBJECT) {
            sink += klen;
            if (ndb_doc_get_field(v, key, klen, &again) != NDB_OK)
                abort(); /* a key the iterator returned must be found */
        } else if (ndb_doc_get_index(v, i, &again) != NDB_OK) {
            abort();
        }
        if (child.type != NDB_DOC_DOUBLE && ndb_doc_compare(&child, &child) != 0)
            abort();
        walk(&child, depth + 1);
        i++;
    }
    if (it.st != NDB_OK)
        abort(); /* validated bytes never fail to iterate */
}

/* json -> encoded -> *out (caller frees); false when either step fails. */
static bool json_pass(const char *json, size_t len, char **out, size_t *olen)
{
    void *doc = NULL;
    size_t dlen = 0;
    ndb_errmsg msg;
    if (ndb_doc_from_json(json, len, &doc, &dlen, &msg) != NDB_OK)
        return false;
    bool ok = ndb_doc_to_json(doc, dlen, out, olen) == NDB_OK;
    free(doc);
    return ok;
}

static void check_valid(const uint8_t *doc, size_t len)
{
    ndb_doc_val root;
    if (ndb_doc_root(doc, len, &root) != NDB_OK)
        abort();
    walk(&root, 0);
    ndb_doc_val out;
    (void)ndb_doc_get_path(&root, "a.b.0", 5, &out);
    (void)ndb_doc_get_path(&root, "_id", 3, &out);
    char *json = NULL;
    size_t jlen = 0;
    if (ndb_doc_to_json(doc, len, &json, &jlen) != NDB_OK)
        return; /* NDB_ENOMEM or a value JSON cannot hold */
    /* JSON -> doc -> JSON settles after one pass (the first may drop a
     * duplicate key that encoded bytes can carry, or normalise a number) */
    char *j2 = NULL, *j3 = NULL;
    size_t l2 = 0, l3 = 0;
    if (json_pass(json, jlen, &j2, &l2) && json_pass(j2, l2, &j3, &l3) &&
        (l2 != l3 || memcmp(j2, j3, l2) != 0)) {
        fprintf(stderr, "unstable JSON:\n%s\n%s\n", j2, j3);
        abort();
    }
    free(j2);
    free(j3);
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t mode = fz_byte(&in);
    ndb_errmsg msg;
    if ((mode & 3) == 2) {
        ndb_doc_builder *b;
        if (ndb_doc_builder_new(&b) != NDB_OK)
            return 0;
        const void *d;
        size_t n;
        if (ndb_doc_append_bson(b, in.p, in.n, &msg) == NDB_OK && ndb_doc_builder_finish(b, &d, &n) == NDB_OK) {
            if (ndb_doc_validate(d, n, &msg) != NDB_OK)
                abort();
            check_valid(d, n);
            ndb_doc_val root;
            uint8_t *out;
            size_t ol;
            if (ndb_doc_root(d, n, &root) != NDB_OK)
                abort();
            if (ndb_doc_to_bson(&root, &out, &ol) == NDB_OK) { /* keys without NUL */
                ndb_doc_builder *b2;
                const void *d2;
                size_t n2;
                if (ndb_doc_builder_new(&b2) == NDB_OK) {
                    if (ndb_doc_append_bson(b2, out, ol, &msg) != NDB_OK ||
                        ndb_doc_builder_finish(b2, &d2, &n2) != NDB_OK || n2 != n || memcmp(d, d2, n) != 0)
                        abort(); /* BSON out reads back as the same document */
                    ndb_doc_builder_free(b2);
                }
                free(out);
            }
        }
        ndb_doc_builder_free(b);
        return 0;
    }
    if (!(mode & 1)) {
        if (ndb_doc_validate(in.p, in.n, &msg) == NDB_OK)
            check_valid(in.p, in.n);
        else {
            ndb_doc_val root; /* the O(1) reader must stay in bounds on bad bytes too */
            if (ndb_doc_root(in.p, in.n, &root) == NDB_OK && root.type == NDB_DOC_OBJECT) {
                ndb_doc_val f;
                (void)ndb_doc_get_field(&root, "a", 1, &f);
            }
        }
        return 0;
    }
    void *doc = NULL;
    size_t len = 0;
    if (ndb_doc_from_json((const char *)in.p, in.n, &doc, &len, &msg) == NDB_OK) {
        if (ndb_doc_validate(doc, len, &msg) != NDB_OK)
            abort(); /* the encoder wrote something its own validator refuses */
        check_valid(doc, len);
        free(doc);
    }
    return 0;
}
