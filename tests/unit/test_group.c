/* link: stratus_group stratus_stream */
/* test_group.c - the group coordinator (core/group) on its own thread, driven with decoded
 * request structs as core/api/groups.c does: the offsets key/value codec and sorted table,
 * a join/sync/heartbeat round (leader, generation, assignment), a second member triggering a
 * rebalance that parks until the first one rejoins, session expiry removing a silent member,
 * error codes for stale members and generations, and committed offsets that survive closing
 * and reopening the coordinator and the engine. Runs against the storage-local plugin.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "group/group.h"
#include "group/group_int.h"
#include "proto/kerr.h"
#include "proto/proto_gen.h"
#include "stream/stream.h"
#include "stream_fixture.h"
#include "test.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- codec and table ---- */

static void test_codec(void)
{
    uint8_t k[STRATUS_GROUP_KEY_MAX], k2[STRATUS_GROUP_KEY_MAX], v[64];
    const char *g, *t, *meta;
    size_t gl, tl, ml;
    int32_t p, epoch;
    int64_t off, ts;

    size_t n = stratus_offsets_key(k, "grp", 3, "topic", 5, 7);
    CHECK(n == 1 + 2 + 3 + 2 + 5 + 4);
    CHECK_EQ(stratus_offsets_key_parse(k, n, &g, &gl, &t, &tl, &p), 0);
    CHECK(gl == 3 && memcmp(g, "grp", 3) == 0 && tl == 5 && memcmp(t, "topic", 5) == 0);
    CHECK_EQ(p, 7);
    CHECK(stratus_offsets_key_parse(k, n - 1, &g, &gl, &t, &tl, &p) != 0);
    /* partitions sort numerically */
    size_t n2 = stratus_offsets_key(k2, "grp", 3, "topic", 5, 300);
    CHECK(n2 == n && memcmp(k, k2, n) < 0);
    char big[300];
    memset(big, 'x', sizeof big);
    CHECK_EQ(stratus_offsets_key(k, big, 256, "t", 1, 0), 0);

    size_t vl = stratus_offsets_value_encode(v, 12345, 3, 99, "hi", 2);
    CHECK_EQ(stratus_offsets_value_decode(v, vl, &off, &epoch, &ts, &meta, &ml), 0);
    CHECK(off == 12345 && epoch == 3 && ts == 99 && ml == 2 && memcmp(meta, "hi", 2) == 0);
    CHECK(stratus_offsets_value_decode(v, vl - 1, &off, &epoch, &ts, &meta, &ml) != 0);

    struct stratus_offsets o = {0};
    stratus_offsets_set(&o, "b", 1, 10, -1, "", 0, 1);
    stratus_offsets_set(&o, "a", 2, 20, -1, "", 0, 1);
    stratus_offsets_set(&o, "a", 1, 30, -1, "m", 1, 1);
    stratus_offsets_set(&o, "b", 1, 11, -1, "", 0, 2);
    CHECK_EQ(o.n, 3);
    CHECK(strcmp(o.v[0].topic, "a") == 0 && o.v[0].partition == 1 && o.v[0].offset == 30);
    CHECK_EQ(stratus_offsets_find(&o, "b", 1), 2);
    CHECK_EQ(o.v[2].offset, 11);
    CHECK_EQ(stratus_offsets_find(&o, "c", 0), -1);
    stratus_offsets_remove_at(&o, 0);
    CHECK_EQ(stratus_offsets_find(&o, "a", 2), 0);
    stratus_offsets_free(&o);
}

/* ---- the coordinator ---- */

