/* Tests for engine/doc/filter.c: every operator, arrays, missing fields, type
 * mixes, errors naming the bad part. */
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

static int M(const char *filter, const char *doc)
{
    size_t fl, dl;
    void *f = J(filter, &fl), *d = J(doc, &dl);
    ndb_doc_filter *cf;
    ndb_errmsg m = {{0}};
    ndb_status st = ndb_doc_filter_compile(f, fl, &cf, &m);
    cr_assert_eq(st, NDB_OK, "compile %s: %s", filter, m.text);
    int r = ndb_doc_filter_match(cf, d, dl);
    ndb_doc_filter_free(cf);
    free(f);
    free(d);
    return r;
}

static void BAD(const char *filter, const char *want_in_msg)
{
    size_t fl;
    void *f = J(filter, &fl);
    ndb_doc_filter *cf = NULL;
    ndb_errmsg m = {{0}};
    ndb_status st = ndb_doc_filter_compile(f, fl, &cf, &m);
    cr_assert_eq(st, NDB_EINVAL, "%s compiled", filter);
    cr_assert(strstr(m.text, want_in_msg) != NULL, "%s: msg '%s' lacks '%s'", filter, m.text,
              want_in_msg);
    free(f);
}

#define USER "{\"name\":\"Alice Johnson\",\"email\":\"alice@example.com\",\"age\":28," \
             "\"tags\":[\"python\",\"database\"],\"profile\":{\"bio\":\"Software engineer\"," \
             "\"location\":\"San Francisco\",\"age\":40},\"score\":7.5,\"active\":true,\"n\":null}"

Test(filter, comparison)
{
    cr_assert(M("{\"age\":28}", USER));
    cr_assert(M("{\"age\":28.0}", USER));
    cr_assert(!M("{\"age\":29}", USER));
    cr_assert(M("{\"age\":{\"$eq\":28}}", USER));
    cr_assert(M("{\"age\":{\"$ne\":25}}", USER));
    cr_assert(!M("{\"age\":{\"$ne\":28}}", USER));
    cr_assert(M("{\"age\":{\"$gt\":25}}", USER));
    cr_assert(!M("{\"age\":{\"$gt\":28}}", USER));
    cr_assert(M("{\"age\":{\"$gte\":28}}", USER));
    cr_assert(M("{\"age\":{\"$lt\":28.5}}", USER));
    cr_assert(!M("{\"age\":{\"$lt\":28}}", USER));
    cr_assert(M("{\"age\":{\"$lte\":28}}", USER));
    cr_assert(M("{\"score\":{\"$gt\":7,\"$lt\":8}}", USER));
    cr_assert(M("{\"name\":{\"$gt\":\"A\"}}", USER));
    cr_assert(!M("{\"name\":{\"$gt\":\"B\"}}", USER));
    cr_assert(M("{\"active\":true}", USER));
    cr_assert(!M("{\"active\":false}", USER));
    cr_assert(M("{\"name\":\"Alice Johnson\",\"age\":28}", USER)); /* implicit AND */
    cr_assert(!M("{\"name\":\"Alice Johnson\",\"age\":27}", USER));
    cr_assert(M("{}", USER));
}

Test(filter, type_bracketing)
{
    /* a number never compares with a string in a filter */
    cr_assert(!M("{\"age\":{\"$gt\":\"1\"}}", USER));
    cr_assert(!M("{\"name\":{\"$gt\":1}}", USER));
    cr_assert(!M("{\"name\":{\"$lt\":1}}", USER));
    cr_assert(!M("{\"age\":\"28\"}", USER));
    cr_assert(!M("{\"active\":1}", USER));
    cr_assert(M("{\"x\":{\"$lt\":5}}", "{\"x\":2.5}"));
    cr_assert(M("{\"x\":{\"$gt\":2}}", "{\"x\":2.5}"));
    cr_assert(M("{\"x\":9007199254740992}", "{\"x\":9007199254740992}"));
    cr_assert(!M("{\"x\":9007199254740993}", "{\"x\":9007199254740992}")); /* int64 exact */
    cr_assert(M("{\"x\":{\"$gt\":9007199254740992}}", "{\"x\":9007199254740993}"));
    cr_assert(M("{\"x\":{\"$in\":[1152921504606846976]}}", "{\"x\":1.152921504606846976e18}"));
}

