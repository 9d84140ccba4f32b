/* topic.c - the topic catalog and topic configs: the "topics" section of stream.h.
 *
 * Owns the in-memory catalog (s->topics, sorted by name, under s->cat_lock) and its persisted
 * form, one 'T' record per topic in the index (layout at the top of core/index/index.c).
 * Catalog writers (create, delete, create_partitions, alter) run on worker threads and are
 * serialized by s->cat_write; they persist first (synced), then swap the memory under the
 * write lock, so readers on network threads wait only for the swap.
 *
 * Topic configs: the table below lists every config Stratus accepts, with Kafka's type and
 * default. Honoured ones change behaviour; the others are accepted, validated and reported
 * (so tools that set them keep working) but have no effect, because the storage engine has no
 * segments, replicas or local log files. Values are stored and reported exactly as set.
 *
 * Cluster mode (conf.cluster): the metastore owns the catalog. create / delete /
 * create_partitions / alter refuse (the API layer validates with stratus_stream_validate_topic
 * and writes the metastore); the node agent mirrors the metastore here with
 * stratus_stream_install_topic / uninstall_topic, which persist the same 'T' record (global
 * stream ids) so that a restart knows the streams before the agent catches up.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "proto/kerr.h"
#include "stream_int.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

/* ---- the config table ---- */

enum cfg_kind { K_LONG, K_INT, K_BOOL, K_DOUBLE, K_TSTYPE, K_CLEANUP, K_COMPRESSION };

struct cfgdef {
    const char *name;
    const char *def;
    int type; /* enum stratus_config_type */
    int kind;
    int64_t min, max;
    const char *doc;
};

#define NOEFFECT " Accepted for compatibility; has no effect in Stratus."
#define LMAX INT64_MAX
#define IMAX INT32_MAX

static const struct cfgdef cfgdefs[] = {
    {"cleanup.policy", "delete", STRATUS_CONFIG_T_LIST, K_CLEANUP, 0, 0,
     "Retention policy of old data: only \"delete\" (compaction is not supported yet)."},
    {"compression.type", "producer", STRATUS_CONFIG_T_STRING, K_COMPRESSION, 0, 0,
     "Batches are stored as the producer compressed them; only \"producer\" is accepted."},
    {"delete.retention.ms", "86400000", STRATUS_CONFIG_T_LONG, K_LONG, 0, LMAX,
     "Tombstone retention of compacted topics." NOEFFECT},
    {"file.delete.delay.ms", "60000", STRATUS_CONFIG_T_LONG, K_LONG, 0, LMAX,
     "Delay before deleting a local file." NOEFFECT},
    {"flush.messages", "9223372036854775807", STRATUS_CONFIG_T_LONG, K_LONG, 1, LMAX,
     "Messages between fsyncs; every acknowledged write is already durable in the WAL."
     NOEFFECT},
    {"flush.ms", "9223372036854775807", STRATUS_CONFIG_T_LONG, K_LONG, 0, LMAX,
     "Time between fsyncs; every acknowledged write is already durable in the WAL." NOEFFECT},
    {"index.interval.bytes", "4096", STRATUS_CONFIG_T_INT, K_INT, 0, IMAX,
     "Offset index granularity of local segments." NOEFFECT},
    {"local.retention.bytes", "-2", STRATUS_CONFIG_T_LONG, K_LONG, -2, LMAX,
     "Tiered-storage local retention; all data is in object storage." NOEFFECT},
    {"local.retention.ms", "-2", STRATUS_CONFIG_T_LONG, K_LONG, -2, LMAX,
     "Tiered-storage local retention; all data is in object storage." NOEFFECT},
    {"max.compaction.lag.ms", "9223372036854775807", STRATUS_CONFIG_T_LONG, K_LONG, 1, LMAX,
     "Compaction lag." NOEFFECT},
    {"max.message.bytes", "16777216", STRATUS_CONFIG_T_INT, K_INT, 0, IMAX,
     "Largest record batch accepted, in bytes (MESSAGE_TOO_LARGE above it). Stratus's default "
     "is 16 MiB, larger than Kafka's 1 MiB."},
    {"message.downconversion.enable", "true", STRATUS_CONFIG_T_BOOLEAN, K_BOOL, 0, 0,
     "Down-conversion for old consumers." NOEFFECT},
    {"message.timestamp.difference.max.ms", "9223372036854775807", STRATUS_CONFIG_T_LONG, K_LONG,
     0, LMAX, "Allowed skew of CreateTime timestamps." NOEFFECT},
    {"message.timestamp.type", "CreateTime", STRATUS_CONFIG_T_STRING, K_TSTYPE, 0, 0,
     "CreateTime keeps the producer's timestamps; LogAppendTime stamps each batch with the "
     "broker's clock when it is appended."},
    {"min.cleanable.dirty.ratio", "0.5", STRATUS_CONFIG_T_DOUBLE, K_DOUBLE, 0, 1,
     "Compaction trigger." NOEFFECT},
    {"min.compaction.lag.ms", "0", STRATUS_CONFIG_T_LONG, K_LONG, 0, LMAX,
     "Compaction lag." NOEFFECT},
    {"min.insync.replicas", "1", STRATUS_CONFIG_T_INT, K_INT, 1, IMAX,
     "Durability comes from the WAL and object storage, not replicas." NOEFFECT},
    {"preallocate", "false", STRATUS_CONFIG_T_BOOLEAN, K_BOOL, 0, 0,
     "Preallocation of local segment files." NOEFFECT},
    {"remote.storage.enable", "false", STRATUS_CONFIG_T_BOOLEAN, K_BOOL, 0, 0,
     "Tiered storage; all data is in object storage already." NOEFFECT},
    {"retention.bytes", "-1", STRATUS_CONFIG_T_LONG, K_LONG, -1, LMAX,
     "Largest size of a partition before its oldest uploaded ranges are deleted; -1 = no "
     "limit."},
    {"retention.ms", "604800000", STRATUS_CONFIG_T_LONG, K_LONG, -1, LMAX,
     "Age (by the largest timestamp of a range) after which data is deleted; -1 = forever."},
    {"segment.bytes", "1073741824", STRATUS_CONFIG_T_INT, K_INT, 14, IMAX,
     "Local segment size; data is packed into objects by the uploader instead." NOEFFECT},
    {"segment.index.bytes", "10485760", STRATUS_CONFIG_T_INT, K_INT, 4, IMAX,
     "Local index size." NOEFFECT},
    {"segment.ms", "604800000", STRATUS_CONFIG_T_LONG, K_LONG, 1, LMAX,
     "Local segment roll time." NOEFFECT},
    {"unclean.leader.election.enable", "false", STRATUS_CONFIG_T_BOOLEAN, K_BOOL, 0, 0,
     "Replica election; there are no replicas to elect." NOEFFECT},
};
#define NCFG (sizeof cfgdefs / sizeof cfgdefs[0])

