/*
 * entry.h — the bytes of one Raft entry: a group of commands (internal;
 * format in README.md "Entries").
 *
 *   offset  size  field
 *   0       4     magic "NDBC"
 *   4       4     version (1)
 *   8       8     proposer's node id
 *   16      8     proposer's boot nonce (random per process start)
 *   24      8     group number (per boot)
 *   32      8     wall clock of the leader, ms since the epoch (signed)
 *   40      4     number of commands
 *   44      4     flags: ENTRY_ANNOUNCE (1), others zero
 *   48      ...   each command: 4-byte length, its bytes, zeros to a multiple of 8
 *                 (length field included)
 *
 * Integers are little-endian. An entry is at most ENTRY_MAX bytes.
 */
#ifndef NDB_CLUSTER_ENTRY_H
#define NDB_CLUSTER_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ndb_status.h"

#define ENTRY_HEADER 48
#define ENTRY_MAX (64u << 20)
/* A leader's first entry of its term: its one command is the address
 * clients reach it at, which every node then names in redirects and status.
 * Not handed to apply. */
#define ENTRY_ANNOUNCE 1u

typedef struct entry_header {
    uint64_t proposer, boot, group;
    int64_t wall_ms;
    uint32_t ncmd;
    uint32_t flags;
} entry_header;

/* The bytes a command of len bytes takes in an entry: its length and its
 * bytes, padded so every command (and the entry) ends on 8 bytes, as Raft's
 * log requires. */
static inline size_t entry_cmd_size(size_t len) { return (4 + len + 7) & ~(size_t)7; }

/* Writes the header into out (ENTRY_HEADER bytes). */
void entry_put_header(uint8_t *out, const entry_header *h);

/* Appends one command at *off (out has room: entry_cmd_size(len)). */
void entry_put_cmd(uint8_t *out, size_t *off, const void *cmd, size_t len);

/* Reads the header of an entry of len bytes; NDB_ECORRUPT (msg says what)
 * when it is not one, or its commands do not fit in it exactly. */
ndb_status entry_parse(const uint8_t *buf, size_t len, entry_header *h, ndb_errmsg *msg);

/* The command at *off (after entry_parse accepted buf); moves *off past it. */
void entry_next_cmd(const uint8_t *buf, size_t *off, const void **cmd, size_t *len);

#endif /* NDB_CLUSTER_ENTRY_H */
