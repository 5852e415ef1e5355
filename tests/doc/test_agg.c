/* Tests for engine/doc/agg.c: every stage, every accumulator, expressions,
 * the brief's pipelines, memory bounds. */
#include "helpers.h"

#define PRODUCTS                                                                                 \
    "[{\"_id\":\"p1\",\"name\":\"Laptop\",\"category\":\"Electronics\",\"price\":1200,\"stock\":50,\"tags\":[\"a\",\"b\"]}," \
    "{\"_id\":\"p2\",\"name\":\"Mouse\",\"category\":\"Electronics\",\"price\":25,\"stock\":200,\"tags\":[\"b\"]}," \
    "{\"_id\":\"p3\",\"name\":\"Desk\",\"category\":\"Furniture\",\"price\":300,\"stock\":15,\"tags\":[]}," \
    "{\"_id\":\"p4\",\"name\":\"Lamp\",\"category\":\"Furniture\",\"price\":40.5,\"stock\":0}]"

static tdb T;

static void setup(void)
{
    tdb_open(&T);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ins(&T, "products", PRODUCTS, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ins(&T, "users",
                     "[{\"_id\":\"u1\",\"name\":\"A\",\"age\":28,\"city\":\"SF\",\"status\":\"active\"},"
                     "{\"_id\":\"u2\",\"name\":\"B\",\"age\":35,\"city\":\"NY\",\"status\":\"active\"},"
                     "{\"_id\":\"u3\",\"name\":\"C\",\"age\":31,\"city\":\"SF\",\"status\":\"active\"},"
                     "{\"_id\":\"u4\",\"name\":\"D\",\"age\":45,\"city\":\"NY\",\"status\":\"inactive\"},"
                     "{\"_id\":\"u5\",\"name\":\"E\",\"age\":33,\"city\":\"LA\",\"status\":\"active\"}]",
                     &m),
                 NDB_OK);
}

static void teardown(void) { tdb_close(&T); }

#define AGG(coll, pipe, want) cr_assert_str_eq(agg_json(&T, coll, pipe), want)

TestSuite(agg, .init = setup, .fini = teardown);

Test(agg, brief_examples)
{
    AGG("products",
        "[{\"$group\":{\"_id\":\"$category\",\"count\":{\"$sum\":1},\"avg_price\":{\"$avg\":\"$price\"}}},"
        "{\"$sort\":{\"count\":-1,\"_id\":1}}]",
        "[{\"_id\":\"Electronics\",\"count\":2,\"avg_price\":612.5},"
        "{\"_id\":\"Furniture\",\"count\":2,\"avg_price\":170.25}]");
    AGG("users",
        "[{\"$match\":{\"status\":\"active\"}},"
        "{\"$group\":{\"_id\":\"$city\",\"total_users\":{\"$sum\":1},\"avg_age\":{\"$avg\":\"$age\"}}},"
        "{\"$sort\":{\"total_users\":-1,\"_id\":1}},{\"$limit\":10},"
        "{\"$project\":{\"city\":\"$_id\",\"users\":\"$total_users\",\"average_age\":\"$avg_age\"}}]",
        "[{\"_id\":\"SF\",\"city\":\"SF\",\"users\":2,\"average_age\":29.5},"
        "{\"_id\":\"LA\",\"city\":\"LA\",\"users\":1,\"average_age\":33},"
        "{\"_id\":\"NY\",\"city\":\"NY\",\"users\":1,\"average_age\":35}]");
    AGG("users",
        "[{\"$match\":{\"age\":{\"$gte\":30}}},{\"$group\":{\"_id\":\"$city\",\"count\":{\"$sum\":1}}},"
        "{\"$sort\":{\"count\":-1,\"_id\":1}}]",
        "[{\"_id\":\"NY\",\"count\":2},{\"_id\":\"LA\",\"count\":1},{\"_id\":\"SF\",\"count\":1}]");
}

