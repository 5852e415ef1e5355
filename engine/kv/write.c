/*
 * write.c — the write path (internal): batches into the WAL and the
 * memtable, group commit, WAL segments, poisoning and the interval-sync
 * thread. db.c calls these (declared in db.h); nothing here calls db.c.
 *
 * A write goes in two steps.
 *
 *  1. Append, under wmu, in arrival order: make room (memtable switch, WAL
 *     roll, stalls), take the next sequence numbers, append the batch as one
 *     WAL record (a copy into the log's shared mapping: no system call),
 *     insert it into the memtable and advance appended_seq.
 *  2. Sync mode only, holding no lock: wait until synced_seq covers the
 *     batch. One fsync runs at a time, and it covers everything appended
 *     before it started. A writer that finds none running runs one itself; a
 *     writer that arrives while one runs sleeps until the fsync that covers
 *     it ends: the running one, or the next, which the first writer it does
 *     not cover claims. When the fsync ends, its runner moves synced_seq and
 *     last_seq (what readers see) to what it covered, wakes the claimant,
 *     then every writer it covered with one futex call (they sleep on one
 *     word per fsync, alternating between two, and leave without taking a
 *     lock).
 *     Gathering (PostgreSQL's commit_delay / commit_siblings): when the last
 *     fsync released more than one writer, the next runner waits, at most
 *     half the last fsync's duration and 1 ms, until as many writers wait
 *     for its fsync as the last one released plus those already waiting;
 *     the writer that completes that count runs the fsync at once instead
 *     of waking the runner. Without it N writers split into two groups that alternate
 *     (one appends while the other's fsync runs), each fsync carrying about
 *     N/2 writes; with it an fsync carries nearly all N, for fewer fsyncs
 *     (each costs ~85 us of CPU on the bench VM) and fewer wake-ups.
 *
 * In interval and none modes a batch is visible once appended (last_seq
 * follows appended_seq); the interval thread waits for appended_seq every
 * interval_ms, and a WAL roll waits for it in every mode.
 *
 * Thread safety: the fields each lock guards are listed in db.h. Lock order
 * wmu, then mu, then smu. An fsync runs holding none of them, except a WAL
 * roll's, which holds wmu and mu (a roll also switches segments).
 */
#include <assert.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "coding.h"
#include "db.h"
#include "dbformat.h"

/* ------------------------------------------------------------------ errors */

/* A full disk or descriptor exhaustion met by a write loses nothing: the
 * write failed before anything was acknowledged, and freeing space or
 * descriptors clears the cause (ndb_kv_resume). */
static int recoverable_cause(ndb_status st) { return st == NDB_ENOSPC || st == NDB_EMFILE; }

int kv_poison_recoverable(ndb_kv *kv)
{
    return kv->poisoned && recoverable_cause(kv->bg_error) &&
           __atomic_load_n(&kv->sync_error, __ATOMIC_ACQUIRE) == NDB_OK;
}

static void poison(ndb_kv *kv, ndb_status st, const char *what, int replace)
{
    int permanent = !recoverable_cause(st) || __atomic_load_n(&kv->sync_error, __ATOMIC_ACQUIRE) != NDB_OK;
    if (!kv->poisoned || replace || (recoverable_cause(kv->bg_error) && permanent)) {
        __atomic_store_n(&kv->poisoned, 1, __ATOMIC_RELAXED);
        kv->bg_error = st;
        ndb_errmsg_set(&kv->poison_msg, st, "%.150s: %s", what, ndb_strerror(st));
        ndb_errmsg_set(&kv->err, st, "engine poisoned: %.150s: %s; %s", what, ndb_strerror(st),
                       !permanent ? "writes resume once space or descriptors are freed"
                                  : "no retry after this error: reopen (restart) to recover");
    }
    pthread_cond_broadcast(&kv->bg_cv);
}

void kv_poison(ndb_kv *kv, ndb_status st, const char *what) { poison(kv, st, what, 0); }
void kv_poison_again(ndb_kv *kv, ndb_status st, const char *what) { poison(kv, st, what, 1); }

