/* link: stratus_stream */
/* test_idem.c - idempotent producers: the sequence rules of core/stream/producer.c on their
 * own (duplicates, gaps, epochs, unknown producers, wrap-around, snapshot encoding), then
 * through the engine against the storage-local plugin: a duplicate answers the original base
 * offset and writes nothing, errors store nothing, and the state survives a reopen both from
 * the WAL replay and, once the WAL is trimmed after an upload, from the 'P' snapshot.
 * Also DeleteRecords (log start moves durably, reads below it are out of range).
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "proto/kerr.h"
#include "stream/stream.h"
#include "stream/stream_int.h"
#include "stream_fixture.h"
#include "test.h"
#include "util/clock.h"

/* ---- the rules alone ---- */

static void test_rules(void)
{
    struct stratus_pentry w;
    struct stratus_pbatch dup;
    char msg[160];

    memset(&w, 0, sizeof w);
    w.pid = 7;
    w.epoch = -1;
    w.last_off = -1;
    /* a new producer starts at 0 */
    CHECK_EQ(stratus_pstate_check(&w, 0, 0, 4, 0, &dup, msg, sizeof msg), KAFKA_ERR_NONE);
    CHECK_EQ(w.epoch, 0);
    CHECK_EQ(w.nb, 1);
    CHECK_EQ(w.b[0].last_seq, 4);
    w.b[0].base = 100;
    w.b[0].last = 104;
    /* next in sequence */
    CHECK_EQ(stratus_pstate_check(&w, 0, 5, 0, 0, &dup, msg, sizeof msg), KAFKA_ERR_NONE);
    w.b[1].base = 105;
    w.b[1].last = 105;
    /* a retry of the first batch: duplicate with its offsets */
    CHECK_EQ(stratus_pstate_check(&w, 0, 0, 4, 0, &dup, msg, sizeof msg), STRATUS_PSTATE_DUP);
    CHECK_EQ(dup.base, 100);
    CHECK_EQ(dup.last, 104);
    CHECK_EQ(w.nb, 2);
    /* same first sequence, other length: not a duplicate, out of order */
    CHECK_EQ(stratus_pstate_check(&w, 0, 0, 3, 0, &dup, msg, sizeof msg),
             KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    /* a gap */
    CHECK_EQ(stratus_pstate_check(&w, 0, 8, 0, 0, &dup, msg, sizeof msg),
             KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    CHECK(strstr(msg, "does not follow 5") != NULL);
    CHECK_EQ(w.nb, 2);
    /* a newer epoch must start at 0 */
    CHECK_EQ(stratus_pstate_check(&w, 1, 6, 0, 0, &dup, msg, sizeof msg),
             KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    CHECK_EQ(stratus_pstate_check(&w, 1, 0, 1, 0, &dup, msg, sizeof msg), KAFKA_ERR_NONE);
    CHECK_EQ(w.epoch, 1);
    CHECK_EQ(w.nb, 1);
    /* the old epoch is fenced, even for what was a duplicate */
    CHECK_EQ(stratus_pstate_check(&w, 0, 6, 0, 0, &dup, msg, sizeof msg),
             KAFKA_ERR_INVALID_PRODUCER_EPOCH);
    CHECK_EQ(stratus_pstate_check(&w, 0, 0, 4, 0, &dup, msg, sizeof msg),
             KAFKA_ERR_INVALID_PRODUCER_EPOCH);
    /* only the last five batches are remembered */
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(stratus_pstate_check(&w, 1, 2 + i, 0, 0, &dup, msg, sizeof msg), KAFKA_ERR_NONE);
        w.b[w.nb - 1].base = w.b[w.nb - 1].last = 200 + i;
    }
    CHECK_EQ(w.nb, STRATUS_PRODUCER_BATCHES);
    CHECK_EQ(stratus_pstate_check(&w, 1, 2, 0, 0, &dup, msg, sizeof msg),
             KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER); /* too old to be known as a duplicate */
    CHECK_EQ(stratus_pstate_check(&w, 1, 4, 0, 0, &dup, msg, sizeof msg), STRATUS_PSTATE_DUP);
    CHECK_EQ(dup.base, 202);

    /* an unknown producer whose state may have been dropped here (id below expired_pid_end)
     * is accepted at any sequence (KIP-360) */
    memset(&w, 0, sizeof w);
    w.pid = 8;
    w.epoch = -1;
    CHECK_EQ(stratus_pstate_check(&w, 3, 42, 0, 9, &dup, msg, sizeof msg), KAFKA_ERR_NONE);
    CHECK_EQ(stratus_pstate_check(&w, 3, 43, 0, 9, &dup, msg, sizeof msg), KAFKA_ERR_NONE);
    /* one that never wrote here must start at 0 (its first batch was refused: a gap) */
    memset(&w, 0, sizeof w);
    w.pid = 9;
    w.epoch = -1;
    CHECK_EQ(stratus_pstate_check(&w, 0, 1, 0, 9, &dup, msg, sizeof msg),
             KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    CHECK(strstr(msg, "must start at sequence 0, got 1") != NULL);
    CHECK_EQ(w.epoch, -1);
    CHECK_EQ(w.nb, 0);
    CHECK_EQ(stratus_pstate_check(&w, 0, 0, 1, 9, &dup, msg, sizeof msg), KAFKA_ERR_NONE);
    CHECK_EQ(stratus_pstate_check(&w, 0, 2, 0, 9, &dup, msg, sizeof msg), KAFKA_ERR_NONE);
    /* sequences wrap after INT32_MAX */
    CHECK_EQ(stratus_pstate_seq_add(INT32_MAX - 1, 3), 1);
    CHECK_EQ(stratus_pstate_seq_add(5, 3), 8);
    memset(&w, 0, sizeof w);
    w.pid = 9;
    w.epoch = -1;
    CHECK_EQ(stratus_pstate_check(&w, 0, INT32_MAX - 1, 1, INT64_MAX, &dup, msg, sizeof msg),
             KAFKA_ERR_NONE);
    CHECK_EQ(stratus_pstate_check(&w, 0, 0, 0, 0, &dup, msg, sizeof msg), KAFKA_ERR_NONE);
    CHECK_EQ(stratus_pstate_check(&w, 0, -5, 0, 0, &dup, msg, sizeof msg),
             KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
}

static void test_snapshot_codec(void)
{
    struct stratus_pstate ps = {0}, back = {0};
    struct stratus_pentry e;
    uint8_t *v = NULL;
    size_t len = 0;
    int64_t now = stratus_wall_ms();

    for (int k = 0; k < 3; k++) {
        memset(&e, 0, sizeof e);
        e.pid = 30 - k * 10; /* inserted out of order: kept sorted */
        e.epoch = (int16_t)k;
        e.updated_ms = k == 2 ? now - STRATUS_PRODUCER_EXPIRATION_MS - 1000 : now;
        e.nb = 3;
        for (int j = 0; j < 3; j++) {
            e.b[j].first_seq = j * 10;
            e.b[j].last_seq = j * 10 + 9;
            e.b[j].base = k * 100 + j * 10;
            e.b[j].last = k * 100 + j * 10 + 9;
            e.b[j].ts = 1000 + j;
        }
        e.last_off = e.b[2].last;
        stratus_pstate_put(&ps, &e);
    }
    CHECK_EQ(ps.n, 3);
    CHECK_EQ(ps.v[0].pid, 10);
    /* hw 120: producer 30 (offsets 0..29) whole, 20 (100..129) the first two batches only;
     * producer 10 is idle for more than a day and expires */
    stratus_pstate_encode(&ps, 120, now, &v, &len);
    CHECK_EQ(ps.n, 2);
    CHECK_EQ(ps.expired_pid_end, 11); /* producer 10 may come back at any sequence */
    CHECK_EQ(stratus_pstate_decode(&back, v, len), 0);
    CHECK_EQ(back.n, 2);
    CHECK_EQ(back.expired_pid_end, 11);
    CHECK(stratus_pstate_find(&back, 10) == NULL);
    struct stratus_pentry *b20 = stratus_pstate_find(&back, 20);
    struct stratus_pentry *b30 = stratus_pstate_find(&back, 30);
    CHECK(b20 && b30);
    if (b20 && b30) {
        CHECK_EQ(b20->nb, 2);
        CHECK_EQ(b20->last_off, 119);
        CHECK_EQ(b20->epoch, 1);
        CHECK_EQ(b30->nb, 3);
        CHECK_EQ(b30->b[2].last_seq, 29);
        CHECK_EQ(b30->b[1].ts, 1001);
    }
    /* replay over the snapshot is idempotent, and continues it */
    stratus_pstate_replay(&back, 20, 1, 10, 19, 110, 119, 5);
    CHECK_EQ(stratus_pstate_find(&back, 20)->nb, 2);
    stratus_pstate_replay(&back, 20, 1, 20, 29, 120, 129, 5);
    CHECK_EQ(stratus_pstate_find(&back, 20)->nb, 3);
    CHECK_EQ(stratus_pstate_find(&back, 20)->last_off, 129);
    /* corrupt snapshots are refused, leaving a state whose history is unknown */
    CHECK_EQ(stratus_pstate_decode(&back, v, len - 1), STRATUS_ECORRUPT);
    CHECK_EQ(back.n, 0);
    CHECK_EQ(back.expired_pid_end, INT64_MAX);
    v[0] = 9;
    CHECK_EQ(stratus_pstate_decode(&back, v, len), STRATUS_ECORRUPT);
    free(v);
    /* version 1 (before expired ids were kept): every id may have expired */
    {
        const uint8_t v1[5] = {1, 0, 0, 0, 0};
        CHECK_EQ(stratus_pstate_decode(&back, v1, sizeof v1), 0);
        CHECK_EQ(back.n, 0);
        CHECK_EQ(back.expired_pid_end, INT64_MAX);
    }
    /* a snapshot from storage may hold any last-append time: INT64_MIN + 5 is long expired
     * (the old now - updated_ms overflowed, and kept it), INT64_MAX is not */
    stratus_pstate_clear(&ps);
    memset(&e, 0, sizeof e);
    e.pid = 40;
    e.nb = 1;
    e.b[0] = (struct stratus_pbatch){0, 0, 0, 0, 1};
    e.updated_ms = INT64_MIN + 5;
    stratus_pstate_put(&ps, &e);
    e.pid = 50;
    e.updated_ms = INT64_MAX;
    stratus_pstate_put(&ps, &e);
    stratus_pstate_encode(&ps, 120, now, &v, &len);
    CHECK_EQ(ps.n, 1);
    CHECK(stratus_pstate_find(&ps, 50) != NULL);
    CHECK_EQ(ps.expired_pid_end, 41);
    free(v);
    /* nothing expired: 0, kept through a round trip */
    stratus_pstate_clear(&ps);
    stratus_pstate_encode(&ps, 0, now, &v, &len);
    CHECK_EQ(stratus_pstate_decode(&back, v, len), 0);
    CHECK_EQ(back.expired_pid_end, 0);
    free(v);
    stratus_pstate_clear(&ps);
    stratus_pstate_clear(&back);
}

/* ---- through the engine ---- */

/* An idempotent v2 batch of nrec records; out needs 61 + nrec * 48 bytes. */
static size_t build_idem(uint8_t *out, int nrec, int64_t pid, int16_t epoch, int32_t seq)
{
    size_t pos = FX_BATCH_HEADER;
    int64_t ts = 1700000000000LL;
    for (int i = 0; i < nrec; i++)
        pos += fx_record_put(out + pos, i, i, "abcd", 4);
    struct fx_batch h = fx_batch_plain(nrec, ts, ts + nrec - 1);
    h.producer_id = pid;
    h.producer_epoch = epoch;
    h.base_seq = seq;
    return fx_batch_seal(out, pos, &h);
}

/* A smaller engine than fx_stream_conf(): a 16 MiB WAL, a 64 MiB log cache. */
static struct stratus_stream *open_stream(void)
{
    struct stratus_stream_conf c;

    fx_stream_conf(&c);
    c.wal.size_bytes = 16ull << 20;
    c.log_cache_bytes = 64ull << 20;
    return fx_stream_open(&c, NULL);
}

/* Appends one idempotent batch; returns the error (NONE also for a duplicate) with *base. */
static int16_t append_idem(struct stratus_partition *p, int nrec, int64_t pid, int16_t epoch,
                           int32_t seq, int64_t *base)
{
    uint8_t buf[61 + 64 * 48];
    size_t n = build_idem(buf, nrec, pid, epoch, seq);
    struct stratus_append_result res;
    int acked = fx_append_acked(p, buf, n, &res, FX_ACK_MS);

    if (res.error == KAFKA_ERR_NONE)
        CHECK(acked);
    *base = res.base_offset;
    return res.error;
}

static void test_engine(void)
{
    struct stratus_stream *s = open_stream();
    struct stratus_partition *p;
    struct stratus_errbuf eb = {{0}};
    int64_t pid = -1, pid2 = -1, base = -1, ls, hw, le;
    char msg[256];

    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(stratus_stream_create_topic(s, "idem", 1, NULL, 0, 0, NULL, msg, sizeof msg), 0);
    CHECK_EQ(stratus_stream_new_producer_id(s, &pid, &eb), 0);
    CHECK_EQ(stratus_stream_new_producer_id(s, &pid2, &eb), 0);
    CHECK(pid >= 0 && pid2 > pid);
    p = stratus_stream_partition(s, "idem", 0);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK_EQ(append_idem(p, 3, pid, 0, 0, &base), KAFKA_ERR_NONE);
    CHECK_EQ(base, 0);
    CHECK_EQ(append_idem(p, 2, pid, 0, 3, &base), KAFKA_ERR_NONE);
    CHECK_EQ(base, 3);
    CHECK_EQ(append_idem(p, 1, -1, -1, -1, &base), KAFKA_ERR_NONE); /* not idempotent */
    CHECK_EQ(base, 5);
    /* duplicate: the original offset, nothing written */
    CHECK_EQ(append_idem(p, 3, pid, 0, 0, &base), KAFKA_ERR_NONE);
    CHECK_EQ(base, 0);
    CHECK_EQ(append_idem(p, 2, pid, 0, 3, &base), KAFKA_ERR_NONE);
    CHECK_EQ(base, 3);
    stratus_partition_offsets(p, &ls, &hw, &le);
    CHECK_EQ(le, 6);
    CHECK_EQ(hw, 6);
    /* gap and fenced epoch store nothing */
    CHECK_EQ(append_idem(p, 1, pid, 0, 9, &base), KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    CHECK_EQ(append_idem(p, 1, pid2, 0, 0, &base), KAFKA_ERR_NONE);
    CHECK_EQ(base, 6);
    CHECK_EQ(append_idem(p, 1, pid2, 1, 0, &base), KAFKA_ERR_NONE); /* epoch bump */
    CHECK_EQ(base, 7);
    CHECK_EQ(append_idem(p, 1, pid2, 0, 1, &base), KAFKA_ERR_INVALID_PRODUCER_EPOCH);
    /* a producer that never wrote here cannot continue at sequence 3: its first batches
     * were refused (librdkafka would otherwise report them delivered) */
    {
        int64_t pid4 = -1;
        CHECK_EQ(stratus_stream_new_producer_id(s, &pid4, &eb), 0);
        CHECK_EQ(append_idem(p, 1, pid4, 0, 3, &base), KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    }
    stratus_partition_offsets(p, NULL, NULL, &le);
    CHECK_EQ(le, 8);
    {
        struct stratus_producer_info *pi = NULL;
        size_t n = 0;
        CHECK_EQ(stratus_partition_producers(p, &pi, &n), 0);
        CHECK_EQ(n, 2);
        if (n == 2) {
            CHECK_EQ(pi[0].producer_id, pid);
            CHECK_EQ(pi[0].last_sequence, 4);
            CHECK_EQ(pi[1].epoch, 1);
            CHECK_EQ(pi[1].last_sequence, 0);
        }
        free(pi);
    }
    stratus_partition_release(p);
    stratus_stream_close(s);

    /* reopen: state from WAL replay */
    s = open_stream();
    CHECK(s != NULL);
    if (!s)
        return;
    p = stratus_stream_partition(s, "idem", 0);
    CHECK_EQ(append_idem(p, 2, pid, 0, 3, &base), KAFKA_ERR_NONE);
    CHECK_EQ(base, 3);
    CHECK_EQ(append_idem(p, 1, pid2, 0, 1, &base), KAFKA_ERR_INVALID_PRODUCER_EPOCH);
    CHECK_EQ(append_idem(p, 1, pid, 0, 5, &base), KAFKA_ERR_NONE);
    CHECK_EQ(base, 8);
    /* upload, which snapshots the state and trims the WAL */
    CHECK_EQ(stratus_stream_flush(s, &eb), 0);
    {
        struct stratus_stream_stats st;
        stratus_stream_get_stats(s, &st);
        CHECK(st.objects_uploaded >= 1);
    }
    stratus_partition_release(p);
    stratus_stream_close(s);

    /* reopen: the WAL holds nothing of it any more; the snapshot does */
    s = open_stream();
    CHECK(s != NULL);
    if (!s)
        return;
    p = stratus_stream_partition(s, "idem", 0);
    stratus_partition_offsets(p, NULL, &hw, &le);
    CHECK_EQ(le, 9);
    CHECK_EQ(append_idem(p, 1, pid, 0, 5, &base), KAFKA_ERR_NONE);
    CHECK_EQ(base, 8);
    CHECK_EQ(append_idem(p, 2, pid, 0, 3, &base), KAFKA_ERR_NONE);
    CHECK_EQ(base, 3);
    CHECK_EQ(append_idem(p, 1, pid, 0, 7, &base), KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    CHECK_EQ(append_idem(p, 1, pid2, 0, 1, &base), KAFKA_ERR_INVALID_PRODUCER_EPOCH);
    CHECK_EQ(append_idem(p, 1, pid, 0, 6, &base), KAFKA_ERR_NONE);
    CHECK_EQ(base, 9);
    {
        int64_t pid3 = -1;
        CHECK_EQ(stratus_stream_new_producer_id(s, &pid3, &eb), 0);
        CHECK(pid3 > pid2); /* never reused across restarts */
    }

    /* DeleteRecords */
    {
        int64_t low = -1;
        struct stratus_fetch_result fr;
        CHECK_EQ(stratus_partition_delete_records(p, 11, &low, msg, sizeof msg),
                 KAFKA_ERR_OFFSET_OUT_OF_RANGE);
        CHECK_EQ(stratus_partition_delete_records(p, 4, &low, msg, sizeof msg), KAFKA_ERR_NONE);
        CHECK_EQ(low, 4);
        CHECK_EQ(stratus_partition_delete_records(p, 2, &low, msg, sizeof msg), KAFKA_ERR_NONE);
        CHECK_EQ(low, 4);
        CHECK_EQ(stratus_partition_read(p, 3, 1 << 20, 1, &fr), 0);
        CHECK_EQ(fr.error, KAFKA_ERR_OFFSET_OUT_OF_RANGE);
        free(fr.data);
        CHECK_EQ(stratus_partition_delete_records(p, -1, &low, msg, sizeof msg), KAFKA_ERR_NONE);
        CHECK_EQ(low, 10);
    }
    stratus_partition_release(p);
    stratus_stream_close(s);
    s = open_stream();
    CHECK(s != NULL);
    if (!s)
        return;
    p = stratus_stream_partition(s, "idem", 0);
    stratus_partition_offsets(p, &ls, &hw, &le);
    CHECK_EQ(ls, 10);
    CHECK_EQ(le, 10);
    {
        uint64_t bytes = 1;
        CHECK_EQ(stratus_partition_size_bytes(p, &bytes, &eb), 0);
        CHECK_EQ(bytes, 0);
    }
    stratus_partition_release(p);
    stratus_stream_close(s);
}

int main(void)
{
    test_rules();
    test_snapshot_codec();
    if (fx_env_open("idem") == 0)
        test_engine();
    fx_env_close();
    TEST_REPORT();
}