Test(agg, accumulators)
{
    AGG("products",
        "[{\"$group\":{\"_id\":null,\"s\":{\"$sum\":\"$price\"},\"a\":{\"$avg\":\"$stock\"},"
        "\"mn\":{\"$min\":\"$price\"},\"mx\":{\"$max\":\"$price\"},\"n\":{\"$count\":{}},"
        "\"f\":{\"$first\":\"$name\"},\"l\":{\"$last\":\"$name\"},"
        "\"p\":{\"$push\":\"$stock\"},\"u\":{\"$addToSet\":\"$category\"}}}]",
        "[{\"_id\":null,\"s\":1565.5,\"a\":66.25,\"mn\":25,\"mx\":1200,\"n\":4,\"f\":\"Laptop\","
        "\"l\":\"Lamp\",\"p\":[50,200,15,0],\"u\":[\"Electronics\",\"Furniture\"]}]");
    /* non-numbers are ignored by $sum/$avg; $avg of nothing is null; missing
     * fields are skipped by $push and $min */
    AGG("products",
        "[{\"$group\":{\"_id\":\"x\",\"s\":{\"$sum\":\"$name\"},\"a\":{\"$avg\":\"$nope\"},"
        "\"m\":{\"$min\":\"$nope\"},\"p\":{\"$push\":\"$nope\"}}}]",
        "[{\"_id\":\"x\",\"s\":0,\"a\":null,\"m\":null,\"p\":[]}]");
    /* compound group keys; numeric keys 1 and 1.0 are one group */
    AGG("products",
        "[{\"$group\":{\"_id\":{\"c\":\"$category\",\"low\":{\"$lt\":[\"$price\",100]}},\"n\":{\"$sum\":1}}},"
        "{\"$sort\":{\"_id.c\":1,\"_id.low\":1}}]",
        "[{\"_id\":{\"c\":\"Electronics\",\"low\":false},\"n\":1},{\"_id\":{\"c\":\"Electronics\",\"low\":true},\"n\":1},"
        "{\"_id\":{\"c\":\"Furniture\",\"low\":false},\"n\":1},{\"_id\":{\"c\":\"Furniture\",\"low\":true},\"n\":1}]");
}

Test(agg, stages)
{
    AGG("products", "[{\"$match\":{\"price\":{\"$lt\":100}}},{\"$project\":{\"name\":1,\"_id\":0}}]",
        "[{\"name\":\"Mouse\"},{\"name\":\"Lamp\"}]");
    AGG("products", "[{\"$sort\":{\"price\":1}},{\"$skip\":1},{\"$limit\":2},{\"$project\":{\"_id\":1}}]",
        "[{\"_id\":\"p4\"},{\"_id\":\"p3\"}]");
    AGG("products", "[{\"$match\":{\"stock\":{\"$gt\":10}}},{\"$count\":\"n\"}]", "[{\"n\":3}]");
    AGG("products", "[{\"$match\":{\"stock\":{\"$gt\":1000}}},{\"$count\":\"n\"}]", "[]");
    AGG("products", "[{\"$unwind\":\"$tags\"},{\"$project\":{\"tags\":1}}]",
        "[{\"_id\":\"p1\",\"tags\":\"a\"},{\"_id\":\"p1\",\"tags\":\"b\"},{\"_id\":\"p2\",\"tags\":\"b\"}]");
    AGG("products",
        "[{\"$unwind\":{\"path\":\"$tags\",\"preserveNullAndEmptyArrays\":true,\"includeArrayIndex\":\"i\"}},"
        "{\"$project\":{\"tags\":1,\"i\":1}}]",
        "[{\"_id\":\"p1\",\"tags\":\"a\",\"i\":0},{\"_id\":\"p1\",\"tags\":\"b\",\"i\":1},"
        "{\"_id\":\"p2\",\"tags\":\"b\",\"i\":0},{\"_id\":\"p3\",\"i\":null},{\"_id\":\"p4\",\"i\":null}]");
    /* https://www.mongodb.com/docs/manual/reference/operator/aggregation/unwind/ (preserveNullAndEmptyArrays):
     * an empty array is output without the field; includeArrayIndex is null where nothing was unwound */
    AGG("products",
        "[{\"$match\":{\"_id\":\"p2\"}},{\"$addFields\":{\"value\":{\"$multiply\":[\"$price\",\"$stock\"]},"
        "\"price\":0}},{\"$unset\":[\"_created_at\",\"_updated_at\",\"tags\"]}]",
        "[{\"_id\":\"p2\",\"name\":\"Mouse\",\"category\":\"Electronics\",\"price\":0,\"stock\":200,\"value\":5000}]");
    AGG("products", "[{\"$match\":{\"_id\":\"p2\"}},{\"$set\":{\"x\":\"$$ROOT.name\"}},{\"$project\":{\"x\":1,\"_id\":0}}]",
        "ERR -1: unknown variable $$ROOT.name at $addFields.x");
    AGG("products", "[{\"$match\":{\"_id\":\"p2\"}},{\"$unset\":\"tags\"},{\"$project\":{\"tags\":1,\"_id\":0}}]", "[{}]");
    AGG("products", "[{\"$match\":{\"_id\":\"p1\"}},{\"$project\":{\"_id\":0,\"n\":{\"$concat\":[\"$name\",\"-\",\"$category\"]},"
        "\"u\":{\"$toUpper\":\"$name\"},\"d\":{\"$divide\":[\"$price\",8]},\"s\":{\"$subtract\":[\"$stock\",8]},"
        "\"z\":{\"$size\":\"$tags\"},\"c\":{\"$cond\":[{\"$gt\":[\"$price\",1000]},\"big\",\"small\"]},"
        "\"i\":{\"$ifNull\":[\"$nope\",\"dflt\"]},\"l\":{\"$literal\":\"$x\"},\"o\":{\"a\":\"$stock\"},\"m\":\"$missing\"}}]",
        "[{\"n\":\"Laptop-Electronics\",\"u\":\"LAPTOP\",\"d\":150,\"s\":42,\"z\":2,\"c\":\"big\",\"i\":\"dflt\","
        "\"l\":\"$x\",\"o\":{\"a\":50}}]");
    AGG("products", "[{\"$match\":{\"_id\":\"p2\"}},{\"$set\":{\"m.a\":1,\"m.b.c\":\"$stock\",\"name.x\":2}},"
        "{\"$project\":{\"m\":1,\"name\":1,\"_id\":0}}]",
        "[{\"name\":{\"x\":2},\"m\":{\"a\":1,\"b\":{\"c\":200}}}]");
    /* an empty pipeline passes documents through */
    const char *r = agg_json(&T, "products", "[]");
    cr_assert(strncmp(r, "[{\"_id\":\"p1\"", 12) == 0, "%s", r);
    /* a missing collection yields nothing */
    AGG("nothing", "[{\"$group\":{\"_id\":null,\"n\":{\"$sum\":1}}}]", "[]");
}