static const struct cfgdef *cfg_find(const char *name)
{
    for (size_t i = 0; i < NCFG; i++)
        if (strcmp(cfgdefs[i].name, name) == 0)
            return &cfgdefs[i];
    return NULL;
}

static int parse_i64(const char *v, int64_t *out)
{
    char *end;
    long long x;

    if (!*v)
        return -1;
    errno = 0;
    x = strtoll(v, &end, 10);
    if (errno || *end)
        return -1;
    *out = x;
    return 0;
}

/* Validates value for d; returns KAFKA_ERR_NONE or INVALID_CONFIG with msg. */
static int16_t cfg_validate(const struct cfgdef *d, const char *v, char *msg, size_t cap)
{
    int64_t x;

    switch (d->kind) {
    case K_LONG:
    case K_INT:
        if (parse_i64(v, &x) != 0 || x < d->min || x > d->max) {
            snprintf(msg, cap, "Invalid value %s for configuration %s: must be an integer in "
                     "[%lld, %lld]", v, d->name, (long long)d->min, (long long)d->max);
            return KAFKA_ERR_INVALID_CONFIG;
        }
        return KAFKA_ERR_NONE;
    case K_BOOL:
        if (strcasecmp(v, "true") != 0 && strcasecmp(v, "false") != 0) {
            snprintf(msg, cap, "Invalid value %s for configuration %s: expected true or false",
                     v, d->name);
            return KAFKA_ERR_INVALID_CONFIG;
        }
        return KAFKA_ERR_NONE;
    case K_DOUBLE: {
        char *end;
        double f;
        errno = 0;
        f = strtod(v, &end);
        if (!*v || errno || *end || !(f >= (double)d->min && f <= (double)d->max)) {
            snprintf(msg, cap, "Invalid value %s for configuration %s: must be a number in "
                     "[%lld, %lld]", v, d->name, (long long)d->min, (long long)d->max);
            return KAFKA_ERR_INVALID_CONFIG;
        }
        return KAFKA_ERR_NONE;
    }
    case K_TSTYPE:
        if (strcmp(v, "CreateTime") != 0 && strcmp(v, "LogAppendTime") != 0) {
            snprintf(msg, cap, "Invalid value %s for configuration %s: expected CreateTime or "
                     "LogAppendTime", v, d->name);
            return KAFKA_ERR_INVALID_CONFIG;
        }
        return KAFKA_ERR_NONE;
    case K_CLEANUP:
        if (strstr(v, "compact")) {
            snprintf(msg, cap, "cleanup.policy=compact is not supported yet");
            return KAFKA_ERR_INVALID_CONFIG;
        }
        if (strcmp(v, "delete") != 0) {
            snprintf(msg, cap, "Invalid value %s for configuration cleanup.policy: expected "
                     "delete", v);
            return KAFKA_ERR_INVALID_CONFIG;
        }
        return KAFKA_ERR_NONE;
    case K_COMPRESSION:
        if (strcmp(v, "producer") != 0) {
            snprintf(msg, cap, "Invalid value %s for configuration compression.type: only "
                     "producer is supported (batches are stored as produced)", v);
            return KAFKA_ERR_INVALID_CONFIG;
        }
        return KAFKA_ERR_NONE;
    }
    return KAFKA_ERR_INVALID_CONFIG;
}

static const char *topic_cfg_get(const struct stratus_topic *t, const char *name)
{
    for (size_t i = 0; i < t->ncfg; i++)
        if (strcmp(t->cfg[i].name, name) == 0)
            return t->cfg[i].value;
    return cfg_find(name)->def;
}

static int64_t cfg_long(const struct stratus_topic *t, const char *name)
{
    int64_t x = 0;
    if (parse_i64(topic_cfg_get(t, name), &x) != 0)
        parse_i64(cfg_find(name)->def, &x);
    return x;
}

/* Copies the honoured configs of t into its partitions. Caller holds cat_lock (any mode). */
static void topic_apply(struct stratus_topic *t)
{
    int64_t rms = cfg_long(t, "retention.ms"), rbytes = cfg_long(t, "retention.bytes");
    int64_t mmb = cfg_long(t, "max.message.bytes");
    int lat = strcmp(topic_cfg_get(t, "message.timestamp.type"), "LogAppendTime") == 0;

    for (int32_t i = 0; i < t->nparts; i++) {
        struct stratus_partition *p = t->parts[i];
        pthread_mutex_lock(&p->lock);
        p->retention_ms = rms;
        p->retention_bytes = rbytes;
        p->max_message_bytes = mmb;
        p->log_append_time = lat;
        pthread_mutex_unlock(&p->lock);
    }
}

