/*
 * wal.h — length-prefixed, CRC32C-checked log records (internal). Used for
 * WAL segments (record type WAL_BATCH) and the manifest (WAL_EDIT).
 * Byte layout: FORMAT.md "Log records".
 *
 * Thread safety: a writer or reader belongs to one thread at a time, except
 * that kv_wal_sync may run on one thread while another appends (the WAL's
 * group commit): the fsync covers at least every record whose append returned
 * before it started.
 */
#ifndef KV_WAL_H
#define KV_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "env.h"

#define WAL_HEADER 9
#define WAL_MAX_RECORD (256u * 1024u * 1024u) /* larger lengths are corrupt */
enum { WAL_BATCH = 1, WAL_EDIT = 2 };

typedef struct kv_wal_writer kv_wal_writer;

/* Creates (truncates) path. Caller closes with kv_wal_close(). */
ndb_status kv_wal_create(kv_env *env, const char *path, kv_wal_writer **out);
/* Appends one record whose payload is a (alen bytes) followed by b (blen
 * bytes), with a single write: a caller can put a header in front of a
 * payload it does not own without copying it first. */
ndb_status kv_wal_add_parts(kv_wal_writer *w, int type, const void *a, size_t alen, const void *b, size_t blen);
/* Appends one record. */
static inline ndb_status kv_wal_add(kv_wal_writer *w, int type, const void *payload, size_t n)
{
    return kv_wal_add_parts(w, type, payload, n, NULL, 0);
}
/* The header of a record holding payload (n <= WAL_MAX_RECORD bytes): the
 * record is these WAL_HEADER bytes followed by the payload. For a log made
 * in memory (a backup's manifest). */
void kv_wal_header(char h[WAL_HEADER], int type, const void *payload, size_t n);
ndb_status kv_wal_sync(kv_wal_writer *w);
uint64_t kv_wal_size(const kv_wal_writer *w);
/* Closes the file and frees w (NULL is a no-op). Does not sync. */
ndb_status kv_wal_close(kv_wal_writer *w);

typedef struct kv_wal_reader kv_wal_reader;

/* Caller frees with kv_wal_reader_free(). */
ndb_status kv_wal_reader_open(kv_env *env, const char *path, kv_wal_reader **out);
/*
 * Next record: NDB_OK with *payload borrowed until the next call;
 * NDB_ENOTFOUND at a clean end; NDB_ECORRUPT at a torn or damaged record
 * (reading stops there; kv_wal_reader_skipped() tells how many bytes of the
 * file were not replayed); NDB_EIO / NDB_ENOMEM on failure.
 */
ndb_status kv_wal_read(kv_wal_reader *r, int *type, const char **payload, size_t *n);
uint64_t kv_wal_reader_skipped(const kv_wal_reader *r);
/* After NDB_ECORRUPT: 1 if the bad record ran past the end of the file (an
 * append cut short), 0 if a complete record failed its checksum or bounds. */
int kv_wal_reader_torn(const kv_wal_reader *r);
uint64_t kv_wal_reader_offset(const kv_wal_reader *r); /* end of the last good record */
void kv_wal_reader_free(kv_wal_reader *r);

#endif /* KV_WAL_H */
