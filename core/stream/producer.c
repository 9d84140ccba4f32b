/* producer.c - idempotent producers: the per-partition producer state (epoch and the last five
 * batches of every producer id), the sequence rules Produce is checked against, its snapshot
 * in the index, its rebuild from WAL replay, and producer id allocation.
 *
 * Rules (Kafka 3.x ProducerStateManager / ProducerAppendInfo, for client appends):
 *   - a batch equal (same epoch, first and last sequence) to one of the producer's last five
 *     batches is a duplicate: the caller answers the original offsets and writes nothing;
 *   - an epoch older than the producer's current one: INVALID_PRODUCER_EPOCH;
 *   - a newer epoch must start at sequence 0 (else OUT_OF_ORDER_SEQUENCE_NUMBER) and resets
 *     the batches;
 *   - a producer unknown here (epoch -1) whose state may have been dropped (an id below
 *     expired_pid_end: it expired, or a snapshot was lost) is accepted at any sequence, as
 *     Kafka does since KIP-360. Any other unknown producer never wrote here and must start at
 *     sequence 0 (else OUT_OF_ORDER_SEQUENCE_NUMBER), where Kafka accepts any: a client with
 *     several requests in flight whose first was refused (say NOT_LEADER_OR_FOLLOWER while
 *     this broker was still claiming the partition) would otherwise have its second one
 *     accepted, and librdkafka then reports the refused records as delivered (it takes a later
 *     success as proof that the earlier batch was written). Seen in the cluster tests: the
 *     first record of a new partition acknowledged and missing. With the error, librdkafka
 *     bumps the epoch and resends both in order;
 *   - same epoch: first sequence must be last sequence + 1 (0 after INT32_MAX), else
 *     OUT_OF_ORDER_SEQUENCE_NUMBER.
 * Persistence: the state lives with the partition. Each upload commit writes a 'P' snapshot
 * of the durable part of it (batches below the high watermark) in the same synced index batch
 * as the partition's ranges; startup loads it, then WAL replay applies every replayed batch on
 * top (idempotently: batches at or below an entry's last offset are skipped). So once the WAL
 * is trimmed the snapshot still holds what the trimmed records taught.
 * Snapshot value ('P' <u64 stream id>, big-endian): u8 version=2, u32 count, i64
 * expired_pid_end, per producer {i64 pid, i16 epoch, i64 last offset, i64 updated ms, u8
 * nbatches, per batch {i32 first seq, i32 last seq, i64 base offset, i64 last offset, i64 max
 * timestamp}}. Version 1 (no expired_pid_end) still loads, as "every id may have expired".
 * Producers idle for STRATUS_PRODUCER_EXPIRATION_MS (a day, Kafka's producer.id.expiration.ms)
 * are dropped when a snapshot is taken.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "proto/kerr.h"
#include "stream_int.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

#define PSTATE_VERSION 2
#define PSTATE_HEADER 13 /* version 1, count 4, expired_pid_end 8 */
#define PENTRY_FIXED 27 /* pid 8, epoch 2, last off 8, updated 8, nb 1 */
#define PBATCH_SIZE 32

/* ---- the state (caller holds the partition lock) ---- */

