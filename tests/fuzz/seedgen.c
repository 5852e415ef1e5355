/*
 * seedgen.c — writes the binary seed corpora of the engine fuzz targets from
 * real engine output: WAL segments, SSTables (uncompressed, lz4, zstd),
 * manifests, a raw block, encoded documents, vector segment files.
 * Usage: fuzz_seedgen <tests/fuzz/corpus>. Run by hand when a format
 * changes; the output is committed (README.md).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block.h"
#include "coding.h"
#include "ndb_doc.h"
#include "ndb_kv.h"
#include "ndb_vec.h"

static const char *out;

static void put(const char *target, const char *name, uint8_t mode, int with_mode, const void *data, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", out, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (with_mode && fwrite(&mode, 1, 1, f) != 1) || (n && fwrite(data, 1, n, f) != n)) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    if (b == NULL || fread(b, 1, (size_t)len, f) != (size_t)len) {
        perror(path);
        exit(1);
    }
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void check(ndb_status st, const char *what)
{
    if (st != NDB_OK) {
        fprintf(stderr, "seedgen: %s: %s\n", what, ndb_strerror(st));
        exit(1);
    }
}

/* A kv store with a few thousand keys, flushed to tables; its files become seeds. */
static void kv_seeds(const char *tmp, ndb_kv_compression comp, const char *tag)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/kv-%s", tmp, tag);
    ndb_kv_options o;
    ndb_kv_options_init(&o);
    o.durability = NDB_KV_NONE;
    o.memtable_bytes = 32 << 10;
    o.block_bytes = 512;
    o.compression = comp;
    ndb_kv *kv;
    ndb_errmsg msg;
    check(ndb_kv_open(dir, &o, &kv, &msg), "kv open");
    for (int i = 0; i < 600; i++) {
        char k[32], v[64];
        int kl = snprintf(k, sizeof k, "key%d", i);
        int vl = snprintf(v, sizeof v, "value-%d-%s", i * 7, "aaaaaaaaaaaaaaaaaaaaaaaa");
        check(ndb_kv_put(kv, k, (size_t)kl, v, (size_t)vl), "put");
        if (i % 5 == 0)
            check(ndb_kv_delete(kv, k, (size_t)kl), "delete");
    }
    check(ndb_kv_flush(kv), "flush");
    for (int i = 0; i < 20; i++) { /* leave a short WAL behind */
        char k[32];
        int kl = snprintf(k, sizeof k, "tail%d", i);
        check(ndb_kv_put(kv, k, (size_t)kl, "v", 1), "put");
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    int nsst = 0;
    while ((e = readdir(d)) != NULL) {
        char path[2048], name[256];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t n;
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".sst") == 0 && nsst < 3) {
            char *b = slurp(path, &n);
            snprintf(name, sizeof name, "%s-%s-fixcrc", tag, e->d_name);
            put("kv_table", name, 4, 1, b, n);
            snprintf(name, sizeof name, "%s-%s-cache", tag, e->d_name);
            put("kv_table", name, 6, 1, b, n);
            free(b);
            nsst++;
        } else if (len > 4 && strcmp(e->d_name + len - 4, ".wal") == 0 && comp == NDB_KV_COMPRESS_NONE) {
            char *b = slurp(path, &n);
            snprintf(name, sizeof name, "%s-fixcrc", e->d_name);
            put("kv_wal", name, 1, 1, b, n);
            put("kv_wal", e->d_name, 0, 1, b, n);
            free(b);
        } else if (strncmp(e->d_name, "MANIFEST-", 9) == 0) {
            char *b = slurp(path, &n);
            snprintf(name, sizeof name, "%s-%s-fixcrc", tag, e->d_name);
            put("kv_manifest", name, 1, 1, b, n);
            free(b);
        }
    }
    closedir(d);
    check(ndb_kv_close(kv), "close");
}

static void block_seed(void)
{
    kv_block_builder b;
    kv_block_builder_init(&b, BLOCK_RESTART_INTERVAL);
    for (int i = 0; i < 40; i++) {
        char k[32];
        int kl = snprintf(k, sizeof k, "key%02d", i);
        put_fixed64(k + kl, ((uint64_t)(100 + i) << 8) | 1);
        kv_block_builder_add(&b, (kv_slice){k, (size_t)kl + 8}, (kv_slice){"val", 3});
    }
    kv_slice s = kv_block_builder_finish(&b);
    put("kv_table", "raw-block", 1, 1, s.data, s.len);
    kv_block_builder_destroy(&b);
}

