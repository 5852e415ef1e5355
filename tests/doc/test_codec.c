/* Tests for engine/doc/codec.c, value.c and json.c: builder, reader, JSON round
 * trips, ordering, key encoding, hostile bytes. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "doc_int.h"
#include "json_text.h"
#include "ndb_doc.h"

static void *J(const char *json, size_t *len)
{
    void *d;
    ndb_errmsg m = {{0}};
    ndb_status st = ndb_doc_from_json(json, strlen(json), &d, len, &m);
    cr_assert_eq(st, NDB_OK, "from_json(%s): %s", json, m.text);
    return d;
}

static char *S(const void *d, size_t n)
{
    char *s;
    size_t sl;
    cr_assert_eq(ndb_doc_to_json(d, n, &s, &sl), NDB_OK);
    cr_assert_eq(strlen(s), sl);
    return s;
}

static void roundtrip(const char *in, const char *want)
{
    size_t n;
    void *d = J(in, &n);
    cr_assert_eq(ndb_doc_validate(d, n, NULL), NDB_OK, "validate %s", in);
    char *s = S(d, n);
    cr_assert_str_eq(s, want);
    free(s);
    free(d);
}

Test(codec, json_roundtrips)
{
    roundtrip("{\"name\":\"Alice\",\"age\":28,\"tags\":[\"python\",\"database\"]}",
              "{\"name\":\"Alice\",\"age\":28,\"tags\":[\"python\",\"database\"]}");
    roundtrip("{\"z\":1,\"a\":2,\"m\":3}", "{\"z\":1,\"a\":2,\"m\":3}"); /* order kept */
    roundtrip("{\"x\":0.1,\"y\":28.0,\"z\":-0.0,\"w\":1e300,\"v\":-2.5}",
              "{\"x\":0.1,\"y\":28,\"z\":0,\"w\":1e+300,\"v\":-2.5}");
    roundtrip("[1,2.5,null,true,false,\"s\",{},[]]", "[1,2.5,null,true,false,\"s\",{},[]]");
    roundtrip("\"a\\\"b\\\\c\\n\\u0001\\u00e9\"", "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"");
    roundtrip("{\"p\":{\"q\":{\"r\":[{\"s\":1}]}}}", "{\"p\":{\"q\":{\"r\":[{\"s\":1}]}}}");
    roundtrip("9007199254740993", "{\"$numberLong\":\"9007199254740993\"}"); /* int64: exact */
    roundtrip("-9223372036854775808", "{\"$numberLong\":\"-9223372036854775808\"}");
    roundtrip("[9223372036854775808,1]", "[9.223372036854776e+18,1]"); /* beyond int64: doubles */
    roundtrip("9007199254740992", "9007199254740992");
    roundtrip("9007199254740994.0", "9007199254740994.0"); /* a double stays one */
    roundtrip("123456789012", "123456789012");
    roundtrip("0.30000000000000004", "0.30000000000000004");
    roundtrip("{\"\":1}", "{\"\":1}");
}

Test(codec, json_errors)
{
    void *d;
    size_t n;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_from_json("{\"a\":", 5, &d, &n, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "line") != NULL, "%s", m.text);
    /* 200 levels of nesting is refused, not a crash */
    char deep[512];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 200);
    deep[400] = 0;
    cr_assert_neq(ndb_doc_from_json(deep, 400, &d, &n, &m), NDB_OK);
}

