/* fuzz_app.c — an in-process server application for the fuzz targets (see fuzz_app.h). */
#include "fuzz_app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dispatch.h"
#include "fuzz_util.h"
#include "log.h"
#include "metrics.h"

static svc_config cfg;
static svc_app app;
static int ready;

static void die(const char *what, const ndb_errmsg *msg)
{
    fprintf(stderr, "fuzz harness: %s: %s\n", what, msg->text);
    abort();
}

static void quiet(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
}

static void close_all(void)
{
    if (app.vec != NULL)
        ndb_vec_close(app.vec);
    if (app.doc != NULL)
        ndb_doc_close(app.doc);
    if (app.kv != NULL)
        (void)ndb_kv_close(app.kv);
    svc_auth_free(app.auth);
}

svc_app *fz_app(void)
{
    if (ready)
        return &app;
    ndb_errmsg msg = {{0}};
    char *argv[] = {"fuzz", NULL};
    if (svc_config_load(&cfg, 1, argv, &msg) != NDB_OK)
        die("config", &msg);
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s/data", fz_dir());
    mkdir(cfg.data_dir, 0700);
    snprintf(cfg.api_key, sizeof cfg.api_key, "%s", FZ_API_KEY);
    cfg.api_key_file[0] = '\0';
    snprintf(cfg.http_addr, sizeof cfg.http_addr, "127.0.0.1:0");
    snprintf(cfg.log_level, sizeof cfg.log_level, "error");
    cfg.max_message_bytes = 4 << 20;
    cfg.max_body_bytes = 4 << 20;
    cfg.http_threads = 2;
    cfg.http_timeout_s = 5;
    svc_log_threshold = (svc_log_level)(SVC_LOG_ERROR + 1); /* silence: fuzzing makes errors by design */

    app.cfg = &cfg;
    app.version = "fuzz";
    /* The transports cap their ports within the budget main.c would derive (conn_gate.h). */
    app.gate = (svc_gate_config){.limit = 1024, .reserve = 192, .max_connections = 64};
    if (svc_gate_configure(&app.gate, &msg) != NDB_OK)
        die("connection gate", &msg);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    app.started_at_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (svc_auth_load(&cfg, &app.auth, &msg) != NDB_OK)
        die("keys", &msg);
    if (svc_dispatch_init(&msg) != NDB_OK)
        die("dispatch", &msg);
    if (svc_metrics_init(&msg) != NDB_OK)
        die("metrics", &msg);

    char dir[4200];
    snprintf(dir, sizeof dir, "%s/kv", cfg.data_dir);
    ndb_kv_options ko;
    ndb_kv_options_init(&ko);
    ko.durability = NDB_KV_NONE;
    ko.memtable_bytes = 4 << 20;
    if (ndb_kv_open(dir, &ko, &app.kv, &msg) != NDB_OK)
        die("kv", &msg);
    ndb_doc_options dopt;
    ndb_doc_options_init(&dopt);
    dopt.agg_mem_bytes = 16 << 20;
    dopt.log = quiet;
    if (ndb_doc_open(app.kv, &dopt, &app.doc, &msg) != NDB_OK)
        die("doc", &msg);
    snprintf(dir, sizeof dir, "%s/vseg", cfg.data_dir);
    ndb_vec_options vo;
    ndb_vec_options_default(&vo);
    vo.threads = 1;
    vo.log = quiet;
    if (ndb_vec_open(app.kv, app.doc, dir, &vo, &app.vec, &msg) != NDB_OK)
        die("vectors", &msg);
    atomic_store(&app.state, SVC_SERVING);
    atexit(close_all);
    ready = 1;
    return &app;
}