/* kv_poison for a caller that holds no lock. */
static void poison_unlocked(ndb_kv *kv, ndb_status st, const char *what)
{
    pthread_mutex_lock(&kv->mu);
    kv_poison(kv, st, what);
    pthread_mutex_unlock(&kv->mu);
}

/* kv->err is written under mu by any thread; a reader gets its own copy. */
const char *ndb_kv_last_error(ndb_kv *kv)
{
    static _Thread_local char copy[sizeof kv->err.text];
    if (kv == NULL) return "no handle";
    pthread_mutex_lock(&kv->mu);
    memcpy(copy, kv->err.text, sizeof copy);
    pthread_mutex_unlock(&kv->mu);
    return copy;
}

/* ------------------------------------------------------------------ group commit */

/* Writers sleep on futex words (no per-writer semaphore or list): the end
 * of fsync n bumps sync_done[n & 1] and wakes everyone sleeping on it with
 * one call; a woken writer checks synced_seq and leaves without a lock.
 * Every word is bumped under smu after the state it announces is set, and
 * a sleeper reads it under smu, so no wake-up is lost. */
static void futex_wait(uint32_t *word, uint32_t val, const struct timespec *rel)
{
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, rel, NULL, 0);
}

static void futex_wake(uint32_t *word, int n)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* A runner gathering writers before its fsync waits at most the last fsync's
 * duration divided by GATHER_DIVISOR, and never more than GATHER_MAX_MICROS
 * (one slow fsync, a disk stalled by another tenant, must not make the next
 * wait as long). */
#define GATHER_DIVISOR 2
#define GATHER_MAX_MICROS 1000

static ndb_status sync_now(ndb_kv *kv);

/*
 * Starts fsync number ++sync_count of the current WAL segment (claimed: the
 * caller claimed it while the previous one ran; gather: the caller holds no
 * lock, so writers can append meanwhile). smu held on entry (no fsync
 * running, none failed), released on return. When the last fsync released
 * more than one writer, it first gathers: it waits (at most the last fsync's
 * duration / GATHER_DIVISOR) until those writers wait again, besides the
 * ones that already waited for this fsync. The writer that completes the
 * count runs the fsync (sync_now) and this one rides it, woken by its
 * deadline; otherwise this one runs it at the deadline. Does not poison:
 * the callers do.
 */
static ndb_status run_sync(ndb_kv *kv, int claimed, int gather)
{
    kv->syncing = 1;
    ++kv->sync_count;
    kv->sync_target = UINT64_MAX; /* while gathering, every writer that arrives rides this fsync */
    uint32_t released = kv->sync_released;
    kv->sync_joined = kv->sync_joined_next;
    kv->sync_joined_next = 0;
    /* the writers the last fsync released come back, this one aside if it was one */
    uint32_t goal = gather && released > 1 ? kv->sync_joined + released - (claimed ? 0 : 1) : 0;
    if (goal > 0 && kv->sync_last_micros > 0) {
        uint64_t wait = kv->sync_last_micros / GATHER_DIVISOR;
        uint64_t deadline = kv_now_micros() + (wait < GATHER_MAX_MICROS ? wait : GATHER_MAX_MICROS);
        kv->sync_gather_goal = goal;
        uint32_t v = __atomic_load_n(&kv->sync_gather, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&kv->smu);
        while (__atomic_load_n(&kv->sync_gather, __ATOMIC_ACQUIRE) == v) {
            uint64_t now = kv_now_micros();
            if (now >= deadline) break;
            struct timespec rel = {(time_t)((deadline - now) / 1000000u), (long)((deadline - now) % 1000000u) * 1000};
            futex_wait(&kv->sync_gather, v, &rel);
        }
        pthread_mutex_lock(&kv->smu);
        if (__atomic_load_n(&kv->sync_gather, __ATOMIC_RELAXED) != v) {
            /* the writer that completed the goal runs this fsync; we ride it */
            pthread_mutex_unlock(&kv->smu);
            return NDB_OK;
        }
        kv->sync_gather_goal = 0;
    }
    return sync_now(kv);
}

/* The fsync itself, covering every batch appended before it starts: smu
 * held on entry (syncing set), released on return. At its end it wakes the
 * waiter that claimed the next fsync, then everyone sleeping on its word
 * (everyone on both words when it failed). */