Test(codec, builder_state_machine)
{
    ndb_doc_builder *b;
    cr_assert_eq(ndb_doc_builder_new(&b), NDB_OK);
    const void *d;
    size_t n;
    /* value without a key inside an object */
    ndb_doc_begin_object(b);
    cr_assert_eq(ndb_doc_int(b, 1), NDB_EINVAL);
    cr_assert_eq(ndb_doc_builder_finish(b, &d, &n), NDB_EINVAL);
    /* unbalanced */
    ndb_doc_builder_reset(b);
    ndb_doc_begin_array(b);
    cr_assert_eq(ndb_doc_builder_finish(b, &d, &n), NDB_EINVAL);
    /* mismatched end */
    ndb_doc_builder_reset(b);
    ndb_doc_begin_array(b);
    cr_assert_eq(ndb_doc_end_object(b), NDB_EINVAL);
    /* two top-level values */
    ndb_doc_builder_reset(b);
    ndb_doc_int(b, 1);
    cr_assert_eq(ndb_doc_int(b, 2), NDB_EINVAL);
    /* NaN and infinity */
    ndb_doc_builder_reset(b);
    cr_assert_eq(ndb_doc_double(b, 0.0 / 0.0), NDB_EINVAL);
    ndb_doc_builder_reset(b);
    cr_assert_eq(ndb_doc_double(b, 1e308 * 10), NDB_EINVAL);
    /* bad UTF-8 */
    ndb_doc_builder_reset(b);
    cr_assert_eq(ndb_doc_string(b, "\xff\xfe", 2), NDB_EINVAL);
    ndb_doc_builder_reset(b);
    cr_assert_eq(ndb_doc_string(b, "\xed\xa0\x80", 3), NDB_EINVAL); /* surrogate */
    /* size limit */
    ndb_doc_builder_reset(b);
    ndb_doc_builder_set_limit(b, 32);
    ndb_doc_begin_array(b);
    for (int i = 0; i < 40; i++)
        ndb_doc_int(b, i);
    ndb_doc_end_array(b);
    cr_assert_eq(ndb_doc_builder_finish(b, &d, &n), NDB_ETOOBIG);
    ndb_doc_builder_set_limit(b, NDB_DOC_MAX_BYTES);
    /* depth limit */
    ndb_doc_builder_reset(b);
    ndb_status st = NDB_OK;
    for (int i = 0; i <= NDB_DOC_MAX_DEPTH && st == NDB_OK; i++)
        st = ndb_doc_begin_array(b);
    cr_assert_eq(st, NDB_ETOOBIG);
    /* a good one, reused after errors */
    ndb_doc_builder_reset(b);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "a", 1);
    ndb_doc_double(b, 3.0);
    ndb_doc_key(b, "b", 1);
    ndb_doc_int(b, (int64_t)1 << 60);
    ndb_doc_end_object(b);
    cr_assert_eq(ndb_doc_builder_finish(b, &d, &n), NDB_OK);
    ndb_doc_val root, v;
    cr_assert_eq(ndb_doc_root(d, n, &root), NDB_OK);
    cr_assert_eq(ndb_doc_get_field(&root, "a", 1, &v), NDB_OK);
    cr_assert_eq(v.type, NDB_DOC_INT);
    cr_assert_eq(v.u.i, 3);
    cr_assert_eq(ndb_doc_get_field(&root, "b", 1, &v), NDB_OK);
    cr_assert_eq(v.type, NDB_DOC_INT); /* 64-bit integers are exact */
    cr_assert_eq(v.u.i, (int64_t)1 << 60);
    ndb_doc_builder_free(b);
}

Test(codec, reader_paths)
{
    size_t n;
    void *d = J("{\"name\":\"Alice\",\"profile\":{\"bio\":\"x\",\"location\":\"SF\"},"
                "\"tags\":[\"a\",\"b\",{\"k\":7}],\"n\":null}",
                &n);
    ndb_doc_val root, v;
    cr_assert_eq(ndb_doc_root(d, n, &root), NDB_OK);
    cr_assert_eq(root.u.c.count, 4);
    cr_assert_eq(ndb_doc_get_path(&root, "profile.location", 16, &v), NDB_OK);
    cr_assert_eq(v.type, NDB_DOC_STRING);
    cr_assert_eq(v.u.s.len, 2);
    cr_assert_eq(memcmp(v.u.s.ptr, "SF", 2), 0);
    cr_assert_eq(ndb_doc_get_path(&root, "tags.1", 6, &v), NDB_OK);
    cr_assert_eq(memcmp(v.u.s.ptr, "b", 1), 0);
    cr_assert_eq(ndb_doc_get_path(&root, "tags.2.k", 8, &v), NDB_OK);
    cr_assert_eq(v.u.i, 7);
    cr_assert_eq(ndb_doc_get_path(&root, "tags.3", 6, &v), NDB_ENOTFOUND);
    cr_assert_eq(ndb_doc_get_path(&root, "tags.01", 7, &v), NDB_ENOTFOUND);
    cr_assert_eq(ndb_doc_get_path(&root, "name.x", 6, &v), NDB_ENOTFOUND);
    cr_assert_eq(ndb_doc_get_path(&root, "n", 1, &v), NDB_OK);
    cr_assert_eq(v.type, NDB_DOC_NULL);
    cr_assert_eq(ndb_doc_get_field(&root, "missing", 7, &v), NDB_ENOTFOUND);
    /* iteration in stored order */
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, &root);
    const char *k;
    size_t kl;
    const char *want[] = {"name", "profile", "tags", "n"};
    int i = 0;
    while (ndb_doc_iter_next(&it, &k, &kl, &v)) {
        cr_assert_eq(kl, strlen(want[i]));
        cr_assert_eq(memcmp(k, want[i], kl), 0);
        i++;
    }
    cr_assert_eq(i, 4);
    cr_assert_eq(it.st, NDB_OK);
    free(d);
}

