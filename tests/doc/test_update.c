/* Tests for engine/doc/update.c: the merge update and every operator. */
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

/* Applies update to doc; returns the JSON result (static buffer) or
 * "ERR:<message>". */
static const char *U(const char *doc, const char *update, bool inserting)
{
    static char out[2048];
    size_t dl, ul;
    void *d = J(doc, &dl), *u = J(update, &ul);
    ndb_doc_val dv, uv;
    ndb_doc_root(d, dl, &dv);
    ndb_doc_root(u, ul, &uv);
    upd_spec *spec;
    ndb_errmsg m = {{0}};
    ndb_status st = upd_compile(&uv, &spec, &m);
    if (st == NDB_OK) {
        ndb_doc_builder *b;
        ndb_doc_builder_new(&b);
        bool changed;
        st = upd_apply(spec, &dv, inserting, b, &changed, &m);
        if (st == NDB_OK) {
            const void *r;
            size_t rl;
            cr_assert_eq(ndb_doc_builder_finish(b, &r, &rl), NDB_OK);
            cr_assert_eq(ndb_doc_validate(r, rl, NULL), NDB_OK);
            char *s;
            size_t sl;
            ndb_doc_to_json(r, rl, &s, &sl);
            snprintf(out, sizeof out, "%s%s", changed ? "" : "=", s);
            free(s);
        }
        ndb_doc_builder_free(b);
        upd_free(spec);
    }
    if (st != NDB_OK)
        snprintf(out, sizeof out, "ERR:%s", m.text);
    free(d);
    free(u);
    return out;
}

#define EQ(doc, upd, want) cr_assert_str_eq(U(doc, upd, false), want, "%s with %s", doc, upd)
#define ERR(doc, upd, frag)                                                                       \
    do {                                                                                          \
        const char *r_ = U(doc, upd, false);                                                      \
        cr_assert(strncmp(r_, "ERR:", 4) == 0 && strstr(r_, frag), "%s with %s gave %s", doc,     \
                  upd, r_);                                                                       \
    } while (0)

Test(update, merge)
{
    EQ("{\"_id\":\"x\",\"name\":\"A\",\"age\":28}", "{\"age\":29}",
       "{\"_id\":\"x\",\"name\":\"A\",\"age\":29}");
    EQ("{\"_id\":\"x\",\"age\":28}", "{\"city\":\"SF\",\"age\":30}",
       "{\"_id\":\"x\",\"age\":30,\"city\":\"SF\"}");
    EQ("{\"_id\":\"x\",\"age\":28}", "{\"age\":28}", "={\"_id\":\"x\",\"age\":28}");
    EQ("{\"_id\":\"x\",\"p\":{\"a\":1}}", "{\"p.b\":2}", "{\"_id\":\"x\",\"p\":{\"a\":1,\"b\":2}}");
    EQ("{\"_id\":\"x\",\"a\":1}", "{\"_id\":\"x\",\"_created_at\":\"no\",\"a\":2}",
       "{\"_id\":\"x\",\"a\":2}");
    ERR("{\"_id\":\"x\",\"a\":1}", "{\"_id\":\"y\"}", "may not change _id");
    ERR("{\"_id\":\"x\"}", "{\"a\":1,\"$set\":{\"b\":1}}", "mixes operators");
}

