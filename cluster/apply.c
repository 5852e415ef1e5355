/*
 * apply.c — executing committed entries: Raft's state machine hands each
 * command entry to the applier thread (copied, in log order), which runs its
 * commands through the caller's apply function and answers the proposals
 * this node made.
 *
 * Raft's own apply step stays short, so a long command (an index build, an
 * update of a million documents) never stops the loop thread from sending
 * heartbeats and answering votes. "applied" counts what the applier has
 * finished: fences, read-your-writes and the status wait on it, not on
 * Raft's last_applied, which only says what was handed over.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_int.h"

void clu_group_unref(group *g)
{
    if (--g->refs == 0)
        free(g);
}

void clu_group_unlink(ndb_cluster *cl, group *g)
{
    for (group **p = &cl->inflight; *p != NULL; p = &(*p)->next) {
        if (*p == g) {
            *p = g->next;
            clu_group_unref(g);
            return;
        }
    }
}

int clu_fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    ndb_cluster *cl = fsm->data;
    *result = NULL;
    aentry *e = malloc(sizeof *e);
    uint8_t *copy = malloc(buf->len ? buf->len : 1);
    if (e == NULL || copy == NULL) {
        free(e);
        free(copy);
        return RAFT_NOMEM; /* Raft stops applying and tries again at the next commit */
    }
    memcpy(copy, buf->base, buf->len);
    /* Raft applies entries in order and sets last_applied after this returns. */
    *e = (aentry){.index = raft_last_applied(&cl->raft) + 1, .buf = copy, .len = buf->len};
    pthread_mutex_lock(&cl->mu);
    *cl->atail = e;
    cl->atail = &e->next;
    cl->enqueued = e->index;
    pthread_cond_broadcast(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
    return 0;
}

/* Stops applying for good (under mu): state would diverge past this entry. */
static void apply_fail(ndb_cluster *cl, uint64_t index, const char *why)
{
    cl->apply_failed = true;
    snprintf(cl->apply_error, sizeof cl->apply_error, "entry %llu: %.200s", (unsigned long long)index, why);
    for (group *g = cl->inflight; g != NULL;) {
        group *next = g->next;
        for (prop *p = g->props; p != NULL; p = p->next) {
            p->st = ndb_errmsg_set(&p->msg, NDB_EPOISONED, "this node stopped applying the log: %s",
                                   cl->apply_error);
            prop_done(p);
        }
        g->props = NULL;
        clu_group_unlink(cl, g);
        g = next;
    }
    pthread_cond_broadcast(&cl->cv);
}

/* Replaces the state by a snapshot's (restore). */
static void run_restore(ndb_cluster *cl, aentry *e)
{
    ndb_errmsg m = {{0}};
    ndb_status st = cl->opt.restore(cl->opt.apply_arg, e->index, e->buf, e->len, &m);
    pthread_mutex_lock(&cl->mu);
    if (st != NDB_OK) {
        char why[240];
        snprintf(why, sizeof why, "restoring its snapshot: %s", m.text);
        apply_fail(cl, e->index, why);
    } else {
        cl->applied = e->index;
        pthread_cond_broadcast(&cl->cv);
    }
    pthread_mutex_unlock(&cl->mu);
}

/* Runs one entry's commands; answers them when this process proposed it. */
static void run_entry(ndb_cluster *cl, aentry *e)
{
    entry_header h;
    ndb_errmsg m = {{0}};
    if (entry_parse(e->buf, e->len, &h, &m) != NDB_OK) {
        pthread_mutex_lock(&cl->mu);
        apply_fail(cl, e->index, m.text);
        pthread_mutex_unlock(&cl->mu);
        return;
    }
    if (h.flags & ENTRY_ANNOUNCE) { /* a new leader's client address */
        size_t off = ENTRY_HEADER, len;
        const void *addr;
        entry_next_cmd(e->buf, &off, &addr, &len);
        pthread_mutex_lock(&cl->mu);
        size_t i = 0;
        while (i < cl->nclients && cl->clients[i].id != h.proposer)
            i++;
        if (i < NDB_CLUSTER_MAX_PEERS && len < sizeof cl->clients[0].address) {
            cl->clients[i].id = h.proposer;
            memcpy(cl->clients[i].address, addr, len);
            cl->clients[i].address[len] = 0;
            if (i == cl->nclients)
                cl->nclients++;
        }
        cl->applied = e->index;
        pthread_cond_broadcast(&cl->cv);
        pthread_mutex_unlock(&cl->mu);
        return;
    }
    prop *props = NULL;
    if (h.proposer == cl->opt.id && h.boot == cl->boot) {
        pthread_mutex_lock(&cl->mu);
        for (group *g = cl->inflight; g != NULL; g = g->next) {
            if (g->number == h.group) {
                props = g->props;
                g->props = NULL;
                clu_group_unlink(cl, g);
                break;
            }
        }
        pthread_mutex_unlock(&cl->mu);
    }
    size_t off = ENTRY_HEADER;
    for (uint32_t i = 0; i < h.ncmd; i++) {
        ndb_cluster_cmd cmd = {.index = e->index, .ordinal = i, .wall_ms = h.wall_ms, .mine = props != NULL};
        entry_next_cmd(e->buf, &off, &cmd.data, &cmd.len);
        void *reply = NULL;
        size_t rlen = 0;
        bool fatal = false;
        ndb_errmsg cm = {{0}};
        ndb_status st = cl->opt.apply(cl->opt.apply_arg, &cmd, &reply, &rlen, &fatal, &cm);
        if (fatal) {
            free(reply);
            pthread_mutex_lock(&cl->mu);
            for (prop *p = props; p != NULL; p = p->next) {
                p->st = ndb_errmsg_set(&p->msg, NDB_EPOISONED, "this node stopped applying the log: %s", cm.text);
                prop_done(p);
            }
            apply_fail(cl, e->index, cm.text);
            pthread_mutex_unlock(&cl->mu);
            return;
        }
        if (props != NULL) {
            prop *p = props;
            props = p->next;
            p->r->status = st;
            p->r->msg = cm;
            p->r->data = reply;
            p->r->len = rlen;
            p->r->index = e->index;
            pthread_mutex_lock(&cl->mu);
            p->st = NDB_OK;
            prop_done(p);
            pthread_mutex_unlock(&cl->mu);
        } else {
            free(reply);
        }
    }
    pthread_mutex_lock(&cl->mu);
    for (prop *p = props; p != NULL; p = p->next) { /* more proposals than commands: cannot happen */
        p->st = ndb_errmsg_set(&p->msg, NDB_EIO, "entry %llu carried fewer commands than were proposed",
                               (unsigned long long)e->index);
        prop_done(p);
    }
    cl->applied = e->index;
    pthread_cond_broadcast(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
}

void *clu_applier(void *arg)
{
    ndb_cluster *cl = arg;
    pthread_mutex_lock(&cl->mu);
    for (;;) {
        while (cl->ahead == NULL && !cl->apply_stop)
            pthread_cond_wait(&cl->cv, &cl->mu);
        if (cl->apply_stop) /* what is left runs again at the next start, from the log */
            break;
        aentry *e = cl->ahead;
        cl->ahead = e->next;
        if (cl->ahead == NULL)
            cl->atail = &cl->ahead;
        bool skip = cl->apply_failed;
        pthread_mutex_unlock(&cl->mu);
        if (!skip && e->restore)
            run_restore(cl, e);
        else if (!skip)
            run_entry(cl, e);
        free(e->buf);
        free(e);
        pthread_mutex_lock(&cl->mu);
    }
    pthread_mutex_unlock(&cl->mu);
    return NULL;
}