Test(codec, hostile_bytes)
{
    /* a varint longer than it needs to be would let equal values differ in bytes */
    static const uint8_t long_zero[] = {0xD1, 0x04, 0x80, 0x00};
    static const uint8_t long_len[] = {0xD1, 0x06, 0x81, 0x00, 'a'};
    static const uint8_t short_len[] = {0xD1, 0x06, 0x01, 'a'};
    ndb_errmsg em = {{0}};
    cr_assert_eq(ndb_doc_validate(long_zero, sizeof long_zero, &em), NDB_ECORRUPT);
    cr_assert(strstr(em.text, "shortest encoding") != NULL, "%s", em.text);
    cr_assert_eq(ndb_doc_validate(long_len, sizeof long_len, &em), NDB_ECORRUPT);
    cr_assert_eq(ndb_doc_validate(short_len, sizeof short_len, &em), NDB_OK);
    size_t n;
    uint8_t *d = J("{\"name\":\"Alice\",\"age\":28,\"x\":1.5,\"tags\":[\"p\",{\"q\":[1,2]}]}", &n);
    ndb_doc_val v;
    /* every truncation is corrupt */
    for (size_t cut = 0; cut < n; cut++) {
        cr_assert_eq(ndb_doc_validate(d, cut, NULL), NDB_ECORRUPT, "cut %zu", cut);
        cr_assert_neq(ndb_doc_root(d, cut, &v), NDB_OK, "cut %zu", cut);
    }
    /* trailing garbage */
    uint8_t *big = malloc(n + 1);
    memcpy(big, d, n);
    big[n] = 0;
    cr_assert_eq(ndb_doc_validate(big, n + 1, NULL), NDB_ECORRUPT);
    free(big);
    /* bad header */
    d[0] ^= 1;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_validate(d, n, &m), NDB_ECORRUPT);
    cr_assert(strstr(m.text, "header") != NULL, "%s", m.text);
    d[0] ^= 1;
    /* every single-byte mutation either validates or is ECORRUPT, and reading
     * the mutated document never runs out of bounds (checked under ASan) */
    uint8_t *copy = malloc(n);
    unsigned seed = 12345;
    for (size_t i = 0; i < n; i++) {
        for (int t = 0; t < 8; t++) {
            memcpy(copy, d, n);
            seed = seed * 1103515245 + 12345;
            copy[i] = (uint8_t)(seed >> 16);
            ndb_status st = ndb_doc_validate(copy, n, NULL);
            cr_assert(st == NDB_OK || st == NDB_ECORRUPT);
            char *s;
            size_t sl;
            if (ndb_doc_to_json(copy, n, &s, &sl) == NDB_OK)
                free(s);
            ndb_doc_val root, x;
            if (ndb_doc_root(copy, n, &root) == NDB_OK)
                (void)ndb_doc_get_path(&root, "tags.1.q.1", 10, &x);
        }
    }
    free(copy);
    /* a container count larger than its body */
    ndb_doc_builder *b;
    ndb_doc_builder_new(&b);
    ndb_doc_begin_array(b);
    ndb_doc_int(b, 1);
    ndb_doc_end_array(b);
    const void *a;
    size_t al;
    cr_assert_eq(ndb_doc_builder_finish(b, &a, &al), NDB_OK);
    uint8_t *ac = malloc(al);
    memcpy(ac, a, al);
    ac[6] = 5; /* count = 5, body = 2 bytes */
    cr_assert_eq(ndb_doc_validate(ac, al, NULL), NDB_ECORRUPT);
    ac[6] = 0; /* count 0 but body 2 bytes */
    cr_assert_eq(ndb_doc_validate(ac, al, NULL), NDB_ECORRUPT);
    free(ac);
    ndb_doc_builder_free(b);
    free(d);
}