static ndb_status sync_now(ndb_kv *kv)
{
    int slot = (int)(kv->sync_count & 1);
    uint64_t target = __atomic_load_n(&kv->appended_seq, __ATOMIC_ACQUIRE);
    kv->sync_target = target;
    kv_wal_writer *wal = kv->wal;
    pthread_mutex_unlock(&kv->smu);
    uint64_t t0 = kv_now_micros();
    ndb_status st = kv_wal_sync(wal);
    uint64_t t1 = kv_now_micros();
    pthread_mutex_lock(&kv->smu);
    if (st == NDB_OK) {
        __atomic_store_n(&kv->synced_seq, target, __ATOMIC_RELEASE);
        if (kv->opt.durability == NDB_KV_SYNC) __atomic_store_n(&kv->last_seq, target, __ATOMIC_RELEASE);
        __atomic_add_fetch(&kv->st_wal_syncs, 1, __ATOMIC_RELAXED);
    } else {
        kv->sync_failed_upto = target;
        __atomic_store_n(&kv->sync_error, st, __ATOMIC_RELEASE);
    }
    kv->syncing = 0;
    kv->sync_last_micros = t1 - t0;
    uint32_t sleepers = kv->sync_joined;
    kv->sync_joined = 0;
    kv->sync_released = sleepers + 1;
    __atomic_add_fetch(&kv->sync_done[slot], 1, __ATOMIC_RELEASE);
    int handoff = kv->sync_next_claimed;
    kv->sync_next_claimed = 0;
    if (handoff) __atomic_add_fetch(&kv->sync_handoff, 1, __ATOMIC_RELEASE);
    if (st != NDB_OK) __atomic_add_fetch(&kv->sync_done[slot ^ 1], 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&kv->smu);
    if (handoff) futex_wake(&kv->sync_handoff, 1);
    if (sleepers) futex_wake(&kv->sync_done[slot], INT_MAX);
    if (st != NDB_OK) futex_wake(&kv->sync_done[slot ^ 1], INT_MAX);
    return st;
}

/*
 * Waits until every sequence <= seq is fsync'd. A writer that finds no fsync
 * running runs one itself. One that the running fsync (or the one being
 * gathered) covers sleeps on its word; one it does not cover sleeps on the
 * next one's word, except the first such, which claims the next fsync and
 * is woken on its own to run it. Called holding no lock (gather 1), or wmu
 * and mu (a WAL roll, gather 0: no writer can append meanwhile, so an fsync
 * it runs does not wait for any). A writer covered by a failed fsync gets
 * its status, any later one NDB_EPOISONED. Does not poison.
 */
static ndb_status await_synced(ndb_kv *kv, uint64_t seq, int gather)
{
    int claimed = 0;
    for (;;) {
        if (__atomic_load_n(&kv->synced_seq, __ATOMIC_ACQUIRE) >= seq) return NDB_OK;
        pthread_mutex_lock(&kv->smu);
        if (kv->synced_seq >= seq) {
            pthread_mutex_unlock(&kv->smu);
            return NDB_OK;
        }
        if (kv->sync_error != NDB_OK) {
            ndb_status st = seq <= kv->sync_failed_upto ? kv->sync_error : NDB_EPOISONED;
            pthread_mutex_unlock(&kv->smu);
            return st;
        }
        if (!kv->syncing) {
            run_sync(kv, claimed, gather);
            claimed = 0;
            continue;
        }
        int slot = -1;
        uint32_t *word;
        if (kv->sync_gather_goal && kv->sync_joined + 1 >= kv->sync_gather_goal) {
            /* the gathering runner waits for this writer last: run the
             * fsync now rather than wake it (a wake-up costs about as much
             * as the work left); it rides along */
            kv->sync_gather_goal = 0;
            __atomic_add_fetch(&kv->sync_gather, 1, __ATOMIC_RELEASE);
            sync_now(kv);
            continue;
        }
        if (kv->sync_target >= seq) {
            slot = (int)(kv->sync_count & 1);
            kv->sync_joined++;
        } else if (!kv->sync_next_claimed) {
            kv->sync_next_claimed = 1;
            claimed = 1;
            word = &kv->sync_handoff;
        } else {
            slot = (int)((kv->sync_count + 1) & 1);
            kv->sync_joined_next++;
        }
        if (slot >= 0) word = &kv->sync_done[slot];
        uint32_t v = __atomic_load_n(word, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&kv->smu);
        futex_wait(word, v, NULL);
    }
}