static void cfg_free(struct stratus_topic_cfg *cfg, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(cfg[i].name);
        free(cfg[i].value);
    }
    free(cfg);
}

static void topic_free(struct stratus_topic *t)
{
    if (!t)
        return;
    for (int32_t i = 0; i < t->nparts; i++)
        if (t->parts[i])
            stratus_partition_release(t->parts[i]);
    free(t->parts);
    cfg_free(t->cfg, t->ncfg);
    free(t);
}

/* ---- persisted form ---- */

static uint8_t *topic_encode(const struct stratus_topic *t, size_t *len)
{
    size_t n = 1 + 16 + 4 + (size_t)t->nparts * 12 + 4, off = 0;
    uint8_t *b;

    for (size_t i = 0; i < t->ncfg; i++)
        n += 6 + strlen(t->cfg[i].name) + strlen(t->cfg[i].value);
    b = xmalloc(n);
    b[off++] = 1;
    memcpy(b + off, t->id, 16);
    off += 16;
    stratus_be32_put(b + off, (uint32_t)t->nparts);
    off += 4;
    for (int32_t i = 0; i < t->nparts; i++) {
        stratus_be64_put(b + off, t->parts[i]->stream_id);
        stratus_be32_put(b + off + 8, (uint32_t)t->parts[i]->leader_epoch);
        off += 12;
    }
    stratus_be32_put(b + off, (uint32_t)t->ncfg);
    off += 4;
    for (size_t i = 0; i < t->ncfg; i++) {
        size_t nl = strlen(t->cfg[i].name), vl = strlen(t->cfg[i].value);
        stratus_be16_put(b + off, (uint16_t)nl);
        memcpy(b + off + 2, t->cfg[i].name, nl);
        off += 2 + nl;
        stratus_be32_put(b + off, (uint32_t)vl);
        memcpy(b + off + 4, t->cfg[i].value, vl);
        off += 4 + vl;
    }
    *len = off;
    return b;
}

/* Decodes a topic record; partitions are created with their stream ids and epochs + bump. */
static int topic_decode(struct stratus_stream *s, const char *name, const uint8_t *v, size_t len,
                        int32_t bump, struct stratus_topic **out)
{
    struct stratus_topic *t = xcalloc(1, sizeof *t);
    size_t off = 0;
    uint32_t np, nc;

    snprintf(t->name, sizeof t->name, "%s", name);
    if (len < 25 || v[0] != 1)
        goto bad;
    memcpy(t->id, v + 1, 16);
    np = stratus_be32_get(v + 17);
    off = 21;
    if (np == 0 || np > 1000000 || (len - off) / 12 < np)
        goto bad;
    t->parts = xcalloc(np, sizeof *t->parts);
    for (uint32_t i = 0; i < np; i++) {
        uint64_t sid = stratus_be64_get(v + off);
        int32_t ep = (int32_t)stratus_be32_get(v + off + 8);
        t->parts[i] = stratus_partition_new(s, t->name, (int32_t)i, sid, ep + bump);
        t->nparts = (int32_t)i + 1;
        off += 12;
    }
    if (len - off < 4)
        goto bad;
    nc = stratus_be32_get(v + off);
    off += 4;
    if (nc > NCFG)
        goto bad;
    t->cfg = xcalloc(nc ? nc : 1, sizeof *t->cfg);
    for (uint32_t i = 0; i < nc; i++) {
        size_t nl, vl;
        if (len - off < 2)
            goto bad;
        nl = stratus_be16_get(v + off);
        off += 2;
        if (len - off < nl + 4)
            goto bad;
        t->cfg[i].name = xstrndup((const char *)v + off, nl);
        off += nl;
        vl = stratus_be32_get(v + off);
        off += 4;
        if (len - off < vl) {
            free(t->cfg[i].name);
            goto bad;
        }
        t->cfg[i].value = xstrndup((const char *)v + off, vl);
        off += vl;
        t->ncfg = i + 1;
    }
    *out = t;
    return 0;
bad:
    topic_free(t);
    return STRATUS_ECORRUPT;
}

static int topic_persist(struct stratus_stream *s, const struct stratus_topic *t,
                         struct stratus_errbuf *eb)
{
    uint8_t key[STRATUS_IDX_KEY_MAX];
    size_t klen = stratus_index_key_topic(key, t->name), vlen;
    uint8_t *v = topic_encode(t, &vlen);
    int rc = stratus_index_put(s->idx, key, klen, v, vlen, 1, eb);
    free(v);
    return rc;
}

/* ---- catalog in memory ---- */

