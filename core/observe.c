/* observe.c - the [metrics] section, the collectors and readiness (see observe.h).
 *
 * Owns: one struct stratus_observe (parsed [metrics] keys, the HTTP listener, the collector
 * registration). The collector runs on the listener thread at each scrape and reads:
 * stratus_stream_get_stats (WAL, uploader, log cache, cold reads, retention),
 * stratus_net_get_stats, stratus_cache_get_stats, stratus_group_get_stats (a round trip to the
 * coordinator thread), the committed offsets ('G' keys of the index) against each partition's
 * high watermark for per-group lag, and /proc/self for process metrics. None of it runs on a
 * network thread.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "observe.h"

#include "api/api.h"
#include "conf/conf.h"
#include "group/group.h"
#include "index/index.h"
#include "metrics/http.h"
#include "metrics/metrics.h"
#include "net/net.h"
#include "plugin/plugin.h"
#include "stream/stream.h"
#include "util/alloc.h"
#include "util/log.h"

#include <dirent.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct metrics_conf {
    char *listen;
    int topic_labels;
    int64_t ready_wal_percent;
};

static const struct stratus_param metrics_params[] = {
    STRATUS_PARAM_STR("listen",
                      NULL,
                      0,
                      struct metrics_conf,
                      listen,
                      "HOST:PORT of the /metrics, /healthz, /readyz listener (unset = off)"),
    STRATUS_PARAM_BOOL("topic_labels",
                       "false",
                       0,
                       struct metrics_conf,
                       topic_labels,
                       "Label per-topic traffic counters by topic (one series per topic)"),
    STRATUS_PARAM_INT("ready_wal_percent",
                      "90",
                      0,
                      struct metrics_conf,
                      ready_wal_percent,
                      1,
                      100,
                      "/readyz reports not ready once the WAL ring is this full"),
    STRATUS_PARAM_END,
};

struct stratus_observe {
    struct metrics_conf mc;
    struct stratus_observe_deps deps;
    struct stratus_metrics_http *http;
};

const struct stratus_param *stratus_observe_params(void)
{
    return metrics_params;
}

static int
observe_apply(const struct stratus_conf *conf, struct metrics_conf *mc, struct stratus_errbuf *eb)
{
    char host[256];
    int port, rc;

    if ((rc = stratus_conf_apply(conf, "metrics", metrics_params, NULL, mc, eb)))
        return rc;
    if (mc->listen && mc->listen[0] &&
        (rc = stratus_metrics_http_parse_addr(mc->listen, host, sizeof host, &port, eb))) {
        const char *where = stratus_conf_where(conf, "metrics", "listen");
        char tmp[sizeof eb->msg];
        snprintf(tmp, sizeof tmp, "%s", eb->msg);
        stratus_errf(eb, rc, "%.100s: [metrics] listen: %.300s", where ? where : "--set", tmp);
        stratus_conf_free_struct(metrics_params, mc);
        return rc;
    }
    return 0;
}

int stratus_observe_check(const struct stratus_conf *conf, struct stratus_errbuf *eb)
{
    struct metrics_conf mc;
    memset(&mc, 0, sizeof mc);
    int rc = observe_apply(conf, &mc, eb);
    if (rc == 0)
        stratus_conf_free_struct(metrics_params, &mc);
    return rc;
}

/* ---- collectors ---- */

static int observe_ready(void *arg, char *why, size_t cap);

#define C STRATUS_METRIC_COUNTER
#define G STRATUS_METRIC_GAUGE

static void
emit(struct stratus_metrics_sink *s, int type, const char *name, const char *help, double v)
{
    stratus_metrics_emit(s, type, name, NULL, help, v);
}