Test(filter, missing_and_null)
{
    cr_assert(M("{\"missing\":null}", USER));
    cr_assert(M("{\"n\":null}", USER));
    cr_assert(!M("{\"age\":null}", USER));
    cr_assert(M("{\"missing\":{\"$ne\":1}}", USER));
    cr_assert(!M("{\"missing\":{\"$gt\":1}}", USER));
    cr_assert(!M("{\"missing\":{\"$lt\":1}}", USER));
    cr_assert(M("{\"missing\":{\"$gte\":null}}", USER));
    cr_assert(!M("{\"missing\":{\"$ne\":null}}", USER));
    cr_assert(M("{\"age\":{\"$ne\":null}}", USER));
    cr_assert(M("{\"missing\":{\"$in\":[1,null]}}", USER));
    cr_assert(!M("{\"missing\":{\"$in\":[1]}}", USER));
    cr_assert(M("{\"missing\":{\"$nin\":[1]}}", USER));
    cr_assert(M("{\"email\":{\"$exists\":true}}", USER));
    cr_assert(M("{\"phone\":{\"$exists\":false}}", USER));
    cr_assert(!M("{\"phone\":{\"$exists\":true}}", USER));
    cr_assert(M("{\"n\":{\"$exists\":true}}", USER));
    cr_assert(!M("{\"n\":{\"$exists\":false}}", USER));
}

Test(filter, nested_paths)
{
    cr_assert(M("{\"profile.location\":\"San Francisco\"}", USER));
    cr_assert(M("{\"profile.age\":{\"$gt\":25}}", USER));
    cr_assert(!M("{\"profile.age\":{\"$gt\":45}}", USER));
    cr_assert(!M("{\"profile.location.x\":1}", USER));
    cr_assert(M("{\"profile\":{\"bio\":\"Software engineer\",\"location\":\"San Francisco\","
                "\"age\":40}}",
                USER));
    cr_assert(!M("{\"profile\":{\"location\":\"San Francisco\",\"bio\":\"Software engineer\","
                 "\"age\":40}}",
                 USER)); /* whole-object equality is order-sensitive, as in MongoDB */
    cr_assert(M("{\"tags.0\":\"python\"}", USER));
    cr_assert(!M("{\"tags.1\":\"python\"}", USER));
}

Test(filter, arrays)
{
    cr_assert(M("{\"tags\":\"python\"}", USER));
    cr_assert(M("{\"tags\":[\"python\",\"database\"]}", USER));
    cr_assert(!M("{\"tags\":[\"database\",\"python\"]}", USER));
    cr_assert(M("{\"tags\":{\"$in\":[\"python\",\"javascript\"]}}", USER));
    cr_assert(!M("{\"tags\":{\"$in\":[\"java\"]}}", USER));
    cr_assert(M("{\"tags\":{\"$nin\":[\"java\",\"c++\"]}}", USER));
    cr_assert(!M("{\"tags\":{\"$nin\":[\"java\",\"python\"]}}", USER));
    cr_assert(M("{\"tags\":{\"$ne\":\"java\"}}", USER));
    cr_assert(!M("{\"tags\":{\"$ne\":\"python\"}}", USER));
    cr_assert(M("{\"tags\":{\"$all\":[\"database\",\"python\"]}}", USER));
    cr_assert(!M("{\"tags\":{\"$all\":[\"database\",\"go\"]}}", USER));
    cr_assert(!M("{\"tags\":{\"$all\":[]}}", USER));
    cr_assert(M("{\"tags\":{\"$size\":2}}", USER));
    cr_assert(!M("{\"tags\":{\"$size\":1}}", USER));
    cr_assert(!M("{\"age\":{\"$size\":1}}", USER));
    const char *d = "{\"s\":[1,5,9],\"items\":[{\"k\":\"a\",\"q\":1},{\"k\":\"b\",\"q\":5}]}";
    cr_assert(M("{\"s\":{\"$gt\":8}}", d));
    cr_assert(M("{\"s\":{\"$gt\":6,\"$lt\":3}}", d)); /* different elements may satisfy each */
    cr_assert(!M("{\"s\":{\"$elemMatch\":{\"$gt\":6,\"$lt\":3}}}", d));
    cr_assert(M("{\"s\":{\"$elemMatch\":{\"$gt\":4,\"$lt\":6}}}", d));
    cr_assert(M("{\"items.k\":\"b\"}", d));
    cr_assert(M("{\"items.q\":{\"$gte\":5}}", d));
    cr_assert(!M("{\"items.q\":{\"$gt\":5}}", d));
    cr_assert(M("{\"items\":{\"$elemMatch\":{\"k\":\"b\",\"q\":5}}}", d));
    cr_assert(!M("{\"items\":{\"$elemMatch\":{\"k\":\"a\",\"q\":5}}}", d));
    cr_assert(M("{\"items.k\":\"a\",\"items.q\":5}", d)); /* without $elemMatch: any element each */
    cr_assert(M("{\"items.1.k\":\"b\"}", d));
    cr_assert(M("{\"items.z\":null}", d));
    cr_assert(M("{\"items.k\":{\"$exists\":true}}", d));
    cr_assert(M("{\"s\":{\"$type\":\"array\"}}", d));
    cr_assert(M("{\"s\":{\"$type\":\"number\"}}", d));
    cr_assert(M("{\"s\":{\"$type\":\"int\"}}", d));
    cr_assert(!M("{\"s\":{\"$type\":\"string\"}}", d));
    cr_assert(M("{\"m\":[[1,2],[3]]}", "{\"m\":[[1,2],[3]]}"));
    cr_assert(M("{\"m\":[3]}", "{\"m\":[[1,2],[3]]}")); /* element equality on arrays */
}

