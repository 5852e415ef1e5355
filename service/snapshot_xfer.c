/*
 * snapshot_xfer.c — moving a cluster snapshot between nodes: the
 * AdminService/ReadSnapshot handler that streams a snapshot's files, and the
 * gRPC client a node that lacks a snapshot fetches it with (snapshot_xfer.h).
 *
 * A snapshot is a directory of flat files (a kv backup: tables, WAL tail,
 * manifest, and the BACKUP listing with every file's size and CRC-32C). The
 * files go in pieces of at most 1 MiB, the listing last; the fetcher writes
 * them into "<dir>.fetching", syncs them, checks them against the listing
 * (ndb_kv_backup_verify) and only then renames the directory into place, so
 * a fetch cut short leaves nothing that looks complete.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engines.h"
#include "log.h"
#include "nexadb/v1/admin.pb-c.h"
#include "peer.h"
#include "snapshot_xfer.h"

#define PIECE ((size_t)1 << 20)
#define NAME_MAX_LEN 200

/* A snapshot's file name: plain, no directories, no dot files. */
static bool plain_name(const char *s, size_t n)
{
    if (n == 0 || n > NAME_MAX_LEN || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == '\0')
            return false;
    return true;
}

/* --------------------------------------------------------- serving */

ndb_status svc_snapshot_dir(const svc_app *app, uint64_t index, char *out, size_t cap, ndb_errmsg *msg)
{
    if ((size_t)snprintf(out, cap, "%s/cluster/snapshots/%020" PRIu64, app->cfg->data_dir, index) >= cap)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--data-dir: path too long");
    return NDB_OK;
}

bool svc_snapshot_complete(const char *dir)
{
    char p[4400];
    struct stat sb;
    return (size_t)snprintf(p, sizeof p, "%s/BACKUP", dir) < sizeof p && stat(p, &sb) == 0;
}


static ndb_status send_file(svc_ctx *ctx, const char *dir, const char *name, uint8_t *buf, ndb_errmsg *msg)
{
    char path[4600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ndb_errmsg_set(msg, NDB_EIO, "open %s: %s", path, strerror(errno));
    ndb_status st = NDB_OK;
    int64_t off = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, PIECE, off);
        if (n < 0) {
            st = ndb_errmsg_set(msg, NDB_EIO, "read %s: %s", path, strerror(errno));
            break;
        }
        if (n == 0 && off > 0)
            break;
        Nexadb__V1__ReadSnapshotResponse *r = svc_page_alloc(ctx, sizeof *r);
        if (r == NULL) {
            st = svc_oom(msg);
            break;
        }
        nexadb__v1__read_snapshot_response__init(r);
        r->file = (char *)name;
        r->offset = off;
        r->data.data = buf;
        r->data.len = (size_t)n;
        if ((st = svc_send(ctx, &r->base, msg)) != NDB_OK || n == 0)
            break; /* an empty file goes as one empty piece */
        off += n;
    }
    close(fd);
    return st;
}

ndb_status svc_read_snapshot(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    (void)resp;
    const Nexadb__V1__ReadSnapshotRequest *r = (const void *)req;
    svc_app *app = ctx->app;
    if (app->cluster == NULL)
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "this server is not a cluster node: it has no snapshots");
    if (r->index <= 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "index: a snapshot's log index, from 1");
    char dir[4300];
    ndb_status st = svc_snapshot_dir(app, (uint64_t)r->index, dir, sizeof dir, msg);
    if (st != NDB_OK)
        return st;
    if (!svc_snapshot_complete(dir))
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "no snapshot %" PRId64 " on this node (it keeps its last two)",
                              r->index);
    DIR *d = opendir(dir);
    if (d == NULL)
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "snapshot %" PRId64 ": %s", r->index, strerror(errno));
    uint8_t *buf = malloc(PIECE);
    if (buf == NULL) {
        closedir(d);
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    }
    struct stat sb; /* the kv backup's files; not the vector segments' directory, which stays on this node */
    for (struct dirent *de; st == NDB_OK && (de = readdir(d)) != NULL;)
        if (plain_name(de->d_name, strlen(de->d_name)) && strcmp(de->d_name, "BACKUP") != 0 &&
            fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode))
            st = send_file(ctx, dir, de->d_name, buf, msg);
    closedir(d);
    if (st == NDB_OK)
        st = send_file(ctx, dir, "BACKUP", buf, msg);
    free(buf);
    return st;
}