/* Relaxed Extended JSON: https://www.mongodb.com/docs/manual/reference/mongodb-extended-json/ */
Test(codec, extended_json_roundtrips)
{
    roundtrip("{\"d\":{\"$date\":\"2024-02-29T12:34:56.789Z\"}}", "{\"d\":{\"$date\":\"2024-02-29T12:34:56.789Z\"}}");
    roundtrip("{\"$date\":\"2024-01-01T01:00:00+01:00\"}", "{\"$date\":\"2024-01-01T00:00:00.000Z\"}");
    roundtrip("{\"$date\":\"2024-01-01\"}", "{\"$date\":\"2024-01-01T00:00:00.000Z\"}");
    roundtrip("{\"$date\":\"1970-01-01T00:00:00.1234Z\"}", "{\"$date\":\"1970-01-01T00:00:00.123Z\"}");
    roundtrip("{\"$date\":0}", "{\"$date\":\"1970-01-01T00:00:00.000Z\"}");
    /* outside 1970..9999 relaxed form falls back to the canonical one */
    roundtrip("{\"$date\":\"1969-12-31T23:59:59.999Z\"}", "{\"$date\":{\"$numberLong\":\"-1\"}}");
    roundtrip("{\"$date\":{\"$numberLong\":\"253402300800000\"}}", "{\"$date\":{\"$numberLong\":\"253402300800000\"}}");
    roundtrip("{\"$binary\":{\"base64\":\"AAEC/w==\",\"subType\":\"04\"}}",
              "{\"$binary\":{\"base64\":\"AAEC/w==\",\"subType\":\"04\"}}");
    roundtrip("{\"$binary\":{\"base64\":\"\",\"subType\":\"0\"}}", "{\"$binary\":{\"base64\":\"\",\"subType\":\"00\"}}");
    roundtrip("{\"$binary\":\"YWI=\",\"$type\":\"80\"}", "{\"$binary\":{\"base64\":\"YWI=\",\"subType\":\"80\"}}");
    roundtrip("{\"$numberLong\":\"42\"}", "42");
    roundtrip("{\"$numberInt\":\"-7\"}", "-7");
    roundtrip("{\"$numberDouble\":\"2.5\"}", "2.5");
    /* operators that look alike stay subdocuments */
    roundtrip("{\"$gt\":{\"$date\":\"2024-01-01T00:00:00Z\"}}", "{\"$gt\":{\"$date\":\"2024-01-01T00:00:00.000Z\"}}");
    roundtrip("{\"$type\":\"date\"}", "{\"$type\":\"date\"}");
}

static void json_refused(const char *json, const char *want)
{
    void *d;
    size_t n;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_from_json(json, strlen(json), &d, &n, &m), NDB_EINVAL, "%s", json);
    cr_assert(strstr(m.text, want) != NULL, "%s: %s", json, m.text);
}

Test(codec, extended_json_errors)
{
    json_refused("{\"$date\":\"2023-02-29T00:00:00Z\"}", "$date takes an ISO-8601");
    json_refused("{\"$date\":\"2023-01-01T00:00:00\"}", "$date takes"); /* no zone */
    json_refused("{\"$date\":true}", "$date takes");
    json_refused("{\"$numberLong\":\"9223372036854775808\"}", "$numberLong takes");
    json_refused("{\"$numberLong\":12}", "$numberLong takes");
    json_refused("{\"$numberInt\":\"2147483648\"}", "$numberInt takes");
    json_refused("{\"$numberDouble\":\"NaN\"}", "NaN");
    json_refused("{\"$binary\":{\"base64\":\"AAE\",\"subType\":\"00\"}}", "multiple of 4");
    json_refused("{\"$binary\":{\"base64\":\"AA*=\",\"subType\":\"00\"}}", "alphabet");
    json_refused("{\"$binary\":{\"base64\":\"AAAA\",\"subType\":\"100\"}}", "subType");
    json_refused("{\"a\":{\"$oid\":\"65a0c0ffee0000000000beef\"}}", "$oid is a type NexaDB does not store");
    json_refused("{\"$numberDecimal\":\"1.5\"}", "$numberDecimal");
}