static void observe_stream(struct stratus_observe *o, struct stratus_metrics_sink *s)
{
    struct stratus_stream_stats st;
    memset(&st, 0, sizeof st);
    stratus_stream_get_stats(o->deps.stream, &st);
    const struct stratus_wal_stats *w = &st.wal;
    emit(s, C, "stratus_wal_appends_total", "Records appended to the WAL", (double)w->appends);
    emit(s, C, "stratus_wal_append_bytes_total", "Bytes appended to the WAL",
         (double)w->append_bytes);
    emit(s, C, "stratus_wal_write_bytes_total", "Bytes written by WAL group commits (aligned)",
         (double)w->write_bytes);
    emit(s, C, "stratus_wal_fsyncs_total", "fdatasync calls of the WAL (0 with O_DSYNC)",
         (double)w->fsyncs);
    emit(s, C, "stratus_wal_loop_writes_total",
         "WAL writes made by the network thread that started the group commit",
         (double)w->loop_writes);
    emit(s, C, "stratus_wal_in_place_bytes_total",
         "Appended bytes the WAL wrote straight from the request buffers (wal.in_place)",
         (double)w->ref_bytes);
    emit(s, G, "stratus_wal_pending_bytes", "Appends queued and not yet written to the WAL",
         (double)w->pending_bytes);
    uint64_t used = w->head_lsn > w->trim_lsn ? w->head_lsn - w->trim_lsn : 0;
    emit(s, G, "stratus_wal_used_bytes", "WAL ring bytes holding data not yet uploaded",
         (double)used);
    emit(s, G, "stratus_wal_size_bytes", "WAL ring size", (double)o->deps.wal_size_bytes);
    emit(s, G, "stratus_wal_direct_io", "1 when the WAL uses O_DIRECT", (double)w->direct_io);

    emit(s, C, "stratus_uploader_objects_total", "Objects uploaded to storage",
         (double)st.objects_uploaded);
    emit(s, C, "stratus_uploader_bulk_objects_total",
         "Objects put marked bulk: another object's worth of data was waiting (the uploader "
         "was behind)",
         (double)st.objects_bulk);
    emit(s, C, "stratus_uploader_bytes_total", "Object bytes uploaded to storage",
         (double)st.object_bytes_uploaded);
    emit(s, C, "stratus_uploader_failures_total",
         "Upload rounds that failed (retried at the next round)", (double)st.upload_failures);
    emit(s, G, "stratus_uploader_pending_bytes", "Data in the WAL waiting to be uploaded",
         (double)st.pending_upload_bytes);
    emit(s, G, "stratus_log_cache_bytes",
         "Memory held by the log cache: batches and the request frames they are kept in",
         (double)st.log_cache_bytes);
    emit(s, C, "stratus_log_cache_evictions_total", "Batches evicted from the log cache",
         (double)st.log_cache_evictions);
    emit(s, C, "stratus_cold_reads_total", "Fetches served from objects", (double)st.cold_reads);
    emit(s, C, "stratus_cold_read_bytes_total", "Bytes served from objects",
         (double)st.cold_read_bytes);
    emit(s, C, "stratus_cold_readahead_blocks_total",
         "Blocks read ahead of sequential consumers", (double)st.readahead_blocks);
    emit(s, C, "stratus_cold_readahead_used_total",
         "Blocks read ahead that a cold read then took", (double)st.readahead_used);
    emit(s, G, "stratus_cold_read_limit",
         "Storage reads cold reads may make at once now (lowered while they slow the WAL)",
         (double)st.cold_read_limit);
    emit(s, C, "stratus_cold_read_waits_total",
         "Cold storage reads that waited for that limit", (double)st.cold_read_waits);
    emit(s, C, "stratus_retention_deleted_objects_total", "Objects deleted by retention",
         (double)st.retention_deleted_objects);
}