Test(filter, regex_and_not)
{
    cr_assert(M("{\"name\":{\"$regex\":\"John\"}}", USER));
    cr_assert(!M("{\"name\":{\"$regex\":\"^John\"}}", USER));
    cr_assert(M("{\"name\":{\"$regex\":\"^alice\",\"$options\":\"i\"}}", USER));
    cr_assert(!M("{\"name\":{\"$regex\":\"^alice\"}}", USER));
    cr_assert(M("{\"tags\":{\"$regex\":\"^data\"}}", USER));
    cr_assert(!M("{\"age\":{\"$regex\":\"2\"}}", USER));
    cr_assert(M("{\"x\":{\"$regex\":\"^b\",\"$options\":\"m\"}}", "{\"x\":\"a\\nb\"}"));
    cr_assert(!M("{\"x\":{\"$regex\":\"^b\"}}", "{\"x\":\"a\\nb\"}"));
    cr_assert(M("{\"x\":{\"$regex\":\"a.b\",\"$options\":\"s\"}}", "{\"x\":\"a\\nb\"}"));
    cr_assert(M("{\"x\":{\"$regex\":\"a b # c\",\"$options\":\"x\"}}", "{\"x\":\"ab\"}"));
    cr_assert(M("{\"x\":{\"$regex\":\"\\\\d+\"}}", "{\"x\":\"abc123\"}"));
    cr_assert(M("{\"x\":{\"$regex\":\"^\xc3\xa9.$\"}}", "{\"x\":\"\xc3\xa9\xc3\xa9\"}")); /* UTF-8 */
    cr_assert(M("{\"age\":{\"$not\":{\"$gt\":30}}}", USER));
    cr_assert(!M("{\"age\":{\"$not\":{\"$gt\":20}}}", USER));
    cr_assert(M("{\"missing\":{\"$not\":{\"$gt\":20}}}", USER));
    cr_assert(M("{\"name\":{\"$not\":{\"$regex\":\"^Bob\"}}}", USER));
    cr_assert(M("{\"age\":{\"$type\":\"int\"}}", USER));
    cr_assert(M("{\"score\":{\"$type\":\"double\"}}", USER));
    cr_assert(M("{\"score\":{\"$type\":1}}", USER));
    cr_assert(M("{\"n\":{\"$type\":\"null\"}}", USER));
    cr_assert(!M("{\"missing\":{\"$type\":\"null\"}}", USER));
    cr_assert(M("{\"profile\":{\"$type\":\"object\"}}", USER));
    cr_assert(M("{\"active\":{\"$type\":[\"string\",\"bool\"]}}", USER));
    /* https://www.mongodb.com/docs/manual/reference/operator/query/type/: aliases
     * and codes; int and long split as BSON carries integers */
    const char *t = "{\"d\":{\"$date\":\"2024-01-01T00:00:00Z\"},\"b\":{\"$binary\":{\"base64\":\"AA==\","
                    "\"subType\":\"00\"}},\"l\":{\"$numberLong\":\"5000000000\"},\"i\":7}";
    cr_assert(M("{\"d\":{\"$type\":\"date\"}}", t));
    cr_assert(M("{\"d\":{\"$type\":9}}", t));
    cr_assert(M("{\"b\":{\"$type\":\"binData\"}}", t));
    cr_assert(M("{\"b\":{\"$type\":5}}", t));
    cr_assert(M("{\"l\":{\"$type\":\"long\"}}", t));
    cr_assert(!M("{\"l\":{\"$type\":\"int\"}}", t));
    cr_assert(M("{\"i\":{\"$type\":\"int\"}}", t));
    cr_assert(!M("{\"i\":{\"$type\":\"long\"}}", t));
    cr_assert(M("{\"l\":{\"$type\":\"number\"}}", t));
    cr_assert(!M("{\"i\":{\"$type\":\"decimal\"}}", t)); /* known, never stored */
    cr_assert(!M("{\"i\":{\"$type\":[\"objectId\",\"timestamp\"]}}", t));
    cr_assert(!M("{\"d\":{\"$type\":\"string\"}}", t));
    /* dates compare with dates only (type bracketing) */
    cr_assert(M("{\"d\":{\"$gt\":{\"$date\":\"2023-12-31T00:00:00Z\"}}}", t));
    cr_assert(!M("{\"d\":{\"$gt\":5}}", t));
    cr_assert(M("{\"b\":{\"$eq\":{\"$binary\":{\"base64\":\"AA==\",\"subType\":\"00\"}}}}", t));
    cr_assert(!M("{\"b\":{\"$eq\":{\"$binary\":{\"base64\":\"AA==\",\"subType\":\"04\"}}}}", t));
}