Test(codec, dates_and_binary_build_and_read)
{
    ndb_doc_builder *b;
    cr_assert_eq(ndb_doc_builder_new(&b), NDB_OK);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "d", 1);
    ndb_doc_date(b, INT64_MIN);
    ndb_doc_key(b, "b", 1);
    ndb_doc_binary(b, 0x80, "\0\1\2", 3);
    ndb_doc_key(b, "x", 1);
    ndb_doc_int(b, INT64_MAX);
    ndb_doc_end_object(b);
    const void *d;
    size_t n;
    cr_assert_eq(ndb_doc_builder_finish(b, &d, &n), NDB_OK);
    cr_assert_eq(ndb_doc_validate(d, n, NULL), NDB_OK);
    ndb_doc_val root, v;
    cr_assert_eq(ndb_doc_root(d, n, &root), NDB_OK);
    cr_assert_eq(ndb_doc_get_field(&root, "x", 1, &v), NDB_OK); /* skips a date and a binary */
    cr_assert_eq(v.u.i, INT64_MAX);
    cr_assert_eq(ndb_doc_get_field(&root, "d", 1, &v), NDB_OK);
    cr_assert_eq(v.type, NDB_DOC_DATE);
    cr_assert_eq(v.u.i, INT64_MIN);
    cr_assert_eq(ndb_doc_get_field(&root, "b", 1, &v), NDB_OK);
    cr_assert_eq(v.type, NDB_DOC_BINARY);
    cr_assert_eq(v.u.bin.subtype, 0x80);
    cr_assert_eq(v.u.bin.len, 3);
    cr_assert_eq(memcmp(v.u.bin.ptr, "\0\1\2", 3), 0);
    char *s = S(d, n);
    cr_assert_str_eq(s, "{\"d\":{\"$date\":{\"$numberLong\":\"-9223372036854775808\"}},"
                        "\"b\":{\"$binary\":{\"base64\":\"AAEC\",\"subType\":\"80\"}},"
                        "\"x\":{\"$numberLong\":\"9223372036854775807\"}}");
    free(s);
    /* a truncated date or binary is refused by the validator */
    cr_assert_eq(ndb_doc_validate(d, 20, NULL), NDB_ECORRUPT);
    ndb_doc_builder_free(b);
}

Test(codec, civil_dates)
{
    int64_t ms;
    cr_assert(date_parse_iso("2000-03-01T00:00:00Z", 20, &ms));
    cr_assert_eq(ms, 951868800000LL);
    cr_assert(date_parse_iso("1900-01-01T00:00:00Z", 20, &ms));
    cr_assert_eq(ms, -2208988800000LL);
    date_parts p;
    date_civil(-1, &p); /* 1969-12-31 23:59:59.999, a Wednesday */
    cr_assert(p.year == 1969 && p.month == 12 && p.day == 31 && p.hour == 23 && p.ms == 999 && p.wday == 3 &&
              p.yday == 364);
    date_civil(951782400000LL, &p); /* 2000-02-29 */
    cr_assert(p.month == 2 && p.day == 29 && p.wday == 2 && p.yday == 59);
    cr_assert(!date_parse_iso("1900-02-29", 10, &ms)); /* not a leap year */
    cr_assert(!date_parse_iso("2024-01-01T24:00:00Z", 20, &ms));
}