static const char *docs_json[] = {
    "{\"name\":\"Alice\",\"age\":28,\"tags\":[\"a\",\"b\"],\"profile\":{\"city\":\"Paris\",\"score\":9.5},\"ok\":true,\"n\":null}",
    "[1,2.5,-3,\"x\",[],{},{\"a\":{\"b\":[0,1,{\"c\":\"d\"}]}}]",
    "{\"big\":9007199254740993,\"neg\":-0.0,\"exp\":1e300,\"tiny\":5e-324,\"u\":\"\\u00e9\\ud83d\\ude00\"}",
    "\"just a string\"",
};

static void doc_seeds(void)
{
    for (size_t i = 0; i < sizeof docs_json / sizeof docs_json[0]; i++) {
        void *doc;
        size_t len;
        ndb_errmsg msg;
        check(ndb_doc_from_json(docs_json[i], strlen(docs_json[i]), &doc, &len, &msg), "from_json");
        char name[64];
        snprintf(name, sizeof name, "enc-%zu", i);
        put("doc_codec", name, 0, 1, doc, len);
        snprintf(name, sizeof name, "json-%zu", i);
        put("doc_codec", name, 1, 1, docs_json[i], strlen(docs_json[i]));
        free(doc);
    }
}

static void quiet(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
}

static void vec_seeds(const char *tmp)
{
    char dir[1024];
    ndb_errmsg msg;
    ndb_kv *kv;
    ndb_doc_db *docs;
    ndb_vec_db *s;
    snprintf(dir, sizeof dir, "%s/veckv", tmp);
    check(ndb_kv_open(dir, NULL, &kv, &msg), "kv open");
    check(ndb_doc_open(kv, NULL, &docs, &msg), "doc open");
    ndb_vec_options o;
    ndb_vec_options_default(&o);
    o.segment_bytes = 64 * 20; /* a segment every 20 rows of 16 dims (64 bytes each) */
    o.log = quiet;
    snprintf(dir, sizeof dir, "%s/vseg", tmp);
    check(ndb_vec_open(kv, docs, dir, &o, &s, &msg), "vec open");
    check(ndb_vec_create(s, "v", 16, NDB_VEC_COSINE, NULL, &msg), "vec create");
    for (int i = 0; i < 45; i++) {
        float v[16];
        for (int j = 0; j < 16; j++)
            v[j] = (float)((i * 31 + j * 7) % 13) - 6.0f;
        char id[32];
        snprintf(id, sizeof id, "{\"_id\":\"doc-%d\"}", i);
        void *doc;
        size_t dl;
        check(ndb_doc_from_json(id, strlen(id), &doc, &dl, &msg), "vec doc");
        ndb_vec_item it = {doc, dl, v};
        check(ndb_vec_insert(s, "v", &it, 1, 16, NULL, &msg), "vec insert");
        free(doc);
        if (i % 9 == 0) {
            snprintf(id, sizeof id, "doc-%d", i);
            check(ndb_vec_delete(s, "v", id, &msg), "vec delete");
        }
    }
    ndb_vec_close(s);
    ndb_doc_close(docs);
    ndb_kv_close(kv);
    /* the segments are in vseg/<collection id>/ */
    DIR *top = opendir(dir);
    struct dirent *c;
    while (top && (c = readdir(top)) != NULL) {
        if (c->d_name[0] == '.')
            continue;
        char sub[1400];
        snprintf(sub, sizeof sub, "%s/%s", dir, c->d_name);
        DIR *d = opendir(sub);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            size_t n, len = strlen(e->d_name);
            if (len <= 5 || strcmp(e->d_name + len - 5, ".vseg") != 0)
                continue;
            char path[2800], name[300];
            snprintf(path, sizeof path, "%s/%s", sub, e->d_name);
            char *b = slurp(path, &n);
            snprintf(name, sizeof name, "%s-fixcrc", e->d_name);
            put("vec_seg", name, 2, 1, b, n);
            put("vec_seg", e->d_name, 0, 1, b, n);
            free(b);
        }
        if (d)
            closedir(d);
    }
    if (top)
        closedir(top);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
        return 2;
    }
    out = argv[1];
    char tmp[] = "/tmp/ndb-seedgen-XXXXXX";
    if (mkdtemp(tmp) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    kv_seeds(tmp, NDB_KV_COMPRESS_NONE, "plain");
    kv_seeds(tmp, NDB_KV_COMPRESS_LZ4, "lz4");
    kv_seeds(tmp, NDB_KV_COMPRESS_ZSTD, "zstd");
    block_seed();
    doc_seeds();
    vec_seeds(tmp);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    return system(cmd) == 0 ? 0 : 1;
}