Test(agg, lookup)
{
    ndb_errmsg m = {{0}};
    cr_assert_eq(ins(&T, "orders",
                     "[{\"_id\":\"o1\",\"user\":\"u1\",\"total\":5},{\"_id\":\"o2\",\"user\":\"u1\",\"total\":7},"
                     "{\"_id\":\"o3\",\"user\":\"u2\",\"total\":1}]",
                     &m),
                 NDB_OK);
    AGG("users",
        "[{\"$match\":{\"_id\":{\"$in\":[\"u1\",\"u3\"]}}},"
        "{\"$lookup\":{\"from\":\"orders\",\"localField\":\"_id\",\"foreignField\":\"user\",\"as\":\"orders\"}},"
        "{\"$project\":{\"n\":{\"$size\":\"$orders\"},\"t\":\"$orders.total\"}}]",
        "[{\"_id\":\"u1\",\"n\":2,\"t\":[5,7]},{\"_id\":\"u3\",\"n\":0,\"t\":[]}]");
    AGG("users",
        "[{\"$match\":{\"_id\":\"u1\"}},{\"$lookup\":{\"from\":\"nope\",\"localField\":\"_id\","
        "\"foreignField\":\"user\",\"as\":\"x\"}},{\"$project\":{\"x\":1}}]",
        "[{\"_id\":\"u1\",\"x\":[]}]");
}