/* The status to poison the engine with after await_synced failed with st. */
static ndb_status sync_failure(ndb_kv *kv, ndb_status st)
{
    ndb_status failed = __atomic_load_n(&kv->sync_error, __ATOMIC_ACQUIRE);
    return failed != NDB_OK ? failed : st;
}

/* await_synced for a caller that holds no lock; poisons on failure. */
static ndb_status wait_synced(ndb_kv *kv, uint64_t seq)
{
    ndb_status st = await_synced(kv, seq, 1);
    if (st != NDB_OK) poison_unlocked(kv, sync_failure(kv, st), "WAL fsync failed");
    return st;
}

static void *interval_main(void *arg)
{
    ndb_kv *kv = arg;
    pthread_mutex_lock(&kv->smu);
    while (!__atomic_load_n(&kv->shutting_down, __ATOMIC_RELAXED)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)kv->opt.interval_ms * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&kv->interval_cv, &kv->smu, &ts);
        if (__atomic_load_n(&kv->shutting_down, __ATOMIC_RELAXED) || __atomic_load_n(&kv->poisoned, __ATOMIC_RELAXED))
            continue;
        uint64_t upto = __atomic_load_n(&kv->appended_seq, __ATOMIC_ACQUIRE);
        if (kv->sync_error != NDB_OK || upto <= kv->synced_seq) continue;
        pthread_mutex_unlock(&kv->smu);
        wait_synced(kv, upto);
        pthread_mutex_lock(&kv->smu);
    }
    pthread_mutex_unlock(&kv->smu);
    return NULL;
}

ndb_status kv_write_start(ndb_kv *kv)
{
    uint64_t seq = __atomic_load_n(&kv->last_seq, __ATOMIC_RELAXED);
    __atomic_store_n(&kv->appended_seq, seq, __ATOMIC_RELAXED);
    __atomic_store_n(&kv->synced_seq, seq, __ATOMIC_RELAXED); /* recovery wrote what it replayed to tables */
    if (kv->opt.durability != NDB_KV_INTERVAL) return NDB_OK;
    if (pthread_create(&kv->interval_thr, NULL, interval_main, kv) != 0) return NDB_ENOMEM;
    kv->interval_running = 1;
    return NDB_OK;
}

void kv_write_stop(ndb_kv *kv)
{
    if (!kv->interval_running) return;
    pthread_mutex_lock(&kv->smu);
    pthread_cond_broadcast(&kv->interval_cv);
    pthread_mutex_unlock(&kv->smu);
    pthread_join(kv->interval_thr, NULL);
    kv->interval_running = 0;
}

/* ------------------------------------------------------------------ WAL segments */

ndb_status kv_segment_new(ndb_kv *kv, kv_wal_writer **w, uint64_t *num)
{
    *num = kv->vs->next_file++;
    *w = NULL;
    char path[4096];
    kv_file_path(kv, path, sizeof path, *num, "wal");
    ndb_status st = kv_wal_create(kv->env, path, w);
    if (st == NDB_OK) st = kv->env->v->sync_dir(kv->env, kv->dir);
    if (st != NDB_OK) {
        kv_wal_close(*w);
        *w = NULL;
        kv->env->v->remove(kv->env, path);
    }
    return st;
}

/* Closes the current segment (fsync'd first, so an older segment is never
 * the torn one) and opens the next. wmu and mu held, so nothing is appended
 * meanwhile: the fsync waited for here covers the whole segment. */