/* --------------------------------------------------------- fetching */

typedef struct fetch {
    char dir[4400]; /* "<dest>.fetching" */
    char name[NAME_MAX_LEN + 1];
    int fd;
    int64_t off;
    uint64_t files, bytes;
} fetch;

static ndb_status close_file(fetch *f, ndb_errmsg *msg)
{
    if (f->fd < 0)
        return NDB_OK;
    int rc = fsync(f->fd);
    int e = errno;
    close(f->fd);
    f->fd = -1;
    return rc == 0 ? NDB_OK : ndb_errmsg_set(msg, NDB_EIO, "fsync %s/%s: %s", f->dir, f->name, strerror(e));
}

/* One piece: a new file starts at offset 0, the next piece of the current
 * one goes on where it ended. */
static ndb_status take_piece(fetch *f, const Nexadb__V1__ReadSnapshotResponse *p, ndb_errmsg *msg)
{
    size_t nlen = p->file ? strlen(p->file) : 0;
    if (!plain_name(p->file, nlen))
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "the snapshot names a file \"%.64s\" that is not a plain name",
                              p->file ? p->file : "");
    if (f->fd < 0 || strcmp(f->name, p->file) != 0) {
        ndb_status st = close_file(f, msg);
        if (st != NDB_OK)
            return st;
        if (p->offset != 0)
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "file %s starts at offset %" PRId64, p->file, p->offset);
        memcpy(f->name, p->file, nlen + 1);
        char path[4700];
        snprintf(path, sizeof path, "%s/%s", f->dir, f->name);
        f->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (f->fd < 0)
            return ndb_errmsg_set(msg, NDB_EIO, "create %s: %s", path, strerror(errno));
        f->off = 0;
        f->files++;
    }
    if (p->offset != f->off)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "file %s: a piece at %" PRId64 ", expected %" PRId64, f->name,
                              p->offset, f->off);
    for (size_t done = 0; done < p->data.len;) {
        ssize_t n = write(f->fd, p->data.data + done, p->data.len - done);
        if (n < 0)
            return ndb_errmsg_set(msg, errno == ENOSPC ? NDB_ENOSPC : NDB_EIO, "write %s/%s: %s", f->dir, f->name,
                                  strerror(errno));
        done += (size_t)n;
    }
    f->off += (int64_t)p->data.len;
    f->bytes += p->data.len;
    return NDB_OK;
}

/* Runs the call on a pluck queue, one batch at a time. */
static bool run_batch(grpc_call *call, grpc_completion_queue *cq, const grpc_op *ops, size_t n, void *tag)
{
    if (grpc_call_start_batch(call, ops, n, tag, NULL) != GRPC_CALL_OK)
        return false;
    grpc_event ev = grpc_completion_queue_pluck(cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static ndb_status stream(grpc_call *call, grpc_completion_queue *cq, const char *key, uint64_t index, fetch *f,
                         ndb_errmsg *msg)
{
    Nexadb__V1__ReadSnapshotRequest rq = NEXADB__V1__READ_SNAPSHOT_REQUEST__INIT;
    rq.index = (int64_t)index;
    uint8_t reqbuf[16];
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)reqbuf,
                                                 nexadb__v1__read_snapshot_request__pack(&rq, reqbuf));
    grpc_byte_buffer *req = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_metadata md = {.key = grpc_slice_from_static_string("x-api-key"), .value = grpc_slice_from_copied_string(key)};
    grpc_metadata_array initial;
    grpc_metadata_array_init(&initial);
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = 1;
    ops[0].data.send_initial_metadata.metadata = &md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    bool ok = run_batch(call, cq, ops, 4, (void *)1);
    grpc_byte_buffer_destroy(req);
    grpc_slice_unref(md.value);
    grpc_metadata_array_destroy(&initial);
    ndb_status st = NDB_OK;
    while (ok && st == NDB_OK) {
        grpc_byte_buffer *bb = NULL;
        grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
        op.data.recv_message.recv_message = &bb;
        if (!run_batch(call, cq, &op, 1, (void *)2) || bb == NULL)
            break; /* the stream ended: the status says how */
        grpc_byte_buffer_reader rd;
        Nexadb__V1__ReadSnapshotResponse *p = NULL;
        if (grpc_byte_buffer_reader_init(&rd, bb)) {
            grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
            grpc_byte_buffer_reader_destroy(&rd);
            p = nexadb__v1__read_snapshot_response__unpack(NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
            grpc_slice_unref(all);
        }
        grpc_byte_buffer_destroy(bb);
        st = p == NULL ? ndb_errmsg_set(msg, NDB_ECORRUPT, "a piece of the snapshot did not decode")
                       : take_piece(f, p, msg);
        nexadb__v1__read_snapshot_response__free_unpacked(p, NULL);
    }
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_metadata_array trailing;
    grpc_metadata_array_init(&trailing);
    grpc_op fin = {.op = GRPC_OP_RECV_STATUS_ON_CLIENT};
    fin.data.recv_status_on_client.status = &code;
    fin.data.recv_status_on_client.status_details = &details;
    fin.data.recv_status_on_client.trailing_metadata = &trailing;
    if (st != NDB_OK)
        grpc_call_cancel(call, NULL);
    bool fin_ok = run_batch(call, cq, &fin, 1, (void *)3);
    if (st == NDB_OK && (!fin_ok || code != GRPC_STATUS_OK)) {
        char *d = grpc_slice_to_c_string(details);
        st = ndb_errmsg_set(msg, NDB_EIO, "reading the snapshot: gRPC status %d: %s", (int)code, d ? d : "");
        gpr_free(d);
    }
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&trailing);
    return st;
}