/* Index of name in s->topics, or -(insertion point) - 1. Caller holds cat_lock. */
static long topic_search(struct stratus_stream *s, const char *name)
{
    size_t lo = 0, hi = s->ntopics;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->topics[mid]->name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

static void topic_insert(struct stratus_stream *s, struct stratus_topic *t)
{
    long at = topic_search(s, t->name);
    size_t pos = (size_t)(-at - 1);

    if (at >= 0)
        return;
    if (s->ntopics == s->tcap) {
        s->tcap = s->tcap ? s->tcap * 2 : 16;
        s->topics = xrealloc(s->topics, s->tcap * sizeof *s->topics);
    }
    memmove(s->topics + pos + 1, s->topics + pos, (s->ntopics - pos) * sizeof *s->topics);
    s->topics[pos] = t;
    s->ntopics++;
}

static void fill_info(const struct stratus_topic *t, struct stratus_topic_info *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", t->name);
    memcpy(out->id, t->id, 16);
    out->partitions = t->nparts;
}

int stratus_topic_load_all(struct stratus_stream *s, struct stratus_errbuf *eb)
{
    struct stratus_index_iter *it = stratus_index_iter_new(s->idx);
    struct stratus_index_batch *b = stratus_index_batch_new();
    uint8_t prefix = STRATUS_IDX_TOPIC;
    int rc = 0;

    for (stratus_index_iter_seek(it, &prefix, 1); stratus_index_iter_has_prefix(it, &prefix, 1);
         stratus_index_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = stratus_index_iter_key(it, &klen);
        const uint8_t *v = stratus_index_iter_value(it, &vlen);
        char name[STRATUS_TOPIC_NAME_MAX + 1];
        struct stratus_topic *t = NULL;

        if (klen < 2 || klen - 1 > STRATUS_TOPIC_NAME_MAX) {
            LOG_WARN("stream", "skipping a malformed topic key in the index");
            continue;
        }
        memcpy(name, k + 1, klen - 1);
        name[klen - 1] = 0;
        if (topic_decode(s, name, v, vlen, 1, &t) != 0) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "index: topic record of %s is corrupt", name);
            goto out;
        }
        for (int32_t i = 0; i < t->nparts; i++) {
            rc = stratus_partition_load_offsets(t->parts[i], eb);
            if (rc) {
                topic_free(t);
                goto out;
            }
        }
        topic_apply(t);
        topic_insert(s, t);
        { /* persist the bumped leader epochs */
            size_t el;
            uint8_t *ev = topic_encode(t, &el);
            stratus_index_batch_put(b, k, klen, ev, el);
            free(ev);
        }
    }
    rc = stratus_index_iter_status(it, eb);
    if (rc == 0 && stratus_index_batch_count(b) > 0)
        rc = stratus_index_batch_write(s->idx, b, 1, eb);
out:
    stratus_index_batch_free(b);
    stratus_index_iter_free(it);
    return rc;
}

void stratus_topic_free_all(struct stratus_stream *s)
{
    for (size_t i = 0; i < s->ntopics; i++)
        topic_free(s->topics[i]);
    free(s->topics);
    s->topics = NULL;
    s->ntopics = s->tcap = 0;
}

struct stratus_partition **stratus_topic_all_partitions(struct stratus_stream *s, size_t *n)
{
    struct stratus_partition **v = NULL;
    size_t cnt = 0;

    pthread_rwlock_rdlock(&s->cat_lock);
    for (size_t i = 0; i < s->ntopics; i++)
        cnt += (size_t)s->topics[i]->nparts;
    v = xcalloc(cnt ? cnt : 1, sizeof *v);
    cnt = 0;
    for (size_t i = 0; i < s->ntopics; i++)
        for (int32_t j = 0; j < s->topics[i]->nparts; j++) {
            stratus_partition_ref(s->topics[i]->parts[j]);
            v[cnt++] = s->topics[i]->parts[j];
        }
    pthread_rwlock_unlock(&s->cat_lock);
    *n = cnt;
    return v;
}

/* ---- stream.h: lookups ---- */

int stratus_stream_list_topics(struct stratus_stream *s, struct stratus_topic_info **out,
                               size_t *n)
{
    pthread_rwlock_rdlock(&s->cat_lock);
    *out = xcalloc(s->ntopics ? s->ntopics : 1, sizeof **out);
    for (size_t i = 0; i < s->ntopics; i++)
        fill_info(s->topics[i], &(*out)[i]);
    *n = s->ntopics;
    pthread_rwlock_unlock(&s->cat_lock);
    return 0;
}

int stratus_stream_find_topic(struct stratus_stream *s, const char *name,
                              struct stratus_topic_info *out)
{
    long at;
    int rc = STRATUS_ENOTFOUND;

    pthread_rwlock_rdlock(&s->cat_lock);
    at = topic_search(s, name);
    if (at >= 0) {
        fill_info(s->topics[at], out);
        rc = 0;
    }
    pthread_rwlock_unlock(&s->cat_lock);
    return rc;
}

int stratus_stream_find_topic_id(struct stratus_stream *s, const uint8_t id[16],
                                 struct stratus_topic_info *out)
{
    int rc = STRATUS_ENOTFOUND;

    pthread_rwlock_rdlock(&s->cat_lock);
    for (size_t i = 0; i < s->ntopics; i++)
        if (memcmp(s->topics[i]->id, id, 16) == 0) {
            fill_info(s->topics[i], out);
            rc = 0;
            break;
        }
    pthread_rwlock_unlock(&s->cat_lock);
    return rc;
}

struct stratus_partition *stratus_stream_partition(struct stratus_stream *s, const char *topic,
                                                   int32_t partition)
{
    struct stratus_partition *p = NULL;
    long at;

    pthread_rwlock_rdlock(&s->cat_lock);
    at = topic_search(s, topic);
    if (at >= 0 && partition >= 0 && partition < s->topics[at]->nparts) {
        p = s->topics[at]->parts[partition];
        stratus_partition_ref(p);
    }
    pthread_rwlock_unlock(&s->cat_lock);
    return p;
}

/* ---- validation ---- */

static int16_t validate_name(const char *name, char *msg, size_t cap)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > STRATUS_TOPIC_NAME_MAX) {
        snprintf(msg, cap, "Topic name must be 1 to %d characters long", STRATUS_TOPIC_NAME_MAX);
        return KAFKA_ERR_INVALID_TOPIC_EXCEPTION;
    }
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        snprintf(msg, cap, "Topic name cannot be \".\" or \"..\"");
        return KAFKA_ERR_INVALID_TOPIC_EXCEPTION;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            snprintf(msg, cap, "Topic name \"%.200s\" is illegal, it contains a character other "
                     "than ASCII alphanumerics, '.', '_' and '-'", name);
            return KAFKA_ERR_INVALID_TOPIC_EXCEPTION;
        }
    }
    return KAFKA_ERR_NONE;
}

