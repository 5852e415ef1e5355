/*
 * kv_manifest.c — fuzzes manifest recovery: CURRENT names MANIFEST-000001,
 * whose bytes are the input; kv_vset_recover replays its version edits
 * (kv_edit_decode) and builds the version. Then kv_edit_decode runs once
 * more on the raw input as a single edit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "env.h"
#include "fuzz_kv.h"
#include "fuzz_util.h"
#include "version.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/m", fz_dir());
    mkdir(dir, 0700);
    fz_clear(dir);
    fz_write("m/CURRENT", "MANIFEST-000001\n", 16);
    fz_in in = {data, size};
    uint8_t mode = fz_byte(&in);
    char *buf = malloc(in.n ? in.n : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, in.p, in.n);
    if (mode & 1)
        fz_fix_log_crcs(buf, in.n);
    fz_write("m/MANIFEST-000001", buf, in.n);

    kv_table_opts topts = {.block_bytes = 4096, .bloom_bits = 10, .compression = 0};
    kv_vset *vs = NULL;
    if (kv_vset_new(kv_env_posix(), dir, NULL, &topts, 10u << 20, 4, 64, &vs) != NDB_OK)
    {
        free(buf);
        return 0;
    }
    ndb_errmsg msg;
    if (kv_vset_recover(vs, &msg) == NDB_OK) {
        /* the recovered version must be walkable */
        kv_version *v = vs->current;
        for (int l = 0; v != NULL && l < NDB_KV_LEVELS; l++)
            for (size_t i = 0; i < v->nfiles[l]; i++)
                if (v->files[l][i] == NULL || v->files[l][i]->slen < 8)
                    abort();
    }
    kv_edit e;
    if (in.n > WAL_HEADER && kv_edit_decode(vs, buf + WAL_HEADER, in.n - WAL_HEADER, &e) == NDB_OK) /* frees e itself on failure */
        kv_edit_destroy(&e);
    kv_vset_free(vs);
    free(buf);
    return 0;
}