static void observe_topics(struct stratus_observe *o, struct stratus_metrics_sink *s)
{
    struct stratus_topic_info *topics = NULL;
    size_t n = 0;
    int64_t parts = 0;

    if (stratus_stream_list_topics(o->deps.stream, &topics, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++)
        parts += topics[i].partitions;
    emit(s, G, "stratus_topics", "Topics", (double)n);
    emit(s, G, "stratus_partitions", "Partitions of every topic", (double)parts);
    if (o->mc.topic_labels) {
        for (size_t i = 0; i < n; i++) {
            char name[400];
            int64_t hw_sum = 0;
            for (int32_t p = 0; p < topics[i].partitions; p++) {
                struct stratus_partition *pp =
                    stratus_stream_partition(o->deps.stream, topics[i].name, p);
                int64_t ls, hw, le;
                if (!pp)
                    continue;
                stratus_partition_offsets(pp, &ls, &hw, &le);
                stratus_partition_release(pp);
                hw_sum += hw;
            }
            snprintf(name, sizeof name, "stratus_topic_high_watermark_sum{topic=\"%s\"}",
                     topics[i].name);
            stratus_metrics_emit(s, G, "stratus_topic_high_watermark_sum", name,
                                 "Sum of the high watermarks of a topic's partitions",
                                 (double)hw_sum);
        }
    }
    free(topics);
}

static void observe_net(struct stratus_observe *o, struct stratus_metrics_sink *s)
{
    struct stratus_net_stats ns;
    memset(&ns, 0, sizeof ns);
    stratus_net_get_stats(o->deps.net, &ns);
    emit(s, G, "stratus_connections", "Open client connections", (double)ns.connections_open);
    emit(s, C, "stratus_connections_accepted_total", "Client connections accepted",
         (double)ns.connections_accepted);
    emit(s, C, "stratus_network_received_bytes_total", "Bytes received from clients",
         (double)ns.bytes_in);
    emit(s, C, "stratus_network_sent_bytes_total", "Bytes sent to clients", (double)ns.bytes_out);
    emit(s, C, "stratus_protocol_errors_total", "Malformed frames and requests",
         (double)ns.protocol_errors);
    int counts[256];
    int nt = stratus_net_thread_connections(o->deps.net, counts, 256);
    for (int i = 0; i < nt && i < 256; i++) {
        char name[96];
        snprintf(name, sizeof name, "stratus_network_thread_connections{thread=\"net-%d\"}", i);
        stratus_metrics_emit(s, G, "stratus_network_thread_connections", name,
                             "Open client connections per network thread (new ones go to the "
                             "thread with the fewest)",
                             (double)counts[i]);
    }
}

static void observe_cache(struct stratus_observe *o, struct stratus_metrics_sink *s)
{
    struct stratus_cache_stats cs;
    stratus_cache_get_stats(o->deps.cache, &cs);
    emit(s, C, "stratus_cache_hits_total", "Block cache hits", (double)cs.hits);
    emit(s, C, "stratus_cache_misses_total", "Block cache misses", (double)cs.misses);
    emit(s, C, "stratus_cache_inserts_total", "Blocks inserted into the cache", (double)cs.inserts);
    emit(s, C, "stratus_cache_evictions_total", "Blocks evicted from the cache",
         (double)cs.evictions);
    emit(s, G, "stratus_cache_bytes", "Bytes held by the block cache", (double)cs.bytes_used);
    emit(s, G, "stratus_cache_budget_bytes", "Byte budget of the block cache",
         (double)cs.bytes_budget);
}

/* Per-group lag: the sum over the group's committed partitions of (high watermark - committed
 * offset), from the durable committed offsets in the index. */
static void observe_group_lag(struct stratus_observe *o, struct stratus_metrics_sink *s)
{
    struct stratus_index *idx = stratus_stream_index(o->deps.stream);
    struct stratus_index_iter *it;
    uint8_t prefix = STRATUS_IDX_GROUP;
    char cur[STRATUS_GROUP_ID_MAX + 1] = "", esc[2 * STRATUS_GROUP_ID_MAX + 2];
    char name[700];
    int64_t lag = 0;
    int have = 0;

    if (!idx)
        return;
    it = stratus_index_iter_new(idx);
    for (stratus_index_iter_seek(it, &prefix, 1); stratus_index_iter_has_prefix(it, &prefix, 1);
         stratus_index_iter_next(it)) {
        size_t klen, vlen, glen, tlen;
        const uint8_t *k = stratus_index_iter_key(it, &klen);
        const uint8_t *v = stratus_index_iter_value(it, &vlen);
        const char *g, *t;
        int32_t part;
        char topic[STRATUS_TOPIC_NAME_MAX + 1];
        if (stratus_offsets_key_parse(k, klen, &g, &glen, &t, &tlen, &part) != 0 || vlen < 9 ||
            v[0] != 1 || glen > STRATUS_GROUP_ID_MAX || tlen > STRATUS_TOPIC_NAME_MAX)
            continue;
        if (!have || strlen(cur) != glen || memcmp(cur, g, glen) != 0) {
            if (have) {
                stratus_metrics_escape(cur, esc, sizeof esc);
                snprintf(name, sizeof name, "stratus_consumer_group_lag{group=\"%s\"}", esc);
                stratus_metrics_emit(s, G, "stratus_consumer_group_lag", name,
                                     "Records between committed offsets and high watermarks",
                                     (double)lag);
            }
            memcpy(cur, g, glen);
            cur[glen] = 0;
            lag = 0;
            have = 1;
        }
        memcpy(topic, t, tlen);
        topic[tlen] = 0;
        int64_t committed = (int64_t)stratus_be64_get(v + 1);
        struct stratus_partition *p = stratus_stream_partition(o->deps.stream, topic, part);
        if (p) {
            int64_t ls, hw, le;
            stratus_partition_offsets(p, &ls, &hw, &le);
            stratus_partition_release(p);
            if (committed >= 0 && hw > committed)
                lag += hw - committed;
        }
    }
    if (have) {
        stratus_metrics_escape(cur, esc, sizeof esc);
        snprintf(name, sizeof name, "stratus_consumer_group_lag{group=\"%s\"}", esc);
        stratus_metrics_emit(s, G, "stratus_consumer_group_lag", name,
                             "Records between committed offsets and high watermarks", (double)lag);
    }
    stratus_index_iter_free(it);
}

static void observe_groups(struct stratus_observe *o, struct stratus_metrics_sink *s)
{
    struct stratus_group_coord *gc = o->deps.api ? o->deps.api->groups : NULL;
    if (gc) {
        struct stratus_group_stats gs;
        stratus_group_get_stats(gc, &gs);
        emit(s, G, "stratus_consumer_groups", "Consumer groups known to the coordinator",
             (double)gs.groups);
        emit(s, G, "stratus_consumer_group_members", "Members of every group", (double)gs.members);
        emit(s, C, "stratus_consumer_group_rebalances_total", "Group rebalances",
             (double)gs.rebalances);
        emit(s, C, "stratus_consumer_group_offset_commits_total", "Partition offsets committed",
             (double)gs.commits);
    }
    observe_group_lag(o, s);
}

static void observe_process(struct stratus_metrics_sink *s)
{
    char buf[1024];
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/stat", "r");

    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        unsigned long long ut = 0, stt = 0, start = 0, rss = 0;
        long threads = 0;
        /* Fields after the command: 3 state ... 14 utime 15 stime ... 20 num_threads ...
         * 22 starttime 23 vsize 24 rss. */
        if (p &&
            sscanf(p + 2,
                   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                   "%ld %*d %llu %*u %llu",
                   &ut, &stt, &threads, &start, &rss) == 5 &&
            tck > 0) {
            /* the scheduler's own runtime (ns) where the clock exists: utime + stime count
             * 10 ms ticks, and a quiet broker's counter would stand still between scrapes */
            struct timespec cpu;
            double secs = (double)(ut + stt) / (double)tck;
            if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu) == 0)
                secs = (double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9;
            emit(s, C, "stratus_process_cpu_seconds_total", "User and system CPU time", secs);
            emit(s, G, "stratus_process_resident_memory_bytes", "Resident set size",
                 (double)rss * (double)page);
            emit(s, G, "stratus_process_threads", "Threads of the process", (double)threads);
            FILE *fs = fopen("/proc/stat", "r");
            unsigned long long btime = 0;
            if (fs) {
                char line[256];
                while (fgets(line, sizeof line, fs))
                    if (sscanf(line, "btime %llu", &btime) == 1)
                        break;
                fclose(fs);
            }
            if (btime)
                emit(s, G, "stratus_process_start_time_seconds", "Start time since the epoch",
                     (double)btime + (double)start / (double)tck);
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long nfd = -1; /* the DIR's own fd is not counted */
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            if (de->d_name[0] != '.')
                nfd++;
        closedir(d);
        emit(s, G, "stratus_process_open_fds", "Open file descriptors", (double)nfd);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        emit(s, G, "stratus_process_max_fds", "Limit of open file descriptors",
             (double)rl.rlim_cur);
}

/* jemalloc's control interface, present when stratusd links jemalloc (CMakeLists.txt), NULL
 * otherwise (a weak reference: the core library does not depend on it). */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));