Test(filter, logical)
{
    cr_assert(M("{\"$or\":[{\"age\":1},{\"age\":28}]}", USER));
    cr_assert(!M("{\"$or\":[{\"age\":1},{\"age\":2}]}", USER));
    cr_assert(M("{\"$and\":[{\"age\":{\"$gt\":1}},{\"age\":{\"$lt\":30}}]}", USER));
    cr_assert(!M("{\"$and\":[{\"age\":{\"$gt\":1}},{\"age\":{\"$lt\":3}}]}", USER));
    cr_assert(M("{\"$nor\":[{\"age\":1},{\"age\":2}]}", USER));
    cr_assert(!M("{\"$nor\":[{\"age\":1},{\"age\":28}]}", USER));
    cr_assert(M("{\"$or\":[{\"$and\":[{\"a\":1},{\"b\":2}]},{\"tags\":\"python\"}],\"age\":28}",
                USER));
}

Test(filter, errors_name_the_part)
{
    BAD("{\"age\":{\"$foo\":1}}", "unknown operator $foo at filter.age");
    BAD("{\"$foo\":1}", "unknown top-level operator $foo");
    BAD("{\"$or\":[]}", "$or needs a non-empty array");
    BAD("{\"$or\":{\"a\":1}}", "$or needs a non-empty array");
    BAD("{\"$and\":[{\"a\":{\"$bar\":1}}]}", "unknown operator $bar at filter.$and.0.a");
    BAD("{\"$or\":[1]}", "expected an object at filter.$or.0");
    BAD("{\"a\":{\"$in\":5}}", "$in needs an array at filter.a");
    BAD("{\"a\":{\"$nin\":5}}", "$nin needs an array");
    BAD("{\"a\":{\"$all\":5}}", "$all needs an array");
    BAD("{\"a\":{\"$size\":-1}}", "$size needs a non-negative integer");
    BAD("{\"a\":{\"$size\":1.5}}", "$size");
    BAD("{\"a\":{\"$regex\":\"(\"}}", "bad $regex at filter.a");
    BAD("{\"a\":{\"$regex\":\"x\",\"$options\":\"q\"}}", "unknown $regex option 'q'");
    BAD("{\"a\":{\"$regex\":5}}", "$regex needs a string");
    BAD("{\"a\":{\"$type\":\"nope\"}}", "unknown $type at filter.a");
    BAD("{\"a\":{\"$not\":5}}", "$not needs an operator object");
    BAD("{\"a\":{\"$elemMatch\":5}}", "$elemMatch needs an object");
    BAD("{\"a\":{\"$gt\":1,\"b\":2}}", "field 'b' mixed with operators at filter.a");
    BAD("{\"a..b\":1}", "bad field path");
    BAD("{\"a.$b\":1}", "starts with '$'");
    BAD("{\"a\":{\"$options\":\"i\"}}", "$options without $regex");
    BAD("[1]", "filter must be an object");
}