Test(agg, errors)
{
    const char *r = agg_json(&T, "users", "[{\"$bogus\":1}]");
    cr_assert(strstr(r, "unknown pipeline stage $bogus at pipeline.0") != NULL, "%s", r);
    r = agg_json(&T, "users", "[{\"$group\":{\"n\":{\"$sum\":1}}}]");
    cr_assert(strstr(r, "$group needs an _id") != NULL, "%s", r);
    r = agg_json(&T, "users", "[{\"$group\":{\"_id\":null,\"n\":{\"$median\":1}}}]");
    cr_assert(strstr(r, "unknown accumulator $median at $group.n") != NULL, "%s", r);
    r = agg_json(&T, "users", "[{\"$match\":{\"a\":{\"$zz\":1}}}]");
    cr_assert(strstr(r, "unknown operator $zz at pipeline.0.$match.a") != NULL, "%s", r);
    r = agg_json(&T, "users", "[{\"$limit\":0}]");
    cr_assert(strstr(r, "positive integer") != NULL, "%s", r);
    r = agg_json(&T, "users", "[{\"$project\":{\"a\":1,\"b\":0}}]");
    cr_assert(strstr(r, "cannot mix") != NULL, "%s", r);
    r = agg_json(&T, "users", "[{\"$project\":{\"x\":{\"$nope\":1}}}]");
    cr_assert(strstr(r, "unknown expression operator $nope at $project.x") != NULL, "%s", r);
    r = agg_json(&T, "users", "[{\"$project\":{\"x\":{\"$divide\":[\"$age\",0]}}}]");
    cr_assert(strstr(r, "$divide by zero") != NULL, "%s", r);
    r = agg_json(&T, "users", "{\"$match\":{}}");
    cr_assert(strstr(r, "pipeline must be an array") != NULL, "%s", r);
    r = agg_json(&T, "users", "[{\"$match\":{},\"$limit\":1}]");
    cr_assert(strstr(r, "one stage name") != NULL, "%s", r);
}

Test(agg, memory_bound)
{
    /* a tiny bound makes $group and $sort refuse instead of growing */
    ndb_doc_close(T.db);
    ndb_doc_options o;
    ndb_doc_options_init(&o);
    o.agg_mem_bytes = 2048;
    o.log = quiet_log;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_open(T.kv, &o, &T.db, &m), NDB_OK);
    char docs[8192] = "[";
    for (int i = 0; i < 60; i++)
        snprintf(docs + strlen(docs), sizeof docs - strlen(docs), "%s{\"k\":%d,\"pad\":\"xxxxxxxxxxxxxxxxxxxx\"}",
                 i ? "," : "", i);
    strcat(docs, "]");
    cr_assert_eq(ins(&T, "many", docs, &m), NDB_OK, "%s", m.text);
    const char *r = agg_json(&T, "many", "[{\"$group\":{\"_id\":\"$k\",\"p\":{\"$push\":\"$pad\"}}}]");
    cr_assert(strstr(r, "ERR -12") && strstr(r, "$group exceeded the memory limit"), "%s", r);
    r = agg_json(&T, "many", "[{\"$project\":{\"k\":1}},{\"$sort\":{\"k\":-1}}]");
    cr_assert(strstr(r, "ERR -12") && strstr(r, "$sort exceeded the memory limit"), "%s", r);
    r = find_json(&T, "many", (fq){.sort = "{\"k\":-1}"}, NULL);
    cr_assert(strstr(r, "ERR -12") && strstr(r, "sort exceeded the memory limit"), "%s", r);
    /* with a limit, Find's sort keeps only the first skip+limit documents */
    r = find_json(&T, "many", (fq){.sort = "{\"k\":-1}", .skip = 1, .limit = 3, .proj = "{\"k\":1,\"_id\":0}"}, NULL);
    cr_assert_str_eq(r, "[{\"k\":58},{\"k\":57},{\"k\":56}]");
    r = agg_json(&T, "many", "[{\"$match\":{}},{\"$sort\":{\"k\":1}},{\"$skip\":2},{\"$limit\":2},{\"$project\":{\"k\":1,\"_id\":0}}]");
    cr_assert_str_eq(r, "[{\"k\":2},{\"k\":3}]");
    /* streaming stages are not bounded by it */
    r = agg_json(&T, "many", "[{\"$match\":{\"k\":{\"$gte\":0}}},{\"$count\":\"n\"}]");
    cr_assert_str_eq(r, "[{\"n\":60}]");
}

/* Random operator soup as filters, updates and pipelines: every call returns
 * a status (most NDB_EINVAL); none crashes or reads out of bounds (ASan). */
static unsigned rs = 99;
static unsigned rnd(unsigned n)
{
    rs = rs * 1103515245 + 12345;
    return (rs >> 8) % n;
}