struct call {
    struct stratus_group_op op;
    struct stratus_arena arena;
    union {
        struct JoinGroupRequest join;
        struct SyncGroupRequest sync;
        struct HeartbeatRequest hb;
        struct OffsetCommitRequest commit;
        struct OffsetFetchRequest fetch;
    } rq;
    union {
        struct JoinGroupResponse join;
        struct SyncGroupResponse sync;
        struct HeartbeatResponse hb;
        struct OffsetCommitResponse commit;
        struct OffsetFetchResponse fetch;
    } rs;
    /* copied out in done() (the response points at coordinator memory) */
    int done;
    int16_t err;
    int32_t generation;
    char member[200], leader[200];
    int nmembers;
    char assignment[64];
    int64_t fetched;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;

static void call_done(struct stratus_group_op *op)
{
    struct call *c = op->arg;
    pthread_mutex_lock(&g_mu);
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
        c->fetched = c->rs.fetch.Topics.count > 0
                         ? c->rs.fetch.Topics.items[0].Partitions.items[0].CommittedOffset
                         : -99;
        break;
    }
    c->done = 1;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

static struct call *call_new(int16_t key, int16_t version)
{
    struct call *c = calloc(1, sizeof *c);
    arena_init(&c->arena, 0);
    c->op.api_key = key;
    c->op.api_version = version;
    c->op.rq = &c->rq;
    c->op.rs = &c->rs;
    c->op.arena = &c->arena;
    c->op.client_id = "unit";
    c->op.client_host = "";
    c->op.done = call_done;
    c->op.arg = c;
    return c;
}

static int call_wait(struct call *c, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&g_mu);
    while (!c->done)
        if (pthread_cond_timedwait(&g_cv, &g_mu, &ts) != 0)
            break;
    int d = c->done;
    pthread_mutex_unlock(&g_mu);
    return d;
}

static void call_free(struct call *c)
{
    arena_free_all(&c->arena);
    free(c);
}

static struct JoinGroupRequest_JoinGroupRequestProtocol g_proto = {{"range", 5},
                                                                   {(const uint8_t *)"MD", 2}};

static struct call *join(struct stratus_group_coord *gc, const char *member, int32_t session)
{
    struct call *c = call_new(KAPI_JoinGroup, 3); /* v3: no MEMBER_ID_REQUIRED round */
    JoinGroupRequest_init(&c->rq.join);
    JoinGroupResponse_init(&c->rs.join);
    c->rq.join.GroupId = kstr_from("g1");
    c->rq.join.SessionTimeoutMs = session;
    c->rq.join.RebalanceTimeoutMs = 5000;
    c->rq.join.MemberId = kstr_from(member);
    c->rq.join.ProtocolType = kstr_from("consumer");
    c->rq.join.Protocols.items = &g_proto;
    c->rq.join.Protocols.count = 1;
    stratus_group_submit(gc, &c->op);
    return c;
}

static int16_t heartbeat(struct stratus_group_coord *gc, const char *member, int32_t gen)
{
    struct call *c = call_new(KAPI_Heartbeat, 3);
    HeartbeatRequest_init(&c->rq.hb);
    HeartbeatResponse_init(&c->rs.hb);
    c->rq.hb.GroupId = kstr_from("g1");
    c->rq.hb.GenerationId = gen;
    c->rq.hb.MemberId = kstr_from(member);
    stratus_group_submit(gc, &c->op);
    int16_t err = call_wait(c, 5000) ? c->err : -100;
    call_free(c);
    return err;
}

static struct call *sync_group(struct stratus_group_coord *gc,
                               const char *member,
                               int32_t gen,
                               struct SyncGroupRequest_SyncGroupRequestAssignment *a,
                               int na)
{
    struct call *c = call_new(KAPI_SyncGroup, 3);
    SyncGroupRequest_init(&c->rq.sync);
    SyncGroupResponse_init(&c->rs.sync);
    c->rq.sync.GroupId = kstr_from("g1");
    c->rq.sync.GenerationId = gen;
    c->rq.sync.MemberId = kstr_from(member);
    c->rq.sync.Assignments.items = a;
    c->rq.sync.Assignments.count = na;
    stratus_group_submit(gc, &c->op);
    return c;
}

