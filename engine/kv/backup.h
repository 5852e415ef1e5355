/*
 * backup.h — a backup's own formats (internal): the BACKUP listing that a
 * complete backup ends with, and the ustar headers of an archive. Byte and
 * line layouts: FORMAT.md "Backups". backup.c writes them, restore.c reads
 * them; both go through the kv_env file interface.
 *
 * Invariants: a listing names only files a kv directory holds (bk_name_ok:
 * NNNNNN.sst, NNNNNN.wal, MANIFEST-NNNNNN, CURRENT), each once, so a
 * restore never writes outside its directory; every number read from a
 * listing or a tar header is bounded before use.
 */
#ifndef KV_BACKUP_H
#define KV_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "env.h"
#include "ndb_status.h"

/* The listing's file name in a backup directory and the last entry of an archive. */
#define BK_LISTING "BACKUP"
/* Its first line. */
#define BK_MAGIC "nexadb-backup 1"
#define BK_MAX_LISTING (64u << 20)
#define BK_MAX_FILES 1000000u
#define BK_NAME_MAX 31 /* the longest name bk_name_ok accepts */
#define BK_TAR_BLOCK 512
/* A kv database's identity (IDENTITY): 32 lower-case hex digits. */
#define BK_IDENTITY_LEN 32

typedef struct bk_file {
    char name[BK_NAME_MAX + 1];
    uint64_t size;
    uint32_t crc;  /* CRC-32C of the file's bytes (not masked) */
    int in_base;   /* archives: not in this archive; a previous backup holds it */
} bk_file;

typedef struct bk_listing {
    char identity[BK_IDENTITY_LEN + 1]; /* of the database backed up */
    uint64_t sequence;                  /* the log point: every write <= it, none after */
    int64_t created;                    /* Unix seconds */
    bk_file *f;
    size_t n, cap;
} bk_listing;

/* 1 if name is a file a kv directory holds and a backup may carry. */
int bk_name_ok(const char *name);

ndb_status bk_listing_add(bk_listing *l, const char *name, uint64_t size, uint32_t crc, int in_base);
/* The entry for name, or NULL. */
const bk_file *bk_listing_find(const bk_listing *l, const char *name);
/* The listing's text, ending with its checksum line: caller frees *out with free(). */
ndb_status bk_listing_encode(const bk_listing *l, char **out, size_t *len);
/* Parses a listing's text (hostile): NDB_ECORRUPT with msg naming what is
 * wrong. On success the caller frees l with bk_listing_free. */
ndb_status bk_listing_parse(const char *p, size_t n, bk_listing *l, ndb_errmsg *msg);
void bk_listing_free(bk_listing *l);

/* A ustar header for a regular file name (at most 100 bytes) of size bytes, mode 0600. */
void bk_tar_header(char h[BK_TAR_BLOCK], const char *name, uint64_t size, int64_t mtime);
/* Reads a header block: *end 1 for an all-zero block (the archive's end),
 * else the regular file's name and size. NDB_ECORRUPT for a bad checksum,
 * another entry type or a malformed field. */
ndb_status bk_tar_parse(const char h[BK_TAR_BLOCK], char name[101], uint64_t *size, int *end);
/* Zero bytes that pad an entry of size bytes to a whole block. */
static inline size_t bk_tar_pad(uint64_t size) { return (size_t)((BK_TAR_BLOCK - size % BK_TAR_BLOCK) % BK_TAR_BLOCK); }

/* Removes dir and the files in it (flat: a backup or a restore's staging directory). */
void bk_remove_tree(kv_env *env, const char *dir);

/* Reads <dir>/IDENTITY into id (BK_IDENTITY_LEN + 1 bytes); NDB_ENOTFOUND
 * when there is none, NDB_ECORRUPT when it is malformed. */
ndb_status bk_identity_read(kv_env *env, const char *dir, char *id);
/* Writes a fresh random identity to <dir>/IDENTITY (durably) and into id. */
ndb_status bk_identity_new(kv_env *env, const char *dir, char *id);

#endif /* KV_BACKUP_H */
