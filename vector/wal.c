/* wal.c — see wal.h and FORMAT.md. */
#include "wal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "ndb_vec.h"
#include "vio.h"

void wal_encode(unsigned char *dst, int type, uint64_t lsn, const char *id, size_t id_len, const float *vec,
                uint32_t dims)
{
    size_t total = wal_rec_size(type, id_len, dims);
    uint32_t len = (uint32_t)(total - WAL_HDR);
    uint16_t il = (uint16_t)id_len;
    unsigned char *p = dst + WAL_HDR;
    memcpy(dst + 4, &len, 4);
    p[0] = (unsigned char)type;
    memcpy(p + 1, &lsn, 8);
    memcpy(p + 9, &il, 2);
    memcpy(p + WAL_FIXED, id, id_len);
    if (type == WAL_PUT)
        memcpy(p + WAL_FIXED + id_len, vec, (size_t)dims * 4);
    uint32_t crc = crc32c(dst + 4, total - 4);
    memcpy(dst, &crc, 4);
}

ndb_status wal_replay(int fd, const char *path, uint32_t dims, uint64_t after_lsn, wal_apply_fn fn, void *ctx,
                      uint64_t *valid_end, uint64_t *last_lsn, ndb_errmsg *msg)
{
    uint64_t size;
    ndb_status st = vio_size(fd, &size, path, msg);
    if (st != NDB_OK)
        return st;
    *valid_end = 0;
    *last_lsn = after_lsn;
    if (size == 0)
        return NDB_OK;
    if (size > ((uint64_t)1 << 40))
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "log %s: implausible size %llu", path, (unsigned long long)size);
    const size_t maxrec = WAL_HDR + WAL_FIXED + NDB_VEC_MAX_ID + (size_t)dims * 4;
    const size_t bufcap = (4u << 20) > maxrec ? (4u << 20) : maxrec;
    unsigned char *buf = malloc(bufcap);
    if (!buf)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "log %s: out of memory", path);
    uint64_t off = 0, prev_lsn = 0;
    size_t have = 0, pos = 0; /* buf[pos..have) holds file bytes from off */
    st = NDB_OK;
    for (;;) {
        if (have - pos < maxrec && off + (have - pos) < size) { /* refill */
            memmove(buf, buf + pos, have - pos);
            have -= pos;
            pos = 0;
            size_t want = bufcap - have;
            if (want > size - off - have)
                want = (size_t)(size - off - have);
            if ((st = vio_pread_exact(fd, buf + have, want, off + have, path, msg)) != NDB_OK)
                break;
            have += want;
        }
        size_t avail = have - pos;
        if (avail < WAL_HDR + WAL_FIXED)
            break; /* clean end, or a torn header */
        const unsigned char *r = buf + pos;
        uint32_t crc, len;
        memcpy(&crc, r, 4);
        memcpy(&len, r + 4, 4);
        if (len < WAL_FIXED || (size_t)len > maxrec - WAL_HDR || WAL_HDR + (size_t)len > avail)
            break;
        if (crc32c(r + 4, WAL_HDR - 4 + len) != crc)
            break;
        int type = r[8];
        uint64_t lsn;
        uint16_t il;
        memcpy(&lsn, r + 9, 8);
        memcpy(&il, r + 17, 2);
        size_t want_len = WAL_FIXED + il + (type == WAL_PUT ? (size_t)dims * 4 : 0);
        if ((type != WAL_PUT && type != WAL_DEL) || il == 0 || il > NDB_VEC_MAX_ID || len != want_len ||
            lsn <= prev_lsn)
            break;
        const char *id = (const char *)r + WAL_HDR + WAL_FIXED;
        if (memchr(id, 0, il))
            break;
        if (lsn > after_lsn) {
            if ((st = fn(ctx, type, lsn, id, il, type == WAL_PUT ? r + WAL_HDR + WAL_FIXED + il : NULL)) != NDB_OK)
                break;
            *last_lsn = lsn;
        }
        prev_lsn = lsn;
        pos += WAL_HDR + len;
        off += WAL_HDR + len;
        *valid_end = off;
    }
    free(buf);
    return st;
}
