/* group_fixture.h - the kit the group coordinator unit tests share (test_group,
 * test_group_cluster), one copy instead of one per test: requests driven into core/group as
 * decoded structs, the way core/api/groups.c does.
 *   - struct gx_call: one request, its response and the storage both point at, submitted with
 *     gx_call_new() and stratus_group_submit(); the done callback copies out what the tests
 *     check (error codes, generation, member and leader ids, the assignment, fetched offsets)
 *     because the response may point at coordinator memory. gx_call_wait() waits for it,
 *     gx_call_free() frees it (the caller owns a call);
 *   - requests: gx_join() (JoinGroup v3), gx_sync() (SyncGroup v3), gx_heartbeat(),
 *     gx_commit_async() (OffsetCommit v2 of one partition), gx_fetch()
 *     (OffsetFetch v1 or v5 of one partition);
 *   - setup: gx_open_stream() (a small engine on fx_env) and gx_open_coord().
 * Everything is static and marked unused: a test compiles what it calls. The prefix gx_ stands
 * for this file. It includes stream_fixture.h (and so test.h).
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_TEST_GROUP_FIXTURE_H
#define STRATUS_TEST_GROUP_FIXTURE_H

#include "group/group.h"
#include "group/group_int.h"
#include "proto/proto_gen.h"
#include "stream/stream.h"
#include "stream_fixture.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- calls ---------------------------------------------------------------------------- */

struct gx_call {
    struct stratus_group_op op;
    struct stratus_arena arena;
    union {
        struct JoinGroupRequest join;
        struct SyncGroupRequest sync;
        struct HeartbeatRequest hb;
        struct OffsetCommitRequest commit;
        struct OffsetFetchRequest fetch;
        struct DeleteGroupsRequest del;
    } rq;
    union {
        struct JoinGroupResponse join;
        struct SyncGroupResponse sync;
        struct HeartbeatResponse hb;
        struct OffsetCommitResponse commit;
        struct OffsetFetchResponse fetch;
        struct DeleteGroupsResponse del;
    } rs;
    /* request storage */
    struct OffsetCommitRequest_OffsetCommitRequestTopic ct;
    struct OffsetCommitRequest_OffsetCommitRequestPartition cp;
    struct OffsetCommitResponse_OffsetCommitResponseTopic crt;
    struct OffsetCommitResponse_OffsetCommitResponsePartition crp;
    struct OffsetFetchRequest_OffsetFetchRequestTopic ft;
    struct OffsetFetchRequest_OffsetFetchRequestGroup fg[2];
    struct kstr names[2];
    int32_t part;
    /* copied out in done() (the response may point at coordinator memory) */
    int done;
    int16_t err;        /* top level, or the first partition (fetch below v2) */
    int16_t errs[2];    /* v8 fetch and DeleteGroups: per group, -100 when absent */
    int64_t fetched[2]; /* the first partition's offset (per group for v8), -99 when absent */
    int32_t generation;
    char member[200], leader[200];
    int nmembers;        /* JoinGroup: the members listed (the leader's answer only) */
    char assignment[64]; /* SyncGroup: this member's assignment, as a string */
};

static pthread_mutex_t gx_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gx_cv = PTHREAD_COND_INITIALIZER;

FX_UNUSED static void gx_call_done(struct stratus_group_op *op)
{
    struct gx_call *c = op->arg;
    pthread_mutex_lock(&gx_mu);
    switch (op->api_key) {
    case KAPI_JoinGroup:
        c->err = c->rs.join.ErrorCode;
        c->generation = c->rs.join.GenerationId;
        kstr_copy(c->rs.join.MemberId, c->member, sizeof c->member);
        kstr_copy(c->rs.join.Leader, c->leader, sizeof c->leader);
        c->nmembers = c->rs.join.Members.count;
        break;
    case KAPI_SyncGroup:
        c->err = c->rs.sync.ErrorCode;
        if (c->rs.sync.Assignment.len > 0 && c->rs.sync.Assignment.len < 63)
            memcpy(c->assignment, c->rs.sync.Assignment.p, (size_t)c->rs.sync.Assignment.len);
        break;
    case KAPI_Heartbeat:
        c->err = c->rs.hb.ErrorCode;
        break;
    case KAPI_OffsetCommit:
        c->err = c->rs.commit.Topics.items[0].Partitions.items[0].ErrorCode;
        break;
    case KAPI_OffsetFetch:
        c->err = c->rs.fetch.ErrorCode;
        c->fetched[0] = c->fetched[1] = -99;
        if (op->api_version >= 8) {
            for (int32_t i = 0; i < c->rs.fetch.Groups.count && i < 2; i++) {
                const struct OffsetFetchResponse_OffsetFetchResponseGroup *g =
                    &c->rs.fetch.Groups.items[i];
                c->errs[i] = g->ErrorCode;
                if (g->Topics.count > 0 && g->Topics.items[0].Partitions.count > 0)
                    c->fetched[i] = g->Topics.items[0].Partitions.items[0].CommittedOffset;
            }
        } else if (c->rs.fetch.Topics.count > 0 &&
                   c->rs.fetch.Topics.items[0].Partitions.count > 0) {
            c->fetched[0] = c->rs.fetch.Topics.items[0].Partitions.items[0].CommittedOffset;
            if (op->api_version < 2)
                c->err = c->rs.fetch.Topics.items[0].Partitions.items[0].ErrorCode;
        }
        break;
    case KAPI_DeleteGroups:
        for (int32_t i = 0; i < c->rs.del.Results.count && i < 2; i++)
            c->errs[i] = c->rs.del.Results.items[i].ErrorCode;
        break;
    }
    c->done = 1;
    pthread_cond_broadcast(&gx_cv);
    pthread_mutex_unlock(&gx_mu);
}