/* Builds a new config list: base (may be NULL) with changes applied. value NULL resets. */
static int16_t cfg_merge(const struct stratus_topic_cfg *base, size_t nbase,
                         const struct stratus_kv *kv, size_t n, struct stratus_topic_cfg **out,
                         size_t *nout, char *msg, size_t cap)
{
    struct stratus_topic_cfg *cfg = xcalloc(NCFG, sizeof *cfg);
    const char *vals[NCFG];
    size_t m = 0;

    for (size_t i = 0; i < NCFG; i++)
        vals[i] = NULL;
    for (size_t i = 0; i < nbase; i++) {
        const struct cfgdef *d = cfg_find(base[i].name);
        if (d)
            vals[d - cfgdefs] = base[i].value;
    }
    for (size_t i = 0; i < n; i++) {
        const struct cfgdef *d = kv[i].name ? cfg_find(kv[i].name) : NULL;
        int16_t e;
        if (!d) {
            snprintf(msg, cap, "Unknown topic config name: %.100s",
                     kv[i].name ? kv[i].name : "(null)");
            goto bad;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(kv[j].name, kv[i].name) == 0) {
                snprintf(msg, cap, "Config %s is given more than once", d->name);
                goto bad;
            }
        if (kv[i].value) {
            e = cfg_validate(d, kv[i].value, msg, cap);
            if (e != KAFKA_ERR_NONE) {
                free(cfg);
                return e;
            }
        }
        vals[d - cfgdefs] = kv[i].value;
    }
    for (size_t i = 0; i < NCFG; i++)
        if (vals[i]) {
            cfg[m].name = xstrdup(cfgdefs[i].name);
            cfg[m].value = xstrdup(vals[i]);
            m++;
        }
    *out = cfg;
    *nout = m;
    return KAFKA_ERR_NONE;
bad:
    free(cfg);
    return KAFKA_ERR_INVALID_CONFIG;
}

static void random_uuid(uint8_t id[16])
{
    ssize_t got = getrandom(id, 16, 0);

    if (got != 16) { /* practically never: mix clocks so that ids still differ */
        struct timespec ts;
        uint64_t a, b;
        clock_gettime(CLOCK_REALTIME, &ts);
        a = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)stratus_mono_us();
        b = (uint64_t)ts.tv_sec * 0xbf58476d1ce4e5b9ull ^ (uint64_t)(uintptr_t)id;
        memcpy(id, &a, 8);
        memcpy(id + 8, &b, 8);
    }
    id[6] = (uint8_t)((id[6] & 0x0f) | 0x40); /* version 4 */
    id[8] = (uint8_t)((id[8] & 0x3f) | 0x80); /* variant 10 */
}

/* ---- stream.h: catalog writers ---- */

/* The start of every catalog writer below: clears msg, then refuses in cluster mode (the
 * catalog comes from the metastore only). */
static int16_t refuse_in_cluster(struct stratus_stream *s, const char *what, char *msg,
                                 size_t msgcap)
{
    msg[0] = 0;
    if (!STRATUS_CLUSTER(s))
        return KAFKA_ERR_NONE;
    snprintf(msg, msgcap, "%s: in cluster mode topics are changed through the metastore, not "
             "the local engine", what);
    return KAFKA_ERR_INVALID_REQUEST;
}

#define MAX_PARTITIONS 100000

