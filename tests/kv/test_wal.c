#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "env.h"
#include "testutil.h"
#include "wal.h"

static char *dir;
static char path[4200];
static void setup(void)
{
    dir = tu_tmpdir("wal");
    snprintf(path, sizeof path, "%s/000001.wal", dir);
}
static void teardown(void) { tu_rmdir(dir); }
TestSuite(wal, .init = setup, .fini = teardown);

static void write_records(int n)
{
    kv_wal_writer *w;
    cr_assert_eq(kv_wal_create(kv_env_posix(), path, &w), NDB_OK);
    char buf[3000];
    for (int i = 0; i < n; i++) {
        size_t len = (size_t)(i * 131) % sizeof buf;
        memset(buf, 'a' + i % 26, len);
        cr_assert_eq(kv_wal_add(w, WAL_BATCH, buf, len), NDB_OK);
    }
    cr_assert_eq(kv_wal_sync(w), NDB_OK);
    cr_assert_eq(kv_wal_close(w), NDB_OK);
}

static int read_all(uint64_t *skipped, ndb_status *end)
{
    kv_wal_reader *r;
    cr_assert_eq(kv_wal_reader_open(kv_env_posix(), path, &r), NDB_OK);
    int type, n = 0;
    const char *p;
    size_t len;
    ndb_status st;
    while ((st = kv_wal_read(r, &type, &p, &len)) == NDB_OK) {
        cr_assert_eq(type, WAL_BATCH);
        cr_assert_eq(len, (size_t)(n * 131) % 3000);
        for (size_t j = 0; j < len; j++) cr_assert_eq(p[j], 'a' + n % 26);
        n++;
    }
    *end = st;
    *skipped = kv_wal_reader_skipped(r);
    kv_wal_reader_free(r);
    return n;
}

Test(wal, roundtrip)
{
    write_records(2000); /* crosses the reader's 1 MiB buffer */
    uint64_t sk;
    ndb_status end;
    cr_assert_eq(read_all(&sk, &end), 2000);
    cr_assert_eq(end, NDB_ENOTFOUND);
    cr_assert_eq(sk, 0);
}

Test(wal, truncation_at_every_tail_offset)
{
    write_records(5);
    kv_file *f;
    uint64_t size;
    cr_assert_eq(kv_env_posix()->v->open_read(kv_env_posix(), path, &f), NDB_OK);
    kv_file_size(f, &size);
    kv_file_close(f);
    uint64_t last_len = (4 * 131) % 3000 + WAL_HEADER;
    for (uint64_t cut = size - last_len; cut < size; cut++) {
        write_records(5); /* a cut destroys what follows it: start whole each time */
        cr_assert_eq(kv_env_posix()->v->truncate(kv_env_posix(), path, cut), NDB_OK);
        uint64_t sk;
        ndb_status end;
        int n = read_all(&sk, &end);
        cr_assert_eq(n, 4, "cut %llu: %d records", (unsigned long long)cut, n);
        if (cut == size - last_len) {
            cr_assert_eq(end, NDB_ENOTFOUND);
        } else {
            cr_assert_eq(end, NDB_ECORRUPT, "cut %llu", (unsigned long long)cut);
            cr_assert_eq(sk, cut - (size - last_len));
        }
    }
}

static uint64_t file_size(void)
{
    kv_file *f;
    uint64_t size;
    cr_assert_eq(kv_env_posix()->v->open_read(kv_env_posix(), path, &f), NDB_OK);
    cr_assert_eq(kv_file_size(f, &size), NDB_OK);
    kv_file_close(f);
    return size;
}

/* A crash leaves a log with its reserve: zeros after the last record. */
Test(wal, reserved_zeros_are_a_clean_end)
{
    write_records(300);
    uint64_t size = file_size();
    cr_assert_eq(kv_env_posix()->v->truncate(kv_env_posix(), path, size + 3 * KV_LOG_CHUNK / 2), NDB_OK);
    uint64_t sk;
    ndb_status end;
    cr_assert_eq(read_all(&sk, &end), 300);
    cr_assert_eq(end, NDB_ENOTFOUND);
    cr_assert_eq(sk, 0);
}

/* Zeros and then data: unsynced appends reached the disk out of order. */
Test(wal, data_after_zeros_is_a_torn_tail)
{
    write_records(300);
    uint64_t size = file_size();
    uint64_t at = size + KV_LOG_CHUNK + 100; /* past the reader's 1 MiB buffer */
    cr_assert_eq(kv_env_posix()->v->truncate(kv_env_posix(), path, at + 1), NDB_OK);
    FILE *fp = fopen(path, "r+b");
    cr_assert_not_null(fp);
    cr_assert_eq(fseek(fp, (long)at, SEEK_SET), 0);
    cr_assert_eq(fputc('x', fp), 'x');
    cr_assert_eq(fclose(fp), 0);
    uint64_t sk;
    ndb_status end;
    cr_assert_eq(read_all(&sk, &end), 300);
    cr_assert_eq(end, NDB_ECORRUPT);
    cr_assert_eq(sk, at + 1 - size);
}

/* The writer reserves ahead and writes through a mapping; close trims the
 * file to its records, and appends that cross chunk boundaries read back. */
Test(wal, log_files_are_trimmed_on_close)
{
    kv_wal_writer *w;
    cr_assert_eq(kv_wal_create(kv_env_posix(), path, &w), NDB_OK);
    static char big[KV_LOG_CHUNK + 12345];
    memset(big, 'q', sizeof big);
    cr_assert_eq(kv_wal_add(w, WAL_BATCH, "x", 1), NDB_OK);
    cr_assert_eq(kv_wal_add(w, WAL_BATCH, big, sizeof big), NDB_OK);
    cr_assert_eq(kv_wal_add(w, WAL_EDIT, "yz", 2), NDB_OK);
    uint64_t want = 3 * WAL_HEADER + 1 + sizeof big + 2;
    cr_assert_eq(kv_wal_size(w), want);
    cr_assert_eq(kv_wal_sync(w), NDB_OK);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_geq((uint64_t)st.st_size, want); /* reserved ahead while open */
    cr_assert_eq(kv_wal_close(w), NDB_OK);
    cr_assert_eq(file_size(), want);

    kv_wal_reader *r;
    cr_assert_eq(kv_wal_reader_open(kv_env_posix(), path, &r), NDB_OK);
    int type;
    const char *p;
    size_t len;
    cr_assert_eq(kv_wal_read(r, &type, &p, &len), NDB_OK);
    cr_assert(type == WAL_BATCH && len == 1 && p[0] == 'x');
    cr_assert_eq(kv_wal_read(r, &type, &p, &len), NDB_OK);
    cr_assert(type == WAL_BATCH && len == sizeof big && p[0] == 'q' && p[len - 1] == 'q');
    cr_assert_eq(kv_wal_read(r, &type, &p, &len), NDB_OK);
    cr_assert(type == WAL_EDIT && len == 2 && memcmp(p, "yz", 2) == 0);
    cr_assert_eq(kv_wal_read(r, &type, &p, &len), NDB_ENOTFOUND);
    kv_wal_reader_free(r);
}