Test(update, set_unset)
{
    EQ("{\"a\":1,\"b\":2}", "{\"$set\":{\"a\":5}}", "{\"a\":5,\"b\":2}");
    EQ("{\"a\":1}", "{\"$set\":{\"x.y.z\":1}}", "{\"a\":1,\"x\":{\"y\":{\"z\":1}}}");
    EQ("{\"a\":{\"b\":1,\"c\":2}}", "{\"$set\":{\"a.c\":3}}", "{\"a\":{\"b\":1,\"c\":3}}");
    EQ("{\"a\":[1,2,3]}", "{\"$set\":{\"a.1\":9}}", "{\"a\":[1,9,3]}");
    EQ("{\"a\":[1]}", "{\"$set\":{\"a.3\":9}}", "{\"a\":[1,null,null,9]}");
    EQ("{\"a\":[{\"b\":1}]}", "{\"$set\":{\"a.0.b\":2}}", "{\"a\":[{\"b\":2}]}");
    ERR("{\"a\":5}", "{\"$set\":{\"a.b\":1}}", "cannot create field 'b'");
    ERR("{\"a\":[1]}", "{\"$set\":{\"a.x\":1}}", "cannot use field 'x' in an array");
    EQ("{\"a\":1,\"b\":2}", "{\"$unset\":{\"a\":\"\"}}", "{\"b\":2}");
    EQ("{\"a\":1}", "{\"$unset\":{\"zz\":1}}", "={\"a\":1}");
    EQ("{\"a\":{\"b\":1,\"c\":2}}", "{\"$unset\":{\"a.b\":1}}", "{\"a\":{\"c\":2}}");
    EQ("{\"a\":[1,2]}", "{\"$unset\":{\"a.0\":1}}", "{\"a\":[null,2]}");
    EQ("{\"a\":5}", "{\"$unset\":{\"a.b\":1}}", "={\"a\":5}");
    ERR("{\"_id\":1}", "{\"$set\":{\"_id\":2}}", "may not change _id");
    ERR("{}", "{\"$set\":{\"a\":1},\"$inc\":{\"a\":1}}", "conflict");
    ERR("{}", "{\"$set\":{\"a\":1,\"a.b\":1}}", "conflict");
    ERR("{}", "{\"$foo\":{\"a\":1}}", "unknown update operator $foo");
    ERR("{}", "{\"$set\":5}", "$set needs an object");
    ERR("{}", "{\"$set\":{\"a..b\":5}}", "bad field path");
}

Test(update, arithmetic)
{
    EQ("{\"n\":1}", "{\"$inc\":{\"n\":2}}", "{\"n\":3}");
    EQ("{\"n\":1}", "{\"$inc\":{\"n\":-1.5}}", "{\"n\":-0.5}");
    EQ("{\"n\":1.5}", "{\"$inc\":{\"n\":0.5}}", "{\"n\":2}");
    EQ("{}", "{\"$inc\":{\"n\":5}}", "{\"n\":5}");
    EQ("{\"n\":9007199254740992}", "{\"$inc\":{\"n\":1}}", "{\"n\":{\"$numberLong\":\"9007199254740993\"}}"); /* exact */
    /* int64 overflow continues in doubles, as $add does */
    EQ("{\"n\":9223372036854775807}", "{\"$inc\":{\"n\":1}}", "{\"n\":9.223372036854776e+18}");
    ERR("{\"n\":\"x\"}", "{\"$inc\":{\"n\":1}}", "cannot apply $inc to non-numeric field 'n'");
    ERR("{}", "{\"$inc\":{\"n\":\"1\"}}", "needs a number");
    EQ("{\"n\":3}", "{\"$mul\":{\"n\":2.5}}", "{\"n\":7.5}");
    EQ("{}", "{\"$mul\":{\"n\":3}}", "{\"n\":0}");
    EQ("{\"n\":5}", "{\"$min\":{\"n\":3}}", "{\"n\":3}");
    EQ("{\"n\":5}", "{\"$min\":{\"n\":7}}", "={\"n\":5}");
    EQ("{\"n\":5}", "{\"$max\":{\"n\":7}}", "{\"n\":7}");
    EQ("{\"n\":5}", "{\"$max\":{\"n\":\"a\"}}", "{\"n\":\"a\"}"); /* strings > numbers */
    EQ("{}", "{\"$min\":{\"n\":1}}", "{\"n\":1}");
}

Test(update, rename)
{
    EQ("{\"a\":1,\"b\":2}", "{\"$rename\":{\"a\":\"c\"}}", "{\"b\":2,\"c\":1}");
    EQ("{\"a\":{\"x\":1},\"b\":2}", "{\"$rename\":{\"a.x\":\"b\"}}", "{\"a\":{},\"b\":1}");
    EQ("{\"b\":2}", "{\"$rename\":{\"a\":\"c\"}}", "={\"b\":2}");
    ERR("{}", "{\"$rename\":{\"a\":5}}", "needs a string target");
    ERR("{}", "{\"$rename\":{\"a\":\"a.b\"}}", "overlap");
}