Test(filter, corrupt_doc_never_matches)
{
    size_t fl, dl;
    void *f = J("{}", &fl);
    uint8_t *d = J(USER, &dl);
    ndb_doc_filter *cf;
    cr_assert_eq(ndb_doc_filter_compile(f, fl, &cf, NULL), NDB_OK);
    cr_assert(ndb_doc_filter_match(cf, d, dl));
    cr_assert(!ndb_doc_filter_match(cf, d, dl - 1));
    d[0] = 0;
    cr_assert(!ndb_doc_filter_match(cf, d, dl));
    ndb_doc_filter_free(cf);
    /* a NULL filter matches everything */
    cr_assert_eq(ndb_doc_filter_compile(NULL, 0, &cf, NULL), NDB_OK);
    d[0] = 0xD1;
    cr_assert(ndb_doc_filter_match(cf, d, dl));
    ndb_doc_filter_free(cf);
    /* a corrupt filter document is refused */
    cr_assert_eq(ndb_doc_filter_compile(d, dl - 1, &cf, NULL), NDB_EINVAL);
    free(f);
    free(d);
}

/* A pattern that backtracks exponentially is stopped by PCRE2's match limit
 * and reported (NDB_ELIMIT), never read as "no match"; under the limit the
 * same pattern answers. */
Test(filter, regex_limits)
{
    char doc[128], a30[40], a12[20];
    memset(a30, 'a', 30);
    a30[30] = 0;
    memset(a12, 'a', 12);
    a12[12] = 0;
    snprintf(doc, sizeof doc, "{\"s\":\"%sb\"}", a30);
    cr_assert_eq(M("{\"s\":{\"$regex\":\"(a+)+$\"}}", doc), NDB_ELIMIT);
    /* negated: the failure is not turned into a match */
    cr_assert_eq(M("{\"s\":{\"$not\":{\"$regex\":\"(a+)+$\"}}}", doc), NDB_ELIMIT);
    cr_assert_eq(M("{\"$nor\":[{\"s\":{\"$regex\":\"(a+)+$\"}}]}", doc), NDB_ELIMIT);
    /* 22 a's: ~4M steps, under PCRE2's default limit (10M, read as no match
     * after a long while) but over ours */
    snprintf(doc, sizeof doc, "{\"s\":\"%.22sb\"}", a30);
    cr_assert_eq(M("{\"s\":{\"$regex\":\"(a+)+$\"}}", doc), NDB_ELIMIT);
    snprintf(doc, sizeof doc, "{\"s\":\"%sb\"}", a12);
    cr_assert_eq(M("{\"s\":{\"$regex\":\"(a+)+$\"}}", doc), 0);
    cr_assert_eq(M("{\"s\":{\"$regex\":\"(a+)+b$\"}}", doc), 1);

    /* the message names the pattern; a failed filter keeps failing until reset */
    size_t fl, dl;
    void *f = J("{\"s\":{\"$regex\":\"(a+)+$\"}}", &fl);
    snprintf(doc, sizeof doc, "{\"s\":\"%sb\"}", a30);
    void *d = J(doc, &dl);
    ndb_doc_filter *cf;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_filter_compile(f, fl, &cf, &m), NDB_OK);
    ndb_doc_val root;
    ndb_doc_root(d, dl, &root);
    cr_assert_eq(flt_match(cf, &root, &m), NDB_ELIMIT);
    cr_assert(strstr(m.text, "/(a+)+$/") != NULL && strstr(m.text, "limit") != NULL, "%s", m.text);
    free(d);
    d = J("{\"s\":\"b\"}", &dl);
    ndb_doc_root(d, dl, &root);
    cr_assert_eq(flt_match(cf, &root, NULL), NDB_ELIMIT);
    flt_set_interrupt(cf, NULL);
    cr_assert_eq(flt_match(cf, &root, NULL), 0);
    ndb_doc_filter_free(cf);
    free(f);
    free(d);
}

/* $regex matching checks the interrupt itself, every FLT_REGEX_CHECK_EVERY matches. */
Test(filter, regex_checks_the_interrupt)
{
    size_t fl, dl;
    void *f = J("{\"s\":{\"$regex\":\"^a\"}}", &fl), *d = J("{\"s\":\"abc\"}", &dl);
    ndb_doc_filter *cf;
    cr_assert_eq(ndb_doc_filter_compile(f, fl, &cf, NULL), NDB_OK);
    ndb_doc_val root;
    ndb_doc_root(d, dl, &root);
    atomic_bool gone = false;
    ndb_interrupt in = {.deadline_ns = INT64_MAX, .cancelled = &gone};
    flt_set_interrupt(cf, &in);
    for (int i = 0; i < 2 * FLT_REGEX_CHECK_EVERY; i++)
        cr_assert_eq(flt_match(cf, &root, NULL), 1);
    atomic_store(&gone, true);
    int r = 1;
    ndb_errmsg m = {{0}};
    for (int i = 0; i < FLT_REGEX_CHECK_EVERY && r == 1; i++)
        r = flt_match(cf, &root, &m);
    cr_assert_eq(r, NDB_ECANCELED);
    cr_assert(strstr(m.text, "cancelled") != NULL, "%s", m.text);
    ndb_doc_filter_free(cf);
    free(f);
    free(d);
}

