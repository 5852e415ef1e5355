/*
 * doc_query.c — fuzzes the query language and what reads a document with it:
 * the filter compiler and matcher, the update compiler and applier, the
 * projection and sort-key compilers.
 * Input: JSON texts separated by NUL bytes: filter \0 document \0 update
 * \0 projection \0 sort (missing parts are skipped).
 */
#include <stdlib.h>
#include <string.h>

#include "doc_int.h"
#include "fuzz_util.h"
#include "ndb_doc.h"

#define NPARTS 5

static size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void *enc[NPARTS] = {0};
    size_t len[NPARTS] = {0};
    const uint8_t *p = data, *end = data + size;
    ndb_errmsg msg;
    for (int i = 0; i < NPARTS && p <= end; i++) {
        const uint8_t *z = memchr(p, 0, (size_t)(end - p));
        const uint8_t *stop = z != NULL ? z : end;
        if (ndb_doc_from_json((const char *)p, (size_t)(stop - p), &enc[i], &len[i], &msg) != NDB_OK)
            enc[i] = NULL;
        if (z == NULL)
            break;
        p = z + 1;
    }

    ndb_doc_val doc, v;
    bool have_doc = enc[1] != NULL && ndb_doc_root(enc[1], len[1], &doc) == NDB_OK && doc.type == NDB_DOC_OBJECT;

    ndb_doc_filter *f = NULL;
    if (enc[0] != NULL && ndb_doc_filter_compile(enc[0], len[0], &f, &msg) == NDB_OK) {
        if (have_doc) {
            int m1 = ndb_doc_filter_match(f, enc[1], len[1]);
            int m2 = ndb_doc_filter_match(f, enc[1], len[1]);
            if (m1 != m2)
                abort(); /* matching is a pure function of filter and document */
            sink += (size_t)m1;
        }
        ndb_doc_filter_free(f);
    }

    if (enc[2] != NULL && ndb_doc_root(enc[2], len[2], &v) == NDB_OK) {
        upd_spec *u = NULL;
        if (upd_compile(&v, &u, &msg) == NDB_OK) {
            if (have_doc) {
                ndb_doc_builder *b = NULL;
                if (ndb_doc_builder_new(&b) == NDB_OK) {
                    bool changed = false;
                    if (upd_apply(u, &doc, false, b, &changed, &msg) == NDB_OK) {
                        const void *out;
                        size_t olen;
                        if (ndb_doc_builder_finish(b, &out, &olen) == NDB_OK &&
                            ndb_doc_validate(out, olen, &msg) != NDB_OK)
                            abort(); /* an update produced an invalid document */
                    }
                    ndb_doc_builder_free(b);
                }
            }
            upd_free(u);
        }
    }

    if (enc[3] != NULL && ndb_doc_root(enc[3], len[3], &v) == NDB_OK) {
        prj_spec *pj = NULL;
        if (prj_compile(&v, &pj, &msg) == NDB_OK) {
            if (have_doc) {
                ndb_doc_builder *b = NULL;
                if (ndb_doc_builder_new(&b) == NDB_OK) {
                    if (prj_apply(pj, &doc, b) == NDB_OK) {
                        const void *out;
                        size_t olen;
                        if (ndb_doc_builder_finish(b, &out, &olen) == NDB_OK &&
                            ndb_doc_validate(out, olen, &msg) != NDB_OK)
                            abort();
                    }
                    ndb_doc_builder_free(b);
                }
            }
            prj_free(pj);
        }
    }

    if (enc[4] != NULL && ndb_doc_root(enc[4], len[4], &v) == NDB_OK) {
        srt_spec s;
        if (srt_compile(&v, &s, &msg) == NDB_OK && have_doc) {
            dbuf k = {0};
            if (srt_key_of(&s, &doc, &k))
                sink += k.len;
            dbuf_free(&k);
        }
    }

    for (int i = 0; i < NPARTS; i++)
        free(enc[i]);
    return 0;
}
