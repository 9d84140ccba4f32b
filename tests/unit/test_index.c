/* link: stratus_index stratus_util */
/* test_index.c - the RocksDB wrapper: put/get/delete, batches, range seeks by last offset,
 * counters persisted across reopen, value encodings.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index/index.h"
#include "test.h"

static struct stratus_index *open_idx(const char *path)
{
    struct stratus_index_conf c = {.path = path};
    struct stratus_index *idx = NULL;
    struct stratus_errbuf eb = {{0}};
    int rc = stratus_index_open(&c, &idx, &eb);
    if (rc)
        fprintf(stderr, "open: %s\n", eb.msg);
    return idx;
}

int main(void)
{
    char dir[] = "/tmp/stratus-test-index-XXXXXX";
    struct stratus_errbuf eb;
    uint8_t key[STRATUS_IDX_KEY_MAX], *val = NULL;
    size_t klen, vlen;
    uint64_t first = 0;

    CHECK(mkdtemp(dir) != NULL);
    struct stratus_index *idx = open_idx(dir);
    CHECK(idx != NULL);
    if (!idx)
        TEST_REPORT();

    klen = stratus_index_key_topic(key, "orders");
    CHECK_EQ(stratus_index_get(idx, key, klen, &val, &vlen, &eb), STRATUS_ENOTFOUND);
    CHECK_EQ(stratus_index_put(idx, key, klen, "abc", 3, 1, &eb), 0);
    CHECK_EQ(stratus_index_get(idx, key, klen, &val, &vlen, &eb), 0);
    CHECK_EQ(vlen, 3);
    CHECK(memcmp(val, "abc", 3) == 0);
    free(val);
    CHECK_EQ(stratus_index_delete(idx, key, klen, 0, &eb), 0);
    CHECK_EQ(stratus_index_get(idx, key, klen, &val, &vlen, &eb), STRATUS_ENOTFOUND);

    /* ranges of two streams; negative and large offsets sort numerically */
    struct stratus_index_batch *b = stratus_index_batch_new();
    int64_t lasts[] = {9, 19, 1000000, 99};
    for (int i = 0; i < 4; i++) {
        struct stratus_index_range r = {.stream_id = 7, .base_offset = lasts[i] - 9,
                                        .last_offset = lasts[i], .max_timestamp = 1000 + i,
                                        .object_id = 100 + (uint64_t)i, .position = 10,
                                        .length = 20, .batches = 1};
        uint8_t v[STRATUS_IDX_RANGE_VALUE_SIZE];
        stratus_index_range_encode(&r, v);
        klen = stratus_index_key_range(key, 7, r.last_offset);
        stratus_index_batch_put(b, key, klen, v, sizeof v);
    }
    klen = stratus_index_key_range(key, 8, 5);
    stratus_index_batch_put(b, key, klen, "x", 1);
    CHECK_EQ(stratus_index_batch_count(b), 5);
    CHECK_EQ(stratus_index_batch_write(idx, b, 1, &eb), 0);
    stratus_index_batch_free(b);

    struct stratus_index_iter *it = stratus_index_iter_new(idx);
    klen = stratus_index_key_range(key, 7, 15);
    stratus_index_iter_seek(it, key, klen);
    CHECK(stratus_index_iter_has_prefix(it, key, 9));
    {
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl), *v = stratus_index_iter_value(it, &vl);
        struct stratus_index_range r;
        CHECK_EQ(stratus_index_range_decode(k, kl, v, vl, &r), 0);
        CHECK_EQ(r.last_offset, 19);
        CHECK_EQ(r.base_offset, 10);
        CHECK_EQ(r.object_id, 101);
        CHECK_EQ(r.max_timestamp, 1001);
    }
    stratus_index_iter_next(it);
    {
        size_t kl;
        uint64_t sid;
        int64_t last;
        const uint8_t *k = stratus_index_iter_key(it, &kl);
        CHECK_EQ(stratus_index_parse_range_key(k, kl, &sid, &last), 0);
        CHECK_EQ(last, 99);
    }
    stratus_index_iter_next(it);
    stratus_index_iter_next(it);
    CHECK(!stratus_index_iter_has_prefix(it, key, 9)); /* stream 8 now */
    /* last range of stream 7 */
    klen = stratus_index_key_range(key, 7, INT64_MAX);
    stratus_index_iter_seek_for_prev(it, key, klen);
    {
        size_t kl;
        uint64_t sid;
        int64_t last;
        const uint8_t *k = stratus_index_iter_key(it, &kl);
        CHECK_EQ(stratus_index_parse_range_key(k, kl, &sid, &last), 0);
        CHECK_EQ(sid, 7);
        CHECK_EQ(last, 1000000);
    }
    CHECK_EQ(stratus_index_iter_status(it, &eb), 0);
    stratus_index_iter_free(it);

    CHECK_EQ(stratus_index_counter_next(idx, "object", 1, &first, &eb), 0);
    CHECK_EQ(first, 1);
    CHECK_EQ(stratus_index_counter_next(idx, "object", 10, &first, &eb), 0);
    CHECK_EQ(first, 2);

    struct stratus_index_object o = {.object_id = 5, .size = 1234, .live_ranges = 3,
                                     .created_ms = 42}, o2;
    strcpy(o.key, "data/ab/0000000000000005.sso");
    uint8_t ov[300];
    size_t on = stratus_index_object_encode(&o, ov, sizeof ov);
    CHECK(on > 0);
    CHECK_EQ(stratus_index_object_decode(ov, on, &o2), 0);
    CHECK_STR(o2.key, o.key);
    CHECK_EQ(o2.size, 1234);
    CHECK_EQ(o2.live_ranges, 3);
    CHECK_EQ(stratus_index_object_decode(ov, 10, &o2), STRATUS_ECORRUPT);

    stratus_index_close(idx);
    idx = open_idx(dir);
    CHECK(idx != NULL);
    if (idx) {
        CHECK_EQ(stratus_index_counter_next(idx, "object", 1, &first, &eb), 0);
        CHECK_EQ(first, 12);
        stratus_index_close(idx);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    TEST_REPORT();
}
