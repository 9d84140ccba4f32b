/* topic.c - per-topic traffic counters (see metrics.h): bytes and records produced and
 * fetched, labelled by topic only when [metrics] topic_labels is on, so that the default keeps
 * the series count independent of the number of topics.
 *
 * Reads the v2 record batch header only: baseOffset i64 @0, batchLength i32 @8 (bytes after
 * this field), lastOffsetDelta i32 @23; a batch is 12 + batchLength bytes.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "metrics/metrics.h"

#include <stdatomic.h>
#include <stdio.h>

static atomic_int topic_labels;
static struct stratus_metric *_Atomic topic_all[2][2]; /* [dir][bytes, records] */

static const char *const topic_names[2][2] = {
    {"stratus_topic_bytes_in_total", "stratus_topic_records_in_total"},
    {"stratus_topic_bytes_out_total", "stratus_topic_records_out_total"}};
static const char *const topic_help[2][2] = {
    {"Record batch bytes accepted by Produce", "Records accepted by Produce"},
    {"Record batch bytes returned by Fetch", "Records returned by Fetch"}};

void stratus_metrics_set_topic_labels(int on)
{
    atomic_store(&topic_labels, on ? 1 : 0);
}

static uint32_t topic_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t topic_count_records(const uint8_t *b, size_t len)
{
    int64_t n = 0;
    size_t off = 0;
    while (len - off >= 27) {
        uint32_t blen = topic_be32(b + off + 8);
        int32_t delta = (int32_t)topic_be32(b + off + 23);
        if (blen < 15 || (size_t)blen + 12 > len - off)
            break;
        if (delta >= 0)
            n += (int64_t)delta + 1;
        off += (size_t)blen + 12;
    }
    return n;
}

void stratus_metrics_topic_io(int dir, const char *topic, const uint8_t *batches, size_t len)
{
    struct stratus_metric *m[2];

    if (!batches || len == 0 ||
        (dir != STRATUS_METRICS_TOPIC_IN && dir != STRATUS_METRICS_TOPIC_OUT))
        return;
    if (atomic_load(&topic_labels) && topic) {
        /* Kafka topic names are [a-zA-Z0-9._-]: no escaping needed; longer ones are refused
         * by registration and simply not counted. */
        char name[400];
        for (int i = 0; i < 2; i++) {
            snprintf(name, sizeof name, "%s{topic=\"%s\"}", topic_names[dir][i], topic);
            m[i] = stratus_metrics_counter(name, topic_help[dir][i]);
        }
    } else {
        for (int i = 0; i < 2; i++) {
            m[i] = atomic_load(&topic_all[dir][i]);
            if (!m[i]) {
                m[i] = stratus_metrics_counter(topic_names[dir][i], topic_help[dir][i]);
                atomic_store(&topic_all[dir][i], m[i]);
            }
        }
    }
    stratus_metric_add(m[0], (int64_t)len);
    stratus_metric_add(m[1], topic_count_records(batches, len));
}
