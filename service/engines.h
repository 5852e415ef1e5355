/*
 * engines.h — opening, closing and replacing the engines (engines.c).
 */
#ifndef SVC_ENGINES_H
#define SVC_ENGINES_H

#include <stdbool.h>
#include <stdint.h>

#include "app.h"

/* Opens the storage engine under base/kv (replaying its WAL), then the
 * document layer and the vector layer over it (segments in base/vseg). base
 * is the data directory, or in cluster mode the state the log rebuilds
 * (<data-dir>/cluster/state), whose storage engine needs no fsync of its own:
 * the Raft log is the record. */
ndb_status svc_engines_open(svc_app *app, const char *base, bool cluster, uint32_t max_open_tables,
                           ndb_errmsg *msg);

/* Closes in the reverse order of opening: vectors, documents, storage. */
void svc_engines_close(svc_app *app);

/* Cluster mode: calls that use the engines hold them (shared) for as long
 * as they do; svc_engines_load waits for them. No-ops on a single node. */
void svc_engines_hold(svc_app *app);
/* As svc_engines_hold without waiting: false (holding nothing) while a snapshot is being loaded. */
bool svc_engines_try_hold(svc_app *app);
void svc_engines_release(svc_app *app);

/* Hard-links the vector segment and graph files of <from_base>/vseg (a
 * directory per collection) into <to_base>/vseg, which is created; files
 * being written are left out. NDB_OK when there are none. Segments never
 * change once written, so a snapshot keeps them this way, and a node that
 * loads it opens them (checked against kv) instead of rebuilding them. */
ndb_status svc_link_segments(const char *from_base, const char *to_base, ndb_errmsg *msg);

/* Cluster mode: replaces the engines' state by a kv backup (a snapshot):
 * change streams are told to end, calls holding the engines finish (new ones
 * wait), the engines close, the backup is restored into the emptied state
 * directory, and they open again. */
ndb_status svc_engines_load(svc_app *app, const char *backup, ndb_errmsg *msg);

/* rm -rf dir (NDB_OK when it is not there). */
ndb_status svc_remove_dir(const char *dir, ndb_errmsg *msg);

/* svc_remove_dir, then mkdir 0700. */
ndb_status svc_empty_dir(const char *dir, ndb_errmsg *msg);

#endif /* SVC_ENGINES_H */
