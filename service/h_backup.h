/* h_backup.h — AdminService/Backup (h_backup.c) and where it writes. */
#ifndef SVC_H_BACKUP_H
#define SVC_H_BACKUP_H

#include <stddef.h>

#include "handler.h"

/* The Backup handler (server-streaming; in AdminService's table). */
ndb_status svc_backup(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg);

/* Where named backups go: --backup-dir, or <data-dir>/backups; false when it does not fit. */
bool svc_backup_dir(const svc_config *cfg, char *out, size_t cap);

#endif /* SVC_H_BACKUP_H */
