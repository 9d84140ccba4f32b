/* link: stratus_stream */
/* test_lent.c - the zero-copy paths of issue 5: a splicing kwrite (codec.h) produces the same
 * byte stream as a copying one; batches appended by reference to a request frame
 * (stratus_partition_append_owned, a stratus_rcbuf) read back byte for byte; batches lent to a
 * reader (stratus_partition_read_lent) keep their bytes after the log cache evicted them, until
 * stratus_lent_release; the frame lives as long as the cache keeps a batch in it.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/codec.h"
#include "proto/kerr.h"
#include "stream/stream.h"
#include "stream_fixture.h"
#include "test.h"
#include "util/alloc.h"
#include "util/clock.h"

/* The stream a splicing writer describes: buf with the splices inserted. */
static uint8_t *assemble(const struct kwrite *w, size_t *len)
{
    uint8_t *out = malloc(w->len + w->spliced + 1);
    size_t o = 0, b = 0;
    for (size_t i = 0; i < w->nsplices; i++) {
        memcpy(out + o, w->buf + b, w->splices[i].off - b);
        o += w->splices[i].off - b;
        b = w->splices[i].off;
        memcpy(out + o, w->splices[i].p, w->splices[i].n);
        o += w->splices[i].n;
    }
    memcpy(out + o, w->buf + b, w->len - b);
    *len = o + w->len - b;
    return out;
}

static void encode_sample(struct kwrite *w, const uint8_t *big, const uint8_t *small)
{
    kw_i32(w, 7);
    kw_bytes(w, (struct kbytes){big, 40});
    kw_bytes(w, (struct kbytes){small, 3});
    kw_compact_bytes(w, (struct kbytes){big + 40, 20});
    kw_raw(w, big, 50); /* kw_raw always copies */
    kw_bytes(w, (struct kbytes){NULL, -1});
    kw_compact_string(w, (struct kstr){"topic", 5});
}

static void test_splice(void)
{
    uint8_t big[100], small[3] = {1, 2, 3};
    struct kwrite a, b;
    size_t n = 0;

    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7 + 1);
    kw_init(&a, 0);
    kw_init(&b, 0);
    b.splice_min = 16;
    encode_sample(&a, big, small);
    encode_sample(&b, big, small);
    CHECK_EQ(a.err, 0);
    CHECK_EQ(b.err, 0);
    CHECK_EQ(a.nsplices, 0);
    CHECK_EQ(b.nsplices, 2);
    CHECK_EQ(b.spliced, 60);
    CHECK_EQ(b.len + b.spliced, a.len);
    CHECK(b.nsplices == 2 && b.splices[0].p == big && b.splices[1].p == big + 40);
    uint8_t *s = assemble(&b, &n);
    CHECK_EQ(n, a.len);
    CHECK(n == a.len && memcmp(s, a.buf, n) == 0);
    free(s);
    /* the max counts spliced bytes */
    struct kwrite c;
    kw_init(&c, 30);
    c.splice_min = 16;
    kw_bytes(&c, (struct kbytes){big, 40});
    CHECK(c.err != 0);
    kw_free(&a);
    kw_free(&b);
    kw_free(&c);
    CHECK(b.splices == NULL && b.nsplices == 0 && b.spliced == 0);
}

/* A v2 batch of nrec records of vlen bytes into out; its size. */
static size_t build_batch(uint8_t *out, int nrec, size_t vlen, uint32_t seed)
{
    size_t pos = FX_BATCH_HEADER;
    int64_t ts = stratus_wall_ms();
    for (int i = 0; i < nrec; i++) {
        uint8_t value[2048];
        for (size_t k = 0; k < vlen; k++)
            value[k] = (uint8_t)(seed * 13 + (uint32_t)i * 5 + (uint32_t)k);
        pos += fx_record_put(out + pos, i, i, value, vlen);
    }
    struct fx_batch h = fx_batch_plain(nrec, ts, ts + nrec - 1);
    return fx_batch_seal(out, pos, &h);
}