static int cmpj(const char *a, const char *b)
{
    size_t na, nb;
    void *da = J(a, &na), *db = J(b, &nb);
    ndb_doc_val va, vb;
    ndb_doc_root(da, na, &va);
    ndb_doc_root(db, nb, &vb);
    int r = ndb_doc_compare(&va, &vb);
    /* key encoding agrees with compare */
    dbuf ka = {0}, kb = {0};
    cr_assert(kenc_value(&ka, &va, false));
    cr_assert(kenc_value(&kb, &vb, false));
    size_t m = ka.len < kb.len ? ka.len : kb.len;
    int kr = memcmp(ka.data, kb.data, m);
    if (kr == 0)
        kr = (ka.len > kb.len) - (ka.len < kb.len);
    if (va.type != NDB_DOC_OBJECT && va.type != NDB_DOC_ARRAY)
        cr_assert_eq(kr < 0 ? -1 : kr > 0, r < 0 ? -1 : r > 0, "kenc order %s vs %s", a, b);
    /* descending encoding reverses it and skips cleanly */
    dbuf da2 = {0};
    kenc_value(&da2, &va, true);
    cr_assert_eq(kenc_skip(da2.data, da2.data + da2.len, true), da2.data + da2.len);
    cr_assert_eq(kenc_skip(ka.data, ka.data + ka.len, false), ka.data + ka.len);
    dbuf_free(&ka);
    dbuf_free(&kb);
    dbuf_free(&da2);
    free(da);
    free(db);
    return r < 0 ? -1 : r > 0;
}

Test(value, cross_type_order)
{
    cr_assert_eq(cmpj("null", "1"), -1);
    cr_assert_eq(cmpj("1", "2.5"), -1);
    cr_assert_eq(cmpj("3", "2.5"), 1);
    cr_assert_eq(cmpj("-1e300", "-5"), -1);
    cr_assert_eq(cmpj("100", "\"1\""), -1); /* numbers before strings */
    cr_assert_eq(cmpj("\"abc\"", "\"abd\""), -1);
    cr_assert_eq(cmpj("\"ab\"", "\"abc\""), -1);
    cr_assert_eq(cmpj("\"a\"", "\"a\\u0000\""), -1);
    cr_assert_eq(cmpj("\"zzz\"", "{}"), -1);
    cr_assert_eq(cmpj("{\"a\":1}", "[]"), -1);
    cr_assert_eq(cmpj("[1,2]", "[1,3]"), -1);
    cr_assert_eq(cmpj("[1,2]", "[1]"), 1);
    cr_assert_eq(cmpj("[]", "false"), -1);
    cr_assert_eq(cmpj("false", "true"), -1);
    cr_assert_eq(cmpj("{\"a\":1}", "{\"a\":1}"), 0);
    cr_assert_eq(cmpj("{\"a\":1}", "{\"b\":1}"), -1);
    cr_assert_eq(cmpj("2", "2.0"), 0);
    cr_assert_eq(cmpj("0", "-0.0"), 0);
    /* arrays < binary < bools < dates (MongoDB's order of types); binary by
     * length, then subtype, then bytes */
    const char *bin1 = "{\"$binary\":{\"base64\":\"/w==\",\"subType\":\"00\"}}";
    const char *bin1s = "{\"$binary\":{\"base64\":\"AA==\",\"subType\":\"01\"}}";
    const char *bin2 = "{\"$binary\":{\"base64\":\"AAA=\",\"subType\":\"00\"}}";
    cr_assert_eq(cmpj("[9]", bin1), -1);
    cr_assert_eq(cmpj(bin1, bin1s), -1);
    cr_assert_eq(cmpj(bin1s, bin2), -1);
    cr_assert_eq(cmpj(bin2, "false"), -1);
    cr_assert_eq(cmpj("true", "{\"$date\":{\"$numberLong\":\"-5\"}}"), -1);
    cr_assert_eq(cmpj("{\"$date\":\"1969-12-31T00:00:00Z\"}", "{\"$date\":\"1970-01-01T00:00:00Z\"}"), -1);
}

/* int64 beyond 2^53 against the doubles around it: exact, in compare, in
 * equality and in the index key encoding (ascending and descending). */
