/*
 * entry.c — encoding and checking the commands of one Raft entry (entry.h).
 */
#include "entry.h"

#include <string.h>

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void entry_put_header(uint8_t *out, const entry_header *h)
{
    memcpy(out, "NDBC", 4);
    put32(out + 4, 1);
    put64(out + 8, h->proposer);
    put64(out + 16, h->boot);
    put64(out + 24, h->group);
    put64(out + 32, (uint64_t)h->wall_ms);
    put32(out + 40, h->ncmd);
    put32(out + 44, h->flags);
}

void entry_put_cmd(uint8_t *out, size_t *off, const void *cmd, size_t len)
{
    size_t sz = entry_cmd_size(len);
    put32(out + *off, (uint32_t)len);
    memcpy(out + *off + 4, cmd, len);
    memset(out + *off + 4 + len, 0, sz - 4 - len);
    *off += sz;
}

ndb_status entry_parse(const uint8_t *buf, size_t len, entry_header *h, ndb_errmsg *msg)
{
    if (len < ENTRY_HEADER || len > ENTRY_MAX || memcmp(buf, "NDBC", 4) != 0)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "not a NexaDB entry (%zu bytes)", len);
    if (get32(buf + 4) != 1)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "entry version %u is not 1 (written by a newer NexaDB?)",
                              get32(buf + 4));
    h->proposer = get64(buf + 8);
    h->boot = get64(buf + 16);
    h->group = get64(buf + 24);
    h->wall_ms = (int64_t)get64(buf + 32);
    h->ncmd = get32(buf + 40);
    h->flags = get32(buf + 44);
    if (h->flags & ~ENTRY_ANNOUNCE)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "entry flags %#x unknown (written by a newer NexaDB?)", h->flags);
    if ((h->flags & ENTRY_ANNOUNCE) && h->ncmd != 1)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "an announcement with %u commands", h->ncmd);
    size_t off = ENTRY_HEADER;
    for (uint32_t i = 0; i < h->ncmd; i++) {
        if (len - off < 4)
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "entry ends inside command %u's length", i);
        size_t clen = get32(buf + off);
        if (clen > len - off - 4 || entry_cmd_size(clen) > len - off)
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "command %u (%zu bytes) overruns its entry", i, clen);
        off += entry_cmd_size(clen);
    }
    if (off != len)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "%zu bytes follow the entry's last command", len - off);
    return NDB_OK;
}

void entry_next_cmd(const uint8_t *buf, size_t *off, const void **cmd, size_t *len)
{
    *len = get32(buf + *off);
    *cmd = buf + *off + 4;
    *off += entry_cmd_size(*len);
}