ndb_status svc_snapshot_fetch(svc_app *app, const char *address, uint64_t index, const char *dest, ndb_errmsg *msg)
{
    char key[SVC_AUTH_MAX_KEY + 1];
    if (!svc_auth_write_key(app->auth, key, sizeof key))
        return ndb_errmsg_set(msg, NDB_EINVAL, "fetching a snapshot needs a read-write API key, the same on every "
                              "node, to present to the node that has it");
    fetch f = {.fd = -1};
    if ((size_t)snprintf(f.dir, sizeof f.dir, "%s.fetching", dest) >= sizeof f.dir)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--data-dir: path too long");
    ndb_status st = svc_empty_dir(f.dir, msg);
    if (st != NDB_OK)
        return st;
    SVC_LOG(SVC_LOG_INFO, "fetching a cluster snapshot", LOG_INT("index", (int64_t)index), LOG_STR("from", address));
    grpc_init(); /* its own reference: a fetch may outlive the server's gRPC side at shutdown */
    ndb_errmsg cm;
    grpc_channel *ch;
    ndb_status chs = svc_peer_channel(app, address, 4 << 20, &ch, &cm);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_call *call = ch == NULL || cq == NULL ? NULL
                      : grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                                 grpc_slice_from_static_string("/nexadb.v1.AdminService/ReadSnapshot"),
                                                 NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ch == NULL)
        st = ndb_errmsg_set(msg, chs, "cannot fetch a snapshot from %s: %s", address, cm.text);
    else if (call == NULL)
        st = ndb_errmsg_set(msg, NDB_EIO, "cannot call %s", address);
    else
        st = stream(call, cq, key, index, &f, msg);
    explicit_bzero(key, sizeof key);
    ndb_status cst = close_file(&f, st == NDB_OK ? msg : NULL);
    if (st == NDB_OK)
        st = cst;
    if (call != NULL)
        grpc_call_unref(call);
    if (cq != NULL) {
        grpc_completion_queue_shutdown(cq);
        grpc_completion_queue_destroy(cq);
    }
    if (ch != NULL)
        grpc_channel_destroy(ch);
    grpc_shutdown();
    /* the directory's entries durable, every file checked against the listing, then into place */
    int dfd = st == NDB_OK ? open(f.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (st == NDB_OK && (dfd < 0 || fsync(dfd) != 0))
        st = ndb_errmsg_set(msg, NDB_EIO, "fsync %s: %s", f.dir, strerror(errno));
    if (dfd >= 0)
        close(dfd);
    ndb_kv_backup_info info;
    if (st == NDB_OK && (st = ndb_kv_backup_verify(f.dir, NULL, 0, &info, msg)) == NDB_OK &&
        rename(f.dir, dest) != 0)
        st = ndb_errmsg_set(msg, NDB_EIO, "rename %s: %s", f.dir, strerror(errno));
    if (st != NDB_OK) {
        svc_remove_dir(f.dir, NULL);
        return st;
    }
    SVC_LOG(SVC_LOG_INFO, "cluster snapshot fetched", LOG_INT("index", (int64_t)index), LOG_STR("from", address),
            LOG_INT("files", (int64_t)f.files), LOG_INT("bytes", (int64_t)f.bytes));
    return NDB_OK;
}