static ndb_status roll_wal(ndb_kv *kv)
{
    ndb_status st = await_synced(kv, __atomic_load_n(&kv->appended_seq, __ATOMIC_RELAXED), 0);
    if (st != NDB_OK) {
        kv_poison(kv, sync_failure(kv, st), "WAL fsync failed");
        return st;
    }
    kv_wal_writer *nw;
    uint64_t num;
    st = kv_segment_new(kv, &nw, &num);
    if (st != NDB_OK) {
        kv_poison(kv, st, "creating the next WAL segment failed");
        return st;
    }
    pthread_mutex_lock(&kv->smu);
    assert(!kv->syncing); /* everything appended is synced: no fsync can be running */
    kv_wal_writer *old = kv->wal;
    kv->wal = nw;
    pthread_mutex_unlock(&kv->smu);
    kv_wal_close(old);
    kv->wal_number = num;
    return NDB_OK;
}

ndb_status kv_write_reopen_wal(ndb_kv *kv, ndb_errmsg *msg)
{
    kv_wal_writer *old = kv->wal;
    if (old != NULL) {
        ndb_status st = await_synced(kv, __atomic_load_n(&kv->appended_seq, __ATOMIC_RELAXED), 0);
        if (st != NDB_OK) return ndb_errmsg_set(msg, sync_failure(kv, st), "WAL fsync failed");
        char path[4096];
        kv_file_path(kv, path, sizeof path, kv->wal_number, "wal");
        /* the writer counts whole records only; the file may hold more */
        st = kv->env->v->truncate(kv->env, path, kv_wal_size(old));
        if (st != NDB_OK) return ndb_errmsg_set(msg, st, "cutting %s back to its last whole record failed", path);
        st = kv_wal_sync(old);
        if (st != NDB_OK) {
            /* a failed WAL fsync, like any other: permanent */
            pthread_mutex_lock(&kv->smu);
            kv->sync_failed_upto = __atomic_load_n(&kv->synced_seq, __ATOMIC_RELAXED);
            __atomic_store_n(&kv->sync_error, st, __ATOMIC_RELEASE);
            kv->wal = NULL;
            pthread_mutex_unlock(&kv->smu);
            kv_wal_close(old);
            return ndb_errmsg_set(msg, st, "WAL fsync of %s after cutting it back failed", path);
        }
        pthread_mutex_lock(&kv->smu);
        kv->wal = NULL; /* nothing appended is unsynced: no fsync can be running or start */
        pthread_mutex_unlock(&kv->smu);
        st = kv_wal_close(old); /* its data and size are durable: a failed close loses nothing */
        if (st != NDB_OK) return ndb_errmsg_set(msg, st, "closing %s failed", path);
    }
    kv_wal_writer *nw;
    uint64_t num;
    ndb_status st = kv_segment_new(kv, &nw, &num);
    if (st != NDB_OK) return ndb_errmsg_set(msg, st, "creating WAL segment %06llu.wal failed", (unsigned long long)num);
    pthread_mutex_lock(&kv->smu);
    kv->wal = nw;
    pthread_mutex_unlock(&kv->smu);
    kv->wal_number = num;
    return NDB_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

ndb_status kv_segments_list(ndb_kv *kv, uint64_t lo, uint64_t hi, uint64_t **out, size_t *count)
{
    char **names;
    size_t n, k = 0;
    ndb_status st = kv->env->v->list(kv->env, kv->dir, &names, &n);
    if (st != NDB_OK) return st;
    uint64_t *nums = malloc((n + 1) * sizeof *nums);
    if (nums == NULL) st = NDB_ENOMEM;
    for (size_t i = 0; i < n && st == NDB_OK; i++) {
        unsigned long long num;
        char ext[8];
        if (sscanf(names[i], "%llu.%7s", &num, ext) == 2 && strcmp(ext, "wal") == 0 && num >= lo && num <= hi)
            nums[k++] = num;
    }
    kv_env_free_list(names, n);
    if (st != NDB_OK) return st;
    qsort(nums, k, sizeof *nums, cmp_u64);
    *out = nums;
    *count = k;
    return NDB_OK;
}

void kv_segments_delete_below(ndb_kv *kv, uint64_t log_number)
{
    uint64_t *nums;
    size_t n;
    if (log_number == 0 || kv_segments_list(kv, 0, log_number - 1, &nums, &n) != NDB_OK) return;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        kv_file_path(kv, path, sizeof path, nums[i], "wal");
        kv->env->v->remove(kv->env, path);
    }
    free(nums);
}

