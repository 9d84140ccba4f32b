/* group.c - the group coordinator thread: the classic rebalance protocol and committed offsets.
 *
 * Threading: one coordinator thread runs its own loop and owns every struct below (groups,
 * members, pending member ids, offsets, the commit batch); nothing here takes a lock except the
 * loop's post queue. Requests arrive through stratus_group_submit() (a post to the loop) and
 * are answered with op->done() on this thread. Timers on the loop: a session timer per member,
 * one join timer per rebalancing group (initial delay, then the rebalance timeout), and the
 * offsets retention timer.
 *
 * The state machine is Kafka's classic GroupCoordinator: Empty -> PreparingRebalance (members
 * (re)join; completes when every known member rejoined and no MEMBER_ID_REQUIRED id is still
 * outstanding, or when the rebalance timeout expires and the members that did not rejoin are
 * removed) -> CompletingRebalance (generation + 1, protocol chosen by vote, the leader gets the
 * member list; followers' SyncGroups park until the leader's SyncGroup carries the assignments)
 * -> Stable. A member whose session expires is removed and the group rebalances; Dead is a
 * deleted group. Static members (group.instance.id) keep their slot across restarts: a rejoin
 * with a known instance id replaces the member id (the old one is fenced, FENCED_INSTANCE_ID)
 * without a rebalance when nothing changed. Group membership is in memory only: after a
 * restart members get UNKNOWN_MEMBER_ID and rejoin, as after a coordinator move in Kafka.
 *
 * Offsets: OffsetCommit validates on this thread, adds the records to one RocksDB write batch
 * and queues the request; a flush task posted to this same loop (so it runs after every task
 * already queued, i.e. once per loop iteration) writes the batch with sync and only then applies
 * the offsets in memory and answers. While a synced write runs, new commits queue up and go in
 * the next batch: group commit. Offsets are loaded from the index at open. Retention: offsets
 * of a group without members expire offsets_retention_ms after max(commit time, the time the
 * group became empty); a group with neither members nor offsets is forgotten.
 *
 * Cluster mode (stratus_group_set_cluster): every request first asks the node agent whether
 * this broker coordinates the group (NOT_COORDINATOR otherwise). The group table is then a
 * cache of the groups coordinated here: a group not in it is loaded from the store on its first
 * request (its offsets blob, see offsets.c; a group absent from the store is created only by
 * JoinGroup or a memberless OffsetCommit, as in single-node mode). The flush task stores, per
 * group touched by the batch, the group's whole table with the batch applied (one fenced store
 * per group per batch, instead of one synced RocksDB batch); EEXIST means another broker took
 * the group over: its commits answer NOT_COORDINATOR and it is dropped from memory; another
 * error answers COORDINATOR_NOT_AVAILABLE and marks the group's offsets stale, so they are
 * reloaded before they are used again (the store may or may not have happened). Retention and
 * DeleteGroups rewrite or delete the blob the same way. The RocksDB index is not touched.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "group.h"

#include "group_int.h"
#include "index/index.h"
#include "proto/kerr.h"
#include "proto/proto_gen.h"
#include "stream/stream.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/loop.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

enum gstate { G_EMPTY, G_PREPARING, G_COMPLETING, G_STABLE, G_DEAD };

static const char *const state_names[] = {"Empty", "PreparingRebalance", "CompletingRebalance",
                                          "Stable", "Dead"};

struct gproto {
    char *name;
    uint8_t *meta;
    int32_t len;
};

struct member {
    struct member *next;
    struct group *g;
    struct stratus_group_coord *c;
    char *id;
    char *instance_id; /* NULL for a dynamic member */
    char *client_id, *client_host;
    int32_t session_ms, rebalance_ms;
    struct gproto *protos;
    int nprotos;
    uint8_t *assign; /* the leader's assignment for this member (NULL = none) */
    int32_t alen;
    struct stratus_group_op *join_op; /* parked JoinGroup */
    struct stratus_group_op *sync_op; /* parked SyncGroup */
    int64_t last_seen_ms;             /* monotonic: last heartbeat / join / sync */
    uint64_t timer;                   /* session timer id, 0 = none */
};

/* A member id handed out with MEMBER_ID_REQUIRED, not yet used to join. */
struct pending_id {
    struct pending_id *next;
    char *id;
    int64_t expire_ms;
};

struct group {
    struct group *hnext;
    char *id;
    int state;
    int32_t generation;
    char *protocol_type; /* NULL until a member joined */
    char *protocol;      /* chosen protocol, NULL when none */
    char *leader;        /* leader's member id (copy), NULL when none */
    struct member *members;
    int nmembers;
    struct pending_id *pending;
    uint64_t join_timer;
    int64_t join_started_ms; /* mono: start of this rebalance */
    int64_t join_deadline_ms;
    int in_initial_delay;
    int joined_during_delay;
    struct stratus_offsets offs;
    int64_t empty_since_ms; /* wall */
    int offs_stale;         /* cluster: reload offs from the store before using them */
    int flush_rc;           /* cluster, during flush_cluster(): 1 pending, then the store rc */
};

struct commit_wait {
    struct commit_wait *next;
    struct stratus_group_op *op;
    struct group *g; /* NULL when nothing to write (all partitions refused) */
    size_t n;        /* entries below */
    struct commit_ent {
        const char *topic; /* borrowed from the request */
        int32_t partition;
        int64_t offset;
        int32_t epoch;
        const char *meta;
        size_t metalen;
        int16_t *err; /* the response slot */
    } * ents;
};

struct stratus_group_coord {
    struct stratus_group_conf conf;
    struct stratus_stream *stream;
    struct stratus_index *idx;
    struct stratus_loop *loop;
    pthread_t thread;
    int draining;      /* coordinator thread */
    atomic_int closed; /* submit refuses */
    pthread_mutex_t drain_lock;
    pthread_cond_t drain_cond;
    int drained;
    struct group **buckets;
    size_t nbuckets, ngroups;
    /* commit batch */
    struct stratus_index_batch *batch;
    struct commit_wait *cw_head, **cw_tail;
    int flush_posted;
    uint64_t retention_timer;
    struct stratus_group_stats stats;
    /* cluster mode: set on the coordinator thread by stratus_group_set_cluster() */
    int cluster;
    struct stratus_group_cluster_ops cops;
};

/* ---- helpers ---------------------------------------------------------------------------- */

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static int kstr_is(struct kstr k, const char *s)
{
    if (k.len < 0)
        return s == NULL;
    return s && strlen(s) == (size_t)k.len && memcmp(s, k.s, (size_t)k.len) == 0;
}

static char *dup_kstr(struct kstr k)
{
    return k.len < 0 ? NULL : xstrndup(k.s ? k.s : "", (size_t)k.len);
}

static struct kstr ks(const char *s)
{
    return s ? (struct kstr){s, (int32_t)strlen(s)} : KSTR_NULL;
}

static struct group *group_find(struct stratus_group_coord *c, const char *id, size_t len)
{
    struct group *g = c->buckets[hash_str(id, len) & (c->nbuckets - 1)];
    for (; g; g = g->hnext)
        if (strlen(g->id) == len && memcmp(g->id, id, len) == 0)
            return g;
    return NULL;
}

static struct group *group_find_k(struct stratus_group_coord *c, struct kstr id)
{
    if (id.len < 0)
        return NULL;
    return group_find(c, id.s ? id.s : "", (size_t)id.len);
}

