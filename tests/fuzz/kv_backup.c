/*
 * kv_backup.c — fuzzes what reads a backup (engine/kv/restore.c, bkformat.c):
 * the BACKUP listing parser and, through ndb_kv_backup_verify, an archive's
 * tar headers, entry bounds and every file's check against its listing.
 * Input: byte 0 (bit 0: the rest is an archive file to verify; else a
 * listing's text, with bit 1: its last "crc" line recomputed first, so
 * mutations reach the lines behind the checksum).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "crc32c.h"
#include "fuzz_util.h"
#include "ndb_kv.h"

/* Rewrites the checksum of a listing that ends in "crc xxxxxxxx\n". */
static void fix_crc(char *p, size_t n)
{
    if (n < 13 || memcmp(p + n - 13, "crc ", 4) != 0 || p[n - 1] != '\n')
        return;
    char hex[9];
    snprintf(hex, sizeof hex, "%08x", crc32c(p, n - 13));
    memcpy(p + n - 9, hex, 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t mode = fz_byte(&in);
    if (mode & 1) {
        const char *path = fz_write("backup.tar", in.p, in.n);
        ndb_kv_backup_info info;
        ndb_errmsg msg;
        if (ndb_kv_backup_verify(path, NULL, 0, &info, &msg) == NDB_OK && info.files == 0)
            abort(); /* a whole backup names CURRENT at least */
        return 0;
    }
    char *buf = malloc(in.n ? in.n : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, in.p, in.n);
    if (mode & 2)
        fix_crc(buf, in.n);
    bk_listing l;
    ndb_errmsg msg;
    if (bk_listing_parse(buf, in.n, &l, &msg) == NDB_OK) {
        char *text;
        size_t len;
        /* what parses encodes back to text that parses to the same */
        bk_listing again;
        if (bk_listing_encode(&l, &text, &len) != NDB_OK)
            abort();
        if (bk_listing_parse(text, len, &again, &msg) != NDB_OK || again.n != l.n || again.sequence != l.sequence)
            abort();
        for (size_t i = 0; i < l.n; i++)
            if (!bk_name_ok(l.f[i].name) || strcmp(l.f[i].name, again.f[i].name) != 0)
                abort();
        free(text);
        bk_listing_free(&again);
        bk_listing_free(&l);
    }
    free(buf);
    return 0;
}