/* The allocator's view of the heap, to tell memory the broker holds from memory the allocator
 * keeps for reuse: jemalloc's stats (refreshed by writing its epoch), or glibc's mallinfo2. */
static void observe_allocator(struct stratus_metrics_sink *s)
{
    static const char *const fam = "stratus_allocator_bytes";
    static const char *const help = "Heap bytes by state: allocated (held by the broker), "
                                    "active, resident, retained (jemalloc), free (glibc)";
    if (mallctl) {
        uint64_t epoch = 1;
        size_t len = sizeof epoch;
        if (mallctl("epoch", &epoch, &len, &epoch, len) != 0)
            return;
        static const char *const keys[][2] = {
            {"stats.allocated", "allocated"}, {"stats.active", "active"},
            {"stats.resident", "resident"},   {"stats.retained", "retained"},
            {"stats.mapped", "mapped"},
        };
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            size_t v = 0;
            len = sizeof v;
            if (mallctl(keys[i][0], &v, &len, NULL, 0) != 0)
                continue;
            char name[96];
            snprintf(name, sizeof name, "%s{state=\"%s\"}", fam, keys[i][1]);
            stratus_metrics_emit(s, G, fam, name, help, (double)v);
        }
        return;
    }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    char name[96];
    snprintf(name, sizeof name, "%s{state=\"allocated\"}", fam);
    stratus_metrics_emit(s, G, fam, name, help, (double)(mi.uordblks + mi.hblkhd));
    snprintf(name, sizeof name, "%s{state=\"free\"}", fam);
    stratus_metrics_emit(s, G, fam, name, help, (double)mi.fordblks);