static int16_t commit(struct stratus_group_coord *gc,
                      const char *group,
                      int32_t gen,
                      const char *member,
                      const char *topic,
                      int64_t offset)
{
    struct call *c = call_new(KAPI_OffsetCommit, 2);
    struct OffsetCommitRequest_OffsetCommitRequestTopic t;
    struct OffsetCommitRequest_OffsetCommitRequestPartition p;
    struct OffsetCommitResponse_OffsetCommitResponseTopic rt;
    struct OffsetCommitResponse_OffsetCommitResponsePartition rp;
    OffsetCommitRequest_init(&c->rq.commit);
    OffsetCommitResponse_init(&c->rs.commit);
    memset(&t, 0, sizeof t);
    memset(&p, 0, sizeof p);
    memset(&rt, 0, sizeof rt);
    memset(&rp, 0, sizeof rp);
    p.PartitionIndex = 0;
    p.CommittedOffset = offset;
    p.CommittedLeaderEpoch = -1;
    p.CommittedMetadata = kstr_from("meta");
    t.Name = kstr_from(topic);
    t.Partitions.items = &p;
    t.Partitions.count = 1;
    c->rq.commit.GroupId = kstr_from(group);
    c->rq.commit.GenerationIdOrMemberEpoch = gen;
    c->rq.commit.MemberId = kstr_from(member);
    c->rq.commit.Topics.items = &t;
    c->rq.commit.Topics.count = 1;
    rt.Name = t.Name;
    rt.Partitions.items = &rp;
    rt.Partitions.count = 1;
    c->rs.commit.Topics.items = &rt;
    c->rs.commit.Topics.count = 1;
    stratus_group_submit(gc, &c->op);
    int16_t err = call_wait(c, 5000) ? c->err : -100;
    call_free(c);
    return err;
}

static int64_t fetch_offset(struct stratus_group_coord *gc, const char *group, const char *topic)
{
    struct call *c = call_new(KAPI_OffsetFetch, 1);
    struct OffsetFetchRequest_OffsetFetchRequestTopic t;
    int32_t part = 0;
    OffsetFetchRequest_init(&c->rq.fetch);
    OffsetFetchResponse_init(&c->rs.fetch);
    memset(&t, 0, sizeof t);
    t.Name = kstr_from(topic);
    t.PartitionIndexes.items = &part;
    t.PartitionIndexes.count = 1;
    c->rq.fetch.GroupId = kstr_from(group);
    c->rq.fetch.Topics.items = &t;
    c->rq.fetch.Topics.count = 1;
    stratus_group_submit(gc, &c->op);
    int64_t off = call_wait(c, 5000) ? c->fetched : -100;
    call_free(c);
    return off;
}

/* A smaller engine than fx_stream_conf(): a 16 MiB WAL, a 64 MiB log cache, one I/O thread. */
static struct stratus_stream *open_stream(void)
{
    struct stratus_stream_conf c;

    fx_stream_conf(&c);
    c.wal.size_bytes = 16ull << 20;
    c.log_cache_bytes = 64ull << 20;
    c.io_threads = 1;
    return fx_stream_open(&c, NULL);
}

static struct stratus_group_coord *open_coord(struct stratus_stream *s)
{
    struct stratus_group_conf conf;
    struct stratus_group_coord *gc = NULL;
    struct stratus_errbuf eb = {{0}};
    stratus_group_conf_defaults(&conf);
    conf.initial_rebalance_delay_ms = 0;
    conf.min_session_timeout_ms = 10;
    if (stratus_group_open(&conf, s, &gc, &eb) != 0)
        fprintf(stderr, "group open: %s\n", eb.msg);
    return gc;
}

