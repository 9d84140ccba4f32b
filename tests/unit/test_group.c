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
#include "group_fixture.h"
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

/* JoinGroup of group "g1" with a 5 s rebalance timeout, not waited for. */
static struct gx_call *join(struct stratus_group_coord *gc, const char *member, int32_t session)
{
    return gx_join(gc, "g1", member, session, 5000);
}

/* OffsetCommit of partition 0: its error code. */
static int16_t commit(struct stratus_group_coord *gc, const char *group, int32_t gen,
                      const char *member, const char *topic, int64_t offset)
{
    return gx_call_result(gx_commit_async(gc, group, gen, member, topic, 0, offset));
}

static void test_coordinator(void)
{
    struct stratus_stream *s = gx_open_stream();
    char msg[160];
    if (!s) {
        CHECK(0);
        return;
    }
    CHECK_EQ(stratus_stream_create_topic(s, "t", 1, NULL, 0, 0, NULL, msg, sizeof msg), 0);
    struct stratus_group_coord *gc = gx_open_coord(s, 0);
    CHECK(gc != NULL);
    if (!gc) {
        stratus_stream_close(s);
        return;
    }

    /* A joins alone: generation 1, leader A, one member in the leader's list. */
    struct gx_call *ja = join(gc, "", 5000);
    CHECK(gx_call_wait(ja, 5000));
    CHECK_EQ(ja->err, 0);
    CHECK_EQ(ja->generation, 1);
    CHECK(strcmp(ja->member, ja->leader) == 0 && ja->nmembers == 1);
    char a[200];
    snprintf(a, sizeof a, "%s", ja->member);
    gx_call_free(ja);

    /* Heartbeat before SyncGroup is fine; a commit then is REBALANCE_IN_PROGRESS. */
    CHECK_EQ(gx_heartbeat(gc, "g1", a, 1), 0);
    CHECK_EQ(commit(gc, "g1", 1, a, "t", 5), KAFKA_ERR_REBALANCE_IN_PROGRESS);
    struct SyncGroupRequest_SyncGroupRequestAssignment as = {{a, (int32_t)strlen(a)},
                                                             {(const uint8_t *)"ASSIGN-A", 8}};
    struct gx_call *sa = gx_sync(gc, "g1", a, 1, &as, 1);
    CHECK(gx_call_wait(sa, 5000));
    CHECK_EQ(sa->err, 0);
    CHECK(strcmp(sa->assignment, "ASSIGN-A") == 0);
    gx_call_free(sa);
    CHECK_EQ(gx_heartbeat(gc, "g1", a, 1), 0);
    CHECK_EQ(gx_heartbeat(gc, "g1", a, 2), KAFKA_ERR_ILLEGAL_GENERATION);
    CHECK_EQ(gx_heartbeat(gc, "g1", "stale", 1), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ(commit(gc, "g1", 1, a, "t", 5), 0);
    CHECK_EQ(commit(gc, "g1", 1, a, "nope", 5), KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ(commit(gc, "g1", -1, "", "t", 5), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ(gx_fetch(gc, 1, "g1", "t", 0), 5);

    /* B joins (short session): it parks until A rejoins, A's heartbeat says rebalance. */
    struct gx_call *jb = join(gc, "", 300);
    usleep(100000);
    CHECK(!jb->done);
    CHECK_EQ(gx_heartbeat(gc, "g1", a, 1), KAFKA_ERR_REBALANCE_IN_PROGRESS);
    struct gx_call *ja2 = join(gc, a, 5000);
    CHECK(gx_call_wait(ja2, 5000) && gx_call_wait(jb, 5000));
    CHECK_EQ(ja2->generation, 2);
    CHECK_EQ(jb->generation, 2);
    CHECK(strcmp(ja2->leader, a) == 0 && ja2->nmembers == 2 && jb->nmembers == 0);
    char b[200];
    snprintf(b, sizeof b, "%s", jb->member);
    gx_call_free(ja2);
    gx_call_free(jb);

    /* B's SyncGroup parks until the leader's. */
    struct gx_call *sb = gx_sync(gc, "g1", b, 2, NULL, 0);
    usleep(50000);
    CHECK(!sb->done);
    struct SyncGroupRequest_SyncGroupRequestAssignment as2[2] = {
        {{a, (int32_t)strlen(a)}, {(const uint8_t *)"A2", 2}},
        {{b, (int32_t)strlen(b)}, {(const uint8_t *)"B2", 2}}};
    sa = gx_sync(gc, "g1", a, 2, as2, 2);
    CHECK(gx_call_wait(sa, 5000) && gx_call_wait(sb, 5000));
    CHECK(strcmp(sa->assignment, "A2") == 0 && strcmp(sb->assignment, "B2") == 0);
    gx_call_free(sa);
    gx_call_free(sb);

    /* B goes silent: its 300 ms session expires while A keeps heartbeating. */
    int16_t err = 0;
    for (int i = 0; i < 20 && err == 0; i++) {
        usleep(100000);
        err = gx_heartbeat(gc, "g1", a, 2);
    }
    CHECK_EQ(err, KAFKA_ERR_REBALANCE_IN_PROGRESS);
    CHECK_EQ(gx_heartbeat(gc, "g1", b, 2), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    ja = join(gc, a, 5000);
    CHECK(gx_call_wait(ja, 5000));
    CHECK_EQ(ja->generation, 3);
    CHECK_EQ(ja->nmembers, 1);
    gx_call_free(ja);

    /* Offsets of a memberless group, then a restart of everything. */
    CHECK_EQ(commit(gc, "solo", -1, "", "t", 42), 0);
    CHECK_EQ(commit(gc, "solo", 4, "x", "t", 43), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ(commit(gc, "other", 4, "x", "t", 43), KAFKA_ERR_ILLEGAL_GENERATION);
    struct stratus_group_stats st;
    stratus_group_get_stats(gc, &st);
    CHECK(st.commits >= 2 && st.commit_batches >= 2 && st.groups == 2);
    stratus_group_close(gc);
    stratus_stream_close(s);
    s = gx_open_stream();
    gc = s ? gx_open_coord(s, 0) : NULL;
    CHECK(gc != NULL);
    if (gc) {
        CHECK_EQ(gx_fetch(gc, 1, "solo", "t", 0), 42);
        CHECK_EQ(gx_fetch(gc, 1, "g1", "t", 0), 5);
        CHECK_EQ(gx_fetch(gc, 1, "none", "t", 0), -1);
        CHECK_EQ(gx_heartbeat(gc, "g1", a, 3), KAFKA_ERR_UNKNOWN_MEMBER_ID);
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