/* A new call of key at version, request and response not yet initialised. */
FX_UNUSED static struct gx_call *gx_call_new(int16_t key, int16_t version)
{
    struct gx_call *c = calloc(1, sizeof *c);
    arena_init(&c->arena, 0);
    c->op.api_key = key;
    c->op.api_version = version;
    c->op.rq = &c->rq;
    c->op.rs = &c->rs;
    c->op.arena = &c->arena;
    c->op.client_id = "unit";
    c->op.client_host = "";
    c->op.done = gx_call_done;
    c->op.arg = c;
    c->errs[0] = c->errs[1] = -100;
    return c;
}

/* Waits up to ms for c to be answered; 1 when it was. */
FX_UNUSED static int gx_call_wait(struct gx_call *c, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&gx_mu);
    while (!c->done)
        if (pthread_cond_timedwait(&gx_cv, &gx_mu, &ts) != 0)
            break;
    int d = c->done;
    pthread_mutex_unlock(&gx_mu);
    return d;
}

/* 1 when c has been answered, without waiting. */
FX_UNUSED static int gx_call_is_done(struct gx_call *c)
{
    pthread_mutex_lock(&gx_mu);
    int d = c->done;
    pthread_mutex_unlock(&gx_mu);
    return d;
}

FX_UNUSED static void gx_call_free(struct gx_call *c)
{
    arena_free_all(&c->arena);
    free(c);
}

/* Waits up to 5 s for c and frees it: its error code, -100 when not answered. */
FX_UNUSED static int16_t gx_call_result(struct gx_call *c)
{
    int16_t err = gx_call_wait(c, 5000) ? c->err : -100;
    gx_call_free(c);
    return err;
}

/* ---- requests ------------------------------------------------------------------------- */

static struct JoinGroupRequest_JoinGroupRequestProtocol gx_proto = {{"range", 5},
                                                                    {(const uint8_t *)"MD", 2}};

/* JoinGroup v3 (no MEMBER_ID_REQUIRED round) with protocol "range", not waited for. */
FX_UNUSED static struct gx_call *gx_join(struct stratus_group_coord *gc,
                                         const char *group,
                                         const char *member,
                                         int32_t session_ms,
                                         int32_t rebalance_ms)
{
    struct gx_call *c = gx_call_new(KAPI_JoinGroup, 3);
    JoinGroupRequest_init(&c->rq.join);
    JoinGroupResponse_init(&c->rs.join);
    c->rq.join.GroupId = kstr_from(group);
    c->rq.join.SessionTimeoutMs = session_ms;
    c->rq.join.RebalanceTimeoutMs = rebalance_ms;
    c->rq.join.MemberId = kstr_from(member);
    c->rq.join.ProtocolType = kstr_from("consumer");
    c->rq.join.Protocols.items = &gx_proto;
    c->rq.join.Protocols.count = 1;
    stratus_group_submit(gc, &c->op);
    return c;
}

/* SyncGroup v3 with na assignments a (borrowed until answered), not waited for. */
FX_UNUSED static struct gx_call *gx_sync(struct stratus_group_coord *gc,
                                         const char *group,
                                         const char *member,
                                         int32_t gen,
                                         struct SyncGroupRequest_SyncGroupRequestAssignment *a,
                                         int na)
{
    struct gx_call *c = gx_call_new(KAPI_SyncGroup, 3);
    SyncGroupRequest_init(&c->rq.sync);
    SyncGroupResponse_init(&c->rs.sync);
    c->rq.sync.GroupId = kstr_from(group);
    c->rq.sync.GenerationId = gen;
    c->rq.sync.MemberId = kstr_from(member);
    c->rq.sync.Assignments.items = a;
    c->rq.sync.Assignments.count = na;
    stratus_group_submit(gc, &c->op);
    return c;
}