static void rand_json(char *out, size_t cap, int depth)
{
    static const char *keys[] = {"$eq", "$gt", "$in", "$nin", "$not", "$and", "$or", "$elemMatch",
                                 "$size", "$type", "$regex", "$options", "$exists", "$all", "a",
                                 "b.c", "tags", "$sum", "$group", "$match", "$project", "_id",
                                 "$unwind", "$set", "$push", "$each", "$slice", "$sort", "$limit",
                                 "$lookup", "from", "as", "$concat", "$cond", "$add", "$$ROOT", ""};
    static const char *scal[] = {"1", "-1", "0", "2.5", "\"a\"", "\"$a\"", "\"$$ROOT\"", "null",
                                 "true", "\"^(\"", "\"i\"", "\"number\"", "1e300", "\"$tags\""};
    size_t l = strlen(out);
    if (cap - l < 64)
        return;
    int kind = depth > 4 ? 2 : (int)rnd(3);
    if (kind == 0) {
        strcat(out, "{");
        int n = (int)rnd(4);
        for (int i = 0; i < n; i++) {
            l = strlen(out);
            snprintf(out + l, cap - l, "%s\"%s\":", i ? "," : "", keys[rnd(sizeof keys / sizeof keys[0])]);
            rand_json(out, cap, depth + 1);
        }
        strcat(out, "}");
    } else if (kind == 1) {
        strcat(out, "[");
        int n = (int)rnd(4);
        for (int i = 0; i < n; i++) {
            if (i)
                strcat(out, ",");
            rand_json(out, cap, depth + 1);
        }
        strcat(out, "]");
    } else {
        strcat(out, scal[rnd(sizeof scal / sizeof scal[0])]);
    }
}

Test(agg, random_specs)
{
    ndb_errmsg m = {{0}};
    char buf[4096];
    int parsed = 0, ran = 0;
    for (int i = 0; i < 8000; i++) {
        buf[0] = 0;
        rand_json(buf, sizeof buf, 0);
        void *d;
        size_t dl;
        if (ndb_doc_from_json(buf, strlen(buf), &d, &dl, &m) != NDB_OK)
            continue;
        parsed++;
        switch (i % 4) {
        case 0: {
            ndb_doc_cursor *c;
            ndb_doc_find_opts o = {.filter = d, .filter_len = dl, .sort = i % 8 ? NULL : d,
                                   .sort_len = i % 8 ? 0 : dl};
            if (ndb_doc_find(T.db, "products", &o, &c, &m) == NDB_OK) {
                const void *r;
                size_t rl;
                while (ndb_doc_cursor_next(c, &r, &rl, &m) == NDB_OK && r)
                    ;
                ndb_doc_cursor_free(c);
            }
            break;
        }
        case 1: {
            size_t fl;
            void *f = J("{\"_id\":{\"$in\":[\"p1\",\"p2\"]}}", &fl);
            ndb_doc_update_result r;
            (void)ndb_doc_update_many(T.db, "products", f, fl, d, dl, i % 3 == 0, NULL, &r, &m);
            free(f);
            break;
        }
        case 2:
        case 3: {
            ndb_doc_cursor *c;
            if (ndb_doc_aggregate(T.db, "products", d, dl, NULL, &c, &m) == NDB_OK) {
                ran++;
                const void *r;
                size_t rl;
                while (ndb_doc_cursor_next(c, &r, &rl, &m) == NDB_OK && r)
                    ;
                ndb_doc_cursor_free(c);
            }
            break;
        }
        }
        free(d);
    }
    cr_assert_gt(parsed, 1000);
    cr_assert_gt(ran, 10);
    /* the collection is still sound */
    uint64_t n1, n2;
    size_t fl;
    void *f = J("{\"_id\":{\"$exists\":true}}", &fl);
    cr_assert_eq(ndb_doc_count(T.db, "products", NULL, 0, NULL, &n1, &m), NDB_OK);
    cr_assert_eq(ndb_doc_count(T.db, "products", f, fl, NULL, &n2, &m), NDB_OK);
    cr_assert_eq(n1, n2);
    free(f);
}

/* Stages MongoDB's manual defines as shorthands, and the ones that reshape:
 * https://www.mongodb.com/docs/manual/reference/operator/aggregation/ (each stage's page). */
