/* Version edits, manifest logging and recovery, CURRENT switching. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "dbformat.h"
#include "testutil.h"
#include "version.h"

static char *dir;
static void setup(void) { dir = tu_tmpdir("version"); }
static void teardown(void) { tu_rmdir(dir); }
TestSuite(version, .init = setup, .fini = teardown);

static kv_slice ik(char *buf, const char *u, uint64_t seq)
{
    size_t n = strlen(u);
    memcpy(buf, u, n);
    put_fixed64(buf + n, ikey_pack(seq, KV_TYPE_VALUE));
    return (kv_slice){buf, n + 8};
}

static kv_vset *new_vs(void)
{
    kv_table_opts o = {4096, 10, NDB_KV_COMPRESS_NONE};
    kv_vset *vs;
    cr_assert_eq(kv_vset_new(kv_env_posix(), dir, NULL, &o, 1 << 20, 4, 100, &vs), NDB_OK);
    return vs;
}

Test(version, edit_encode_decode_roundtrip)
{
    kv_vset *vs = new_vs();
    kv_edit e;
    kv_edit_init(&e);
    e.has_log = e.has_next = e.has_seq = 1;
    e.log_number = 7;
    e.next_file = 9;
    e.last_seq = 12345;
    char a[32], b[32];
    kv_fmeta *f = kv_fmeta_new(vs, 8, 4096, ik(a, "aaa", 1), ik(b, "zzz", 2));
    kv_edit_add_file(&e, 2, f);
    kv_fmeta_unref(f);
    kv_edit_del_file(&e, 1, 3);
    char *buf;
    size_t n;
    cr_assert_eq(kv_edit_encode(&e, &buf, &n), NDB_OK);
    kv_edit d;
    cr_assert_eq(kv_edit_decode(vs, buf, n, &d), NDB_OK);
    cr_assert(d.has_log && d.log_number == 7 && d.next_file == 9 && d.last_seq == 12345);
    cr_assert(d.nadd == 1 && d.add[0].level == 2 && d.add[0].f->number == 8 && d.add[0].f->size == 4096);
    cr_assert(d.ndel == 1 && d.del[0].level == 1 && d.del[0].number == 3);
    /* every truncation of the encoding is rejected or decodes to less, never crashes */
    for (size_t cut = 0; cut < n; cut++) {
        kv_edit x;
        if (kv_edit_decode(vs, buf, cut, &x) == NDB_OK) kv_edit_destroy(&x);
    }
    free(buf);
    kv_edit_destroy(&d);
    kv_edit_destroy(&e);
    kv_vset_free(vs);
}

Test(version, log_apply_recover)
{
    kv_vset *vs = new_vs();
    cr_assert_eq(kv_vset_recover(vs, NULL), NDB_ENOTFOUND);
    char a[32], b[32];
    for (int i = 0; i < 5; i++) {
        kv_edit e;
        kv_edit_init(&e);
        char lo[8], hi[8];
        snprintf(lo, sizeof lo, "k%d0", i);
        snprintf(hi, sizeof hi, "k%d9", i);
        kv_fmeta *f = kv_fmeta_new(vs, 100 + (uint64_t)i, 1000, ik(a, lo, 1), ik(b, hi, 1));
        kv_edit_add_file(&e, 1, f);
        kv_fmeta_unref(f);
        e.has_log = 1;
        e.log_number = 50 + (uint64_t)i;
        cr_assert_eq(kv_vset_log_and_apply(vs, &e, NULL), NDB_OK);
        kv_edit_destroy(&e);
    }
    kv_edit e;
    kv_edit_init(&e);
    kv_edit_del_file(&e, 1, 102);
    cr_assert_eq(kv_vset_log_and_apply(vs, &e, NULL), NDB_OK);
    kv_edit_destroy(&e);
    /* overlapping files in a sorted level are refused */
    kv_edit_init(&e);
    kv_fmeta *bad = kv_fmeta_new(vs, 200, 10, ik(a, "k05", 1), ik(b, "k15", 1));
    kv_edit_add_file(&e, 1, bad);
    kv_fmeta_unref(bad);
    cr_assert_eq(kv_vset_log_and_apply(vs, &e, NULL), NDB_ECORRUPT);
    kv_edit_destroy(&e);
    uint64_t next = vs->next_file;
    kv_vset_free(vs);

    vs = new_vs();
    cr_assert_eq(kv_vset_recover(vs, NULL), NDB_OK);
    cr_assert_eq(vs->current->nfiles[1], 4);
    cr_assert_eq(vs->current->bytes[1], 4000);
    cr_assert_eq(vs->log_number, 54);
    cr_assert_geq(vs->next_file, next);
    cr_assert_eq(vs->current->files[1][0]->number, 100);
    cr_assert_eq(vs->current->files[1][2]->number, 103);
    kv_vset_free(vs);
}