/* ------------------------------------------------------------------ appending */

/* Makes room in the memtable for the next batch (force: switch it even when
 * not full, for a flush). wmu and mu held; may wait. */
static ndb_status make_room(ndb_kv *kv, int force)
{
    int allow_delay = !force;
    for (;;) {
        if (kv->poisoned) return NDB_EPOISONED;
        if (kv->shutting_down) return NDB_ECLOSED;
        size_t l0 = kv_version_l0_load(kv->vs->current);
        if (allow_delay && l0 >= kv->opt.l0_slowdown_trigger) {
            /* A short delay per write hands CPU to compaction instead of a
             * long stop later. Other writers are not held up behind it: each
             * takes its own delay. */
            uint64_t t0 = kv_now_micros();
            pthread_mutex_unlock(&kv->mu);
            pthread_mutex_unlock(&kv->wmu);
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&kv->wmu);
            pthread_mutex_lock(&kv->mu);
            kv->st_stall_count++;
            kv->st_stall_micros += kv_now_micros() - t0;
            allow_delay = 0;
            continue;
        }
        if (!force && kv_mem_bytes(kv->mem) < kv->opt.memtable_bytes) {
            if (kv_wal_size(kv->wal) >= kv->opt.wal_segment_bytes) return roll_wal(kv);
            return NDB_OK;
        }
        if (force && kv_mem_entries(kv->mem) == 0) return NDB_OK;
        if (l0 >= kv->opt.l0_stop_trigger && kv->compact_error) {
            /* compaction stopped on a corrupt table: waiting would never end */
            return kv->compact_error;
        }
        if (kv->imm != NULL || l0 >= kv->opt.l0_stop_trigger) {
            uint64_t t0 = kv_now_micros();
            pthread_cond_wait(&kv->bg_cv, &kv->mu);
            kv->st_stall_count++;
            kv->st_stall_micros += kv_now_micros() - t0;
            continue;
        }
        kv_mem *nm = kv_mem_new(kv->arena_block, kv->mem_filter_bytes);
        if (nm == NULL) return NDB_ENOMEM;
        ndb_status st = roll_wal(kv);
        if (st != NDB_OK) {
            kv_mem_unref(nm);
            return st;
        }
        kv->imm = kv->mem;
        kv->imm_next_log = kv->wal_number; /* every older segment holds only imm or older data */
        kv->mem = nm;
        pthread_cond_broadcast(&kv->bg_cv);
        return NDB_OK;
    }
}

ndb_status kv_write_switch_memtable(ndb_kv *kv)
{
    pthread_mutex_lock(&kv->wmu);
    pthread_mutex_lock(&kv->mu);
    ndb_status st = make_room(kv, 1);
    pthread_mutex_unlock(&kv->mu);
    pthread_mutex_unlock(&kv->wmu);
    return st;
}

/* Step 1: appends the batch rep (its sequence field is not read) to the WAL
 * and the memtable; *last gets its last sequence. */