static void groups_grow(struct stratus_group_coord *c)
{
    size_t nb = c->nbuckets * 2;
    struct group **b = xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct group *g = c->buckets[i], *next;
        for (; g; g = next) {
            next = g->hnext;
            size_t h = hash_str(g->id, strlen(g->id)) & (nb - 1);
            g->hnext = b[h];
            b[h] = g;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

static struct group *group_create(struct stratus_group_coord *c, const char *id, size_t len)
{
    struct group *g = xcalloc(1, sizeof *g);
    g->id = xstrndup(id, len);
    g->state = G_EMPTY;
    g->generation = 0;
    g->empty_since_ms = stratus_wall_ms();
    if (c->ngroups + 1 > c->nbuckets * 2)
        groups_grow(c);
    size_t h = hash_str(id, len) & (c->nbuckets - 1);
    g->hnext = c->buckets[h];
    c->buckets[h] = g;
    c->ngroups++;
    return g;
}

static void member_free(struct member *m)
{
    for (int i = 0; i < m->nprotos; i++) {
        free(m->protos[i].name);
        free(m->protos[i].meta);
    }
    free(m->protos);
    free(m->assign);
    free(m->id);
    free(m->instance_id);
    free(m->client_id);
    free(m->client_host);
    free(m);
}

static void group_unlink_free(struct stratus_group_coord *c, struct group *g)
{
    size_t h = hash_str(g->id, strlen(g->id)) & (c->nbuckets - 1);
    struct group **pp = &c->buckets[h];
    while (*pp && *pp != g)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = g->hnext;
    c->ngroups--;
    if (g->join_timer)
        stratus_loop_timer_cancel(c->loop, g->join_timer);
    while (g->members) {
        struct member *m = g->members;
        g->members = m->next;
        if (m->timer)
            stratus_loop_timer_cancel(c->loop, m->timer);
        member_free(m);
    }
    while (g->pending) {
        struct pending_id *p = g->pending;
        g->pending = p->next;
        free(p->id);
        free(p);
    }
    stratus_offsets_free(&g->offs);
    free(g->id);
    free(g->protocol_type);
    free(g->protocol);
    free(g->leader);
    free(g);
}

static struct member *member_find(struct group *g, struct kstr id)
{
    if (id.len <= 0)
        return NULL;
    for (struct member *m = g->members; m; m = m->next)
        if (kstr_is(id, m->id))
            return m;
    return NULL;
}

static struct member *member_by_instance(struct group *g, struct kstr inst)
{
    if (inst.len < 0)
        return NULL;
    for (struct member *m = g->members; m; m = m->next)
        if (m->instance_id && kstr_is(inst, m->instance_id))
            return m;
    return NULL;
}

/* client_id-UUIDv4, as Kafka forms member ids. */
static char *new_member_id(const char *client_id, struct kstr instance)
{
    uint8_t r[16];
    char buf[512];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        uint64_t t = (uint64_t)stratus_mono_us();
        for (int i = 0; i < 16; i++)
            r[i] = (uint8_t)(t >> ((i % 8) * 8)) ^ (uint8_t)(i * 37);
    }
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
    char prefix[260];
    if (instance.len >= 0)
        snprintf(prefix, sizeof prefix, "%.*s", instance.len > 250 ? 250 : (int)instance.len,
                 instance.s);
    else
        snprintf(prefix, sizeof prefix, "%.200s", client_id ? client_id : "");
    snprintf(buf, sizeof buf,
             "%s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", prefix,
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
    return xstrdup(buf);
}

/* ---- answering ------------------------------------------------------------------------- */

static void op_finish(struct stratus_group_op *op)
{
    op->done(op);
}

static void join_fail(struct stratus_group_op *op, int16_t err, const char *member_id)
{
    struct JoinGroupResponse *rs = op->rs;
    rs->ErrorCode = err;
    rs->GenerationId = -1;
    rs->ProtocolName = op->api_version >= 7 ? KSTR_NULL : KSTR_LIT("");
    rs->Leader = KSTR_LIT("");
    rs->MemberId = member_id ? ks(member_id) : KSTR_LIT("");
    op_finish(op);
}

static void sync_fail(struct stratus_group_op *op, int16_t err)
{
    struct SyncGroupResponse *rs = op->rs;
    rs->ErrorCode = err;
    rs->Assignment = (struct kbytes){(const uint8_t *)"", 0};
    op_finish(op);
}

/* Fails any op with err, whatever its API (shutdown, bad group id). */
static void op_fail(struct stratus_group_op *op, int16_t err)
{
    switch (op->api_key) {
    case KAPI_JoinGroup:
        join_fail(op, err, NULL);
        return;
    case KAPI_SyncGroup:
        sync_fail(op, err);
        return;
    case KAPI_Heartbeat:
        ((struct HeartbeatResponse *)op->rs)->ErrorCode = err;
        break;
    case KAPI_LeaveGroup:
        ((struct LeaveGroupResponse *)op->rs)->ErrorCode = err;
        break;
    case KAPI_ListGroups:
        ((struct ListGroupsResponse *)op->rs)->ErrorCode = err;
        break;
    case KAPI_DescribeGroups: {
        const struct DescribeGroupsRequest *rq = op->rq;
        struct DescribeGroupsResponse *rs = op->rs;
        int32_t n = rq->Groups.count > 0 ? rq->Groups.count : 0;
        rs->Groups.items = arena_calloc(op->arena, (size_t)n,
                                        sizeof(struct DescribeGroupsResponse_DescribedGroup));
        rs->Groups.count = rs->Groups.items ? n : 0;
        for (int32_t i = 0; i < rs->Groups.count; i++) {
            DescribeGroupsResponse_DescribedGroup_init(&rs->Groups.items[i]);
            rs->Groups.items[i].ErrorCode = err;
            rs->Groups.items[i].GroupId = rq->Groups.items[i];
            rs->Groups.items[i].GroupState = KSTR_LIT("");
            rs->Groups.items[i].ProtocolType = KSTR_LIT("");
            rs->Groups.items[i].ProtocolData = KSTR_LIT("");
            rs->Groups.items[i].Members.count = 0;
        }
        break;
    }
    case KAPI_DeleteGroups: {
        const struct DeleteGroupsRequest *rq = op->rq;
        struct DeleteGroupsResponse *rs = op->rs;
        int32_t n = rq->GroupsNames.count > 0 ? rq->GroupsNames.count : 0;
        rs->Results.items = arena_calloc(op->arena, (size_t)n,
                                         sizeof(struct DeleteGroupsResponse_DeletableGroupResult));
        rs->Results.count = rs->Results.items ? n : 0;
        for (int32_t i = 0; i < rs->Results.count; i++) {
            rs->Results.items[i].GroupId = rq->GroupsNames.items[i];
            rs->Results.items[i].ErrorCode = err;
        }
        break;
    }
    case KAPI_OffsetCommit: {
        struct OffsetCommitResponse *rs = op->rs;
        for (int32_t i = 0; i < rs->Topics.count; i++)
            for (int32_t j = 0; j < rs->Topics.items[i].Partitions.count; j++)
                rs->Topics.items[i].Partitions.items[j].ErrorCode = err;
        break;
    }
    case KAPI_OffsetFetch: {
        const struct OffsetFetchRequest *rq = op->rq;
        struct OffsetFetchResponse *rs = op->rs;
        rs->ErrorCode = err;
        if (op->api_version >= 8) {
            int32_t n = rq->Groups.count > 0 ? rq->Groups.count : 0;
            rs->Groups.items = arena_calloc(
                op->arena, (size_t)n, sizeof(struct OffsetFetchResponse_OffsetFetchResponseGroup));
            rs->Groups.count = rs->Groups.items ? n : 0;
            for (int32_t i = 0; i < rs->Groups.count; i++) {
                OffsetFetchResponse_OffsetFetchResponseGroup_init(&rs->Groups.items[i]);
                rs->Groups.items[i].GroupId = rq->Groups.items[i].GroupId;
                rs->Groups.items[i].ErrorCode = err;
                rs->Groups.items[i].Topics.count = 0;
            }
        } else if (op->api_version < 2) {
            /* v0-1 have no top-level error: every partition asked for carries it (Kafka's
             * OffsetFetchRequest.getErrorResponse). */
            typedef struct OffsetFetchResponse_OffsetFetchResponseTopic T;
            typedef struct OffsetFetchResponse_OffsetFetchResponsePartition P;
            int32_t nt = rq->Topics.count > 0 ? rq->Topics.count : 0;
            rs->Topics.items = arena_calloc(op->arena, (size_t)nt, sizeof(T));
            rs->Topics.count = rs->Topics.items ? nt : 0;
            for (int32_t i = 0; i < rs->Topics.count; i++) {
                const struct OffsetFetchRequest_OffsetFetchRequestTopic *t = &rq->Topics.items[i];
                T *tr = &rs->Topics.items[i];
                int32_t np = t->PartitionIndexes.count > 0 ? t->PartitionIndexes.count : 0;
                tr->Name = t->Name;
                tr->Partitions.items = arena_calloc(op->arena, (size_t)np, sizeof(P));
                tr->Partitions.count = tr->Partitions.items ? np : 0;
                for (int32_t j = 0; j < tr->Partitions.count; j++) {
                    P *pr = &tr->Partitions.items[j];
                    pr->PartitionIndex = t->PartitionIndexes.items[j];
                    pr->CommittedOffset = -1;
                    pr->CommittedLeaderEpoch = -1;
                    pr->Metadata = KSTR_LIT("");
                    pr->ErrorCode = err;
                }
            }
        } else {
            rs->Topics.count = 0;
        }
        break;
    }
    default:
        break;
    }
    op_finish(op);
}

/* ---- membership ------------------------------------------------------------------------ */

static void session_timer_fn(void *arg);
static void prepare_rebalance(struct stratus_group_coord *c, struct group *g, const char *why);
static void try_complete_join(struct stratus_group_coord *c, struct group *g);

static void member_schedule(struct stratus_group_coord *c, struct member *m)
{
    if (!m->timer)
        m->timer =
            stratus_loop_timer_at(c->loop, m->last_seen_ms + m->session_ms, session_timer_fn, m);
}

static void member_touch(struct stratus_group_coord *c, struct member *m)
{
    m->last_seen_ms = stratus_mono_ms();
    member_schedule(c, m);
}

/* Unlinks and frees m; its parked requests get err. Does not rebalance. */
static void
member_remove(struct stratus_group_coord *c, struct group *g, struct member *m, int16_t err)
{
    struct member **pp = &g->members;
    while (*pp && *pp != m)
        pp = &(*pp)->next;
    if (*pp)
        *pp = m->next;
    g->nmembers--;
    if (m->timer)
        stratus_loop_timer_cancel(c->loop, m->timer);
    if (m->join_op) {
        struct stratus_group_op *op = m->join_op;
        m->join_op = NULL;
        join_fail(op, err, m->id);
    }
    if (m->sync_op) {
        struct stratus_group_op *op = m->sync_op;
        m->sync_op = NULL;
        sync_fail(op, err);
    }
    if (g->leader && strcmp(g->leader, m->id) == 0) {
        free(g->leader);
        g->leader = NULL;
    }
    member_free(m);
}

/* After a member left or expired: rebalance or finish the current one. */
static void member_gone(struct stratus_group_coord *c, struct group *g, const char *why)
{
    if (g->state == G_STABLE || g->state == G_COMPLETING)
        prepare_rebalance(c, g, why);
    else if (g->state == G_PREPARING)
        try_complete_join(c, g);
}

static void session_timer_fn(void *arg)
{
    struct member *m = arg;
    struct stratus_group_coord *c = m->c;
    struct group *g = m->g;
    int64_t now = stratus_mono_ms();

    m->timer = 0;
    /* A member waiting in JoinGroup / SyncGroup is alive (the rebalance timeout bounds it). */
    if (m->join_op || m->sync_op)
        m->last_seen_ms = now;
    if (now < m->last_seen_ms + m->session_ms) {
        member_schedule(c, m);
        return;
    }
    LOG_INFO("group", "session expired group=%s member=%s session_ms=%d", g->id, m->id,
             m->session_ms);
    c->stats.expired_members++;
    member_remove(c, g, m, KAFKA_ERR_UNKNOWN_MEMBER_ID);
    member_gone(c, g, "session expired");
}

static int protos_equal(const struct member *m, const struct JoinGroupRequest *rq)
{
    if (rq->Protocols.count != m->nprotos)
        return 0;
    for (int i = 0; i < m->nprotos; i++) {
        const struct JoinGroupRequest_JoinGroupRequestProtocol *p = &rq->Protocols.items[i];
        if (!kstr_is(p->Name, m->protos[i].name))
            return 0;
        int32_t len = p->Metadata.len > 0 ? p->Metadata.len : 0;
        if (len != m->protos[i].len ||
            (len && memcmp(p->Metadata.p, m->protos[i].meta, (size_t)len)))
            return 0;
    }
    return 1;
}

static void member_set_protos(struct member *m, const struct JoinGroupRequest *rq)
{
    for (int i = 0; i < m->nprotos; i++) {
        free(m->protos[i].name);
        free(m->protos[i].meta);
    }
    free(m->protos);
    m->nprotos = rq->Protocols.count > 0 ? rq->Protocols.count : 0;
    m->protos = xcalloc((size_t)m->nprotos + 1, sizeof *m->protos);
    for (int i = 0; i < m->nprotos; i++) {
        const struct JoinGroupRequest_JoinGroupRequestProtocol *p = &rq->Protocols.items[i];
        m->protos[i].name = dup_kstr(p->Name);
        if (!m->protos[i].name)
            m->protos[i].name = xstrdup("");
        m->protos[i].len = p->Metadata.len > 0 ? p->Metadata.len : 0;
        m->protos[i].meta = xmalloc((size_t)m->protos[i].len + 1);
        if (m->protos[i].len)
            memcpy(m->protos[i].meta, p->Metadata.p, (size_t)m->protos[i].len);
    }
}

static const struct gproto *member_proto(const struct member *m, const char *name)
{
    for (int i = 0; name && i < m->nprotos; i++)
        if (strcmp(m->protos[i].name, name) == 0)
            return &m->protos[i];
    return NULL;
}

static int member_supports(const struct member *m, const char *name)
{
    return member_proto(m, name) != NULL;
}

/* Every member supports at least one of rq's protocols in common with all the others. */
static int protocols_compatible(const struct group *g,
                                const struct JoinGroupRequest *rq,
                                const struct member *except)
{
    if (g->nmembers == 0 || (g->nmembers == 1 && except && g->members == except))
        return 1;
    for (int32_t i = 0; i < rq->Protocols.count; i++) {
        char name[256];
        kstr_copy(rq->Protocols.items[i].Name, name, sizeof name);
        int all = 1;
        for (const struct member *m = g->members; m && all; m = m->next)
            if (m != except && !member_supports(m, name))
                all = 0;
        if (all)
            return 1;
    }
    return 0;
}

/* Kafka's GroupMetadata.selectProtocol: among the protocols every member supports, each member
 * votes for the first one of its own list; most votes wins (ties: the leader's preference). */
static char *select_protocol(const struct group *g)
{
    const struct member *ref = g->members;
    const char *best = NULL;
    int best_votes = -1;

    for (const struct member *m = g->members; m; m = m->next)
        if (g->leader && strcmp(m->id, g->leader) == 0)
            ref = m;
    if (!ref)
        return NULL;
    for (int i = 0; i < ref->nprotos; i++) {
        const char *cand = ref->protos[i].name;
        int all = 1;
        for (const struct member *m = g->members; m && all; m = m->next)
            all = member_supports(m, cand);
        if (!all)
            continue;
        int votes = 0;
        for (const struct member *m = g->members; m; m = m->next) {
            for (int j = 0; j < m->nprotos; j++) {
                int common = 1;
                for (const struct member *o = g->members; o && common; o = o->next)
                    common = member_supports(o, m->protos[j].name);
                if (common) {
                    if (strcmp(m->protos[j].name, cand) == 0)
                        votes++;
                    break;
                }
            }
        }
        if (votes > best_votes) {
            best = cand;
            best_votes = votes;
        }
    }
    return best ? xstrdup(best) : NULL;
}

/* Fills op's JoinGroupResponse for member m from the current generation. */
static void join_answer(struct stratus_group_coord *c,
                        struct group *g,
                        struct member *m,
                        struct stratus_group_op *op)
{
    struct JoinGroupResponse *rs = op->rs;
    (void)c;
    rs->ErrorCode = KAFKA_ERR_NONE;
    rs->GenerationId = g->generation;
    rs->ProtocolType = ks(g->protocol_type);
    rs->ProtocolName =
        g->protocol ? ks(g->protocol) : (op->api_version >= 7 ? KSTR_NULL : KSTR_LIT(""));
    rs->Leader = ks(g->leader ? g->leader : "");
    rs->MemberId = ks(m->id);
    rs->SkipAssignment = 0;
    rs->Members.count = 0;
    if (g->leader && strcmp(g->leader, m->id) == 0) {
        rs->Members.items = arena_calloc(op->arena, (size_t)g->nmembers,
                                         sizeof(struct JoinGroupResponse_JoinGroupResponseMember));
        if (!rs->Members.items) {
            join_fail(op, KAFKA_ERR_UNKNOWN_SERVER_ERROR, m->id);
            return;
        }
        int32_t n = 0;
        for (struct member *x = g->members; x; x = x->next) {
            const struct gproto *p = member_proto(x, g->protocol);
            struct JoinGroupResponse_JoinGroupResponseMember *e = &rs->Members.items[n++];
            e->MemberId = ks(x->id);
            e->GroupInstanceId = ks(x->instance_id);
            e->Metadata =
                p ? (struct kbytes){p->meta, p->len} : (struct kbytes){(const uint8_t *)"", 0};
        }
        rs->Members.count = n;
    }
    op_finish(op);
}

static void complete_join(struct stratus_group_coord *c, struct group *g)
{
    if (g->join_timer) {
        stratus_loop_timer_cancel(c->loop, g->join_timer);
        g->join_timer = 0;
    }
    g->in_initial_delay = 0;
    /* Dynamic members that did not rejoin are gone (static ones keep their slot). */
    for (struct member *m = g->members, *next; m; m = next) {
        next = m->next;
        if (!m->join_op && !m->instance_id) {
            LOG_INFO("group", "member did not rejoin group=%s member=%s", g->id, m->id);
            member_remove(c, g, m, KAFKA_ERR_UNKNOWN_MEMBER_ID);
        }
    }
    int awaiting = 0;
    for (struct member *m = g->members; m; m = m->next)
        awaiting += m->join_op != NULL;
    g->generation++;
    free(g->protocol);
    g->protocol = NULL;
    c->stats.rebalances++;
    if (g->nmembers == 0 || awaiting == 0) {
        /* Nobody is waiting: the group is empty (static members without a join expire by
         * their session). */
        while (g->members) {
            struct member *m = g->members;
            member_remove(c, g, m, KAFKA_ERR_UNKNOWN_MEMBER_ID);
        }
        g->state = G_EMPTY;
        g->empty_since_ms = stratus_wall_ms();
        free(g->leader);
        g->leader = NULL;
        LOG_INFO("group", "group is empty group=%s generation=%d", g->id, g->generation);
        return;
    }
    if (!g->leader) {
        for (struct member *m = g->members; m; m = m->next)
            if (m->join_op) {
                g->leader = xstrdup(m->id);
                break;
            }
    }
    g->protocol = select_protocol(g);
    g->state = G_COMPLETING;
    for (struct member *m = g->members; m; m = m->next) {
        free(m->assign);
        m->assign = NULL;
        m->alen = 0;
    }
    LOG_INFO("group", "rebalance done group=%s generation=%d members=%d protocol=%s leader=%s",
             g->id, g->generation, g->nmembers, g->protocol ? g->protocol : "-", g->leader);
    int64_t now = stratus_mono_ms();
    for (struct member *m = g->members; m; m = m->next) {
        m->last_seen_ms = now;
        if (m->join_op) {
            struct stratus_group_op *op = m->join_op;
            m->join_op = NULL;
            join_answer(c, g, m, op);
        }
    }
}

static void join_timer_fn(void *arg)
{
    struct group *g = arg;
    struct stratus_group_coord *c = NULL;
    /* the coordinator is reachable through any member; a group without members completes. */
    for (struct member *m = g->members; m; m = m->next) {
        c = m->c;
        break;
    }
    g->join_timer = 0;
    if (!c) {
        /* No member left: nothing to hand out. */
        g->state = G_EMPTY;
        g->in_initial_delay = 0;
        g->empty_since_ms = stratus_wall_ms();
        return;
    }
    int64_t now = stratus_mono_ms();
    if (g->in_initial_delay) {
        /* Kafka's InitialDelayedJoin: wait another delay while members keep arriving, within
         * the rebalance timeout. */
        if (g->joined_during_delay &&
            now + c->conf.initial_rebalance_delay_ms < g->join_deadline_ms) {
            g->joined_during_delay = 0;
            g->join_timer = stratus_loop_timer_at(c->loop, now + c->conf.initial_rebalance_delay_ms,
                                                  join_timer_fn, g);
            return;
        }
        g->in_initial_delay = 0;
        try_complete_join(c, g);
        if (g->state == G_PREPARING && !g->join_timer)
            g->join_timer = stratus_loop_timer_at(c->loop, g->join_deadline_ms, join_timer_fn, g);
        return;
    }
    /* Rebalance timeout: go on with the members that rejoined. */
    LOG_INFO("group", "rebalance timeout group=%s", g->id);
    complete_join(c, g);
}

static void try_complete_join(struct stratus_group_coord *c, struct group *g)
{
    if (g->state != G_PREPARING || g->in_initial_delay)
        return;
    int64_t now = stratus_mono_ms();
    struct pending_id **pp = &g->pending;
    while (*pp) {
        if ((*pp)->expire_ms <= now) {
            struct pending_id *p = *pp;
            *pp = p->next;
            free(p->id);
            free(p);
        } else {
            pp = &(*pp)->next;
        }
    }
    for (struct member *m = g->members; m; m = m->next)
        if (!m->join_op)
            return;
    if (g->pending)
        return;
    complete_join(c, g);
}

static void prepare_rebalance(struct stratus_group_coord *c, struct group *g, const char *why)
{
    int32_t max_rebalance = 0;

    /* Parked SyncGroups of the generation being replaced rejoin. */
    for (struct member *m = g->members; m; m = m->next) {
        if (m->sync_op) {
            struct stratus_group_op *op = m->sync_op;
            m->sync_op = NULL;
            sync_fail(op, KAFKA_ERR_REBALANCE_IN_PROGRESS);
        }
        if (m->rebalance_ms > max_rebalance)
            max_rebalance = m->rebalance_ms;
    }
    int was_empty = g->state == G_EMPTY;
    g->state = G_PREPARING;
    int64_t now = stratus_mono_ms();
    g->join_started_ms = now;
    g->join_deadline_ms = now + max_rebalance;
    if (g->join_timer)
        stratus_loop_timer_cancel(c->loop, g->join_timer);
    g->join_timer = 0;
    LOG_INFO("group", "preparing rebalance group=%s generation=%d reason=%s", g->id, g->generation,
             why);
    if (was_empty && c->conf.initial_rebalance_delay_ms > 0) {
        g->in_initial_delay = 1;
        g->joined_during_delay = 0;
        int64_t d = c->conf.initial_rebalance_delay_ms;
        if (d > max_rebalance)
            d = max_rebalance;
        g->join_timer = stratus_loop_timer_at(c->loop, now + d, join_timer_fn, g);
        return;
    }
    g->join_timer = stratus_loop_timer_at(c->loop, g->join_deadline_ms, join_timer_fn, g);
    try_complete_join(c, g);
}

static struct member *member_add(struct stratus_group_coord *c,
                                 struct group *g,
                                 char *id,
                                 const struct JoinGroupRequest *rq,
                                 struct stratus_group_op *op)
{
    struct member *m = xcalloc(1, sizeof *m);
    m->g = g;
    m->c = c;
    m->id = id;
    m->instance_id = dup_kstr(rq->GroupInstanceId);
    m->client_id = xstrdup(op->client_id ? op->client_id : "");
    m->client_host = xstrdup(op->client_host ? op->client_host : "");
    m->session_ms = rq->SessionTimeoutMs;
    m->rebalance_ms = rq->RebalanceTimeoutMs > 0 ? rq->RebalanceTimeoutMs : rq->SessionTimeoutMs;
    member_set_protos(m, rq);
    /* append: the first member is the first candidate leader */
    struct member **pp = &g->members;
    while (*pp)
        pp = &(*pp)->next;
    *pp = m;
    g->nmembers++;
    if (!g->protocol_type)
        g->protocol_type = dup_kstr(rq->ProtocolType);
    member_touch(c, m);
    return m;
}

/* Parks op as m's JoinGroup (answering a previous one first) and moves the rebalance on. */
static void member_park_join(struct stratus_group_coord *c,
                             struct group *g,
                             struct member *m,
                             const struct JoinGroupRequest *rq,
                             struct stratus_group_op *op)
{
    if (m->join_op) {
        struct stratus_group_op *old = m->join_op;
        m->join_op = NULL;
        join_fail(old, KAFKA_ERR_REBALANCE_IN_PROGRESS, m->id);
    }
    member_set_protos(m, rq);
    m->session_ms = rq->SessionTimeoutMs;
    m->rebalance_ms = rq->RebalanceTimeoutMs > 0 ? rq->RebalanceTimeoutMs : rq->SessionTimeoutMs;
    m->join_op = op;
    member_touch(c, m);
    if (g->in_initial_delay)
        g->joined_during_delay = 1;
    if (g->state == G_PREPARING)
        try_complete_join(c, g);
    else
        prepare_rebalance(c, g, "member joined");
}

/* ---- cluster mode ----------------------------------------------------------------------- */

/* Cluster mode: forgets g (another broker coordinates it, or is about to). Its queued commits
 * not yet stored and its parked JoinGroup/SyncGroup requests are answered err. */
static void group_drop(struct stratus_group_coord *c, struct group *g, int16_t err)
{
    struct commit_wait **pp = &c->cw_head;

    LOG_INFO("group", "group dropped (not coordinated here) group=%s members=%d offsets=%zu", g->id,
             g->nmembers, g->offs.n);
    while (*pp) {
        struct commit_wait *cw = *pp;
        if (cw->g != g) {
            pp = &cw->next;
            continue;
        }
        *pp = cw->next;
        for (size_t i = 0; i < cw->n; i++)
            *cw->ents[i].err = err;
        op_finish(cw->op);
        free(cw->ents);
        free(cw);
    }
    c->cw_tail = pp;
    while (g->members)
        member_remove(c, g, g->members, err);
    group_unlink_free(c, g);
}

static int coordinates(struct stratus_group_coord *c, const char *group)
{
    return c->cops.coordinates(c->cops.arg, group) == 1;
}

/* Reads group's blob into *offs (empty on entry). 0, 1 when the store has none, or a negative
 * code (logged). */
static int
cluster_load(struct stratus_group_coord *c, const char *group, struct stratus_offsets *offs)
{
    struct stratus_errbuf eb = {{0}};
    uint8_t *val = NULL;
    size_t len = 0;
    int rc = c->cops.load(c->cops.arg, group, &val, &len, &eb);

    if (rc == STRATUS_ENOTFOUND)
        return 1;
    if (rc) {
        LOG_WARN("group", "loading offsets failed group=%s: %s", group, eb.msg);
        return rc;
    }
    rc = len ? stratus_offsets_blob_decode(val, len, offs) : 0;
    if (rc)
        LOG_ERROR("group", "stored offsets of group=%s are corrupt (%zu bytes): refusing the group",
                  group, len);
    free(val);
    return rc;
}

/* Stores offs as group's blob (deletes it when offs is NULL or empty). The store's code. */
static int
cluster_store(struct stratus_group_coord *c, const char *group, const struct stratus_offsets *offs)
{
    struct stratus_errbuf eb = {{0}};
    uint8_t *val = NULL;
    size_t len = 0;
    int rc;

    if (offs && offs->n)
        stratus_offsets_blob_encode(offs, &val, &len);
    rc = c->cops.store(c->cops.arg, group, val, len, &eb);
    if (rc == STRATUS_EEXIST)
        LOG_INFO("group", "offsets store fenced group=%s: no longer coordinated here", group);
    else if (rc)
        LOG_WARN("group", "storing offsets failed group=%s: %s", group, eb.msg);
    free(val);
    return rc;
}

/* The group a request names, or NULL when there is none. Single-node mode: the table. Cluster
 * mode: NOT_COORDINATOR when another broker coordinates it; otherwise the table, the group
 * loaded from the store on its first request (NULL when the store has none), and, with
 * need_offsets, its offsets reloaded when they are stale. COORDINATOR_NOT_AVAILABLE when the
 * store cannot be read. Never creates a group the store does not have; never drops one (a
 * request may still point into a group it named earlier: coordination_changed drops). */
static int16_t
group_get(struct stratus_group_coord *c, struct kstr id, int need_offsets, struct group **out)
{
    char buf[STRATUS_GROUP_ID_MAX + 1];
    struct stratus_offsets offs = {0};
    struct group *g;
    int rc;

    *out = NULL;
    if (!c->cluster) {
        *out = group_find_k(c, id);
        return KAFKA_ERR_NONE;
    }
    /* An id that cannot be a C string is no group (its request fails as for an unknown one). */
    if (id.len < 0 || id.len > STRATUS_GROUP_ID_MAX || (id.len && memchr(id.s, 0, (size_t)id.len)))
        return KAFKA_ERR_NONE;
    if (id.len)
        memcpy(buf, id.s, (size_t)id.len);
    buf[id.len] = 0;
    if (!coordinates(c, buf))
        return KAFKA_ERR_NOT_COORDINATOR;
    g = group_find(c, buf, (size_t)id.len);
    if (g && (!need_offsets || !g->offs_stale)) {
        *out = g;
        return KAFKA_ERR_NONE;
    }
    rc = cluster_load(c, buf, &offs);
    if (rc < 0)
        return KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    if (g) {
        stratus_offsets_free(&g->offs);
        g->offs = offs;
        g->offs_stale = 0;
    } else if (rc == 0) {
        g = group_create(c, buf, (size_t)id.len);
        g->offs = offs;
        LOG_INFO("group", "group loaded group=%s offsets=%zu", g->id, g->offs.n);
    }
    *out = g;
    return KAFKA_ERR_NONE;
}

static void do_join(struct stratus_group_coord *c, struct stratus_group_op *op)
{
    const struct JoinGroupRequest *rq = op->rq;
    struct group *g;
    struct member *m;

    int16_t gerr;

    if (rq->GroupId.len <= 0 || rq->GroupId.len > STRATUS_GROUP_ID_MAX) {
        join_fail(op, KAFKA_ERR_INVALID_GROUP_ID, NULL);
        return;
    }
    if ((gerr = group_get(c, rq->GroupId, 0, &g))) {
        join_fail(op, gerr, NULL);
        return;
    }
    if (rq->SessionTimeoutMs < c->conf.min_session_timeout_ms ||
        rq->SessionTimeoutMs > c->conf.max_session_timeout_ms) {
        join_fail(op, KAFKA_ERR_INVALID_SESSION_TIMEOUT, NULL);
        return;
    }
    if (rq->ProtocolType.len <= 0 || rq->Protocols.count <= 0) {
        join_fail(op, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL, NULL);
        return;
    }
    for (int32_t i = 0; i < rq->Protocols.count; i++) {
        if (rq->Protocols.items[i].Metadata.len > c->conf.max_metadata_bytes ||
            rq->Protocols.items[i].Name.len > 255) {
            LOG_WARN("group", "JoinGroup refused: protocol metadata of %d bytes (max %lld)",
                     rq->Protocols.items[i].Metadata.len, (long long)c->conf.max_metadata_bytes);
            join_fail(op, KAFKA_ERR_INVALID_REQUEST, NULL);
            return;
        }
    }
    if (!g) {
        if (rq->MemberId.len > 0) {
            join_fail(op, KAFKA_ERR_UNKNOWN_MEMBER_ID, NULL);
            return;
        }
        g = group_create(c, rq->GroupId.s, (size_t)rq->GroupId.len);
    }
    if (g->state == G_DEAD) {
        join_fail(op, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE, NULL);
        return;
    }
    /* Protocol type and protocols must agree with the group's. */
    if (g->nmembers > 0 && g->protocol_type && !kstr_is(rq->ProtocolType, g->protocol_type)) {
        join_fail(op, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL, NULL);
        return;
    }
    if (g->nmembers == 0) {
        free(g->protocol_type);
        g->protocol_type = dup_kstr(rq->ProtocolType);
    }

    if (rq->MemberId.len <= 0) {
        /* A new member (or a static member coming back with a new incarnation). */
        struct member *old = member_by_instance(g, rq->GroupInstanceId);
        if (old) {
            if (!protocols_compatible(g, rq, old)) {
                join_fail(op, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL, NULL);
                return;
            }
            /* Replace the member id; the old incarnation is fenced. */
            char *nid = new_member_id(op->client_id, rq->GroupInstanceId);
            int was_leader = g->leader && strcmp(g->leader, old->id) == 0;
            int unchanged = protos_equal(old, rq);
            if (old->join_op) {
                struct stratus_group_op *o = old->join_op;
                old->join_op = NULL;
                join_fail(o, KAFKA_ERR_FENCED_INSTANCE_ID, old->id);
            }
            if (old->sync_op) {
                struct stratus_group_op *o = old->sync_op;
                old->sync_op = NULL;
                sync_fail(o, KAFKA_ERR_FENCED_INSTANCE_ID);
            }
            LOG_INFO("group", "static member rejoined group=%s instance=%s old=%s new=%s", g->id,
                     old->instance_id, old->id, nid);
            free(old->id);
            old->id = nid;
            if (was_leader) {
                free(g->leader);
                g->leader = xstrdup(nid);
            }
            free(old->client_id);
            old->client_id = xstrdup(op->client_id ? op->client_id : "");
            if (g->state == G_STABLE && unchanged && !was_leader) {
                /* Nothing changed: same generation, same assignment, no rebalance. */
                member_touch(c, old);
                join_answer(c, g, old, op);
                return;
            }
            member_park_join(c, g, old, rq, op);
            return;
        }
        if (!protocols_compatible(g, rq, NULL)) {
            join_fail(op, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL, NULL);
            return;
        }
        if (c->conf.max_group_size > 0 && g->nmembers >= c->conf.max_group_size) {
            join_fail(op, KAFKA_ERR_GROUP_MAX_SIZE_REACHED, NULL);
            return;
        }
        char *nid = new_member_id(op->client_id, rq->GroupInstanceId);
        if (op->api_version >= 4 && rq->GroupInstanceId.len < 0) {
            /* KIP-394: hand out the id; the member joins again with it. */
            struct pending_id *p = xcalloc(1, sizeof *p);
            p->id = nid;
            p->expire_ms = stratus_mono_ms() + rq->SessionTimeoutMs;
            p->next = g->pending;
            g->pending = p;
            join_fail(op, KAFKA_ERR_MEMBER_ID_REQUIRED, nid);
            return;
        }
        m = member_add(c, g, nid, rq, op);
        member_park_join(c, g, m, rq, op);
        return;
    }

    /* A member id was given. */
    m = member_find(g, rq->MemberId);
    if (!m) {
        struct pending_id **pp = &g->pending;
        while (*pp && !kstr_is(rq->MemberId, (*pp)->id))
            pp = &(*pp)->next;
        if (!*pp) {
            join_fail(op, KAFKA_ERR_UNKNOWN_MEMBER_ID, NULL);
            return;
        }
        if (!protocols_compatible(g, rq, NULL)) {
            join_fail(op, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL, NULL);
            return;
        }
        struct pending_id *p = *pp;
        *pp = p->next;
        if (c->conf.max_group_size > 0 && g->nmembers >= c->conf.max_group_size) {
            free(p->id);
            free(p);
            join_fail(op, KAFKA_ERR_GROUP_MAX_SIZE_REACHED, NULL);
            return;
        }
        m = member_add(c, g, p->id, rq, op);
        free(p);
        member_park_join(c, g, m, rq, op);
        return;
    }
    if (rq->GroupInstanceId.len >= 0 && !kstr_is(rq->GroupInstanceId, m->instance_id)) {
        join_fail(op, KAFKA_ERR_FENCED_INSTANCE_ID, NULL);
        return;
    }
    if (!protocols_compatible(g, rq, m)) {
        join_fail(op, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL, NULL);
        return;
    }
    switch (g->state) {
    case G_PREPARING:
        member_park_join(c, g, m, rq, op);
        return;
    case G_COMPLETING:
        if (protos_equal(m, rq)) {
            /* The member lost the JoinGroup response: send it again. */
            member_touch(c, m);
            join_answer(c, g, m, op);
            return;
        }
        member_park_join(c, g, m, rq, op);
        return;
    case G_STABLE:
        if ((g->leader && strcmp(g->leader, m->id) == 0) || !protos_equal(m, rq)) {
            member_park_join(c, g, m, rq, op);
            return;
        }
        member_touch(c, m);
        join_answer(c, g, m, op);
        return;
    default:
        join_fail(op, KAFKA_ERR_UNKNOWN_MEMBER_ID, NULL);
        return;
    }
}

/* Common checks of SyncGroup / Heartbeat / OffsetCommit: the member and its generation. */
static int16_t check_member(struct group *g,
                            struct kstr member_id,
                            struct kstr instance,
                            int32_t generation,
                            struct member **out)
{
    struct member *m;
    *out = NULL;
    if (!g || g->state == G_DEAD)
        return KAFKA_ERR_UNKNOWN_MEMBER_ID;
    if (instance.len >= 0) {
        struct member *si = member_by_instance(g, instance);
        if (si && !kstr_is(member_id, si->id))
            return KAFKA_ERR_FENCED_INSTANCE_ID;
    }
    m = member_find(g, member_id);
    if (!m)
        return KAFKA_ERR_UNKNOWN_MEMBER_ID;
    if (generation != g->generation)
        return KAFKA_ERR_ILLEGAL_GENERATION;
    *out = m;
    return KAFKA_ERR_NONE;
}

static void sync_answer(struct group *g, struct member *m, struct stratus_group_op *op)
{
    struct SyncGroupResponse *rs = op->rs;
    rs->ErrorCode = KAFKA_ERR_NONE;
    rs->ProtocolType = ks(g->protocol_type);
    rs->ProtocolName = ks(g->protocol);
    rs->Assignment =
        m->assign ? (struct kbytes){m->assign, m->alen} : (struct kbytes){(const uint8_t *)"", 0};
    op_finish(op);
}

static void do_sync(struct stratus_group_coord *c, struct stratus_group_op *op)
{
    const struct SyncGroupRequest *rq = op->rq;
    struct group *g;
    struct member *m;
    int16_t err = group_get(c, rq->GroupId, 0, &g);

    if (!err)
        err = check_member(g, rq->MemberId, rq->GroupInstanceId, rq->GenerationId, &m);
    if (err) {
        sync_fail(op, err);
        return;
    }
    if ((rq->ProtocolType.len >= 0 && !kstr_is(rq->ProtocolType, g->protocol_type)) ||
        (rq->ProtocolName.len >= 0 && !kstr_is(rq->ProtocolName, g->protocol))) {
        sync_fail(op, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL);
        return;
    }
    switch (g->state) {
    case G_PREPARING:
        sync_fail(op, KAFKA_ERR_REBALANCE_IN_PROGRESS);
        return;
    case G_STABLE:
        member_touch(c, m);
        sync_answer(g, m, op);
        return;
    case G_COMPLETING:
        break;
    default:
        sync_fail(op, KAFKA_ERR_UNKNOWN_MEMBER_ID);
        return;
    }
    if (m->sync_op) {
        struct stratus_group_op *old = m->sync_op;
        m->sync_op = NULL;
        sync_fail(old, KAFKA_ERR_REBALANCE_IN_PROGRESS);
    }
    member_touch(c, m);
    if (!g->leader || strcmp(g->leader, m->id) != 0) {
        m->sync_op = op; /* a follower waits for the leader */
        return;
    }
    for (int32_t i = 0; i < rq->Assignments.count; i++) {
        if (rq->Assignments.items[i].Assignment.len > c->conf.max_metadata_bytes) {
            LOG_WARN("group", "SyncGroup refused group=%s: assignment of %d bytes (max %lld)",
                     g->id, rq->Assignments.items[i].Assignment.len,
                     (long long)c->conf.max_metadata_bytes);
            sync_fail(op, KAFKA_ERR_INVALID_REQUEST);
            return;
        }
    }
    for (int32_t i = 0; i < rq->Assignments.count; i++) {
        const struct SyncGroupRequest_SyncGroupRequestAssignment *a = &rq->Assignments.items[i];
        struct member *x = member_find(g, a->MemberId);
        if (!x)
            continue;
        free(x->assign);
        x->alen = a->Assignment.len > 0 ? a->Assignment.len : 0;
        x->assign = xmalloc((size_t)x->alen + 1);
        if (x->alen)
            memcpy(x->assign, a->Assignment.p, (size_t)x->alen);
    }
    g->state = G_STABLE;
    LOG_INFO("group", "group stable group=%s generation=%d members=%d", g->id, g->generation,
             g->nmembers);
    m->sync_op = op;
    for (struct member *x = g->members; x; x = x->next) {
        if (x->sync_op) {
            struct stratus_group_op *o = x->sync_op;
            x->sync_op = NULL;
            sync_answer(g, x, o);
        }
    }
}

static void do_heartbeat(struct stratus_group_coord *c, struct stratus_group_op *op)
{
    const struct HeartbeatRequest *rq = op->rq;
    struct HeartbeatResponse *rs = op->rs;
    struct group *g;
    struct member *m = NULL;
    int16_t gerr = group_get(c, rq->GroupId, 0, &g);
    int16_t err =
        gerr ? gerr : check_member(g, rq->MemberId, rq->GroupInstanceId, rq->GenerationId, &m);

    if (!err) {
        member_touch(c, m);
        if (g->state == G_PREPARING)
            err = KAFKA_ERR_REBALANCE_IN_PROGRESS;
        else if (g->state == G_EMPTY)
            err = KAFKA_ERR_UNKNOWN_MEMBER_ID;
    }
    rs->ErrorCode = err;
    op_finish(op);
}

static int16_t leave_one(struct stratus_group_coord *c,
                         struct group *g,
                         struct kstr member_id,
                         struct kstr instance,
                         int *left)
{
    struct member *m = NULL;

    if (!g || g->state == G_DEAD)
        return KAFKA_ERR_UNKNOWN_MEMBER_ID;
    if (instance.len >= 0) {
        m = member_by_instance(g, instance);
        if (!m)
            return KAFKA_ERR_UNKNOWN_MEMBER_ID;
        if (member_id.len > 0 && !kstr_is(member_id, m->id))
            return KAFKA_ERR_FENCED_INSTANCE_ID;
    } else {
        m = member_find(g, member_id);
        if (!m) {
            /* A MEMBER_ID_REQUIRED id that never joined. */
            for (struct pending_id **pp = &g->pending; *pp; pp = &(*pp)->next) {
                if (kstr_is(member_id, (*pp)->id)) {
                    struct pending_id *p = *pp;
                    *pp = p->next;
                    free(p->id);
                    free(p);
                    *left = 1;
                    return KAFKA_ERR_NONE;
                }
            }
            return KAFKA_ERR_UNKNOWN_MEMBER_ID;
        }
    }
    LOG_INFO("group", "member left group=%s member=%s", g->id, m->id);
    member_remove(c, g, m, KAFKA_ERR_UNKNOWN_MEMBER_ID);
    *left = 1;
    return KAFKA_ERR_NONE;
}

static void do_leave(struct stratus_group_coord *c, struct stratus_group_op *op)
{
    const struct LeaveGroupRequest *rq = op->rq;
    struct LeaveGroupResponse *rs = op->rs;
    struct group *g;
    int left = 0;
    int16_t gerr = group_get(c, rq->GroupId, 0, &g);

    if (gerr) {
        op_fail(op, gerr);
        return;
    }
    if (op->api_version < 3) {
        rs->ErrorCode = leave_one(c, g, rq->MemberId, KSTR_NULL, &left);
    } else {
        int32_t n = rq->Members.count > 0 ? rq->Members.count : 0;
        rs->Members.items =
            arena_calloc(op->arena, (size_t)n, sizeof(struct LeaveGroupResponse_MemberResponse));
        if (n && !rs->Members.items) {
            op_fail(op, KAFKA_ERR_UNKNOWN_SERVER_ERROR);
            return;
        }
        rs->Members.count = n;
        if (!g)
            rs->ErrorCode = KAFKA_ERR_UNKNOWN_MEMBER_ID;
        for (int32_t i = 0; i < n; i++) {
            const struct LeaveGroupRequest_MemberIdentity *mi = &rq->Members.items[i];
            rs->Members.items[i].MemberId = mi->MemberId;
            rs->Members.items[i].GroupInstanceId = mi->GroupInstanceId;
            rs->Members.items[i].ErrorCode =
                leave_one(c, g, mi->MemberId, mi->GroupInstanceId, &left);
        }
    }
    if (left && g)
        member_gone(c, g, "member left");
    op_finish(op);
}

/* ---- describe / list / delete ---------------------------------------------------------- */

static void do_describe(struct stratus_group_coord *c, struct stratus_group_op *op)
{
    const struct DescribeGroupsRequest *rq = op->rq;
    struct DescribeGroupsResponse *rs = op->rs;
    int32_t n = rq->Groups.count > 0 ? rq->Groups.count : 0;

    rs->Groups.items =
        arena_calloc(op->arena, (size_t)n, sizeof(struct DescribeGroupsResponse_DescribedGroup));
    if (n && !rs->Groups.items) {
        op_finish(op);
        return;
    }
    rs->Groups.count = n;
    for (int32_t i = 0; i < n; i++) {
        struct DescribeGroupsResponse_DescribedGroup *d = &rs->Groups.items[i];
        struct group *g = NULL;
        DescribeGroupsResponse_DescribedGroup_init(d);
        d->GroupId = rq->Groups.items[i];
        d->ErrorCode = KAFKA_ERR_NONE;
        d->ProtocolData = KSTR_LIT("");
        d->ProtocolType = KSTR_LIT("");
        d->Members.count = 0;
        if (rq->Groups.items[i].len <= 0) {
            d->ErrorCode = KAFKA_ERR_INVALID_GROUP_ID;
            d->GroupState = KSTR_LIT("");
            continue;
        }
        if ((d->ErrorCode = group_get(c, rq->Groups.items[i], 0, &g))) {
            d->GroupState = KSTR_LIT("");
            continue;
        }
        if (!g) {
            d->GroupState = KSTR_LIT("Dead");
            continue;
        }
        d->GroupState = ks(state_names[g->state]);
        d->ProtocolType = ks(g->protocol_type ? g->protocol_type : "");
        int stable = g->state == G_STABLE;
        if (stable)
            d->ProtocolData = ks(g->protocol ? g->protocol : "");
        d->Members.items = arena_calloc(op->arena, (size_t)g->nmembers,
                                        sizeof(struct DescribeGroupsResponse_DescribedGroupMember));
        if (g->nmembers && !d->Members.items)
            continue;
        int32_t k = 0;
        for (struct member *m = g->members; m; m = m->next) {
            struct DescribeGroupsResponse_DescribedGroupMember *dm = &d->Members.items[k++];
            const struct gproto *p = stable ? member_proto(m, g->protocol) : NULL;
            dm->MemberId = ks(m->id);
            dm->GroupInstanceId = ks(m->instance_id);
            dm->ClientId = ks(m->client_id);
            dm->ClientHost = ks(m->client_host);
            dm->MemberMetadata =
                p ? (struct kbytes){p->meta, p->len} : (struct kbytes){(const uint8_t *)"", 0};
            dm->MemberAssignment = stable && m->assign ? (struct kbytes){m->assign, m->alen}
                                                       : (struct kbytes){(const uint8_t *)"", 0};
        }
        d->Members.count = k;
    }
    op_finish(op);
}

static void do_list(struct stratus_group_coord *c, struct stratus_group_op *op)
{
    const struct ListGroupsRequest *rq = op->rq;
    struct ListGroupsResponse *rs = op->rs;
    int32_t n = 0;

    rs->Groups.items =
        arena_calloc(op->arena, c->ngroups, sizeof(struct ListGroupsResponse_ListedGroup));
    if (c->ngroups && !rs->Groups.items) {
        op_fail(op, KAFKA_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    for (size_t b = 0; b < c->nbuckets; b++) {
        for (struct group *g = c->buckets[b]; g; g = g->hnext) {
            if (g->state == G_DEAD || (c->cluster && !coordinates(c, g->id)))
                continue;
            if (op->api_version >= 4 && rq->StatesFilter.count > 0) {
                int match = 0;
                for (int32_t i = 0; i < rq->StatesFilter.count && !match; i++) {
                    struct kstr f = rq->StatesFilter.items[i];
                    match = f.len >= 0 && (size_t)f.len == strlen(state_names[g->state]) &&
                            strncasecmp(f.s, state_names[g->state], (size_t)f.len) == 0;
                }
                if (!match)
                    continue;
            }
            if (op->api_version >= 5 && rq->TypesFilter.count > 0) {
                int match = 0;
                for (int32_t i = 0; i < rq->TypesFilter.count && !match; i++) {
                    struct kstr f = rq->TypesFilter.items[i];
                    match = f.len == 7 && strncasecmp(f.s, "classic", 7) == 0;
                }
                if (!match)
                    continue;
            }
            struct ListGroupsResponse_ListedGroup *e = &rs->Groups.items[n++];
            e->GroupId = ks(g->id);
            e->ProtocolType = ks(g->protocol_type ? g->protocol_type : "");
            e->GroupState = ks(state_names[g->state]);
            e->GroupType = KSTR_LIT("classic");
        }
    }
    rs->Groups.count = n;
    op_finish(op);
}

/* Deletes every offset record of g from the index (synced). */
static int
group_delete_offsets(struct stratus_group_coord *c, struct group *g, struct stratus_errbuf *eb)
{
    struct stratus_index_batch *b = stratus_index_batch_new();
    uint8_t key[STRATUS_GROUP_KEY_MAX];
    int rc = 0;

    for (size_t i = 0; i < g->offs.n; i++) {
        size_t kl = stratus_offsets_key(key, g->id, strlen(g->id), g->offs.v[i].topic,
                                        strlen(g->offs.v[i].topic), g->offs.v[i].partition);
        if (kl)
            stratus_index_batch_delete(b, key, kl);
    }
    if (stratus_index_batch_count(b) > 0)
        rc = stratus_index_batch_write(c->idx, b, 1, eb);
    stratus_index_batch_free(b);
    return rc;
}

static void do_delete(struct stratus_group_coord *c, struct stratus_group_op *op)
{
    const struct DeleteGroupsRequest *rq = op->rq;
    struct DeleteGroupsResponse *rs = op->rs;
    int32_t n = rq->GroupsNames.count > 0 ? rq->GroupsNames.count : 0;

    rs->Results.items = arena_calloc(op->arena, (size_t)n,
                                     sizeof(struct DeleteGroupsResponse_DeletableGroupResult));
    if (n && !rs->Results.items) {
        op_finish(op);
        return;
    }
    rs->Results.count = n;
    for (int32_t i = 0; i < n; i++) {
        struct DeleteGroupsResponse_DeletableGroupResult *r = &rs->Results.items[i];
        struct group *g = NULL;
        struct stratus_errbuf eb;
        int16_t gerr = KAFKA_ERR_NONE;
        r->GroupId = rq->GroupsNames.items[i];
        if (rq->GroupsNames.items[i].len > 0)
            gerr = group_get(c, rq->GroupsNames.items[i], 1, &g);
        if (rq->GroupsNames.items[i].len <= 0)
            r->ErrorCode = KAFKA_ERR_INVALID_GROUP_ID;
        else if (gerr)
            r->ErrorCode = gerr;
        else if (!g || g->state == G_DEAD)
            r->ErrorCode = KAFKA_ERR_GROUP_ID_NOT_FOUND;
        else if (g->nmembers > 0 || g->state != G_EMPTY)
            r->ErrorCode = KAFKA_ERR_NON_EMPTY_GROUP;
        else if (c->cluster) {
            int rc = g->offs.n ? cluster_store(c, g->id, NULL) : 0;
            if (rc == STRATUS_EEXIST) {
                r->ErrorCode = KAFKA_ERR_NOT_COORDINATOR;
                group_drop(c, g, KAFKA_ERR_NOT_COORDINATOR);
            } else if (rc) {
                r->ErrorCode = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
                g->offs_stale = 1;
            } else {
                LOG_INFO("group", "group deleted group=%s offsets=%zu", g->id, g->offs.n);
                group_unlink_free(c, g);
                r->ErrorCode = KAFKA_ERR_NONE;
            }
        } else if (group_delete_offsets(c, g, &eb) != 0) {
            LOG_ERROR("group", "delete group=%s: %s", g->id, eb.msg);
            r->ErrorCode = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        } else {
            LOG_INFO("group", "group deleted group=%s offsets=%zu", g->id, g->offs.n);
            group_unlink_free(c, g);
            r->ErrorCode = KAFKA_ERR_NONE;
        }
    }
    op_finish(op);
}

/* ---- offsets --------------------------------------------------------------------------- */

static char *arena_strdup(struct stratus_arena *a, const char *s)
{
    size_t n = strlen(s);
    char *p = arena_alloc(a, n + 1);
    if (p)
        memcpy(p, s, n + 1);
    return p;
}

/* Cluster mode's flush: one store per group touched by the batch (its whole table with the
 * batch applied, in commit order), then the answers, then the fenced groups dropped. */
static void flush_cluster(struct stratus_group_coord *c, struct commit_wait *head)
{
    int64_t now = stratus_wall_ms();
    struct group **touched = NULL;
    size_t ntouched = 0, cap = 0;
    int stored = 0;

    for (struct commit_wait *cw = head; cw; cw = cw->next)
        if (cw->g)
            cw->g->flush_rc = 1;
    for (struct commit_wait *cw = head; cw; cw = cw->next) {
        struct group *g = cw->g;
        struct stratus_offsets next;
        size_t nents = 0;
        int rc = 0;

        if (!g || g->flush_rc != 1)
            continue;
        if (ntouched == cap) {
            cap = cap ? cap * 2 : 8;
            touched = xrealloc(touched, cap * sizeof *touched);
        }
        touched[ntouched++] = g;
        if (g->offs_stale) {
            /* coordination changed since the commit was accepted: build on the stored table */
            struct stratus_offsets offs = {0};
            rc = cluster_load(c, g->id, &offs);
            if (rc >= 0) {
                stratus_offsets_free(&g->offs);
                g->offs = offs;
                g->offs_stale = 0;
                rc = 0;
            }
        }
        if (rc == 0) {
            stratus_offsets_copy(&next, &g->offs);
            for (struct commit_wait *x = cw; x; x = x->next) {
                if (x->g != g)
                    continue;
                for (size_t i = 0; i < x->n; i++) {
                    const struct commit_ent *e = &x->ents[i];
                    stratus_offsets_set(&next, e->topic, e->partition, e->offset, e->epoch, e->meta,
                                        e->metalen, now);
                }
                nents += x->n;
            }
            rc = nents ? cluster_store(c, g->id, &next) : 0;
            if (rc == 0 && nents) {
                stratus_offsets_free(&g->offs);
                g->offs = next;
                stored++;
            } else {
                stratus_offsets_free(&next);
            }
        }
        g->flush_rc = rc;
    }
    if (stored)
        c->stats.commit_batches++;
    for (struct commit_wait *cw = head, *next; cw; cw = next) {
        int rc = cw->g ? cw->g->flush_rc : 0;
        int16_t err = rc == 0                ? KAFKA_ERR_NONE
                      : rc == STRATUS_EEXIST ? KAFKA_ERR_NOT_COORDINATOR
                                             : KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        next = cw->next;
        for (size_t i = 0; i < cw->n; i++) {
            if (err)
                *cw->ents[i].err = err;
            else
                c->stats.commits++;
        }
        op_finish(cw->op);
        free(cw->ents);
        free(cw);
    }
    for (size_t i = 0; i < ntouched; i++) {
        struct group *g = touched[i];
        int rc = g->flush_rc;
        g->flush_rc = 0;
        if (rc == STRATUS_EEXIST)
            group_drop(c, g, KAFKA_ERR_NOT_COORDINATOR);
        else if (rc)
            g->offs_stale = 1; /* the store may have happened: reload before the next use */
    }
    free(touched);
}

static void flush_commits(void *arg)
{
    struct stratus_group_coord *c = arg;
    struct commit_wait *cw = c->cw_head;
    struct stratus_errbuf eb;
    int rc = 0;

    c->flush_posted = 0;
    c->cw_head = NULL;
    c->cw_tail = &c->cw_head;
    if (c->cluster) {
        flush_cluster(c, cw);
        return;
    }
    if (stratus_index_batch_count(c->batch) > 0) {
        rc = stratus_index_batch_write(c->idx, c->batch, 1, &eb);
        c->stats.commit_batches++;
        if (rc)
            LOG_ERROR("group", "offset commit write failed: %s", eb.msg);
    }
    stratus_index_batch_free(c->batch);
    c->batch = stratus_index_batch_new();
    int64_t now = stratus_wall_ms();
    while (cw) {
        struct commit_wait *next = cw->next;
        for (size_t i = 0; i < cw->n; i++) {
            struct commit_ent *e = &cw->ents[i];
            if (rc) {
                *e->err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
                continue;
            }
            /* cw->g is valid: a group with commits queued is never freed (see
             * group_busy()). */
            stratus_offsets_set(&cw->g->offs, e->topic, e->partition, e->offset, e->epoch, e->meta,
                                e->metalen, now);
            c->stats.commits++;
        }
        op_finish(cw->op);
        free(cw->ents);
        free(cw);
        cw = next;
    }
}

static void do_commit(struct stratus_group_coord *c, struct stratus_group_op *op)
{
    const struct OffsetCommitRequest *rq = op->rq;
    struct OffsetCommitResponse *rs = op->rs;
    struct group *g;
    int16_t err = KAFKA_ERR_NONE;

    if (rq->GroupId.len <= 0 || rq->GroupId.len > STRATUS_GROUP_ID_MAX) {
        op_fail(op, KAFKA_ERR_INVALID_GROUP_ID);
        return;
    }
    if ((err = group_get(c, rq->GroupId, 1, &g))) {
        op_fail(op, err);
        return;
    }
    if (!g) {
        if (rq->GenerationIdOrMemberEpoch >= 0) {
            op_fail(op, KAFKA_ERR_ILLEGAL_GENERATION);
            return;
        }
        g = group_create(c, rq->GroupId.s, (size_t)rq->GroupId.len);
    } else if (rq->GenerationIdOrMemberEpoch < 0 && g->state == G_EMPTY) {
        /* Offsets of a group without members (admin tools, manual assignment). */
    } else {
        struct member *m;
        err = check_member(g, rq->MemberId, rq->GroupInstanceId, rq->GenerationIdOrMemberEpoch, &m);
        if (!err && g->state == G_COMPLETING)
            err = KAFKA_ERR_REBALANCE_IN_PROGRESS;
        if (err) {
            op_fail(op, err);
            return;
        }
        member_touch(c, m);
    }

    struct commit_wait *cw = xcalloc(1, sizeof *cw);
    size_t total = 0;
    for (int32_t i = 0; i < rq->Topics.count; i++)
        total += rq->Topics.items[i].Partitions.count > 0
                     ? (size_t)rq->Topics.items[i].Partitions.count
                     : 0;
    cw->op = op;
    cw->g = g;
    cw->ents = xcalloc(total + 1, sizeof *cw->ents);
    uint8_t key[STRATUS_GROUP_KEY_MAX];
    uint8_t val[STRATUS_OFFSETS_VALUE_FIXED + STRATUS_OFFSET_METADATA_MAX];
    for (int32_t i = 0; i < rq->Topics.count && i < rs->Topics.count; i++) {
        const struct OffsetCommitRequest_OffsetCommitRequestTopic *t = &rq->Topics.items[i];
        struct OffsetCommitResponse_OffsetCommitResponseTopic *tr = &rs->Topics.items[i];
        char topic[STRATUS_TOPIC_NAME_MAX + 1];
        struct stratus_topic_info info;
        const char *topic_copy = NULL;
        int known = t->Name.len > 0 && t->Name.len <= STRATUS_TOPIC_NAME_MAX &&
                    kstr_copy(t->Name, topic, sizeof topic) == 0 &&
                    memchr(t->Name.s, 0, (size_t)t->Name.len) == NULL &&
                    stratus_stream_find_topic(c->stream, topic, &info) == 0;
        for (int32_t j = 0; j < t->Partitions.count && j < tr->Partitions.count; j++) {
            const struct OffsetCommitRequest_OffsetCommitRequestPartition *p =
                &t->Partitions.items[j];
            int16_t *perr = &tr->Partitions.items[j].ErrorCode;
            if (!known || p->PartitionIndex < 0 || p->PartitionIndex >= info.partitions) {
                *perr = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            size_t ml = p->CommittedMetadata.len > 0 ? (size_t)p->CommittedMetadata.len : 0;
            if (ml > STRATUS_OFFSET_METADATA_MAX) {
                *perr = KAFKA_ERR_OFFSET_METADATA_TOO_LARGE;
                continue;
            }
            if (!c->cluster) { /* cluster mode: the flush stores the group's whole table */
                size_t kl = stratus_offsets_key(key, g->id, strlen(g->id), t->Name.s,
                                                (size_t)t->Name.len, p->PartitionIndex);
                size_t vl =
                    stratus_offsets_value_encode(val, p->CommittedOffset, p->CommittedLeaderEpoch,
                                                 stratus_wall_ms(), p->CommittedMetadata.s, ml);
                stratus_index_batch_put(c->batch, key, kl, val, vl);
            }
            struct commit_ent *e = &cw->ents[cw->n++];
            e->topic = topic_copy ? topic_copy : (topic_copy = arena_strdup(op->arena, topic));
            e->partition = p->PartitionIndex;
            e->offset = p->CommittedOffset;
            e->epoch = p->CommittedLeaderEpoch;
            e->meta = p->CommittedMetadata.s;
            e->metalen = ml;
            e->err = perr;
            if (!e->topic) {
                cw->n--;
                *perr = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            }
        }
    }
    /* Queue behind the batch; the flush task runs after every task already posted. */
    *c->cw_tail = cw;
    c->cw_tail = &cw->next;
    if (!c->flush_posted) {
        c->flush_posted = 1;
        if (stratus_loop_post(c->loop, flush_commits, c) != 0)
            flush_commits(c);
    }
}

/* Fills one partition's answer from g's table (-1 / "" when nothing is committed). */
static void fetch_fill(struct group *g,
                       const char *topic,
                       int32_t partition,
                       int64_t *off,
                       int32_t *epoch,
                       struct kstr *meta)
{
    long i = g ? stratus_offsets_find(&g->offs, topic, partition) : -1;
    if (i < 0) {
        *off = -1;
        *epoch = -1;
        *meta = KSTR_LIT("");
        return;
    }
    *off = g->offs.v[i].offset;
    *epoch = g->offs.v[i].leader_epoch;
    *meta = ks(g->offs.v[i].meta);
}

/* The v8+ topics of one group: those asked for, or (null) every committed one. */
static int fetch_group_topics(struct stratus_group_op *op,
                              struct group *g,
                              const struct OffsetFetchRequest_OffsetFetchRequestGroup *rg,
                              struct OffsetFetchResponse_OffsetFetchResponseGroup *out)
{
    typedef struct OffsetFetchResponse_OffsetFetchResponseTopics T;
    typedef struct OffsetFetchResponse_OffsetFetchResponsePartitions P;

    if (rg->Topics.count >= 0) {
        int32_t nt = rg->Topics.count;
        out->Topics.items = arena_calloc(op->arena, (size_t)nt, sizeof(T));
        if (nt && !out->Topics.items)
            return -1;
        out->Topics.count = nt;
        for (int32_t i = 0; i < nt; i++) {
            const struct OffsetFetchRequest_OffsetFetchRequestTopics *t = &rg->Topics.items[i];
            T *tr = &out->Topics.items[i];
            char topic[STRATUS_TOPIC_NAME_MAX + 1];
            kstr_copy(t->Name, topic, sizeof topic);
            int32_t np = t->PartitionIndexes.count > 0 ? t->PartitionIndexes.count : 0;
            tr->Name = t->Name;
            tr->Partitions.items = arena_calloc(op->arena, (size_t)np, sizeof(P));
            if (np && !tr->Partitions.items)
                return -1;
            tr->Partitions.count = np;
            for (int32_t j = 0; j < np; j++) {
                P *pr = &tr->Partitions.items[j];
                pr->PartitionIndex = t->PartitionIndexes.items[j];
                fetch_fill(g, topic, pr->PartitionIndex, &pr->CommittedOffset,
                           &pr->CommittedLeaderEpoch, &pr->Metadata);
            }
        }
        return 0;
    }
    /* All of the group's offsets, grouped by topic (the table is sorted). */
    size_t ntop = 0;
    for (size_t i = 0; g && i < g->offs.n; i++)
        if (i == 0 || strcmp(g->offs.v[i].topic, g->offs.v[i - 1].topic) != 0)
            ntop++;
    out->Topics.items = arena_calloc(op->arena, ntop, sizeof(T));
    if (ntop && !out->Topics.items)
        return -1;
    out->Topics.count = 0;
    for (size_t i = 0; g && i < g->offs.n;) {
        size_t j = i;
        while (j < g->offs.n && strcmp(g->offs.v[j].topic, g->offs.v[i].topic) == 0)
            j++;
        T *tr = &out->Topics.items[out->Topics.count++];
        tr->Name = ks(g->offs.v[i].topic);
        tr->Partitions.items = arena_calloc(op->arena, j - i, sizeof(P));
        if (!tr->Partitions.items)
            return -1;
        tr->Partitions.count = (int32_t)(j - i);
        for (size_t k = i; k < j; k++) {
            P *pr = &tr->Partitions.items[k - i];
            pr->PartitionIndex = g->offs.v[k].partition;
            pr->CommittedOffset = g->offs.v[k].offset;
            pr->CommittedLeaderEpoch = g->offs.v[k].leader_epoch;
            pr->Metadata = ks(g->offs.v[k].meta);
        }
        i = j;
    }
    return 0;
}

static void do_fetch(struct stratus_group_coord *c, struct stratus_group_op *op)
{
    const struct OffsetFetchRequest *rq = op->rq;
    struct OffsetFetchResponse *rs = op->rs;

    if (op->api_version >= 8) {
        int32_t n = rq->Groups.count > 0 ? rq->Groups.count : 0;
        rs->Groups.items = arena_calloc(
            op->arena, (size_t)n, sizeof(struct OffsetFetchResponse_OffsetFetchResponseGroup));
        if (n && !rs->Groups.items) {
            op_fail(op, KAFKA_ERR_UNKNOWN_SERVER_ERROR);
            return;
        }
        rs->Groups.count = n;
        for (int32_t i = 0; i < n; i++) {
            struct OffsetFetchResponse_OffsetFetchResponseGroup *gr = &rs->Groups.items[i];
            OffsetFetchResponse_OffsetFetchResponseGroup_init(gr);
            gr->GroupId = rq->Groups.items[i].GroupId;
            gr->Topics.count = 0;
            if (gr->GroupId.len <= 0) {
                gr->ErrorCode = KAFKA_ERR_INVALID_GROUP_ID;
                continue;
            }
            struct group *g;
            if ((gr->ErrorCode = group_get(c, gr->GroupId, 1, &g)))
                continue;
            if (fetch_group_topics(op, g, &rq->Groups.items[i], gr))
                gr->ErrorCode = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        }
        op_finish(op);
        return;
    }
    /* v1-7: one group; the same walk through the v8 shapes, then copied into the old ones
     * (identical member layouts, but distinct generated types). */
    struct OffsetFetchRequest_OffsetFetchRequestGroup rg;
    struct OffsetFetchResponse_OffsetFetchResponseGroup gr;
    memset(&rg, 0, sizeof rg);
    memset(&gr, 0, sizeof gr);
    rg.GroupId = rq->GroupId;
    rg.Topics.count = rq->Topics.count;
    if (rq->Topics.count > 0) {
        rg.Topics.items = arena_calloc(op->arena, (size_t)rq->Topics.count,
                                       sizeof(struct OffsetFetchRequest_OffsetFetchRequestTopics));
        if (!rg.Topics.items) {
            op_fail(op, KAFKA_ERR_UNKNOWN_SERVER_ERROR);
            return;
        }
        for (int32_t i = 0; i < rq->Topics.count; i++) {
            rg.Topics.items[i].Name = rq->Topics.items[i].Name;
            rg.Topics.items[i].PartitionIndexes.items = rq->Topics.items[i].PartitionIndexes.items;
            rg.Topics.items[i].PartitionIndexes.count = rq->Topics.items[i].PartitionIndexes.count;
        }
    }
    if (rq->GroupId.len <= 0) {
        op_fail(op, KAFKA_ERR_INVALID_GROUP_ID);
        return;
    }
    struct group *g;
    int16_t gerr = group_get(c, rq->GroupId, 1, &g);
    if (gerr) {
        op_fail(op, gerr);
        return;
    }
    if (fetch_group_topics(op, g, &rg, &gr)) {
        op_fail(op, KAFKA_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    rs->Topics.items = arena_calloc(op->arena, (size_t)gr.Topics.count,
                                    sizeof(struct OffsetFetchResponse_OffsetFetchResponseTopic));
    if (gr.Topics.count && !rs->Topics.items) {
        op_fail(op, KAFKA_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    rs->Topics.count = gr.Topics.count;
    for (int32_t i = 0; i < gr.Topics.count; i++) {
        struct OffsetFetchResponse_OffsetFetchResponseTopic *t = &rs->Topics.items[i];
        int32_t np = gr.Topics.items[i].Partitions.count;
        t->Name = gr.Topics.items[i].Name;
        t->Partitions.items = arena_calloc(
            op->arena, (size_t)np, sizeof(struct OffsetFetchResponse_OffsetFetchResponsePartition));
        if (np && !t->Partitions.items) {
            op_fail(op, KAFKA_ERR_UNKNOWN_SERVER_ERROR);
            return;
        }
        t->Partitions.count = np;
        for (int32_t j = 0; j < np; j++) {
            const struct OffsetFetchResponse_OffsetFetchResponsePartitions *s =
                &gr.Topics.items[i].Partitions.items[j];
            struct OffsetFetchResponse_OffsetFetchResponsePartition *d = &t->Partitions.items[j];
            d->PartitionIndex = s->PartitionIndex;
            d->CommittedOffset = s->CommittedOffset;
            d->CommittedLeaderEpoch = s->CommittedLeaderEpoch;
            d->Metadata = s->Metadata;
            d->ErrorCode = KAFKA_ERR_NONE;
        }
    }
    op_finish(op);
}

/* ---- retention ------------------------------------------------------------------------- */

static void retention_timer_fn(void *arg);

/* Cluster mode: expires g's old offsets by rewriting (or deleting) its blob; forgets g when
 * nothing is left. A failed store leaves everything for the next run. */
static void retention_cluster(struct stratus_group_coord *c, struct group *g, int64_t now)
{
    struct stratus_offsets next = {0};
    size_t expired = 0;

    if (g->offs_stale)
        return; /* not read back since a failed store: its next request reloads it */
    for (size_t k = 0; k < g->offs.n; k++) {
        const struct stratus_offset *o = &g->offs.v[k];
        int64_t since = o->commit_ms > g->empty_since_ms ? o->commit_ms : g->empty_since_ms;
        if (now - since >= c->conf.offsets_retention_ms)
            expired++;
        else
            stratus_offsets_set(&next, o->topic, o->partition, o->offset, o->leader_epoch, o->meta,
                                strlen(o->meta), o->commit_ms);
    }
    if (expired) {
        int rc = cluster_store(c, g->id, &next);
        if (rc == STRATUS_EEXIST) {
            stratus_offsets_free(&next);
            group_drop(c, g, KAFKA_ERR_NOT_COORDINATOR);
            return;
        }
        if (rc) {
            stratus_offsets_free(&next);
            return;
        }
        stratus_offsets_free(&g->offs);
        g->offs = next;
        c->stats.expired_offsets += expired;
    } else {
        stratus_offsets_free(&next);
    }
    if (g->offs.n == 0 && !g->pending && !g->join_timer)
        group_unlink_free(c, g);
}

static void retention_run(struct stratus_group_coord *c)
{
    int64_t now = stratus_wall_ms();
    struct stratus_index_batch *b = stratus_index_batch_new();
    uint8_t key[STRATUS_GROUP_KEY_MAX];
    struct stratus_errbuf eb;

    if (c->cw_head)
        flush_commits(c); /* no commit of a group about to go is left in flight */
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (struct group *g = c->buckets[i], *next; g; g = next) {
            next = g->hnext;
            if (c->cluster && !coordinates(c, g->id)) {
                group_drop(c, g, KAFKA_ERR_NOT_COORDINATOR);
                continue;
            }
            if (g->state != G_EMPTY || g->nmembers > 0)
                continue;
            if (c->cluster) {
                retention_cluster(c, g, now);
                continue;
            }
            for (size_t k = 0; k < g->offs.n;) {
                struct stratus_offset *o = &g->offs.v[k];
                int64_t since = o->commit_ms > g->empty_since_ms ? o->commit_ms : g->empty_since_ms;
                if (now - since < c->conf.offsets_retention_ms) {
                    k++;
                    continue;
                }
                size_t kl = stratus_offsets_key(key, g->id, strlen(g->id), o->topic,
                                                strlen(o->topic), o->partition);
                if (kl)
                    stratus_index_batch_delete(b, key, kl);
                stratus_offsets_remove_at(&g->offs, k);
                c->stats.expired_offsets++;
            }
            if (g->offs.n == 0 && !g->pending && !g->join_timer)
                group_unlink_free(c, g);
        }
    }
    if (stratus_index_batch_count(b) > 0 && stratus_index_batch_write(c->idx, b, 0, &eb) != 0)
        LOG_ERROR("group", "offset retention: %s", eb.msg); /* expired again next start */
    stratus_index_batch_free(b);
}

static void retention_timer_fn(void *arg)
{
    struct stratus_group_coord *c = arg;
    retention_run(c);
    c->retention_timer = stratus_loop_timer_at(
        c->loop, stratus_mono_ms() + c->conf.retention_check_interval_ms, retention_timer_fn, c);
}

/* ---- the thread ------------------------------------------------------------------------ */

static void op_run(void *arg)
{
    struct stratus_group_op *op = arg;
    struct stratus_group_coord *c = op->priv;

    if (c->draining) {
        op_fail(op, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    switch (op->api_key) {
    case KAPI_JoinGroup:
        do_join(c, op);
        break;
    case KAPI_SyncGroup:
        do_sync(c, op);
        break;
    case KAPI_Heartbeat:
        do_heartbeat(c, op);
        break;
    case KAPI_LeaveGroup:
        do_leave(c, op);
        break;
    case KAPI_DescribeGroups:
        do_describe(c, op);
        break;
    case KAPI_ListGroups:
        do_list(c, op);
        break;
    case KAPI_DeleteGroups:
        if (c->cw_head)
            flush_commits(c);
        do_delete(c, op);
        break;
    case KAPI_OffsetCommit:
        do_commit(c, op);
        break;
    case KAPI_OffsetFetch:
        do_fetch(c, op);
        break;
    default:
        op_fail(op, KAFKA_ERR_UNKNOWN_SERVER_ERROR);
        break;
    }
}

void stratus_group_submit(struct stratus_group_coord *c, struct stratus_group_op *op)
{
    op->priv = c;
    op->next = NULL;
    if (atomic_load(&c->closed) || stratus_loop_post(c->loop, op_run, op) != 0)
        op_fail(op, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
}

static void *coord_main(void *arg)
{
    struct stratus_group_coord *c = arg;
    pthread_setname_np(pthread_self(), "group-coord"); /* top -H, perf, gdb */
    c->retention_timer = stratus_loop_timer_at(
        c->loop, stratus_mono_ms() + c->conf.retention_check_interval_ms, retention_timer_fn, c);
    stratus_loop_run(c->loop);
    return NULL;
}

void stratus_group_conf_defaults(struct stratus_group_conf *c)
{
    memset(c, 0, sizeof *c);
    c->initial_rebalance_delay_ms = 3000;
    c->min_session_timeout_ms = 6000;
    c->max_session_timeout_ms = 1800000;
    c->offsets_retention_ms = 7LL * 24 * 3600 * 1000;
    c->retention_check_interval_ms = 600000;
    c->max_metadata_bytes = 1048576;
    c->max_group_size = 0;
}

/* Reads every 'G' record into the groups (at open, before the thread starts). */
static int load_offsets(struct stratus_group_coord *c, struct stratus_errbuf *eb)
{
    struct stratus_index_iter *it = stratus_index_iter_new(c->idx);
    const uint8_t prefix = STRATUS_IDX_GROUP;
    size_t n = 0, bad = 0;
    int rc;

    for (stratus_index_iter_seek(it, &prefix, 1); stratus_index_iter_has_prefix(it, &prefix, 1);
         stratus_index_iter_next(it)) {
        size_t kl, vl, glen, tlen, ml;
        const uint8_t *k = stratus_index_iter_key(it, &kl);
        const uint8_t *v = stratus_index_iter_value(it, &vl);
        const char *gid, *topic, *meta;
        int32_t part, epoch;
        int64_t off, ts;
        if (stratus_offsets_key_parse(k, kl, &gid, &glen, &topic, &tlen, &part) != 0 ||
            stratus_offsets_value_decode(v, vl, &off, &epoch, &ts, &meta, &ml) != 0) {
            bad++;
            continue;
        }
        struct group *g = group_find(c, gid, glen);
        if (!g)
            g = group_create(c, gid, glen);
        char tname[STRATUS_TOPIC_NAME_MAX + 1];
        memcpy(tname, topic, tlen);
        tname[tlen] = 0;
        stratus_offsets_set(&g->offs, tname, part, off, epoch, meta, ml, ts);
        n++;
    }
    rc = stratus_index_iter_status(it, eb);
    stratus_index_iter_free(it);
    if (rc == 0)
        LOG_INFO("group", "loaded committed offsets groups=%zu offsets=%zu skipped=%zu", c->ngroups,
                 n, bad);
    return rc;
}

int stratus_group_open(const struct stratus_group_conf *conf,
                       struct stratus_stream *stream,
                       struct stratus_group_coord **out,
                       struct stratus_errbuf *eb)
{
    struct stratus_group_coord *c = xcalloc(1, sizeof *c);
    int rc;

    c->conf = *conf;
    if (c->conf.retention_check_interval_ms <= 0)
        c->conf.retention_check_interval_ms = 600000;
    c->stream = stream;
    c->idx = stratus_stream_index(stream);
    c->nbuckets = 64;
    c->buckets = xcalloc(c->nbuckets, sizeof *c->buckets);
    c->batch = stratus_index_batch_new();
    c->cw_tail = &c->cw_head;
    pthread_mutex_init(&c->drain_lock, NULL);
    pthread_cond_init(&c->drain_cond, NULL);
    if ((rc = load_offsets(c, eb)))
        goto out_free;
    c->loop = stratus_loop_new("group", eb);
    if (!c->loop) {
        rc = STRATUS_EIO;
        goto out_free;
    }
    if (pthread_create(&c->thread, NULL, coord_main, c) != 0) {
        rc = stratus_errf(eb, STRATUS_EIO, "group: cannot start the coordinator thread");
        goto out_loop;
    }
    *out = c;
    return 0;

out_loop:
    stratus_loop_free(c->loop);
out_free:
    for (size_t i = 0; i < c->nbuckets; i++)
        while (c->buckets[i])
            group_unlink_free(c, c->buckets[i]);
    free(c->buckets);
    stratus_index_batch_free(c->batch);
    pthread_mutex_destroy(&c->drain_lock);
    pthread_cond_destroy(&c->drain_cond);
    free(c);
    return rc;
}

static void drain_task(void *arg)
{
    struct stratus_group_coord *c = arg;

    c->draining = 1;
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (struct group *g = c->buckets[i]; g; g = g->hnext) {
            for (struct member *m = g->members; m; m = m->next) {
                if (m->join_op) {
                    struct stratus_group_op *op = m->join_op;
                    m->join_op = NULL;
                    join_fail(op, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE, m->id);
                }
                if (m->sync_op) {
                    struct stratus_group_op *op = m->sync_op;
                    m->sync_op = NULL;
                    sync_fail(op, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
                }
            }
        }
    }
    if (c->cw_head)
        flush_commits(c);
    pthread_mutex_lock(&c->drain_lock);
    c->drained = 1;
    pthread_cond_broadcast(&c->drain_cond);
    pthread_mutex_unlock(&c->drain_lock);
}

void stratus_group_drain(struct stratus_group_coord *c)
{
    if (!c)
        return;
    if (stratus_loop_post(c->loop, drain_task, c) != 0)
        return;
    pthread_mutex_lock(&c->drain_lock);
    while (!c->drained)
        pthread_cond_wait(&c->drain_cond, &c->drain_lock);
    pthread_mutex_unlock(&c->drain_lock);
}

static void stop_task(void *arg)
{
    struct stratus_group_coord *c = arg;
    c->draining = 1;
    if (c->cw_head)
        flush_commits(c);
    stratus_loop_stop(c->loop);
}

void stratus_group_close(struct stratus_group_coord *c)
{
    if (!c)
        return;
    stratus_group_drain(c);
    atomic_store(&c->closed, 1);
    if (stratus_loop_post(c->loop, stop_task, c) == 0)
        pthread_join(c->thread, NULL);
    /* The loop thread has returned: its timers may be cancelled from here. Ops posted after
     * stop_task were answered by nobody: the network is gone by now. */
    for (size_t i = 0; i < c->nbuckets; i++)
        while (c->buckets[i])
            group_unlink_free(c, c->buckets[i]);
    stratus_loop_free(c->loop);
    free(c->buckets);
    stratus_index_batch_free(c->batch);
    pthread_mutex_destroy(&c->drain_lock);
    pthread_cond_destroy(&c->drain_cond);
    free(c);
}

/* ---- cluster mode: switching and coordination changes ----------------------------------- */

struct sync_task {
    void (*fn)(struct stratus_group_coord *c, void *arg);
    struct stratus_group_coord *c;
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
};

static void sync_task_run(void *arg)
{
    struct sync_task *t = arg;
    t->fn(t->c, t->arg);
    pthread_mutex_lock(&t->lock);
    t->done = 1;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

/* Runs fn(c, arg) on the coordinator thread and waits for it (not run when the loop refuses
 * the task, i.e. it is stopping). Used by set_cluster and get_stats. */
static void run_on_thread(struct stratus_group_coord *c,
                          void (*fn)(struct stratus_group_coord *, void *),
                          void *arg)
{
    struct sync_task t = {.fn = fn, .c = c, .arg = arg};
    pthread_mutex_init(&t.lock, NULL);
    pthread_cond_init(&t.cond, NULL);
    if (stratus_loop_post(c->loop, sync_task_run, &t) == 0) {
        pthread_mutex_lock(&t.lock);
        while (!t.done)
            pthread_cond_wait(&t.cond, &t.lock);
        pthread_mutex_unlock(&t.lock);
    }
    pthread_mutex_destroy(&t.lock);
    pthread_cond_destroy(&t.cond);
}

static void set_cluster_task(struct stratus_group_coord *c, void *arg)
{
    const struct stratus_group_cluster_ops *ops = arg;
    size_t n = c->ngroups;

    if (c->cw_head)
        flush_commits(c);
    c->cops = *ops;
    c->cluster = 1;
    /* What load_offsets() read from the index is not this broker's to serve: groups come from
     * the store now. */
    for (size_t i = 0; i < c->nbuckets; i++) {
        while (c->buckets[i]) {
            struct group *g = c->buckets[i];
            if (g->nmembers) /* called after traffic started: answer what is parked */
                group_drop(c, g, KAFKA_ERR_NOT_COORDINATOR);
            else
                group_unlink_free(c, g);
        }
    }
    LOG_INFO("group",
             "cluster mode: offsets in the cluster store (%zu groups read from the "
             "index at open forgotten)",
             n);
}

void stratus_group_set_cluster(struct stratus_group_coord *c,
                               const struct stratus_group_cluster_ops *ops)
{
    struct stratus_group_cluster_ops copy = *ops;
    run_on_thread(c, set_cluster_task, &copy);
}

static void coordination_changed_task(void *arg)
{
    struct stratus_group_coord *c = arg;

    if (!c->cluster)
        return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (struct group *g = c->buckets[i], *next; g; g = next) {
            next = g->hnext;
            if (!coordinates(c, g->id))
                group_drop(c, g, KAFKA_ERR_NOT_COORDINATOR);
            else
                g->offs_stale = 1; /* it may have moved away and back: reread before use */
        }
    }
}

void stratus_group_coordination_changed(struct stratus_group_coord *c)
{
    /* Fails only when the loop is closing: nothing to serve any more. */
    (void)stratus_loop_post(c->loop, coordination_changed_task, c);
}

/* The next UTF-16 code unit(s) of a UTF-8 string as Java's decoder yields them: one code point
 * per well-formed sequence, U+FFFD per maximal ill-formed subpart. Returns the bytes used. */
static size_t utf8_next(const uint8_t *s, uint32_t *cp)
{
    uint32_t b = s[0], min2 = 0x80, max2 = 0xbf, v;
    size_t need, i;

    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf) {
        need = 1;
        v = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
        need = 2;
        v = b & 0x0f;
        if (b == 0xe0)
            min2 = 0xa0;
        else if (b == 0xed)
            max2 = 0x9f; /* no surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        need = 3;
        v = b & 0x07;
        if (b == 0xf0)
            min2 = 0x90;
        else if (b == 0xf4)
            max2 = 0x8f;
    } else {
        *cp = 0xfffd;
        return 1;
    }
    for (i = 1; i <= need; i++) {
        uint32_t lo = i == 1 ? min2 : 0x80, hi = i == 1 ? max2 : 0xbf;
        if (s[i] < lo || s[i] > hi) { /* also stops at the terminating NUL */
            *cp = 0xfffd;
            return i;
        }
        v = (v << 6) | (s[i] & 0x3f);
    }
    *cp = v;
    return need + 1;
}

int32_t stratus_group_partition_for(const char *group, int32_t npartitions)
{
    const uint8_t *s = (const uint8_t *)group;
    uint32_t h = 0; /* Java int arithmetic: wraps */

    if (npartitions <= 0 || !group)
        return 0;
    while (*s) {
        uint32_t cp;
        s += utf8_next(s, &cp);
        if (cp >= 0x10000) { /* a surrogate pair */
            cp -= 0x10000;
            h = h * 31u + (0xd800u + (cp >> 10));
            h = h * 31u + (0xdc00u + (cp & 0x3ffu));
        } else {
            h = h * 31u + cp;
        }
    }
    /* Kafka's Utils.abs: abs(Integer.MIN_VALUE) is 0 */
    uint32_t a = h == 0x80000000u ? 0 : (h & 0x80000000u) ? 0u - h : h;
    return (int32_t)(a % (uint32_t)npartitions);
}

static void stats_task(struct stratus_group_coord *c, void *arg)
{
    struct stratus_group_stats *out = arg;
    struct stratus_group_stats s = c->stats;
    s.groups = c->ngroups;
    s.members = 0;
    s.offsets = 0;
    for (size_t i = 0; i < c->nbuckets; i++)
        for (struct group *g = c->buckets[i]; g; g = g->hnext) {
            s.members += (uint64_t)g->nmembers;
            s.offsets += g->offs.n;
        }
    *out = s;
}

void stratus_group_get_stats(struct stratus_group_coord *c, struct stratus_group_stats *out)
{
    memset(out, 0, sizeof *out);
    run_on_thread(c, stats_task, out);
}