Test(agg, shorthand_and_reshaping_stages)
{
    /* $sortByCount: {$group: {_id: e, count: {$sum: 1}}}, {$sort: {count: -1}} */
    AGG("users", "[{\"$sortByCount\":\"$city\"},{\"$sort\":{\"count\":-1,\"_id\":1}}]",
        "[{\"_id\":\"NY\",\"count\":2},{\"_id\":\"SF\",\"count\":2},{\"_id\":\"LA\",\"count\":1}]");
    /* $bucket: [lower, upper) buckets keyed by their lower bound, default for the rest, sorted by _id */
    AGG("products",
        "[{\"$bucket\":{\"groupBy\":\"$price\",\"boundaries\":[0,100,1000],\"default\":\"expensive\","
        "\"output\":{\"n\":{\"$sum\":1},\"names\":{\"$push\":\"$name\"}}}}]",
        "[{\"_id\":0,\"n\":2,\"names\":[\"Mouse\",\"Lamp\"]},{\"_id\":100,\"n\":1,\"names\":[\"Desk\"]},"
        "{\"_id\":\"expensive\",\"n\":1,\"names\":[\"Laptop\"]}]");
    AGG("products", "[{\"$bucket\":{\"groupBy\":\"$stock\",\"boundaries\":[0,20,1000]}}]",
        "[{\"_id\":0,\"count\":2},{\"_id\":20,\"count\":2}]");
    cr_assert(strstr(agg_json(&T, "products", "[{\"$bucket\":{\"groupBy\":\"$price\",\"boundaries\":[0,100]}}]"),
                     "no default") != NULL, "no bucket and no default fails the pipeline");
    cr_assert(strstr(agg_json(&T, "products", "[{\"$bucket\":{\"groupBy\":\"$price\",\"boundaries\":[100,0]}}]"),
                     "ascending") != NULL);
    cr_assert(strstr(agg_json(&T, "products",
                              "[{\"$bucket\":{\"groupBy\":\"$price\",\"boundaries\":[0,100],\"default\":50}}]"),
                     "outside") != NULL);
    /* $replaceRoot / $replaceWith: the new root must be an object */
    AGG("users", "[{\"$match\":{\"_id\":\"u1\"}},{\"$replaceRoot\":{\"newRoot\":{\"who\":\"$name\",\"at\":\"$city\"}}}]",
        "[{\"who\":\"A\",\"at\":\"SF\"}]");
    AGG("users", "[{\"$match\":{\"_id\":\"u2\"}},{\"$replaceWith\":{\"n\":\"$name\"}}]", "[{\"n\":\"B\"}]");
    cr_assert(strstr(agg_json(&T, "users", "[{\"$replaceWith\":\"$name\"}]"), "must evaluate to an object") != NULL);
    cr_assert(strstr(agg_json(&T, "users", "[{\"$replaceRoot\":{\"newRoot\":\"$nope\"}}]"), "missing") != NULL);
    /* $sample: size documents, distinct, from the input; all of them when size exceeds it */
    const char *s = agg_json(&T, "users", "[{\"$sample\":{\"size\":3}},{\"$project\":{\"_id\":1}}]");
    int n = 0;
    for (const char *p = s; (p = strstr(p, "\"_id\"")) != NULL; p++)
        n++;
    cr_assert_eq(n, 3, "%s", s);
    AGG("users", "[{\"$sample\":{\"size\":50}},{\"$count\":\"n\"}]", "[{\"n\":5}]");
    AGG("users", "[{\"$sample\":{\"size\":0}}]", "[]");
    cr_assert(strstr(agg_json(&T, "users", "[{\"$sample\":{\"size\":-1}}]"), "$sample needs") != NULL);
}