static size_t pstate_pos(const struct stratus_pstate *ps, int64_t pid)
{
    size_t lo = 0, hi = ps->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ps->v[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct stratus_pentry *stratus_pstate_find(struct stratus_pstate *ps, int64_t pid)
{
    size_t i = pstate_pos(ps, pid);
    return i < ps->n && ps->v[i].pid == pid ? &ps->v[i] : NULL;
}

void stratus_pstate_put(struct stratus_pstate *ps, const struct stratus_pentry *e)
{
    size_t i = pstate_pos(ps, e->pid);

    if (i < ps->n && ps->v[i].pid == e->pid) {
        ps->v[i] = *e;
        return;
    }
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 8;
        ps->v = xrealloc(ps->v, ps->cap * sizeof *ps->v);
    }
    memmove(ps->v + i + 1, ps->v + i, (ps->n - i) * sizeof *ps->v);
    ps->v[i] = *e;
    ps->n++;
}

void stratus_pstate_clear(struct stratus_pstate *ps)
{
    free(ps->v);
    memset(ps, 0, sizeof *ps);
}

static void note_expired(struct stratus_pstate *ps, int64_t pid)
{
    if (pid >= ps->expired_pid_end)
        ps->expired_pid_end = pid == INT64_MAX ? INT64_MAX : pid + 1;
}

int32_t stratus_pstate_seq_add(int32_t first_seq, int32_t delta)
{
    if (first_seq > INT32_MAX - delta)
        return delta - (INT32_MAX - first_seq) - 1;
    return first_seq + delta;
}

static void pentry_push(struct stratus_pentry *e, const struct stratus_pbatch *b)
{
    if (e->nb == STRATUS_PRODUCER_BATCHES) {
        memmove(e->b, e->b + 1, (STRATUS_PRODUCER_BATCHES - 1) * sizeof e->b[0]);
        e->nb--;
    }
    e->b[e->nb++] = *b;
}

int stratus_pstate_check(struct stratus_pentry *w, int16_t epoch, int32_t first_seq,
                         int32_t nrecords_minus_1, int64_t expired_pid_end,
                         struct stratus_pbatch *dup, char *msg, size_t msgcap)
{
    int32_t last_seq = stratus_pstate_seq_add(first_seq, nrecords_minus_1);
    struct stratus_pbatch nb = {.first_seq = first_seq, .last_seq = last_seq, .base = -1,
                                .last = -1, .ts = -1};

    if (first_seq < 0) {
        snprintf(msg, msgcap, "producer %lld: invalid base sequence %d", (long long)w->pid,
                 first_seq);
        return KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    }
    if (epoch == w->epoch) {
        for (int i = 0; i < w->nb; i++)
            if (w->b[i].first_seq == first_seq && w->b[i].last_seq == last_seq) {
                *dup = w->b[i];
                return STRATUS_PSTATE_DUP;
            }
    }
    if (epoch < w->epoch) {
        snprintf(msg, msgcap, "producer %lld: epoch %d is older than the current epoch %d",
                 (long long)w->pid, epoch, w->epoch);
        return KAFKA_ERR_INVALID_PRODUCER_EPOCH;
    }
    if (epoch != w->epoch) {
        if (first_seq != 0 && w->epoch != -1) {
            snprintf(msg, msgcap, "producer %lld: new epoch %d must start at sequence 0, got %d",
                     (long long)w->pid, epoch, first_seq);
            return KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
        }
        if (first_seq != 0 && w->pid >= expired_pid_end) {
            snprintf(msg, msgcap, "producer %lld is new to this partition and must start at "
                     "sequence 0, got %d (an earlier batch of it was refused or lost?)",
                     (long long)w->pid, first_seq);
            return KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
        }
        w->epoch = epoch;
        w->nb = 0;
    } else {
        int32_t cur = w->nb ? w->b[w->nb - 1].last_seq : -1;
        int in_seq = (int64_t)first_seq == (int64_t)cur + 1 || (first_seq == 0 && cur == INT32_MAX);
        if (!in_seq) {
            snprintf(msg, msgcap, "producer %lld epoch %d: sequence %d does not follow %d",
                     (long long)w->pid, epoch, first_seq, cur);
            return KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
        }
    }
    pentry_push(w, &nb);
    return KAFKA_ERR_NONE;
}

void stratus_pstate_replay(struct stratus_pstate *ps, int64_t pid, int16_t epoch,
                           int32_t first_seq, int32_t last_seq, int64_t base, int64_t last,
                           int64_t ts)
{
    struct stratus_pentry *e = stratus_pstate_find(ps, pid), ne;
    struct stratus_pbatch b = {.first_seq = first_seq, .last_seq = last_seq, .base = base,
                               .last = last, .ts = ts};

    if (!e) {
        memset(&ne, 0, sizeof ne);
        ne.pid = pid;
        ne.epoch = epoch;
        ne.last_off = -1;
        stratus_pstate_put(ps, &ne);
        e = stratus_pstate_find(ps, pid);
    }
    if (last <= e->last_off || epoch < e->epoch)
        return;
    if (epoch > e->epoch) {
        e->epoch = epoch;
        e->nb = 0;
    }
    pentry_push(e, &b);
    e->last_off = last;
    e->updated_ms = stratus_wall_ms();
}

/* ---- snapshot encoding ---- */

void stratus_pstate_encode(struct stratus_pstate *ps, int64_t hw, int64_t now_ms, uint8_t **out,
                           size_t *len)
{
    size_t cap = PSTATE_HEADER, n = 0, pos, w = 0;
    uint8_t *buf;

    for (size_t i = 0; i < ps->n; i++) { /* expire idle producers */
        /* compared without a subtraction from updated_ms: a snapshot decoded from storage
         * may hold any value there */
        if (ps->v[i].updated_ms &&
            ps->v[i].updated_ms < now_ms - STRATUS_PRODUCER_EXPIRATION_MS) {
            note_expired(ps, ps->v[i].pid);
            continue;
        }
        ps->v[w++] = ps->v[i];
    }
    ps->n = w;
    for (size_t i = 0; i < ps->n; i++)
        cap += PENTRY_FIXED + (size_t)ps->v[i].nb * PBATCH_SIZE;
    buf = xmalloc(cap);
    buf[0] = PSTATE_VERSION;
    stratus_be64_put(buf + 5, (uint64_t)ps->expired_pid_end);
    pos = PSTATE_HEADER;
    for (size_t i = 0; i < ps->n; i++) {
        const struct stratus_pentry *e = &ps->v[i];
        uint8_t nb = 0, *nbp;
        int64_t last_off = -1;
        for (int j = 0; j < e->nb; j++)
            if (e->b[j].last < hw)
                last_off = e->b[j].last;
        if (last_off < 0)
            continue; /* nothing durable yet: the WAL replay rebuilds it if it becomes so */
        stratus_be64_put(buf + pos, (uint64_t)e->pid);
        stratus_be16_put(buf + pos + 8, (uint16_t)e->epoch);
        stratus_be64_put(buf + pos + 10, (uint64_t)last_off);
        stratus_be64_put(buf + pos + 18, (uint64_t)e->updated_ms);
        nbp = buf + pos + 26;
        pos += PENTRY_FIXED;
        for (int j = 0; j < e->nb; j++) {
            const struct stratus_pbatch *b = &e->b[j];
            if (b->last >= hw)
                break;
            stratus_be32_put(buf + pos, (uint32_t)b->first_seq);
            stratus_be32_put(buf + pos + 4, (uint32_t)b->last_seq);
            stratus_be64_put(buf + pos + 8, (uint64_t)b->base);
            stratus_be64_put(buf + pos + 16, (uint64_t)b->last);
            stratus_be64_put(buf + pos + 24, (uint64_t)b->ts);
            pos += PBATCH_SIZE;
            nb++;
        }
        *nbp = nb;
        n++;
    }
    stratus_be32_put(buf + 1, (uint32_t)n);
    *out = buf;
    *len = pos;
}

int stratus_pstate_decode(struct stratus_pstate *ps, const uint8_t *v, size_t len)
{
    size_t pos;
    uint32_t n;

    stratus_pstate_clear(ps);
    if (len < 5 || (v[0] != 1 && v[0] != PSTATE_VERSION) ||
        (v[0] == PSTATE_VERSION && len < PSTATE_HEADER))
        goto bad;
    n = stratus_be32_get(v + 1);
    if (v[0] == 1) {
        pos = 5;
        ps->expired_pid_end = INT64_MAX; /* written before ids were tracked: any may have */
    } else {
        pos = PSTATE_HEADER;
        ps->expired_pid_end = (int64_t)stratus_be64_get(v + 5);
        if (ps->expired_pid_end < 0)
            goto bad;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct stratus_pentry e;
        memset(&e, 0, sizeof e);
        if (len - pos < PENTRY_FIXED)
            goto bad;
        e.pid = (int64_t)stratus_be64_get(v + pos);
        e.epoch = (int16_t)stratus_be16_get(v + pos + 8);
        e.last_off = (int64_t)stratus_be64_get(v + pos + 10);
        e.updated_ms = (int64_t)stratus_be64_get(v + pos + 18);
        e.nb = v[pos + 26];
        pos += PENTRY_FIXED;
        if (e.nb > STRATUS_PRODUCER_BATCHES || len - pos < (size_t)e.nb * PBATCH_SIZE)
            goto bad;
        for (int j = 0; j < e.nb; j++) {
            struct stratus_pbatch *b = &e.b[j];
            b->first_seq = (int32_t)stratus_be32_get(v + pos);
            b->last_seq = (int32_t)stratus_be32_get(v + pos + 4);
            b->base = (int64_t)stratus_be64_get(v + pos + 8);
            b->last = (int64_t)stratus_be64_get(v + pos + 16);
            b->ts = (int64_t)stratus_be64_get(v + pos + 24);
            pos += PBATCH_SIZE;
        }
        stratus_pstate_put(ps, &e);
    }
    if (pos != len)
        goto bad;
    return 0;
bad:
    stratus_pstate_clear(ps);
    ps->expired_pid_end = INT64_MAX; /* the history is unknown: accept any continuation */
    return STRATUS_ECORRUPT;
}

/* ---- with the partition and the index ---- */

void stratus_pstate_snapshot(struct stratus_partition *p, struct stratus_index_batch *ib)
{
    uint8_t key[STRATUS_IDX_KEY_MAX], *v = NULL;
    size_t klen = stratus_index_key_producer(key, p->stream_id), vlen = 0;
    int64_t now = stratus_wall_ms();

    pthread_mutex_lock(&p->lock);
    if (p->producers.n == 0 && p->producers.expired_pid_end == 0) {
        pthread_mutex_unlock(&p->lock);
        stratus_index_batch_delete(ib, key, klen);
        return;
    }
    stratus_pstate_encode(&p->producers, p->hw, now, &v, &vlen);
    pthread_mutex_unlock(&p->lock);
    stratus_index_batch_put(ib, key, klen, v, vlen);
    free(v);
}

int stratus_pstate_load(struct stratus_partition *p, struct stratus_errbuf *eb)
{
    uint8_t key[STRATUS_IDX_KEY_MAX], *v = NULL;
    size_t klen = stratus_index_key_producer(key, p->stream_id), vlen = 0;
    int rc = stratus_index_get(p->s->idx, key, klen, &v, &vlen, eb);

    if (rc == STRATUS_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    pthread_mutex_lock(&p->lock);
    rc = stratus_pstate_decode(&p->producers, v, vlen);
    pthread_mutex_unlock(&p->lock);
    free(v);
    if (rc) {
        /* Losing it only weakens duplicate detection (decode left expired_pid_end at
         * INT64_MAX: unknown producers are accepted at any sequence). */
        LOG_WARN("stream", "index: producer state of topic=%s partition=%d is corrupt; dropped",
                 p->topic, p->index);
    }
    return 0;
}

/* ---- public ---- */

int stratus_partition_producers(struct stratus_partition *p, struct stratus_producer_info **out,
                                size_t *n)
{
    struct stratus_producer_info *v = NULL;
    size_t k = 0;

    pthread_mutex_lock(&p->lock);
    if (p->producers.n) {
        v = calloc(p->producers.n, sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&p->lock);
            return STRATUS_ENOMEM;
        }
    }
    for (size_t i = 0; i < p->producers.n; i++) {
        const struct stratus_pentry *e = &p->producers.v[i];
        if (!e->nb)
            continue;
        v[k].producer_id = e->pid;
        v[k].epoch = e->epoch;
        v[k].last_sequence = e->b[e->nb - 1].last_seq;
        v[k].last_timestamp = e->b[e->nb - 1].ts;
        k++;
    }
    pthread_mutex_unlock(&p->lock);
    *out = v;
    *n = k;
    return 0;
}

int stratus_stream_new_producer_id(struct stratus_stream *s, int64_t *pid,
                                   struct stratus_errbuf *eb)
{
    uint64_t id = 0;
    /* In a cluster every broker hands out producer ids: they come from the metastore's
     * counter, so that two brokers never give out the same one. */
    int rc = s->conf.cluster ? s->conf.cluster->alloc_ids(s->conf.cluster->arg, "producer", 1, &id, eb)
                             : stratus_index_counter_next(s->idx, "producer", 1, &id, eb);

    if (rc)
        return rc;
    if (id > (uint64_t)INT64_MAX)
        return stratus_errf(eb, STRATUS_EINVAL, "producer ids exhausted");
    *pid = (int64_t)id;
    return 0;
}