#endif
}

static void observe_collect(void *arg, struct stratus_metrics_sink *s)
{
    struct stratus_observe *o = arg;
    char why[200];

    observe_stream(o, s);
    observe_topics(o, s);
    observe_net(o, s);
    observe_cache(o, s);
    observe_groups(o, s);
    observe_process(s);
    observe_allocator(s);
    stratus_metrics_emit(s, G, "stratus_build_info",
                         "stratus_build_info{version=\"" STRATUS_VERSION "\"}",
                         "Always 1; the version as a label", 1);
    emit(s, G, "stratus_ready", "1 when /readyz answers 200", observe_ready(o, why, sizeof why));
    emit(s, G, "stratus_log_level", "Current log level (0 error .. 4 trace)",
         (double)stratus_log_level);
}

#undef C
#undef G

static int observe_ready(void *arg, char *why, size_t cap)
{
    struct stratus_observe *o = arg;
    struct stratus_stream_stats st;
    uint64_t size = o->deps.wal_size_bytes, used;

    memset(&st, 0, sizeof st);
    stratus_stream_get_stats(o->deps.stream, &st);
    used = st.wal.head_lsn > st.wal.trim_lsn ? st.wal.head_lsn - st.wal.trim_lsn : 0;
    if (size && used * 100 >= size * (uint64_t)o->mc.ready_wal_percent) {
        snprintf(why, cap,
                 "degraded: WAL %llu%% full (%llu of %llu bytes not yet uploaded; "
                 "uploads failing or too slow)",
                 (unsigned long long)(used * 100 / size), (unsigned long long)used,
                 (unsigned long long)size);
        return 0;
    }
    return 1;
}

int stratus_observe_start(const struct stratus_conf *conf,
                          const struct stratus_observe_deps *deps,
                          struct stratus_observe **out,
                          struct stratus_errbuf *eb)
{
    struct stratus_observe *o = xcalloc(1, sizeof *o);
    struct stratus_metrics_http_conf hc;
    int rc;

    *out = NULL;
    if ((rc = observe_apply(conf, &o->mc, eb))) {
        free(o);
        return rc;
    }
    if (!o->mc.listen || !o->mc.listen[0]) {
        LOG_INFO("metrics", "no [metrics] listen: metrics endpoint off");
        stratus_conf_free_struct(metrics_params, &o->mc);
        free(o);
        return 0;
    }
    o->deps = *deps;
    stratus_metrics_set_topic_labels(o->mc.topic_labels);
    memset(&hc, 0, sizeof hc);
    hc.listen = o->mc.listen;
    hc.ready = observe_ready;
    hc.ready_arg = o;
    stratus_metrics_add_collector(observe_collect, o);
    if ((rc = stratus_metrics_http_start(&hc, &o->http, eb))) {
        stratus_metrics_remove_collector(observe_collect, o);
        stratus_conf_free_struct(metrics_params, &o->mc);
        free(o);
        return rc;
    }
    LOG_INFO("metrics", "serving /metrics /healthz /readyz listen=%s port=%d topic_labels=%d",
             o->mc.listen, stratus_metrics_http_port(o->http), o->mc.topic_labels);
    *out = o;
    return 0;
}

int stratus_observe_port(const struct stratus_observe *o)
{
    return o ? stratus_metrics_http_port(o->http) : 0;
}

void stratus_observe_stop(struct stratus_observe *o)
{
    if (!o)
        return;
    stratus_metrics_http_stop(o->http);
    stratus_metrics_remove_collector(observe_collect, o);
    stratus_conf_free_struct(metrics_params, &o->mc);
    free(o);
}
