/*
 * doc_agg.c — fuzzes the aggregation pipeline parser and executor over a
 * small collection (30 documents in a kv store in the scratch directory,
 * created once). Input: the pipeline as JSON text (an array of stages);
 * every result document must be valid.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"
#include "ndb_doc.h"
#include "ndb_kv.h"

static ndb_doc_db *db;

static void quiet(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
}

static void setup(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/kv", fz_dir());
    ndb_kv_options ko;
    ndb_kv_options_init(&ko);
    ko.durability = NDB_KV_NONE;
    ndb_kv *kv = NULL;
    ndb_errmsg msg;
    if (ndb_kv_open(dir, &ko, &kv, &msg) != NDB_OK)
        abort();
    ndb_doc_options o;
    ndb_doc_options_init(&o);
    o.agg_mem_bytes = 4u << 20;
    o.log = quiet;
    if (ndb_doc_open(kv, &o, &db, &msg) != NDB_OK)
        abort();
    static const char *cities[] = {"Paris", "Oslo", "Lima", "Kyiv"};
    for (int i = 0; i < 30; i++) {
        char json[512];
        snprintf(json, sizeof json,
                 "{\"name\":\"u%d\",\"age\":%d,\"score\":%g,\"city\":\"%s\",\"tags\":[\"t%d\",\"t%d\"],"
                 "\"profile\":{\"level\":%d,\"active\":%s},\"n\":null,\"items\":[{\"q\":%d,\"p\":%d.5}]}",
                 i, 18 + i % 40, i * 1.25, cities[i % 4], i % 3, i % 5, i % 7, i % 2 ? "true" : "false", i, i);
        void *doc;
        size_t len;
        if (ndb_doc_from_json(json, strlen(json), &doc, &len, &msg) != NDB_OK)
            abort();
        const void *docs[1] = {doc};
        if (ndb_doc_insert(db, "c", docs, &len, 1, NULL, NULL, &msg) != NDB_OK)
            abort();
        free(doc);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (db == NULL)
        setup();
    void *pipe = NULL;
    size_t plen = 0;
    ndb_errmsg msg;
    if (ndb_doc_from_json((const char *)data, size, &pipe, &plen, &msg) != NDB_OK)
        return 0;
    ndb_doc_cursor *c = NULL;
    if (ndb_doc_aggregate(db, "c", pipe, plen, NULL, &c, &msg) == NDB_OK) {
        for (int i = 0; i < 2000; i++) {
            const void *doc = NULL;
            size_t len = 0;
            if (ndb_doc_cursor_next(c, &doc, &len, &msg) != NDB_OK || doc == NULL)
                break;
            if (ndb_doc_validate(doc, len, &msg) != NDB_OK)
                abort(); /* the pipeline produced a malformed document */
        }
        ndb_doc_cursor_free(c);
    }
    /* the same bytes as a find filter and sort, through the planner */
    ndb_doc_find_opts fo = {.filter = pipe, .filter_len = plen, .limit = 50};
    if (ndb_doc_find(db, "c", &fo, &c, &msg) == NDB_OK) {
        const void *doc;
        size_t len;
        while (ndb_doc_cursor_next(c, &doc, &len, &msg) == NDB_OK && doc != NULL)
            ;
        ndb_doc_cursor_free(c);
    }
    free(pipe);
    return 0;
}