static void test_coordinator(void)
{
    struct stratus_stream *s = open_stream();
    char msg[160];
    if (!s) {
        CHECK(0);
        return;
    }
    CHECK_EQ(stratus_stream_create_topic(s, "t", 1, NULL, 0, 0, NULL, msg, sizeof msg), 0);
    struct stratus_group_coord *gc = open_coord(s);
    CHECK(gc != NULL);
    if (!gc) {
        stratus_stream_close(s);
        return;
    }

    /* A joins alone: generation 1, leader A, one member in the leader's list. */
    struct call *ja = join(gc, "", 5000);
    CHECK(call_wait(ja, 5000));
    CHECK_EQ(ja->err, 0);
    CHECK_EQ(ja->generation, 1);
    CHECK(strcmp(ja->member, ja->leader) == 0 && ja->nmembers == 1);
    char a[200];
    snprintf(a, sizeof a, "%s", ja->member);
    call_free(ja);

    /* Heartbeat before SyncGroup is fine; a commit then is REBALANCE_IN_PROGRESS. */
    CHECK_EQ(heartbeat(gc, a, 1), 0);
    CHECK_EQ(commit(gc, "g1", 1, a, "t", 5), KAFKA_ERR_REBALANCE_IN_PROGRESS);
    struct SyncGroupRequest_SyncGroupRequestAssignment as = {{a, (int32_t)strlen(a)},
                                                             {(const uint8_t *)"ASSIGN-A", 8}};
    struct call *sa = sync_group(gc, a, 1, &as, 1);
    CHECK(call_wait(sa, 5000));
    CHECK_EQ(sa->err, 0);
    CHECK(strcmp(sa->assignment, "ASSIGN-A") == 0);
    call_free(sa);
    CHECK_EQ(heartbeat(gc, a, 1), 0);
    CHECK_EQ(heartbeat(gc, a, 2), KAFKA_ERR_ILLEGAL_GENERATION);
    CHECK_EQ(heartbeat(gc, "stale", 1), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ(commit(gc, "g1", 1, a, "t", 5), 0);
    CHECK_EQ(commit(gc, "g1", 1, a, "nope", 5), KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ(commit(gc, "g1", -1, "", "t", 5), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ(fetch_offset(gc, "g1", "t"), 5);

    /* B joins (short session): it parks until A rejoins, A's heartbeat says rebalance. */
    struct call *jb = join(gc, "", 300);
    usleep(100000);
    CHECK(!jb->done);
    CHECK_EQ(heartbeat(gc, a, 1), KAFKA_ERR_REBALANCE_IN_PROGRESS);
    struct call *ja2 = join(gc, a, 5000);
    CHECK(call_wait(ja2, 5000) && call_wait(jb, 5000));
    CHECK_EQ(ja2->generation, 2);
    CHECK_EQ(jb->generation, 2);
    CHECK(strcmp(ja2->leader, a) == 0 && ja2->nmembers == 2 && jb->nmembers == 0);
    char b[200];
    snprintf(b, sizeof b, "%s", jb->member);
    call_free(ja2);
    call_free(jb);

    /* B's SyncGroup parks until the leader's. */
    struct call *sb = sync_group(gc, b, 2, NULL, 0);
    usleep(50000);
    CHECK(!sb->done);
    struct SyncGroupRequest_SyncGroupRequestAssignment as2[2] = {
        {{a, (int32_t)strlen(a)}, {(const uint8_t *)"A2", 2}},
        {{b, (int32_t)strlen(b)}, {(const uint8_t *)"B2", 2}}};
    sa = sync_group(gc, a, 2, as2, 2);
    CHECK(call_wait(sa, 5000) && call_wait(sb, 5000));
    CHECK(strcmp(sa->assignment, "A2") == 0 && strcmp(sb->assignment, "B2") == 0);
    call_free(sa);
    call_free(sb);

    /* B goes silent: its 300 ms session expires while A keeps heartbeating. */
    int16_t err = 0;
    for (int i = 0; i < 20 && err == 0; i++) {
        usleep(100000);
        err = heartbeat(gc, a, 2);
    }
    CHECK_EQ(err, KAFKA_ERR_REBALANCE_IN_PROGRESS);
    CHECK_EQ(heartbeat(gc, b, 2), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    ja = join(gc, a, 5000);
    CHECK(call_wait(ja, 5000));
    CHECK_EQ(ja->generation, 3);
    CHECK_EQ(ja->nmembers, 1);
    call_free(ja);

    /* Offsets of a memberless group, then a restart of everything. */
    CHECK_EQ(commit(gc, "solo", -1, "", "t", 42), 0);
    CHECK_EQ(commit(gc, "solo", 4, "x", "t", 43), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ(commit(gc, "other", 4, "x", "t", 43), KAFKA_ERR_ILLEGAL_GENERATION);
    struct stratus_group_stats st;
    stratus_group_get_stats(gc, &st);
    CHECK(st.commits >= 2 && st.commit_batches >= 2 && st.groups == 2);
    stratus_group_close(gc);
    stratus_stream_close(s);
    s = open_stream();
    gc = s ? open_coord(s) : NULL;
    CHECK(gc != NULL);
    if (gc) {
        CHECK_EQ(fetch_offset(gc, "solo", "t"), 42);
        CHECK_EQ(fetch_offset(gc, "g1", "t"), 5);
        CHECK_EQ(fetch_offset(gc, "none", "t"), -1);
        CHECK_EQ(heartbeat(gc, a, 3), KAFKA_ERR_UNKNOWN_MEMBER_ID);
        stratus_group_close(gc);
    }
    if (s)
        stratus_stream_close(s);
}

int main(void)
{
    test_codec();
    if (fx_env_open("group") == 0)
        test_coordinator();
    fx_env_close();
    TEST_REPORT();
}