/* https://www.mongodb.com/docs/manual/reference/operator/aggregation/ (expression operators) */
Test(agg, expression_operators)
{
    AGG("users",
        "[{\"$match\":{\"_id\":\"u1\"}},{\"$project\":{\"_id\":0,"
        "\"in\":{\"$in\":[\"$city\",[\"SF\",\"NY\"]]},\"notin\":{\"$in\":[\"$nope\",[null]]},"
        "\"and\":{\"$and\":[true,\"$age\"]},\"or\":{\"$or\":[0,null,\"$nope\"]},\"not\":{\"$not\":[\"$nope\"]},"
        "\"abs\":{\"$abs\":-2.5},\"floor\":{\"$floor\":2.5},\"ceil\":{\"$ceil\":2.1},\"absnull\":{\"$abs\":\"$nope\"},"
        "\"at\":{\"$arrayElemAt\":[[1,2,3],-1]},\"cat\":{\"$concatArrays\":[[1],[\"$city\"],[]]},"
        "\"t\":[{\"$type\":\"$age\"},{\"$type\":\"$nope\"},{\"$type\":9007199254740993},{\"$type\":[[]]}],"
        "\"sw\":{\"$switch\":{\"branches\":[{\"case\":{\"$lt\":[\"$age\",20]},\"then\":\"young\"},"
        "{\"case\":{\"$lt\":[\"$age\",30]},\"then\":\"twenties\"}],\"default\":\"older\"}}}}]",
        "[{\"in\":true,\"notin\":false,\"and\":true,\"or\":false,\"not\":true,\"abs\":2.5,\"floor\":2,\"ceil\":3,"
        "\"absnull\":null,\"at\":3,\"cat\":[1,\"SF\"],\"t\":[\"int\",\"missing\",\"long\",\"array\"],"
        "\"sw\":\"twenties\"}]");
    /* a missing value is not null in expressions: $eq is false, $gt/$lt order it below null */
    AGG("users",
        "[{\"$match\":{\"_id\":\"u1\"}},{\"$project\":{\"_id\":0,\"eq\":{\"$eq\":[\"$nope\",null]},"
        "\"lt\":{\"$lt\":[\"$nope\",null]},\"both\":{\"$eq\":[\"$nope\",\"$nada\"]},\"ne\":{\"$ne\":[\"$nope\",null]}}}]",
        "[{\"eq\":false,\"lt\":true,\"both\":true,\"ne\":true}]");
    cr_assert(strstr(agg_json(&T, "users", "[{\"$project\":{\"x\":{\"$in\":[1,\"$name\"]}}}]"),
                     "$in requires an array") != NULL);
    cr_assert(strstr(agg_json(&T, "users", "[{\"$project\":{\"x\":{\"$switch\":{\"branches\":[{\"case\":false,"
                                           "\"then\":1}]}}}}]"),
                     "no default") != NULL);
}

/* https://www.mongodb.com/docs/manual/reference/operator/aggregation/#date-expression-operators (UTC) */
Test(agg, date_operators)
{
    ndb_errmsg m = {{0}};
    cr_assert_eq(ins(&T, "events", "[{\"_id\":\"e1\",\"at\":{\"$date\":\"2024-02-29T13:14:15.678Z\"}},"
                                   "{\"_id\":\"e2\",\"at\":{\"$date\":\"1969-12-31T23:59:59.999Z\"}},"
                                   "{\"_id\":\"e3\",\"at\":\"not a date\"},{\"_id\":\"e4\"}]", &m), NDB_OK, "%s", m.text);
    AGG("events",
        "[{\"$match\":{\"_id\":{\"$in\":[\"e1\",\"e2\"]}}},{\"$project\":{\"y\":{\"$year\":\"$at\"},"
        "\"m\":{\"$month\":\"$at\"},\"d\":{\"$dayOfMonth\":\"$at\"},\"h\":{\"$hour\":\"$at\"},"
        "\"mi\":{\"$minute\":{\"date\":\"$at\",\"timezone\":\"UTC\"}},\"s\":{\"$second\":\"$at\"},"
        "\"ms\":{\"$millisecond\":\"$at\"},\"wd\":{\"$dayOfWeek\":\"$at\"},\"yd\":{\"$dayOfYear\":\"$at\"},"
        "\"str\":{\"$dateToString\":{\"format\":\"%Y/%m/%d %H:%M:%S.%L %j %w %u %%\",\"date\":\"$at\"}},"
        "\"iso\":{\"$dateToString\":{\"date\":\"$at\"}}}}]",
        "[{\"_id\":\"e1\",\"y\":2024,\"m\":2,\"d\":29,\"h\":13,\"mi\":14,\"s\":15,\"ms\":678,\"wd\":5,\"yd\":60,"
        "\"str\":\"2024/02/29 13:14:15.678 060 5 4 %\",\"iso\":\"2024-02-29T13:14:15.678Z\"},"
        "{\"_id\":\"e2\",\"y\":1969,\"m\":12,\"d\":31,\"h\":23,\"mi\":59,\"s\":59,\"ms\":999,\"wd\":4,\"yd\":365,"
        "\"str\":\"1969/12/31 23:59:59.999 365 4 3 %\",\"iso\":\"1969-12-31T23:59:59.999Z\"}]");
    AGG("events", "[{\"$match\":{\"_id\":\"e4\"}},{\"$project\":{\"y\":{\"$year\":\"$at\"}}}]",
        "[{\"_id\":\"e4\",\"y\":null}]");
    cr_assert(strstr(agg_json(&T, "events", "[{\"$match\":{\"_id\":\"e3\"}},{\"$project\":{\"y\":{\"$year\":\"$at\"}}}]"),
                     "can't convert from BSON type string to Date") != NULL);
    cr_assert(strstr(agg_json(&T, "events", "[{\"$project\":{\"y\":{\"$year\":{\"date\":\"$at\",\"timezone\":"
                                            "\"Europe/Paris\"}}}}]"),
                     "only the UTC timezone") != NULL);
    /* group by a date part */
    AGG("events", "[{\"$match\":{\"at\":{\"$type\":\"date\"}}},{\"$group\":{\"_id\":{\"$year\":\"$at\"},"
                  "\"n\":{\"$sum\":1}}},{\"$sort\":{\"_id\":-1}}]",
        "[{\"_id\":2024,\"n\":1},{\"_id\":1969,\"n\":1}]");
}