static void test_owned_and_lent(void)
{
    struct stratus_stream_conf c;
    struct stratus_stream *s;
    struct stratus_partition *p;
    struct stratus_append_result r;
    char msg[256];
    uint8_t batch[40000];

    fx_stream_conf(&c);
    c.log_cache_bytes = 256 << 10;
    c.object_target_bytes = 64 << 10;
    c.upload_interval_ms = 50;
    s = fx_stream_open(&c, NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(stratus_stream_create_topic(s, "lent", 1, NULL, 0, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_NONE);
    p = stratus_stream_partition(s, "lent", 0);
    CHECK(p != NULL);
    if (!p) {
        stratus_stream_close(s);
        return;
    }

    /* two batches appended by reference to one "frame" with 8 bytes of header in front */
    size_t l1 = build_batch(batch, 3, 900, 1);
    size_t l2 = build_batch(batch + l1, 2, 700, 2);
    uint8_t *frame = stratus_rcbuf_new(8 + l1 + l2);
    memset(frame, 0xee, 8);
    memcpy(frame + 8, batch, l1 + l2);
    int before = fx_acks_done();
    stratus_partition_append_owned(p, frame + 8, l1 + l2, frame, &r, fx_on_done, NULL);
    CHECK_EQ(r.error, KAFKA_ERR_NONE);
    CHECK_EQ(r.base_offset, 0);
    CHECK(fx_acks_wait(before + 1, FX_ACK_MS));
    /* the offsets were assigned in the frame itself: batch 2 starts at offset 3 */
    uint8_t want[sizeof batch];
    memcpy(want, batch, l1 + l2);
    fx_be_put(want + l1, 3, 8);
    fx_be_put(want + 12, (uint64_t)(uint32_t)stratus_partition_leader_epoch(p), 4);
    fx_be_put(want + l1 + 12, (uint64_t)(uint32_t)stratus_partition_leader_epoch(p), 4);
    CHECK(memcmp(frame + 8, want, l1 + l2) == 0);
    /* the cache is charged the frame's allocation (the allocator's rounding included), split
     * between the batches by their share of the frame, plus the batches' own structs */
    {
        struct stratus_stream_stats st;
        size_t foot = stratus_rcbuf_footprint(frame);
        stratus_stream_get_stats(s, &st);
        CHECK_EQ(stratus_rcbuf_len(frame), 8 + l1 + l2);
        CHECK(foot >= 8 + l1 + l2);
        CHECK(st.log_cache_bytes >= (uint64_t)(l1 + l2) * foot / (8 + l1 + l2) + 64);
        CHECK(st.log_cache_bytes <= foot + 256);
    }
    stratus_rcbuf_unref(frame); /* the request is done: the log cache holds the frame now */

    struct stratus_fetch_result fr;
    struct stratus_lent *segs = NULL;
    int nsegs = 0;
    CHECK_EQ(stratus_partition_read_lent(p, 0, 1 << 20, 1, &fr, &segs, &nsegs), 0);
    CHECK_EQ(fr.error, KAFKA_ERR_NONE);
    CHECK(fr.data == NULL);
    CHECK_EQ(fr.len, l1 + l2);
    CHECK_EQ(nsegs, 2);
    CHECK(nsegs == 2 && segs[0].len == l1 && memcmp(segs[0].data, want, l1) == 0);
    CHECK(nsegs == 2 && segs[1].len == l2 && memcmp(segs[1].data, want + l1, l2) == 0);
    /* the same through the copying read */
    CHECK_EQ(stratus_partition_read(p, 3, 1 << 20, 1, &fr), 0);
    CHECK(fr.len == l2 && memcmp(fr.data, want + l1, l2) == 0);
    free(fr.data);
    /* max_bytes below one batch: nothing without min_one, one batch with it */
    struct stratus_lent *one = NULL;
    int none = -1;
    CHECK_EQ(stratus_partition_read_lent(p, 0, 10, 0, &fr, &one, &none), 0);
    CHECK(fr.len == 0 && one == NULL && none == 0);
    CHECK_EQ(stratus_partition_read_lent(p, 0, 10, 1, &fr, &one, &none), 0);
    CHECK(fr.len == l1 && none == 1);
    stratus_lent_release(one, none);
    /* at the high watermark: empty, no error */
    CHECK_EQ(stratus_partition_read_lent(p, 5, 1 << 20, 1, &fr, &one, &none), 0);
    CHECK(fr.error == KAFKA_ERR_NONE && fr.len == 0 && one == NULL);
    CHECK_EQ(stratus_partition_read_lent(p, 6, 1 << 20, 1, &fr, &one, &none), 0);
    CHECK_EQ(fr.error, KAFKA_ERR_OFFSET_OUT_OF_RANGE);

    /* push the first batches out of the (256 KiB) log cache: uploaded, then evicted */
    before = fx_acks_done();
    int n = 0;
    for (uint32_t i = 0; i < 60; i++) {
        size_t l = build_batch(batch, 20, 1000, 10 + i);
        stratus_partition_append(p, batch, l, &r, fx_on_done, NULL);
        CHECK_EQ(r.error, KAFKA_ERR_NONE);
        n += r.error == KAFKA_ERR_NONE;
    }
    CHECK(fx_acks_wait(before + n, FX_ACK_MS));
    int64_t deadline = stratus_mono_ms() + 20000;
    int rc;
    do {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
        rc = stratus_partition_read(p, 0, 1 << 20, 1, &fr);
        if (rc == 0)
            free(fr.data);
    } while (rc != STRATUS_EAGAIN && stratus_mono_ms() < deadline);
    CHECK_EQ(rc, STRATUS_EAGAIN); /* evicted from the cache */
    /* ...but the lent batches are intact until released (ASan checks the reads) */
    CHECK(nsegs == 2 && memcmp(segs[0].data, want, l1) == 0);
    CHECK(nsegs == 2 && memcmp(segs[1].data, want + l1, l2) == 0);
    stratus_lent_release(segs, nsegs);

    stratus_partition_release(p);
    CHECK_EQ(stratus_stream_delete_topic(s, "lent", msg, sizeof msg), KAFKA_ERR_NONE);
    stratus_stream_close(s);
}

int main(void)
{
    test_splice();
    if (fx_env_open("lent") != 0)
        TEST_REPORT();
    test_owned_and_lent();
    fx_env_close();
    TEST_REPORT();
}