int16_t stratus_stream_create_topic(struct stratus_stream *s, const char *name,
                                    int32_t partitions, const struct stratus_kv *configs,
                                    size_t nconfigs, int validate_only, uint8_t id_out[16],
                                    char *msg, size_t msgcap)
{
    struct stratus_topic *t = NULL;
    struct stratus_topic_cfg *cfg = NULL;
    struct stratus_errbuf eb = {{0}};
    size_t ncfg = 0;
    uint64_t first_sid = 0;
    int16_t e;
    int rc;

    e = refuse_in_cluster(s, "CreateTopics", msg, msgcap);
    if (e != KAFKA_ERR_NONE)
        return e;
    e = validate_name(name, msg, msgcap);
    if (e != KAFKA_ERR_NONE)
        return e;
    if (partitions == -1)
        partitions = s->conf.default_partitions > 0 ? s->conf.default_partitions : 1;
    if (partitions < 1 || partitions > MAX_PARTITIONS) {
        snprintf(msg, msgcap, "Number of partitions must be between 1 and %d", MAX_PARTITIONS);
        return KAFKA_ERR_INVALID_PARTITIONS;
    }
    e = cfg_merge(NULL, 0, configs, nconfigs, &cfg, &ncfg, msg, msgcap);
    if (e != KAFKA_ERR_NONE)
        return e;

    pthread_mutex_lock(&s->cat_write);
    pthread_rwlock_rdlock(&s->cat_lock);
    long at = topic_search(s, name);
    pthread_rwlock_unlock(&s->cat_lock);
    if (at >= 0) {
        snprintf(msg, msgcap, "Topic '%s' already exists.", name);
        e = KAFKA_ERR_TOPIC_ALREADY_EXISTS;
        goto out;
    }
    if (validate_only) {
        e = KAFKA_ERR_NONE;
        goto out;
    }
    rc = stratus_index_counter_next(s->idx, "stream", (uint64_t)partitions, &first_sid, &eb);
    if (rc) {
        snprintf(msg, msgcap, "%s", eb.msg);
        e = KAFKA_ERR_KAFKA_STORAGE_ERROR;
        goto out;
    }
    t = xcalloc(1, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    random_uuid(t->id);
    t->parts = xcalloc((size_t)partitions, sizeof *t->parts);
    for (int32_t i = 0; i < partitions; i++) {
        t->parts[i] = stratus_partition_new(s, t->name, i, first_sid + (uint64_t)i, 0);
        t->nparts = i + 1;
    }
    t->cfg = cfg;
    t->ncfg = ncfg;
    cfg = NULL;
    topic_apply(t);
    rc = topic_persist(s, t, &eb);
    if (rc) {
        snprintf(msg, msgcap, "%s", eb.msg);
        e = KAFKA_ERR_KAFKA_STORAGE_ERROR;
        goto out;
    }
    pthread_rwlock_wrlock(&s->cat_lock);
    topic_insert(s, t);
    pthread_rwlock_unlock(&s->cat_lock);
    if (id_out)
        memcpy(id_out, t->id, 16);
    LOG_INFO("stream", "created topic name=%s partitions=%d", name, partitions);
    t = NULL;
    e = KAFKA_ERR_NONE;
out:
    pthread_mutex_unlock(&s->cat_write);
    topic_free(t);
    if (cfg)
        cfg_free(cfg, ncfg);
    return e;
}

/* The topic called name, for a change by the caller (who holds cat_write, so it stays in the
 * catalog); NULL with "does not exist" in msg when there is none. */
static struct stratus_topic *topic_for_change(struct stratus_stream *s, const char *name,
                                              char *msg, size_t msgcap)
{
    struct stratus_topic *t;
    long at;

    pthread_rwlock_rdlock(&s->cat_lock);
    at = topic_search(s, name);
    t = at >= 0 ? s->topics[at] : NULL;
    pthread_rwlock_unlock(&s->cat_lock);
    if (!t)
        snprintf(msg, msgcap, "Topic '%.200s' does not exist", name);
    return t;
}

/* Removes topic name: its 'T' record goes and its streams get 'D' records (one synced batch),
 * then it leaves the catalog and its partitions are marked deleted. Caller holds cat_write. */
static int16_t topic_remove(struct stratus_stream *s, const char *name, char *msg,
                            size_t msgcap)
{
    struct stratus_topic *t;
    struct stratus_index_batch *b = NULL;
    struct stratus_errbuf eb = {{0}};
    uint8_t key[STRATUS_IDX_KEY_MAX];
    size_t klen;
    int16_t e = KAFKA_ERR_NONE;
    long at;

    t = topic_for_change(s, name, msg, msgcap);
    if (!t) {
        e = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        goto out;
    }
    /* One synced batch: the topic record goes, its streams become garbage for retention. */
    b = stratus_index_batch_new();
    klen = stratus_index_key_topic(key, t->name);
    stratus_index_batch_delete(b, key, klen);
    for (int32_t i = 0; i < t->nparts; i++) {
        klen = stratus_index_key_delstream(key, t->parts[i]->stream_id);
        stratus_index_batch_put(b, key, klen, "", 0);
    }
    pthread_mutex_lock(&s->meta_lock);
    int rc = stratus_index_batch_write(s->idx, b, 1, &eb);
    pthread_mutex_unlock(&s->meta_lock);
    if (rc) {
        snprintf(msg, msgcap, "%s", eb.msg);
        e = KAFKA_ERR_KAFKA_STORAGE_ERROR;
        goto out;
    }
    pthread_rwlock_wrlock(&s->cat_lock);
    at = topic_search(s, name);
    memmove(s->topics + at, s->topics + at + 1, (s->ntopics - (size_t)at - 1) * sizeof *s->topics);
    s->ntopics--;
    pthread_rwlock_unlock(&s->cat_lock);
    for (int32_t i = 0; i < t->nparts; i++)
        stratus_partition_mark_deleted(t->parts[i]);
    LOG_INFO("stream", "deleted topic name=%s", name);
    topic_free(t);
out:
    stratus_index_batch_free(b);
    return e;
}

int16_t stratus_stream_delete_topic(struct stratus_stream *s, const char *name, char *msg,
                                    size_t msgcap)
{
    int16_t e;

    e = refuse_in_cluster(s, "DeleteTopics", msg, msgcap);
    if (e != KAFKA_ERR_NONE)
        return e;
    pthread_mutex_lock(&s->cat_write);
    e = topic_remove(s, name, msg, msgcap);
    pthread_mutex_unlock(&s->cat_write);
    return e;
}

int16_t stratus_stream_create_partitions(struct stratus_stream *s, const char *name,
                                         int32_t new_total, int validate_only, char *msg,
                                         size_t msgcap)
{
    struct stratus_topic *t, tmp;
    struct stratus_partition **parts = NULL;
    struct stratus_errbuf eb = {{0}};
    uint64_t first_sid = 0;
    int32_t old;
    int16_t e = KAFKA_ERR_NONE;

    e = refuse_in_cluster(s, "CreatePartitions", msg, msgcap);
    if (e != KAFKA_ERR_NONE)
        return e;
    pthread_mutex_lock(&s->cat_write);
    t = topic_for_change(s, name, msg, msgcap);
    if (!t) {
        e = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        goto out;
    }
    old = t->nparts;
    if (new_total <= old || new_total > MAX_PARTITIONS) {
        snprintf(msg, msgcap, "Topic currently has %d partitions, %d would not be an increase "
                 "(at most %d).", old, new_total, MAX_PARTITIONS);
        e = KAFKA_ERR_INVALID_PARTITIONS;
        goto out;
    }
    if (validate_only)
        goto out;
    if (stratus_index_counter_next(s->idx, "stream", (uint64_t)(new_total - old), &first_sid,
                                   &eb) != 0) {
        snprintf(msg, msgcap, "%s", eb.msg);
        e = KAFKA_ERR_KAFKA_STORAGE_ERROR;
        goto out;
    }
    parts = xcalloc((size_t)new_total, sizeof *parts);
    memcpy(parts, t->parts, (size_t)old * sizeof *parts);
    for (int32_t i = old; i < new_total; i++)
        parts[i] = stratus_partition_new(s, t->name, i, first_sid + (uint64_t)(i - old), 0);
    tmp = *t;
    tmp.parts = parts;
    tmp.nparts = new_total;
    if (topic_persist(s, &tmp, &eb) != 0) {
        for (int32_t i = old; i < new_total; i++)
            stratus_partition_release(parts[i]);
        free(parts);
        snprintf(msg, msgcap, "%s", eb.msg);
        e = KAFKA_ERR_KAFKA_STORAGE_ERROR;
        goto out;
    }
    pthread_rwlock_wrlock(&s->cat_lock);
    free(t->parts);
    t->parts = parts;
    t->nparts = new_total;
    topic_apply(t);
    pthread_rwlock_unlock(&s->cat_lock);
    LOG_INFO("stream", "topic name=%s partitions=%d (was %d)", name, new_total, old);
out:
    pthread_mutex_unlock(&s->cat_write);
    return e;
}

int16_t stratus_stream_describe_topic_configs(struct stratus_stream *s, const char *name,
                                              struct stratus_config_entry **out, size_t *n)
{
    struct stratus_config_entry *v;
    long at;

    pthread_rwlock_rdlock(&s->cat_lock);
    at = topic_search(s, name);
    if (at < 0) {
        pthread_rwlock_unlock(&s->cat_lock);
        return KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    v = xcalloc(NCFG, sizeof *v);
    for (size_t i = 0; i < NCFG; i++) {
        const struct stratus_topic *t = s->topics[at];
        const char *set = NULL;
        for (size_t j = 0; j < t->ncfg; j++)
            if (strcmp(t->cfg[j].name, cfgdefs[i].name) == 0)
                set = t->cfg[j].value;
        snprintf(v[i].name, sizeof v[i].name, "%s", cfgdefs[i].name);
        snprintf(v[i].value, sizeof v[i].value, "%s", set ? set : cfgdefs[i].def);
        v[i].source = set ? STRATUS_CONFIG_SRC_DYNAMIC_TOPIC : STRATUS_CONFIG_SRC_DEFAULT;
        v[i].is_default = set == NULL;
        v[i].read_only = 0;
        v[i].sensitive = 0;
        v[i].type = cfgdefs[i].type;
        v[i].doc = cfgdefs[i].doc;
    }
    pthread_rwlock_unlock(&s->cat_lock);
    *out = v;
    *n = NCFG;
    return KAFKA_ERR_NONE;
}

int16_t stratus_stream_alter_topic_configs(struct stratus_stream *s, const char *name,
                                           const struct stratus_kv *configs, size_t n,
                                           int incremental, int validate_only, char *msg,
                                           size_t msgcap)
{
    struct stratus_topic *t, tmp;
    struct stratus_topic_cfg *cfg = NULL, *old_cfg;
    struct stratus_errbuf eb = {{0}};
    size_t ncfg = 0, old_n;
    int16_t e;

    e = refuse_in_cluster(s, "AlterConfigs", msg, msgcap);
    if (e != KAFKA_ERR_NONE)
        return e;
    pthread_mutex_lock(&s->cat_write);
    t = topic_for_change(s, name, msg, msgcap);
    if (!t) {
        e = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        goto out;
    }
    e = cfg_merge(incremental ? t->cfg : NULL, incremental ? t->ncfg : 0, configs, n, &cfg,
                  &ncfg, msg, msgcap);
    if (e != KAFKA_ERR_NONE || validate_only)
        goto out;
    tmp = *t;
    tmp.cfg = cfg;
    tmp.ncfg = ncfg;
    if (topic_persist(s, &tmp, &eb) != 0) {
        snprintf(msg, msgcap, "%s", eb.msg);
        e = KAFKA_ERR_KAFKA_STORAGE_ERROR;
        goto out;
    }
    pthread_rwlock_wrlock(&s->cat_lock);
    old_cfg = t->cfg;
    old_n = t->ncfg;
    t->cfg = cfg;
    t->ncfg = ncfg;
    cfg = old_cfg;
    ncfg = old_n;
    topic_apply(t);
    pthread_rwlock_unlock(&s->cat_lock);
    stratus_retention_wake(s);
out:
    pthread_mutex_unlock(&s->cat_write);
    if (cfg)
        cfg_free(cfg, ncfg);
    return e;
}

/* ---- stream.h: the catalog from the metastore (cluster mode) ---- */

int16_t stratus_stream_validate_topic(const char *name, int32_t partitions,
                                      const struct stratus_kv *configs, size_t nconfigs,
                                      char *msg, size_t msgcap)
{
    struct stratus_topic_cfg *cfg = NULL;
    size_t ncfg = 0;
    int16_t e;

    msg[0] = 0;
    e = validate_name(name, msg, msgcap);
    if (e != KAFKA_ERR_NONE)
        return e;
    if (partitions != -1 && (partitions < 1 || partitions > MAX_PARTITIONS)) {
        snprintf(msg, msgcap, "Number of partitions must be between 1 and %d", MAX_PARTITIONS);
        return KAFKA_ERR_INVALID_PARTITIONS;
    }
    e = cfg_merge(NULL, 0, configs, nconfigs, &cfg, &ncfg, msg, msgcap);
    if (e == KAFKA_ERR_NONE)
        cfg_free(cfg, ncfg);
    return e;
}

int stratus_stream_install_topic(struct stratus_stream *s, const char *name, const uint8_t id[16],
                                 int32_t partitions, const uint64_t *stream_ids,
                                 const struct stratus_kv *configs, size_t nconfigs,
                                 struct stratus_errbuf *eb)
{
    struct stratus_topic *t = NULL, *cur, tmp;
    struct stratus_topic_cfg *cfg = NULL;
    struct stratus_partition **parts = NULL;
    char msg[256] = "";
    size_t ncfg = 0;
    int32_t old = 0;
    int16_t e;
    int rc = 0;
    long at;

    if (!STRATUS_CLUSTER(s))
        return stratus_errf(eb, STRATUS_EINVAL, "install topic: only in cluster mode");
    e = validate_name(name, msg, sizeof msg);
    if (e != KAFKA_ERR_NONE)
        return stratus_errf(eb, STRATUS_EINVAL, "install topic: %s", msg);
    if (partitions < 1 || partitions > MAX_PARTITIONS || !stream_ids)
        return stratus_errf(eb, STRATUS_EINVAL, "install topic %s: %d partitions", name,
                            partitions);
    for (int32_t i = 0; i < partitions; i++)
        if (stream_ids[i] == 0)
            return stratus_errf(eb, STRATUS_EINVAL, "install topic %s: partition %d has no "
                                "stream id", name, i);
    e = cfg_merge(NULL, 0, configs, nconfigs, &cfg, &ncfg, msg, sizeof msg);
    if (e != KAFKA_ERR_NONE)
        return stratus_errf(eb, STRATUS_EINVAL, "install topic %s: %s", name, msg);

    pthread_mutex_lock(&s->cat_write);
    pthread_rwlock_rdlock(&s->cat_lock);
    at = topic_search(s, name);
    cur = at >= 0 ? s->topics[at] : NULL;
    pthread_rwlock_unlock(&s->cat_lock);
    if (cur && memcmp(cur->id, id, 16) != 0) {
        /* deleted and created again under the same name: the old one goes first */
        LOG_INFO("stream", "install topic name=%s: a new topic id replaces the old one", name);
        if (topic_remove(s, name, msg, sizeof msg) != KAFKA_ERR_NONE) {
            rc = stratus_errf(eb, STRATUS_EIO, "install topic %s: removing the old one: %s",
                              name, msg);
            goto out;
        }
        cur = NULL;
    }
    if (!cur) {
        t = xcalloc(1, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s", name);
        memcpy(t->id, id, 16);
        t->parts = xcalloc((size_t)partitions, sizeof *t->parts);
        for (int32_t i = 0; i < partitions; i++) { /* NONE until claimed */
            t->parts[i] = stratus_partition_new(s, t->name, i, stream_ids[i], 0);
            t->nparts = i + 1;
        }
        t->cfg = cfg;
        t->ncfg = ncfg;
        cfg = NULL;
        topic_apply(t);
        rc = topic_persist(s, t, eb);
        if (rc)
            goto out;
        pthread_rwlock_wrlock(&s->cat_lock);
        topic_insert(s, t);
        pthread_rwlock_unlock(&s->cat_lock);
        LOG_INFO("stream", "installed topic name=%s partitions=%d", name, partitions);
        t = NULL;
        goto out;
    }
    /* an update: partitions grow only, the existing ones keep their streams */
    old = cur->nparts;
    if (partitions < old) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "install topic %s: %d partitions, %d installed "
                          "(partitions only grow)", name, partitions, old);
        goto out;
    }
    for (int32_t i = 0; i < old; i++)
        if (cur->parts[i]->stream_id != stream_ids[i]) {
            rc = stratus_errf(eb, STRATUS_EINVAL, "install topic %s: partition %d has stream "
                              "%llu here, %llu in the metastore", name, i,
                              (unsigned long long)cur->parts[i]->stream_id,
                              (unsigned long long)stream_ids[i]);
            goto out;
        }
    parts = xcalloc((size_t)partitions, sizeof *parts);
    memcpy(parts, cur->parts, (size_t)old * sizeof *parts);
    for (int32_t i = old; i < partitions; i++)
        parts[i] = stratus_partition_new(s, cur->name, i, stream_ids[i], 0);
    tmp = *cur;
    tmp.parts = parts;
    tmp.nparts = partitions;
    tmp.cfg = cfg;
    tmp.ncfg = ncfg;
    rc = topic_persist(s, &tmp, eb);
    if (rc) {
        for (int32_t i = old; i < partitions; i++)
            stratus_partition_release(parts[i]);
        free(parts);
        goto out;
    }
    pthread_rwlock_wrlock(&s->cat_lock);
    free(cur->parts);
    cur->parts = parts;
    cur->nparts = partitions;
    tmp.cfg = cur->cfg; /* swapped: the old configs are freed below */
    tmp.ncfg = cur->ncfg;
    cur->cfg = cfg;
    cur->ncfg = ncfg;
    cfg = tmp.cfg;
    ncfg = tmp.ncfg;
    topic_apply(cur);
    pthread_rwlock_unlock(&s->cat_lock);
    if (partitions > old)
        LOG_INFO("stream", "installed topic name=%s partitions=%d (was %d)", name, partitions,
                 old);
    stratus_retention_wake(s);
out:
    pthread_mutex_unlock(&s->cat_write);
    topic_free(t);
    if (cfg)
        cfg_free(cfg, ncfg);
    return rc;
}

int stratus_stream_uninstall_topic(struct stratus_stream *s, const char *name,
                                   struct stratus_errbuf *eb)
{
    char msg[256] = "";
    int16_t e;

    if (!STRATUS_CLUSTER(s))
        return stratus_errf(eb, STRATUS_EINVAL, "uninstall topic: only in cluster mode");
    pthread_mutex_lock(&s->cat_write);
    e = topic_remove(s, name, msg, sizeof msg);
    pthread_mutex_unlock(&s->cat_write);
    if (e == KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION)
        return stratus_errf(eb, STRATUS_ENOTFOUND, "%s", msg);
    if (e != KAFKA_ERR_NONE)
        return stratus_errf(eb, STRATUS_EIO, "uninstall topic %s: %s", name, msg);
    return 0;
}