/* https://www.mongodb.com/docs/manual/reference/method/cursor.sort/#sort-with-arrays: an array
 * sorts by its smallest element ascending and its largest descending; an element lacking the
 * field counts as null. */
Test(agg, sort_through_arrays_of_subdocuments)
{
    ndb_errmsg m = {{0}};
    cr_assert_eq(ins(&T, "nested", "[{\"_id\":\"a\",\"xs\":[{\"v\":5},{\"w\":1}]},"
                                   "{\"_id\":\"b\",\"xs\":[{\"v\":3},{\"v\":4}]},"
                                   "{\"_id\":\"c\",\"xs\":[{\"v\":9}]}]", &m), NDB_OK, "%s", m.text);
    AGG("nested", "[{\"$sort\":{\"xs.v\":1}},{\"$project\":{\"_id\":1}}]",
        "[{\"_id\":\"a\"},{\"_id\":\"b\"},{\"_id\":\"c\"}]"); /* a: min(5, null) = null */
    AGG("nested", "[{\"$sort\":{\"xs.v\":-1}},{\"$project\":{\"_id\":1}}]",
        "[{\"_id\":\"c\"},{\"_id\":\"a\"},{\"_id\":\"b\"}]"); /* a: max = 5 */
}

/* https://www.mongodb.com/docs/manual/reference/operator/aggregation/facet/: each
 * sub-pipeline sees the same input; one output document of arrays. */
Test(agg, facet)
{
    AGG("products",
        "[{\"$match\":{\"price\":{\"$gt\":30}}},{\"$facet\":{"
        "\"byCategory\":[{\"$sortByCount\":\"$category\"},{\"$sort\":{\"count\":-1,\"_id\":1}}],"
        "\"cheapest\":[{\"$sort\":{\"price\":1}},{\"$limit\":1},{\"$project\":{\"_id\":0,\"name\":1}}],"
        "\"n\":[{\"$count\":\"total\"}],\"none\":[{\"$match\":{\"price\":{\"$gt\":1e9}}}]}}]",
        "[{\"byCategory\":[{\"_id\":\"Furniture\",\"count\":2},{\"_id\":\"Electronics\",\"count\":1}],"
        "\"cheapest\":[{\"name\":\"Lamp\"}],\"n\":[{\"total\":3}],\"none\":[]}]");
    /* an empty input still gives the one document */
    AGG("products", "[{\"$match\":{\"price\":-1}},{\"$facet\":{\"a\":[{\"$count\":\"n\"}]}}]", "[{\"a\":[]}]");
    cr_assert(strstr(agg_json(&T, "products", "[{\"$facet\":{\"a\":[{\"$facet\":{\"b\":[]}}]}}]"),
                     "$facet cannot be used inside $facet") != NULL);
    cr_assert(strstr(agg_json(&T, "products", "[{\"$facet\":{\"a\":{\"$match\":{}}}}]"),
                     "must be an array of stages") != NULL);
    cr_assert(strstr(agg_json(&T, "products", "[{\"$facet\":{}}]"), "$facet needs") != NULL);
}