static ndb_status append(ndb_kv *kv, const char *rep, size_t len, uint64_t user_bytes, uint64_t *last)
{
    uint32_t count = kv_batch_rep_count(rep);
    pthread_mutex_lock(&kv->wmu);
    pthread_mutex_lock(&kv->mu);
    ndb_status st = make_room(kv, 0);
    pthread_mutex_unlock(&kv->mu);
    if (st == NDB_OK && __atomic_load_n(&kv->sync_error, __ATOMIC_RELAXED) != NDB_OK) st = NDB_EPOISONED;
    uint64_t seq = __atomic_load_n(&kv->appended_seq, __ATOMIC_RELAXED) + 1;
    *last = seq + count - 1;
    if (st == NDB_OK) {
        char head[BATCH_HEADER];
        put_fixed64(head, seq);
        put_fixed32(head + 8, count);
        st = kv_wal_add_parts(kv->wal, WAL_BATCH, head, BATCH_HEADER, rep + BATCH_HEADER, len - BATCH_HEADER);
        if (st != NDB_OK) {
            /* The batch is not applied and appended_seq stays: a full disk may
             * have left part of its record, which ndb_kv_resume cuts off. */
            char what[64];
            snprintf(what, sizeof what, "appending to WAL segment %06llu.wal failed", (unsigned long long)kv->wal_number);
            poison_unlocked(kv, st, what);
            pthread_mutex_unlock(&kv->wmu);
            return st;
        }
        /* A memtable insert fails only on allocation: the WAL holds the
         * batch by then, so the only safe state is poisoned for good. */
        st = kv_batch_apply_trusted(rep, len, seq, kv_mem_insert_fn, kv->mem);
        if (st == NDB_OK) {
            __atomic_store_n(&kv->appended_seq, *last, __ATOMIC_RELEASE);
            if (kv->opt.durability != NDB_KV_SYNC) __atomic_store_n(&kv->last_seq, *last, __ATOMIC_RELEASE);
            __atomic_add_fetch(&kv->st_wal_bytes, WAL_HEADER + len, __ATOMIC_RELAXED);
            __atomic_add_fetch(&kv->st_user_bytes, user_bytes, __ATOMIC_RELAXED);
        } else {
            poison_unlocked(kv, st, "inserting a batch the WAL holds into the memtable failed");
        }
    }
    pthread_mutex_unlock(&kv->wmu);
    return st;
}

/* Step 2 for the batch whose last sequence is last. */
static ndb_status durable(ndb_kv *kv, uint64_t last)
{
    return last && kv->opt.durability == NDB_KV_SYNC ? wait_synced(kv, last) : NDB_OK;
}

/* Both steps. */
static ndb_status commit(ndb_kv *kv, const char *rep, size_t len, uint64_t user_bytes)
{
    uint64_t last;
    ndb_status st = append(kv, rep, len, user_bytes, &last);
    return st == NDB_OK ? durable(kv, last) : st;
}

ndb_status ndb_kv_write(ndb_kv *kv, const ndb_kv_batch *b)
{
    if (kv == NULL || b == NULL) return NDB_EINVAL;
    if (ndb_kv_batch_count(b) == 0) return NDB_OK;
    return commit(kv, b->rep, b->len, b->user_bytes);
}

ndb_status ndb_kv_write_append(ndb_kv *kv, const ndb_kv_batch *b, uint64_t *ticket)
{
    if (kv == NULL || b == NULL || ticket == NULL) return NDB_EINVAL;
    *ticket = 0;
    if (ndb_kv_batch_count(b) == 0) return NDB_OK;
    uint64_t last;
    ndb_status st = append(kv, b->rep, b->len, b->user_bytes, &last);
    if (st == NDB_OK) *ticket = last;
    return st;
}

ndb_status ndb_kv_write_wait(ndb_kv *kv, uint64_t ticket)
{
    return kv ? durable(kv, ticket) : NDB_EINVAL;
}

static ndb_status write_one(ndb_kv *kv, int type, const void *key, size_t klen, const void *val, size_t vlen)
{
    if (kv == NULL || (key == NULL && klen) || (val == NULL && vlen)) return NDB_EINVAL;
    if (klen > NDB_KV_MAX_KEY || vlen > NDB_KV_MAX_VALUE) return NDB_ETOOBIG;
    char stackbuf[512];
    size_t need = BATCH_HEADER + BATCH_OP_MAX(klen, vlen);
    char *rep = need <= sizeof stackbuf ? stackbuf : malloc(need);
    if (rep == NULL) return NDB_ENOMEM;
    memset(rep, 0, BATCH_HEADER);
    put_fixed32(rep + 8, 1);
    char *p = kv_batch_encode_op(rep + BATCH_HEADER, type, key, klen, val, vlen);
    ndb_status st = commit(kv, rep, (size_t)(p - rep), klen + vlen);
    if (rep != stackbuf) free(rep);
    return st;
}

ndb_status ndb_kv_put(ndb_kv *kv, const void *key, size_t klen, const void *val, size_t vlen)
{
    return write_one(kv, KV_TYPE_VALUE, key, klen, val, vlen);
}

ndb_status ndb_kv_delete(ndb_kv *kv, const void *key, size_t klen)
{
    return write_one(kv, KV_TYPE_DELETE, key, klen, NULL, 0);
}