/* Heartbeat v3: its error code, -100 when not answered in 5 s. */
FX_UNUSED static int16_t
gx_heartbeat(struct stratus_group_coord *gc, const char *group, const char *member, int32_t gen)
{
    struct gx_call *c = gx_call_new(KAPI_Heartbeat, 3);
    HeartbeatRequest_init(&c->rq.hb);
    HeartbeatResponse_init(&c->rs.hb);
    c->rq.hb.GroupId = kstr_from(group);
    c->rq.hb.GenerationId = gen;
    c->rq.hb.MemberId = kstr_from(member);
    stratus_group_submit(gc, &c->op);
    return gx_call_result(c);
}

/* OffsetCommit v2 of one partition with metadata "meta", not waited for. */
FX_UNUSED static struct gx_call *gx_commit_async(struct stratus_group_coord *gc,
                                                 const char *group,
                                                 int32_t gen,
                                                 const char *member,
                                                 const char *topic,
                                                 int32_t partition,
                                                 int64_t offset)
{
    struct gx_call *c = gx_call_new(KAPI_OffsetCommit, 2);
    OffsetCommitRequest_init(&c->rq.commit);
    OffsetCommitResponse_init(&c->rs.commit);
    c->cp.PartitionIndex = partition;
    c->cp.CommittedOffset = offset;
    c->cp.CommittedLeaderEpoch = -1;
    c->cp.CommittedMetadata = kstr_from("meta");
    c->ct.Name = kstr_from(topic);
    c->ct.Partitions.items = &c->cp;
    c->ct.Partitions.count = 1;
    c->rq.commit.GroupId = kstr_from(group);
    c->rq.commit.GenerationIdOrMemberEpoch = gen;
    c->rq.commit.MemberId = kstr_from(member);
    c->rq.commit.Topics.items = &c->ct;
    c->rq.commit.Topics.count = 1;
    c->crt.Name = c->ct.Name;
    c->crp.PartitionIndex = partition;
    c->crt.Partitions.items = &c->crp;
    c->crt.Partitions.count = 1;
    c->rs.commit.Topics.items = &c->crt;
    c->rs.commit.Topics.count = 1;
    stratus_group_submit(gc, &c->op);
    return c;
}

/* OffsetFetch v1 (errors per partition) or v5 (top-level error) of one partition: the offset,
 * -(1000 + error code) when it failed, -2000 when not answered in 5 s. */
FX_UNUSED static int64_t gx_fetch(struct stratus_group_coord *gc,
                                  int16_t version,
                                  const char *group,
                                  const char *topic,
                                  int32_t partition)
{
    struct gx_call *c = gx_call_new(KAPI_OffsetFetch, version);
    OffsetFetchRequest_init(&c->rq.fetch);
    OffsetFetchResponse_init(&c->rs.fetch);
    c->part = partition;
    c->ft.Name = kstr_from(topic);
    c->ft.PartitionIndexes.items = &c->part;
    c->ft.PartitionIndexes.count = 1;
    c->rq.fetch.GroupId = kstr_from(group);
    c->rq.fetch.Topics.items = &c->ft;
    c->rq.fetch.Topics.count = 1;
    stratus_group_submit(gc, &c->op);
    int64_t r = -2000;
    if (gx_call_wait(c, 5000))
        r = c->err ? -(1000 + c->err) : c->fetched[0];
    gx_call_free(c);
    return r;
}

/* ---- setup ---------------------------------------------------------------------------- */

/* A smaller engine than fx_stream_conf(): a 16 MiB WAL, a 64 MiB log cache, one I/O thread. */
FX_UNUSED static struct stratus_stream *gx_open_stream(void)
{
    struct stratus_stream_conf c;

    fx_stream_conf(&c);
    c.wal.size_bytes = 16ull << 20;
    c.log_cache_bytes = 64ull << 20;
    c.io_threads = 1;
    return fx_stream_open(&c, NULL);
}

/* A coordinator on s with no initial rebalance delay and sessions from 10 ms; retention_ms,
 * when not 0, is the offsets retention and its check interval. NULL (said on stderr) when it
 * does not open. */
FX_UNUSED static struct stratus_group_coord *gx_open_coord(struct stratus_stream *s,
                                                           int64_t retention_ms)
{
    struct stratus_group_conf conf;
    struct stratus_group_coord *gc = NULL;
    struct stratus_errbuf eb = {{0}};
    stratus_group_conf_defaults(&conf);
    conf.initial_rebalance_delay_ms = 0;
    conf.min_session_timeout_ms = 10;
    if (retention_ms) {
        conf.offsets_retention_ms = retention_ms;
        conf.retention_check_interval_ms = retention_ms;
    }
    if (stratus_group_open(&conf, s, &gc, &eb) != 0) {
        fprintf(stderr, "group open: %s\n", eb.msg);
        return NULL;
    }
    return gc;
}

#endif
