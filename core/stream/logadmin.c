/* logadmin.c - administrative operations on a partition's log: DeleteRecords (moving the log
 * start durably) and the partition sizes DescribeLogDirs reports.
 *
 * DeleteRecords first uploads everything pending (stratus_stream_flush), so that no batch below
 * the new log start can reach an object afterwards and leave a range nobody collects; then
 * retention.c drops the ranges wholly below the new start and persists it ('S') in one synced
 * index batch. Reads below the log start answer OFFSET_OUT_OF_RANGE from then on; after a
 * restart the persisted log start holds. Only the partition's owner answers it
 * (NOT_LEADER_OR_FOLLOWER otherwise). In cluster mode the new log start and the dropped ranges
 * are first written to the metastore, fenced on ownership (the trim hook, see retention.c): a
 * partition found owned elsewhere is fenced and answers NOT_LEADER_OR_FOLLOWER.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>

#include "plugin/plugin.h"
#include "proto/kerr.h"
#include "stream_int.h"
#include "util/log.h"

int16_t stratus_partition_delete_records(struct stratus_partition *p, int64_t offset,
                                         int64_t *low_watermark, char *msg, size_t msgcap)
{
    struct stratus_errbuf eb = {{0}};
    int64_t log_start, hw;
    int deleted, rc;

    *low_watermark = -1;
    msg[0] = 0;
    pthread_mutex_lock(&p->lock);
    log_start = p->log_start;
    hw = p->hw;
    deleted = p->deleted;
    pthread_mutex_unlock(&p->lock);
    if (deleted) {
        snprintf(msg, msgcap, "topic deleted");
        return KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    if (atomic_load(&p->role) != STRATUS_ROLE_OWNER) {
        snprintf(msg, msgcap, "this broker does not lead the partition");
        return KAFKA_ERR_NOT_LEADER_OR_FOLLOWER;
    }
    if (offset == -1)
        offset = hw;
    if (offset < 0 || offset > hw) {
        snprintf(msg, msgcap, "offset %lld is beyond the high watermark %lld",
                 (long long)offset, (long long)hw);
        return KAFKA_ERR_OFFSET_OUT_OF_RANGE;
    }
    if (offset <= log_start) {
        *low_watermark = log_start;
        return KAFKA_ERR_NONE;
    }
    rc = stratus_stream_flush(p->s, &eb);
    if (rc == 0)
        rc = stratus_retention_set_log_start(p->s, p, offset, &eb);
    if (rc == STRATUS_EEXIST) {
        snprintf(msg, msgcap, "%s", eb.msg);
        return KAFKA_ERR_NOT_LEADER_OR_FOLLOWER;
    }
    if (rc) {
        LOG_WARN("stream", "delete records topic=%s partition=%d offset=%lld: %s", p->topic,
                 p->index, (long long)offset, eb.msg);
        snprintf(msg, msgcap, "%s", eb.msg);
        return KAFKA_ERR_KAFKA_STORAGE_ERROR;
    }
    stratus_partition_offsets(p, low_watermark, NULL, NULL);
    return KAFKA_ERR_NONE;
}

int stratus_partition_size_bytes(struct stratus_partition *p, uint64_t *bytes,
                                 struct stratus_errbuf *eb)
{
    struct stratus_index_iter *it;
    uint8_t key[STRATUS_IDX_KEY_MAX];
    uint64_t total = 0;
    int64_t log_start;
    size_t klen;
    int rc;

    pthread_mutex_lock(&p->lock);
    log_start = p->log_start;
    for (size_t i = p->lc_up; i < p->lc_n; i++)
        total += p->lc[p->lc_head + i]->len;
    pthread_mutex_unlock(&p->lock);
    it = stratus_index_iter_new(p->s->idx);
    klen = stratus_index_key_range(key, p->stream_id, log_start);
    for (stratus_index_iter_seek(it, key, klen); stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl), *v = stratus_index_iter_value(it, &vl);
        struct stratus_index_range r;
        if (stratus_index_range_decode(k, kl, v, vl, &r) == 0)
            total += r.length;
    }
    rc = stratus_index_iter_status(it, eb);
    stratus_index_iter_free(it);
    *bytes = total;
    return rc;
}

const char *stratus_stream_storage_name(struct stratus_stream *s)
{
    return stratus_storage_name(s->st);
}