Test(value, int64_beyond_doubles)
{
    cr_assert_eq(cmpj("9007199254740993", "9007199254740992"), 1);
    cr_assert_eq(cmpj("9007199254740993", "9007199254740994.0"), -1);
    cr_assert_eq(cmpj("9223372036854775807", "9.3e18"), -1);
    cr_assert_eq(cmpj("9223372036854775807", "9223372036854775806"), 1);
    cr_assert_eq(cmpj("-9223372036854775808", "-9.3e18"), 1);
    cr_assert_eq(cmpj("-9223372036854775808", "-9223372036854775807"), -1);
    cr_assert_eq(cmpj("1152921504606846976", "1.152921504606846976e18"), 0);
    const char *asc[] = {"-1e300", "-9223372036854775808", "-9223372036854775807", "-9007199254740993", "-2.5",
                         "0", "9007199254740992", "9007199254740993", "9007199254740994", "9223372036854774784",
                         "9223372036854775806", "9223372036854775807", "9.3e18"};
    size_t n = sizeof asc / sizeof *asc;
    dbuf k[16] = {{0}}, kd[16] = {{0}};
    for (size_t i = 0; i < n; i++) {
        size_t l;
        void *d = J(asc[i], &l);
        ndb_doc_val v;
        ndb_doc_root(d, l, &v);
        cr_assert(kenc_value(&k[i], &v, false));
        cr_assert(kenc_value(&kd[i], &v, true));
        free(d);
    }
    for (size_t i = 0; i + 1 < n; i++) {
        cr_assert_eq(cmpj(asc[i], asc[i + 1]), -1, "%s < %s", asc[i], asc[i + 1]);
        cr_assert_eq(k[i].len, k[i + 1].len);
        cr_assert(memcmp(k[i].data, k[i + 1].data, k[i].len) < 0, "key %s < %s", asc[i], asc[i + 1]);
        cr_assert(memcmp(kd[i].data, kd[i + 1].data, kd[i].len) > 0, "desc key %s > %s", asc[i], asc[i + 1]);
    }
    for (size_t i = 0; i < n; i++) {
        dbuf_free(&k[i]);
        dbuf_free(&kd[i]);
    }
    /* equality and hashing: an int64 equals the double of the same value */
    uint8_t s1[16], s2[16];
    ndb_doc_val a, b;
    val_make_int(&a, s1, (int64_t)1 << 60);
    val_make_double(&b, s2, 1152921504606846976.0);
    cr_assert_eq(b.type, NDB_DOC_DOUBLE);
    cr_assert(val_equal(&a, &b));
    cr_assert_eq(val_hash(&a), val_hash(&b));
    val_make_int(&a, s1, ((int64_t)1 << 60) + 1);
    cr_assert(!val_equal(&a, &b));
}

/* engine/json_text.h: the escapes and number text every JSON writer shares. */
Test(json_text, escapes_quotes_backslashes_and_control_bytes_only)
{
    char e[6];
    cr_assert_eq(ndb_json_escape('"', e), 2);
    cr_assert(memcmp(e, "\\\"", 2) == 0);
    cr_assert_eq(ndb_json_escape('\\', e), 2);
    cr_assert(memcmp(e, "\\\\", 2) == 0);
    cr_assert_eq(ndb_json_escape('\n', e), 2);
    cr_assert(memcmp(e, "\\n", 2) == 0);
    cr_assert_eq(ndb_json_escape('\b', e), 2);
    cr_assert(memcmp(e, "\\b", 2) == 0);
    cr_assert_eq(ndb_json_escape(0x01, e), 6);
    cr_assert(memcmp(e, "\\u0001", 6) == 0);
    cr_assert_eq(ndb_json_escape(0x1f, e), 6);
    cr_assert(memcmp(e, "\\u001f", 6) == 0);
    for (unsigned c = 0x20; c < 0x100; c++)
        cr_assert_eq(ndb_json_escape((unsigned char)c, e), c == '"' || c == '\\' ? 2u : 0u, "byte %u", c);
}

Test(json_text, shortest_text_reads_back_as_the_same_double)
{
    char t[40];
    ndb_json_shortest(t, sizeof t, 0.1, false);
    cr_assert_str_eq(t, "0.1");
    ndb_json_shortest(t, sizeof t, 1.0 / 3, false);
    cr_assert_str_eq(t, "0.3333333333333333");
    ndb_json_shortest(t, sizeof t, (float)0.1, true);
    cr_assert_str_eq(t, "0.1");
    ndb_json_shortest(t, sizeof t, 1e21, false);
    cr_assert_str_eq(t, "1e+21");
    uint64_t x = 88172645463325252u; /* xorshift: finite doubles of every exponent */
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (d != d || d - d != 0) /* NaN, infinities */
            continue;
        int n = ndb_json_shortest(t, sizeof t, d, false);
        cr_assert(n > 0 && (size_t)n < sizeof t);
        cr_assert(strtod(t, NULL) == d, "%s does not read back as %a", t, d);
    }
}