/* https://www.mongodb.com/docs/manual/reference/operator/query/mod/ (values truncated toward zero) */
Test(filter, mod)
{
    cr_assert(M("{\"n\":{\"$mod\":[4,1]}}", "{\"n\":5}"));
    cr_assert(M("{\"n\":{\"$mod\":[4,1]}}", "{\"n\":5.9}"));
    cr_assert(M("{\"n\":{\"$mod\":[4,-1]}}", "{\"n\":-5}"));
    cr_assert(!M("{\"n\":{\"$mod\":[4,1]}}", "{\"n\":6}"));
    cr_assert(M("{\"n\":{\"$mod\":[4,0]}}", "{\"n\":[3,8]}")); /* any element */
    cr_assert(!M("{\"n\":{\"$mod\":[4,0]}}", "{\"n\":\"8\"}"));
    cr_assert(!M("{\"n\":{\"$mod\":[4,0]}}", "{}"));
    cr_assert(M("{\"n\":{\"$not\":{\"$mod\":[2,0]}}}", "{\"n\":3}"));
    BAD("{\"n\":{\"$mod\":[0,1]}}", "divisor cannot be 0");
    BAD("{\"n\":{\"$mod\":[4]}}", "$mod needs an array of two numbers");
}

/* https://www.mongodb.com/docs/manual/reference/operator/query/expr/ */
Test(filter, expr)
{
    const char *d = "{\"spent\":120,\"budget\":100,\"name\":\"x\",\"at\":{\"$date\":\"2024-03-01T00:00:00Z\"}}";
    cr_assert(M("{\"$expr\":{\"$gt\":[\"$spent\",\"$budget\"]}}", d));
    cr_assert(!M("{\"$expr\":{\"$lt\":[\"$spent\",\"$budget\"]}}", d));
    cr_assert(M("{\"name\":\"x\",\"$expr\":{\"$eq\":[{\"$month\":\"$at\"},3]}}", d));
    cr_assert(M("{\"$expr\":{\"$in\":[\"$name\",[\"x\",\"y\"]]}}", d));
    cr_assert(!M("{\"$expr\":\"$nope\"}", d)); /* missing is falsy */
    cr_assert(M("{\"$or\":[{\"$expr\":false},{\"$expr\":{\"$abs\":-1}}]}", d));
    BAD("{\"$expr\":{\"$bogus\":1}}", "unknown expression operator $bogus");
    /* an expression that fails on a document fails the match, naming why */
    size_t fl, dl;
    void *f = J("{\"$expr\":{\"$add\":[\"$name\",1]}}", &fl), *doc = J(d, &dl);
    ndb_doc_filter *cf;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_filter_compile(f, fl, &cf, &m), NDB_OK, "%s", m.text);
    cr_assert_lt(ndb_doc_filter_match(cf, doc, dl), 0);
    ndb_doc_filter_free(cf);
    free(f);
    free(doc);
}

/* https://www.mongodb.com/docs/manual/reference/operator/query/all/ ($all is an $and of
 * equalities, so [null] matches a missing field) and /query/in/ (no operators inside $in) */
Test(filter, all_null_and_nesting_refused)
{
    cr_assert(M("{\"a\":{\"$all\":[null]}}", "{}"));
    cr_assert(M("{\"a\":{\"$all\":[null]}}", "{\"a\":null}"));
    cr_assert(!M("{\"a\":{\"$all\":[null]}}", "{\"a\":1}"));
    cr_assert(!M("{\"a\":{\"$all\":[null,1]}}", "{}"));
    cr_assert(!M("{\"a\":{\"$all\":[]}}", "{}"));
    BAD("{\"a\":{\"$in\":[{\"$gt\":1}]}}", "cannot nest an operator object under $in");
    BAD("{\"a\":{\"$nin\":[1,{\"$exists\":true}]}}", "cannot nest an operator object under $nin");
    cr_assert(M("{\"a\":{\"$in\":[{\"b\":1}]}}", "{\"a\":{\"b\":1}}")); /* a plain object is a value */
}