Test(update, arrays)
{
    EQ("{\"t\":[\"a\"]}", "{\"$push\":{\"t\":\"b\"}}", "{\"t\":[\"a\",\"b\"]}");
    EQ("{}", "{\"$push\":{\"t\":\"b\"}}", "{\"t\":[\"b\"]}");
    EQ("{\"t\":[1]}", "{\"$push\":{\"t\":{\"$each\":[2,3]}}}", "{\"t\":[1,2,3]}");
    EQ("{\"t\":[1]}", "{\"$push\":{\"t\":{\"k\":1}}}", "{\"t\":[1,{\"k\":1}]}");
    ERR("{\"t\":1}", "{\"$push\":{\"t\":2}}", "non-array field 't'");
    EQ("{\"t\":[5,1]}", "{\"$push\":{\"t\":{\"$each\":[3,9],\"$slice\":3}}}", "{\"t\":[5,1,3]}");
    EQ("{\"t\":[5,1]}", "{\"$push\":{\"t\":{\"$each\":[3,9],\"$slice\":-2}}}", "{\"t\":[3,9]}");
    EQ("{\"t\":[5,1]}", "{\"$push\":{\"t\":{\"$each\":[3],\"$position\":0}}}", "{\"t\":[3,5,1]}");
    EQ("{\"t\":[5,1]}", "{\"$push\":{\"t\":{\"$each\":[3],\"$position\":-1}}}", "{\"t\":[5,3,1]}");
    EQ("{\"t\":[5,1]}", "{\"$push\":{\"t\":{\"$each\":[3,9],\"$sort\":-1,\"$slice\":3}}}", "{\"t\":[9,5,3]}");
    EQ("{}", "{\"$push\":{\"t\":{\"$each\":[{\"s\":2},{\"s\":1}],\"$sort\":{\"s\":1}}}}",
       "{\"t\":[{\"s\":1},{\"s\":2}]}");
    ERR("{\"t\":[]}", "{\"$push\":{\"t\":{\"$each\":[1],\"$slice\":\"x\"}}}", "bad or unsupported modifier $slice");
    ERR("{\"t\":[]}", "{\"$addToSet\":{\"t\":{\"$each\":[1],\"$slice\":1}}}", "bad or unsupported modifier");
    EQ("{\"t\":[1,2]}", "{\"$addToSet\":{\"t\":2}}", "={\"t\":[1,2]}");
    EQ("{\"t\":[1,2]}", "{\"$addToSet\":{\"t\":3}}", "{\"t\":[1,2,3]}");
    EQ("{\"t\":[1,2]}", "{\"$addToSet\":{\"t\":{\"$each\":[2,3,3,4]}}}", "{\"t\":[1,2,3,4]}");
    EQ("{\"t\":[1,2,3,2]}", "{\"$pull\":{\"t\":2}}", "{\"t\":[1,3]}");
    EQ("{\"t\":[1,5,7,9]}", "{\"$pull\":{\"t\":{\"$gte\":6}}}", "{\"t\":[1,5]}");
    EQ("{\"t\":[{\"k\":1,\"v\":2},{\"k\":2}]}", "{\"$pull\":{\"t\":{\"k\":1}}}",
       "{\"t\":[{\"k\":2}]}");
    EQ("{\"t\":[1]}", "{\"$pull\":{\"zz\":1}}", "={\"t\":[1]}");
    ERR("{\"t\":1}", "{\"$pull\":{\"t\":1}}", "non-array");
    ERR("{}", "{\"$pull\":{\"t\":{\"$bogus\":1}}}", "unknown operator $bogus at $pull.t");
}

Test(update, set_on_insert)
{
    cr_assert_str_eq(U("{\"a\":1}", "{\"$setOnInsert\":{\"b\":2},\"$set\":{\"c\":3}}", true),
                     "{\"a\":1,\"b\":2,\"c\":3}");
    cr_assert_str_eq(U("{\"a\":1}", "{\"$setOnInsert\":{\"b\":2},\"$set\":{\"c\":3}}", false),
                     "{\"a\":1,\"c\":3}");
}

/* https://www.mongodb.com/docs/manual/reference/operator/update/pop/ */
Test(update, pop)
{
    EQ("{\"a\":[1,2,3]}", "{\"$pop\":{\"a\":1}}", "{\"a\":[1,2]}");
    EQ("{\"a\":[1,2,3]}", "{\"$pop\":{\"a\":-1}}", "{\"a\":[2,3]}");
    EQ("{\"a\":[]}", "{\"$pop\":{\"a\":1}}", "={\"a\":[]}");
    EQ("{\"x\":{\"a\":[1]}}", "{\"$pop\":{\"x.a\":1}}", "{\"x\":{\"a\":[]}}");
    EQ("{}", "{\"$pop\":{\"a\":1}}", "={}"); /* missing: nothing to do */
    ERR("{\"a\":5}", "{\"$pop\":{\"a\":1}}", "cannot apply $pop to non-array field 'a'");
    ERR("{\"a\":[1]}", "{\"$pop\":{\"a\":2}}", "$pop.a needs 1 (last) or -1 (first)");
}
