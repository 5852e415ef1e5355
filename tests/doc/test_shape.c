/* Tests for engine/doc/shape.c: projection and sort keys. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc_int.h"
#include "ndb_doc.h"

static void *J(const char *json, size_t *len)
{
    void *d;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_from_json(json, strlen(json), &d, len, &m), NDB_OK, "%s: %s", json,
                 m.text);
    return d;
}

static const char *P(const char *doc, const char *spec)
{
    static char out[2048];
    size_t dl, sl;
    void *d = J(doc, &dl), *s = J(spec, &sl);
    ndb_doc_val dv, sv;
    ndb_doc_root(d, dl, &dv);
    ndb_doc_root(s, sl, &sv);
    prj_spec *p;
    ndb_errmsg m = {{0}};
    ndb_status st = prj_compile(&sv, &p, &m);
    if (st != NDB_OK) {
        snprintf(out, sizeof out, "ERR:%s", m.text);
    } else {
        ndb_doc_builder *b;
        ndb_doc_builder_new(&b);
        prj_apply(p, &dv, b);
        const void *r;
        size_t rl;
        cr_assert_eq(ndb_doc_builder_finish(b, &r, &rl), NDB_OK);
        char *js;
        size_t jl;
        ndb_doc_to_json(r, rl, &js, &jl);
        snprintf(out, sizeof out, "%s", js);
        free(js);
        ndb_doc_builder_free(b);
        prj_free(p);
    }
    free(d);
    free(s);
    return out;
}

#define DOC "{\"_id\":\"i\",\"name\":\"A\",\"age\":28,\"p\":{\"bio\":\"x\",\"loc\":\"SF\"}," \
            "\"items\":[{\"k\":1,\"v\":2},{\"k\":3},5]}"

Test(projection, include_exclude)
{
    cr_assert_str_eq(P(DOC, "{\"name\":1}"), "{\"_id\":\"i\",\"name\":\"A\"}");
    cr_assert_str_eq(P(DOC, "{\"age\":1,\"name\":true}"), "{\"_id\":\"i\",\"name\":\"A\",\"age\":28}");
    cr_assert_str_eq(P(DOC, "{\"name\":1,\"_id\":0}"), "{\"name\":\"A\"}");
    cr_assert_str_eq(P(DOC, "{\"p.loc\":1}"), "{\"_id\":\"i\",\"p\":{\"loc\":\"SF\"}}");
    cr_assert_str_eq(P(DOC, "{\"items.k\":1,\"_id\":0}"), "{\"items\":[{\"k\":1},{\"k\":3}]}");
    cr_assert_str_eq(P(DOC, "{\"name.x\":1,\"_id\":0}"), "{}");
    cr_assert_str_eq(P(DOC, "{\"missing\":1,\"_id\":0}"), "{}");
    cr_assert_str_eq(P(DOC, "{\"p\":0,\"items\":0}"), "{\"_id\":\"i\",\"name\":\"A\",\"age\":28}");
    cr_assert_str_eq(P(DOC, "{\"_id\":0,\"p.bio\":0,\"items.v\":0}"),
                     "{\"name\":\"A\",\"age\":28,\"p\":{\"loc\":\"SF\"},"
                     "\"items\":[{\"k\":1},{\"k\":3},5]}");
    cr_assert_str_eq(P(DOC, "{\"_id\":1}"), "{\"_id\":\"i\"}");
    cr_assert_str_eq(P("{\"a\":1}", "{}"), "{\"a\":1}");
    cr_assert(strstr(P(DOC, "{\"name\":1,\"age\":0}"), "cannot mix") != NULL);
    cr_assert(strstr(P(DOC, "{\"name\":\"$x\"}"), "must be 0/1") != NULL);
}

static void K(const char *spec, const char *doc, dbuf *out)
{
    size_t dl, sl;
    void *d = J(doc, &dl), *s = J(spec, &sl);
    ndb_doc_val dv, sv;
    ndb_doc_root(d, dl, &dv);
    ndb_doc_root(s, sl, &sv);
    srt_spec ss;
    cr_assert_eq(srt_compile(&sv, &ss, NULL), NDB_OK);
    out->len = 0;
    cr_assert(srt_key_of(&ss, &dv, out));
    free(d);
    free(s);
}

static int ORDER(const char *spec, const char *a, const char *b)
{
    dbuf ka = {0}, kb = {0};
    K(spec, a, &ka);
    K(spec, b, &kb);
    size_t m = ka.len < kb.len ? ka.len : kb.len;
    int r = memcmp(ka.data, kb.data, m);
    if (r == 0)
        r = (ka.len > kb.len) - (ka.len < kb.len);
    dbuf_free(&ka);
    dbuf_free(&kb);
    return r < 0 ? -1 : r > 0;
}

Test(sort, keys)
{
    cr_assert_eq(ORDER("{\"a\":1}", "{\"a\":1}", "{\"a\":2}"), -1);
    cr_assert_eq(ORDER("{\"a\":-1}", "{\"a\":1}", "{\"a\":2}"), 1);
    cr_assert_eq(ORDER("{\"a\":1}", "{\"a\":1.5}", "{\"a\":1}"), 1);
    cr_assert_eq(ORDER("{\"a\":1}", "{}", "{\"a\":1}"), -1);  /* missing as null, first */
    cr_assert_eq(ORDER("{\"a\":1}", "{\"a\":null}", "{}"), 0);
    cr_assert_eq(ORDER("{\"a\":1}", "{\"a\":5}", "{\"a\":\"5\"}"), -1);
    cr_assert_eq(ORDER("{\"a\":1,\"b\":-1}", "{\"a\":1,\"b\":1}", "{\"a\":1,\"b\":2}"), 1);
    cr_assert_eq(ORDER("{\"a\":1,\"b\":-1}", "{\"a\":0,\"b\":1}", "{\"a\":1,\"b\":2}"), -1);
    /* arrays: smallest element ascending, largest descending */
    cr_assert_eq(ORDER("{\"a\":1}", "{\"a\":[5,1]}", "{\"a\":2}"), -1);
    cr_assert_eq(ORDER("{\"a\":-1}", "{\"a\":[5,1]}", "{\"a\":4}"), -1);
    cr_assert_eq(ORDER("{\"a\":1}", "{\"a\":[]}", "{\"a\":null}"), -1);
    cr_assert_eq(ORDER("{\"p.q\":1}", "{\"p\":{\"q\":3}}", "{\"p\":{\"q\":2}}"), 1);
    cr_assert_eq(ORDER("{\"i.k\":1}", "{\"i\":[{\"k\":3},{\"k\":0}]}", "{\"i\":[{\"k\":1}]}"), -1);
    srt_spec ss;
    size_t sl;
    void *s = J("{\"a\":2}", &sl);
    ndb_doc_val sv;
    ndb_doc_root(s, sl, &sv);
    ndb_errmsg m = {{0}};
    cr_assert_eq(srt_compile(&sv, &ss, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "sort.a must be 1 or -1") != NULL, "%s", m.text);
    free(s);
}
