/* broker.c - builds the broker from its configuration and runs it (see broker.h).
 *
 * Start order: config sections -> data_dir and cluster id -> storage plugin -> cache plugin ->
 * storage engine (index, WAL replay, uploader, I/O pool) -> request handlers -> listeners and
 * network threads. Stop order is the reverse, with a drain of in-flight requests first.
 * The cluster id lives in DATA_DIR/cluster.id (22 characters, base64url of 16 random bytes).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "broker.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "cluster/node.h"
#include "conf/conf.h"
#include "group/group.h"
#include "metrics/metrics.h"
#include "net/net.h"
#include "observe.h"
#include "plugin/plugin.h"
#include "stream/stream.h"
#include "util/alloc.h"
#include "util/hugeframes.h"
#include "util/log.h"
#include "util/sched.h"

/* broker.huge_frames: address space reserved (MAP_NORESERVE: resident only as frames use it;
 * past it frames come from malloc) and how far ahead of use the toucher populates it. */
#define HUGEFRAMES_RESERVE ((size_t)64 << 30)
#define HUGEFRAMES_AHEAD ((size_t)64 << 20)

struct broker_conf {
    int64_t node_id;
    char *listeners;
    char *advertised_listeners;
    char *data_dir;
    char *plugin_dir;
    int64_t network_threads;
    int64_t io_threads;
    int64_t readahead_blocks;
    int cold_read_yield;
    int huge_frames;
    int64_t sched_slice_us;
    uint64_t max_request_bytes;
    uint64_t fetch_max_bytes;
    int64_t idle_timeout_ms;
    int64_t max_inflight;
    int auto_create_topics;
    int64_t num_partitions;
    char *log_level;
    uint64_t log_cache_size;
    int64_t retention_check_interval_ms;
    int64_t shutdown_timeout_ms;
};

static const struct stratus_param broker_params[] = {
    STRATUS_PARAM_INT("node_id", "1", 0, struct broker_conf, node_id, 0, 2147483647,
                      "This broker's id (Kafka node.id)"),
    STRATUS_PARAM_STR("listeners", "PLAINTEXT://127.0.0.1:9092", 0, struct broker_conf,
                      listeners, "Comma-separated PLAINTEXT://HOST:PORT listeners"),
    STRATUS_PARAM_STR("advertised_listeners", NULL, 0, struct broker_conf, advertised_listeners,
                      "What clients are told to connect to (default: listeners)"),
    STRATUS_PARAM_STR("data_dir", "./data", 0, struct broker_conf, data_dir,
                      "Directory of the WAL, the index and the cluster id"),
    STRATUS_PARAM_STR("plugin_dir", NULL, 0, struct broker_conf, plugin_dir,
                      "Where plugins are found (default: build tree, else install dir)"),
    STRATUS_PARAM_INT("network_threads", "0", 0, struct broker_conf, network_threads, 0, 256,
                      "Network threads (0 = one per CPU, at least 2)"),
    STRATUS_PARAM_INT("io_threads", "4", 0, struct broker_conf, io_threads, 1, 256,
                      "Threads for cold reads and admin work"),
    STRATUS_PARAM_INT("readahead_blocks", "32", 0, struct broker_conf, readahead_blocks, 0, 4096,
                      "1 MiB blocks cold reads may hold read ahead of consumers reading on, "
                      "over all partitions (0 = no read-ahead)"),
    STRATUS_PARAM_BOOL("cold_read_yield", "true", 0, struct broker_conf, cold_read_yield,
                       "Fewer cold reads at once while they slow the WAL's writes down (objects "
                       "on the WAL's disk); false = io_threads at once always"),
    STRATUS_PARAM_BOOL("huge_frames", "true", 0, struct broker_conf, huge_frames,
                       "Read Produce and large request frames into transparent huge pages "
                       "populated ahead of use by an idle-priority thread (needs jemalloc: "
                       "stratusd's default)"),
    STRATUS_PARAM_INT("sched_slice_us", "100", 0, struct broker_conf, sched_slice_us, 0, 100000,
                      "Scheduler slice asked for by the network and WAL threads, in us (Linux "
                      ">= 6.12; 0 = the kernel's; under 100 counts as 100)"),
    STRATUS_PARAM_SIZE("max_request_size", "100MiB", 0, struct broker_conf, max_request_bytes,
                       1024, 2147483647, "Largest request frame accepted"),
    STRATUS_PARAM_SIZE("fetch_max_bytes", "16MiB", 0, struct broker_conf, fetch_max_bytes, 1024,
                       2147483647,
                       "Largest Fetch response (Kafka's broker fetch.max.bytes; a first batch "
                       "larger than it is still sent whole)"),
    STRATUS_PARAM_MS("idle_timeout", "10m", 0, struct broker_conf, idle_timeout_ms, 1000, INT64_MAX,
                     "Close connections idle this long"),
    STRATUS_PARAM_INT("max_inflight_requests", "1000", 0, struct broker_conf, max_inflight, 1,
                      4096, "Pipelined requests per connection before reads pause"),
    STRATUS_PARAM_BOOL("auto_create_topics", "true", 0, struct broker_conf, auto_create_topics,
                       "Create a topic on first Metadata or Produce request"),
    STRATUS_PARAM_INT("num_partitions", "1", 0, struct broker_conf, num_partitions, 1, 100000,
                      "Partitions of auto-created topics and of CreateTopics with -1"),
    STRATUS_PARAM_STR("log_level", "info", 0, struct broker_conf, log_level,
                      "error, warn, info, debug or trace"),
    STRATUS_PARAM_SIZE("log_cache_size", "512MiB", 0, struct broker_conf, log_cache_size,
                       1048576, INT64_MAX, "Memory for the hot tail of all partitions"),
    STRATUS_PARAM_MS("retention_check_interval", "30s", 0, struct broker_conf,
                     retention_check_interval_ms, 100, INT64_MAX, "How often retention runs"),
    STRATUS_PARAM_MS("shutdown_timeout", "10s", 0, struct broker_conf, shutdown_timeout_ms, 0, 0,
                     "How long SIGTERM waits for in-flight requests"),
    STRATUS_PARAM_END,
};

struct wal_conf {
    char *path;
    uint64_t size;
    uint64_t max_write_size;
    int64_t inflight;
    uint64_t max_pending;
    int buffered;
    int writers_only;
    int in_place;
    char *type;
    int64_t object_interval_ms;
    uint64_t object_max_size;
    int64_t fenced_hold_ms;
};

static const struct stratus_param wal_params[] = {
    STRATUS_PARAM_STR("path", NULL, 0, struct wal_conf, path,
                      "WAL file (default DATA_DIR/wal/stratus.wal)"),
    STRATUS_PARAM_SIZE("size", "512MiB", 0, struct wal_conf, size, 16777216, INT64_MAX,
                       "Preallocated ring size"),
    STRATUS_PARAM_SIZE("max_write_size", "1MiB", 0, struct wal_conf, max_write_size, 65536,
                       67108864, "Largest single group-commit write"),
    STRATUS_PARAM_INT("inflight", "4", 0, struct wal_conf, inflight, 1, 64,
                      "Group-commit writes in flight"),
    STRATUS_PARAM_SIZE("max_pending", "256MiB", 0, struct wal_conf, max_pending, 1048576, INT64_MAX,
                       "Queued, unwritten appends before producers see errors"),
    STRATUS_PARAM_BOOL("buffered", "false", 0, struct wal_conf, buffered,
                       "Use buffered writes + fdatasync instead of O_DIRECT|O_DSYNC"),
    STRATUS_PARAM_BOOL("writers_only", "false", 0, struct wal_conf, writers_only,
                       "Only the WAL's writer threads write (by default a network thread "
                       "writes the small group commit it starts while the disk is idle)"),
    STRATUS_PARAM_BOOL("in_place", "true", 0, struct wal_conf, in_place,
                       "Write produce data of 64 KiB or more to the WAL straight from the "
                       "request's buffer (false: copy it into the WAL's buffers first)"),
    STRATUS_PARAM_STR("type", "local", 0, struct wal_conf, type,
                      "local (a file on this machine) or object (WAL objects in [storage])"),
    STRATUS_PARAM_MS("object_interval", "150ms", 0, struct wal_conf, object_interval_ms, 10,
                     5000, "Object WAL: how long appends gather before one PUT"),
    STRATUS_PARAM_SIZE("object_max_size", "8MiB", 0, struct wal_conf, object_max_size, 65536,
                       268435456, "Object WAL: cut a WAL object early at this size"),
    STRATUS_PARAM_MS("fenced_hold", "10m", 0, struct wal_conf, fenced_hold_ms, 1000, INT64_MAX,
                     "Object WAL in a cluster: keep records of a partition fenced before their "
                     "upload this long, for its next owner to recover"),
    STRATUS_PARAM_END,
};

struct index_conf {
    char *path;
};

static const struct stratus_param index_params[] = {
    STRATUS_PARAM_STR("path", NULL, 0, struct index_conf, path,
                      "RocksDB directory (default DATA_DIR/index)"),
    STRATUS_PARAM_END,
};

struct upload_conf {
    uint64_t object_size;
    int64_t interval_ms;
    int in_place;
};

static const struct stratus_param upload_params[] = {
    STRATUS_PARAM_SIZE("object_size", "16MiB", 0, struct upload_conf, object_size, 65536,
                       1073741824, "Upload when this much data is pending"),
    STRATUS_PARAM_MS("interval", "2s", 0, struct upload_conf, interval_ms, 10, INT64_MAX,
                     "... or when the oldest pending data is this old"),
    STRATUS_PARAM_BOOL("in_place", "true", 0, struct upload_conf, in_place,
                       "Put batches of 64 KiB or more from where they were received, "
                       "without copying them into the object (storage plugins with putv; "
                       "not in cluster mode)"),
    STRATUS_PARAM_END,
};

struct group_conf {
    int64_t initial_rebalance_delay_ms;
    int64_t min_session_timeout_ms;
    int64_t max_session_timeout_ms;
    int64_t offsets_retention_ms;
    int64_t offsets_retention_check_ms;
    uint64_t max_metadata_bytes;
    int64_t max_size;
};

static const struct stratus_param group_params[] = {
    STRATUS_PARAM_MS("initial_rebalance_delay", "3s", 0, struct group_conf,
                     initial_rebalance_delay_ms, 0, 300000,
                     "Wait for more members before the first rebalance of an empty group"),
    STRATUS_PARAM_MS("min_session_timeout", "6s", 0, struct group_conf, min_session_timeout_ms,
                     1, INT32_MAX, "Smallest session.timeout.ms a member may ask for"),
    STRATUS_PARAM_MS("max_session_timeout", "30m", 0, struct group_conf, max_session_timeout_ms,
                     1, INT32_MAX, "Largest session.timeout.ms a member may ask for"),
    STRATUS_PARAM_MS("offsets_retention", "7d", 0, struct group_conf, offsets_retention_ms, 1000,
                     INT64_MAX, "Committed offsets of a group without members expire after this"),
    STRATUS_PARAM_MS("offsets_retention_check_interval", "10m", 0, struct group_conf,
                     offsets_retention_check_ms, 100, INT64_MAX,
                     "How often expired committed offsets are removed"),
    STRATUS_PARAM_SIZE("max_metadata_size", "1MiB", 0, struct group_conf, max_metadata_bytes,
                       1024, 104857600,
                       "Largest member metadata or assignment a group member may send"),
    STRATUS_PARAM_INT("max_size", "0", 0, struct group_conf, max_size, 0, 1000000,
                      "Members per group (group.max.size; 0 = unlimited)"),
    STRATUS_PARAM_END,
};

struct cluster_conf {
    char *metastore;
    char *etcd_endpoints;
    char *etcd_prefix;
    int64_t etcd_connect_timeout_ms;
    int64_t etcd_request_timeout_ms;
    char *etcd_ca_file, *etcd_cert_file, *etcd_key_file, *etcd_username, *etcd_password;
    int64_t session_ttl_ms;
    char *rack;
    int64_t prepared_object_ttl_ms;
};

static const struct stratus_param cluster_params[] = {
    STRATUS_PARAM_STR("metastore", "local", 0, struct cluster_conf, metastore,
                      "local (one broker, metadata in RocksDB) or etcd (a cluster)"),
    STRATUS_PARAM_STR("etcd_endpoints", NULL, 0, struct cluster_conf, etcd_endpoints,
                      "Comma-separated etcd client URLs (http:// or https://)"),
    STRATUS_PARAM_STR("etcd_prefix", "/stratus/", 0, struct cluster_conf, etcd_prefix,
                      "Every key of this cluster lives under this prefix"),
    STRATUS_PARAM_MS("etcd_connect_timeout", "1s", 0, struct cluster_conf,
                     etcd_connect_timeout_ms, 10, 600000, "Connect timeout per etcd endpoint"),
    STRATUS_PARAM_MS("etcd_request_timeout", "5s", 0, struct cluster_conf,
                     etcd_request_timeout_ms, 100, 600000, "Request timeout per etcd endpoint"),
    STRATUS_PARAM_STR("etcd_ca_file", NULL, 0, struct cluster_conf, etcd_ca_file,
                      "CA bundle that signed etcd's certificate"),
    STRATUS_PARAM_STR("etcd_cert_file", NULL, 0, struct cluster_conf, etcd_cert_file,
                      "Client certificate for etcd (PEM)"),
    STRATUS_PARAM_STR("etcd_key_file", NULL, 0, struct cluster_conf, etcd_key_file,
                      "Client key for etcd (PEM)"),
    STRATUS_PARAM_STR("etcd_username", NULL, 0, struct cluster_conf, etcd_username,
                      "etcd user (auth enabled)"),
    STRATUS_PARAM_STR("etcd_password", NULL, STRATUS_P_SECRET, struct cluster_conf,
                      etcd_password, "etcd password"),
    STRATUS_PARAM_MS("session_ttl", "6s", 0, struct cluster_conf, session_ttl_ms, 2000, 600000,
                     "Broker lease TTL: a dead broker's partitions move after this"),
    STRATUS_PARAM_STR("rack", "", 0, struct cluster_conf, rack,
                      "Rack or zone reported in Metadata"),
    STRATUS_PARAM_MS("prepared_object_ttl", "10m", 0, struct cluster_conf,
                     prepared_object_ttl_ms, 1000, INT64_MAX,
                     "Objects uploaded but never committed are deleted after this"),
    STRATUS_PARAM_END,
};

static const char *const known_sections[] = {"broker", "wal", "index", "upload", "storage",
                                              "cache", "group", "metrics", "cluster", NULL};

struct stratus_broker {
    struct broker_conf bc;
    struct wal_conf wc;
    struct index_conf ic;
    struct upload_conf uc;
    struct group_conf gc;
    struct cluster_conf cc;
    char wal_path[PATH_MAX];
    char index_path[PATH_MAX];
    struct stratus_storage *storage;
    struct stratus_cache *cache;
    struct stratus_stream *stream;
    struct stratus_group_coord *groups;
    struct stratus_api_ctx api;
    struct stratus_net *net;
    struct stratus_observe *obs; /* [metrics]: listener and collectors; NULL when off */
    struct stratus_cluster *cluster; /* [cluster] metastore = etcd: the node agent */
};

/* ---- listeners ---- */

struct listener {
    char host[256];
    int port;
};

/* Parses "PLAINTEXT://host:port[,PLAINTEXT://host:port]" (also "[::1]:9092"). */
static int parse_listeners(const char *spec, const char *key, struct listener *out, int max,
                           int *n, struct stratus_errbuf *eb)
{
    char *copy = xstrdup(spec), *save = NULL, *tok;
    int rc = 0;

    *n = 0;
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        char *sep = strstr(tok, "://");
        if (!sep) {
            rc = stratus_errf(eb, STRATUS_EINVAL, "%s: '%s' is not NAME://HOST:PORT", key, tok);
            break;
        }
        *sep = 0;
        if (strcmp(tok, "PLAINTEXT") != 0) {
            rc = stratus_errf(eb, STRATUS_EINVAL,
                              "%s: security protocol '%s' is not supported (only PLAINTEXT)",
                              key, tok);
            break;
        }
        char *hp = sep + 3, *colon;
        if (*hp == '[') {
            char *end = strchr(hp, ']');
            if (!end || end[1] != ':') {
                rc = stratus_errf(eb, STRATUS_EINVAL, "%s: bad address '%s'", key, hp);
                break;
            }
            *end = 0;
            hp++;
            colon = end + 1;
        } else {
            colon = strrchr(hp, ':');
            if (!colon) {
                rc = stratus_errf(eb, STRATUS_EINVAL, "%s: '%s' has no port", key, hp);
                break;
            }
            *colon = 0;
        }
        char *endp;
        long port = strtol(colon + 1, &endp, 10);
        if (*endp || port < 0 || port > 65535) {
            rc = stratus_errf(eb, STRATUS_EINVAL, "%s: bad port '%s'", key, colon + 1);
            break;
        }
        if (*n == max) {
            rc = stratus_errf(eb, STRATUS_EINVAL, "%s: more than %d listeners", key, max);
            break;
        }
        snprintf(out[*n].host, sizeof out[*n].host, "%s", hp);
        out[*n].port = (int)port;
        (*n)++;
    }
    if (rc == 0 && *n == 0)
        rc = stratus_errf(eb, STRATUS_EINVAL, "%s: no listener", key);
    free(copy);
    return rc;
}

/* Prefixes an error with where the key was set. */
static int keyerr(const struct stratus_conf *conf, const char *sec, const char *key, int rc,
                  struct stratus_errbuf *eb)
{
    const char *where = stratus_conf_where(conf, sec, key);
    if (where) {
        char tmp[sizeof eb->msg];
        memcpy(tmp, eb->msg, sizeof tmp);
        tmp[sizeof tmp - 1] = 0;
        int n = snprintf(eb->msg, sizeof eb->msg, "%.100s: [%.20s] ", where, sec);
        if (n > 0 && (size_t)n < sizeof eb->msg)
            snprintf(eb->msg + n, sizeof eb->msg - (size_t)n, "%.200s", tmp);
    }
    return rc;
}

static void free_confs(struct stratus_broker *b)
{
    stratus_conf_free_struct(broker_params, &b->bc);
    stratus_conf_free_struct(wal_params, &b->wc);
    stratus_conf_free_struct(index_params, &b->ic);
    stratus_conf_free_struct(upload_params, &b->uc);
    stratus_conf_free_struct(group_params, &b->gc);
    stratus_conf_free_struct(cluster_params, &b->cc);
}

static int apply_confs(const struct stratus_conf *conf, struct stratus_broker *b,
                       struct stratus_errbuf *eb)
{
    int rc;
    struct listener ls[STRATUS_NET_MAX_LISTENERS];
    int n;

    if ((rc = stratus_conf_check_sections(conf, known_sections, eb)) ||
        (rc = stratus_conf_apply(conf, "broker", broker_params, NULL, &b->bc, eb)) ||
        (rc = stratus_conf_apply(conf, "wal", wal_params, NULL, &b->wc, eb)) ||
        (rc = stratus_conf_apply(conf, "index", index_params, NULL, &b->ic, eb)) ||
        (rc = stratus_conf_apply(conf, "upload", upload_params, NULL, &b->uc, eb)) ||
        (rc = stratus_conf_apply(conf, "group", group_params, NULL, &b->gc, eb)) ||
        (rc = stratus_conf_apply(conf, "cluster", cluster_params, NULL, &b->cc, eb)))
        return rc;
    if (strcmp(b->wc.type, "local") != 0 && strcmp(b->wc.type, "object") != 0)
        return keyerr(conf, "wal", "type",
                      stratus_errf(eb, STRATUS_EINVAL, "type: '%s' is not local or object",
                                   b->wc.type),
                      eb);
    if (strcmp(b->cc.metastore, "local") != 0 && strcmp(b->cc.metastore, "etcd") != 0)
        return keyerr(conf, "cluster", "metastore",
                      stratus_errf(eb, STRATUS_EINVAL, "metastore: '%s' is not local or etcd",
                                   b->cc.metastore),
                      eb);
    if (strcmp(b->cc.metastore, "etcd") == 0 && (!b->cc.etcd_endpoints || !*b->cc.etcd_endpoints))
        return keyerr(conf, "cluster", "metastore",
                      stratus_errf(eb, STRATUS_EINVAL,
                                   "metastore = etcd needs etcd_endpoints (e.g. "
                                   "http://127.0.0.1:2379)"),
                      eb);
    if (stratus_log_parse_level(b->bc.log_level) < 0)
        return keyerr(conf, "broker", "log_level",
                      stratus_errf(eb, STRATUS_EINVAL, "log_level: unknown level '%s'",
                                   b->bc.log_level),
                      eb);
    if ((rc = parse_listeners(b->bc.listeners, "listeners", ls, STRATUS_NET_MAX_LISTENERS, &n,
                              eb)))
        return keyerr(conf, "broker", "listeners", rc, eb);
    if (b->bc.advertised_listeners &&
        (rc = parse_listeners(b->bc.advertised_listeners, "advertised_listeners", ls,
                              STRATUS_NET_MAX_LISTENERS, &n, eb)))
        return keyerr(conf, "broker", "advertised_listeners", rc, eb);
    return 0;
}

void stratus_broker_plugin_dir(const struct stratus_conf *conf, char *out, size_t cap)
{
    const char *pd = stratus_conf_get(conf, "broker", "plugin_dir");
    char exe[PATH_MAX], cand[PATH_MAX + 16];
    ssize_t n;
    struct stat st;

    if (pd && *pd) {
        snprintf(out, cap, "%s", pd);
        return;
    }
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        snprintf(cand, sizeof cand, "%s/plugins", dirname(exe));
        if (stat(cand, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(out, cap, "%s", cand);
            return;
        }
    }
    snprintf(out, cap, "%s", STRATUS_PLUGIN_INSTALL_DIR);
}

int stratus_broker_check_config(const struct stratus_conf *conf, struct stratus_errbuf *eb)
{
    struct stratus_broker b;
    char plugin_dir[PATH_MAX];
    int rc;

    memset(&b, 0, sizeof b);
    rc = apply_confs(conf, &b, eb);
    if (rc == 0) {
        stratus_broker_plugin_dir(conf, plugin_dir, sizeof plugin_dir);
        rc = stratus_storage_check(conf, "storage", plugin_dir, eb);
        if (rc == 0)
            rc = stratus_cache_check(conf, "cache", plugin_dir, eb);
        if (rc == 0)
            rc = stratus_observe_check(conf, eb);
    }
    free_confs(&b);
    return rc;
}

static int mkdirs(const char *path, struct stratus_errbuf *eb)
{
    char tmp[PATH_MAX];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof tmp)
        return stratus_errf(eb, STRATUS_EINVAL, "bad directory '%s'", path);
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                return stratus_errf(eb, STRATUS_EIO, "mkdir %s: %s", tmp, strerror(errno));
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        return stratus_errf(eb, STRATUS_EIO, "mkdir %s: %s", tmp, strerror(errno));
    return 0;
}

/* Reads DATA_DIR/cluster.id, creating it on first start. */
static int load_cluster_id(const char *data_dir, char *out, size_t cap,
                           struct stratus_errbuf *eb)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char path[PATH_MAX];
    uint8_t raw[16];
    char id[23];
    FILE *f;

    snprintf(path, sizeof path, "%s/cluster.id", data_dir);
    f = fopen(path, "r");
    if (f) {
        if (fgets(id, sizeof id, f) && strlen(id) == 22) {
            fclose(f);
            snprintf(out, cap, "%s", id);
            return 0;
        }
        fclose(f);
        return stratus_errf(eb, STRATUS_ECORRUPT, "%s: not a cluster id", path);
    }
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return stratus_errf(eb, STRATUS_EIO, "getrandom: %s", strerror(errno));
    raw[6] = (uint8_t)((raw[6] & 0x0f) | 0x40);
    raw[8] = (uint8_t)((raw[8] & 0x3f) | 0x80);
    for (int i = 0, j = 0; i < 22; i++, j += 6) {
        int byte = j / 8, bit = j % 8;
        unsigned v = (unsigned)raw[byte] << 8 | (byte + 1 < 16 ? raw[byte + 1] : 0);
        id[i] = b64[(v >> (10 - bit)) & 63];
    }
    id[22] = 0;
    f = fopen(path, "w");
    if (!f || fprintf(f, "%s\n", id) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        if (f)
            fclose(f);
        return stratus_errf(eb, STRATUS_EIO, "write %s: %s", path, strerror(errno));
    }
    fclose(f);
    snprintf(out, cap, "%s", id);
    return 0;
}

/* [cluster] metastore = etcd: registers this broker (the node agent; its incarnation names
 * the object WAL) and takes the cluster id from etcd (created by the first broker), so that
 * every broker reports the same one. */
static int cluster_open(struct stratus_broker *b, const char *host, int port,
                        struct stratus_errbuf *eb)
{
    struct stratus_node_conf nc;

    if (port == 0)
        return stratus_errf(eb, STRATUS_EINVAL,
                            "[cluster] metastore = etcd needs a fixed listener port (the "
                            "broker registers its address before it listens)");
    memset(&nc, 0, sizeof nc);
    nc.meta.etcd.endpoints = b->cc.etcd_endpoints;
    nc.meta.etcd.prefix = b->cc.etcd_prefix;
    nc.meta.etcd.connect_timeout_ms = (int)b->cc.etcd_connect_timeout_ms;
    nc.meta.etcd.request_timeout_ms = (int)b->cc.etcd_request_timeout_ms;
    nc.meta.etcd.ca_file = b->cc.etcd_ca_file;
    nc.meta.etcd.cert_file = b->cc.etcd_cert_file;
    nc.meta.etcd.key_file = b->cc.etcd_key_file;
    nc.meta.etcd.username = b->cc.etcd_username;
    nc.meta.etcd.password = b->cc.etcd_password;
    nc.meta.node_id = (int32_t)b->bc.node_id;
    nc.meta.host = host;
    nc.meta.port = port;
    nc.meta.rack = b->cc.rack;
    nc.meta.session_ttl_s = (b->cc.session_ttl_ms + 999) / 1000;
    nc.prepared_ttl_ms = b->cc.prepared_object_ttl_ms;
    nc.object_wal = strcmp(b->wc.type, "object") == 0;
    if (!nc.object_wal)
        LOG_WARN("broker", "[cluster] with [wal] type = local: partitions move cleanly, but a "
                 "dead broker's unuploaded tail stays on its disk until it restarts; use "
                 "type = object for failover without loss");
    return stratus_node_open(&nc, b->storage, &b->cluster, eb);
}

int stratus_broker_start(const struct stratus_conf *conf, struct stratus_broker **out,
                         struct stratus_errbuf *eb)
{
    struct stratus_broker *b = xcalloc(1, sizeof *b);
    struct stratus_stream_conf sc;
    struct stratus_net_conf nc;
    struct listener ls[STRATUS_NET_MAX_LISTENERS], adv[STRATUS_NET_MAX_LISTENERS];
    char plugin_dir[PATH_MAX];
    int rc, nls, nadv;

    if ((rc = apply_confs(conf, b, eb)))
        goto out_free;
    stratus_log_level = stratus_log_parse_level(b->bc.log_level);
    if (b->bc.huge_frames) {
        struct stratus_errbuf he = {{0}};
        if (stratus_hugeframes_start(HUGEFRAMES_RESERVE, HUGEFRAMES_AHEAD, &he) == 0)
            LOG_INFO("broker",
                     "huge frames: Produce frames, and any of %zu KiB and more, in transparent "
                     "huge pages, populated %zu MiB ahead", STRATUS_HUGEFRAMES_MIN >> 10,
                     (size_t)HUGEFRAMES_AHEAD >> 20);
        else
            LOG_INFO("broker", "huge frames off: %s", he.msg);
    }
    parse_listeners(b->bc.listeners, "listeners", ls, STRATUS_NET_MAX_LISTENERS, &nls, eb);
    if (b->bc.advertised_listeners)
        parse_listeners(b->bc.advertised_listeners, "advertised_listeners", adv,
                        STRATUS_NET_MAX_LISTENERS, &nadv, eb);
    else
        memcpy(adv, ls, sizeof ls);

    if ((rc = mkdirs(b->bc.data_dir, eb)))
        goto out_free;
    if (b->wc.path) {
        snprintf(b->wal_path, sizeof b->wal_path, "%s", b->wc.path);
    } else {
        snprintf(b->wal_path, sizeof b->wal_path, "%s/wal", b->bc.data_dir);
        if ((rc = mkdirs(b->wal_path, eb)))
            goto out_free;
        snprintf(b->wal_path, sizeof b->wal_path, "%s/wal/stratus.wal", b->bc.data_dir);
    }
    if (b->ic.path)
        snprintf(b->index_path, sizeof b->index_path, "%s", b->ic.path);
    else
        snprintf(b->index_path, sizeof b->index_path, "%s/index", b->bc.data_dir);
    if ((rc = load_cluster_id(b->bc.data_dir, b->api.cluster_id, sizeof b->api.cluster_id, eb)))
        goto out_free;

    stratus_broker_plugin_dir(conf, plugin_dir, sizeof plugin_dir);
    if ((rc = stratus_storage_open(conf, "storage", plugin_dir, &b->storage, eb)))
        goto out_free;
    if ((rc = stratus_cache_open(conf, "cache", plugin_dir, &b->cache, eb)))
        goto out_storage;
    if (strcmp(b->cc.metastore, "etcd") == 0) {
        if ((rc = cluster_open(b, adv[0].host, adv[0].port, eb)))
            goto out_cache;
        if ((rc = stratus_node_cluster_id(b->cluster, b->api.cluster_id,
                                          sizeof b->api.cluster_id, eb)))
            goto out_node;
    }

    memset(&sc, 0, sizeof sc);
    sc.data_dir = b->bc.data_dir;
    sc.index_path = b->index_path;
    sc.wal.path = b->wal_path;
    sc.wal.size_bytes = b->wc.size;
    sc.wal.max_write_bytes = (uint32_t)b->wc.max_write_size;
    sc.wal.max_inflight = (int)b->wc.inflight;
    sc.wal.max_pending_bytes = b->wc.max_pending;
    sc.wal.force_buffered = b->wc.buffered;
    sc.wal.writers_only = b->wc.writers_only;
    sc.wal.copy_always = !b->wc.in_place;
    sc.wal.write_hist = stratus_metrics_histogram(
        "stratus_wal_write_duration_seconds",
        "WAL write latency: a group commit's write and sync (local), or its PUT (object)");
    sc.log_cache_bytes = b->bc.log_cache_size;
    sc.object_target_bytes = b->uc.object_size;
    sc.upload_in_place = b->uc.in_place;
    sc.upload_interval_ms = b->uc.interval_ms;
    sc.io_threads = (int)b->bc.io_threads;
    sc.readahead_blocks = (int)b->bc.readahead_blocks;
    sc.cold_read_yield = b->bc.cold_read_yield;
    sc.retention_check_ms = b->bc.retention_check_interval_ms;
    sc.default_partitions = (int32_t)b->bc.num_partitions;
    sc.node_id = (int32_t)b->bc.node_id;
    if (strcmp(b->wc.type, "object") == 0) {
        sc.wal.object_storage = b->storage;
        sc.wal.object_prefix = b->cluster ? stratus_node_wal_prefix(b->cluster) : "wal/local/";
        sc.wal.object_interval_ms = (uint32_t)b->wc.object_interval_ms;
        sc.wal.object_max_bytes = b->wc.object_max_size;
        sc.fenced_wal_hold_ms = b->wc.fenced_hold_ms;
    }
    if (b->cluster) {
        sc.cluster = stratus_node_stream_ops(b->cluster);
        sc.max_streams_per_object = 40; /* a commit txn stays under etcd's 128 ops */
        sc.wal.ack_deadline = stratus_node_ack_deadline;
        sc.wal.ack_deadline_arg = b->cluster;
    }
    stratus_sched_set_latency_slice((uint32_t)b->bc.sched_slice_us); /* before WAL, net threads */
    if ((rc = stratus_stream_open(&sc, b->storage, b->cache, &b->stream, eb)))
        goto out_node;

    b->api.stream = b->stream;
    b->api.conf = conf;
    b->api.node_id = (int32_t)b->bc.node_id;
    b->api.auto_create_topics = b->bc.auto_create_topics;
    b->api.default_partitions = (int32_t)b->bc.num_partitions;
    b->api.max_request_bytes = (int64_t)b->bc.max_request_bytes;
    b->api.fetch_max_bytes = (int64_t)b->bc.fetch_max_bytes;
    memcpy(b->api.advertised_host, adv[0].host, sizeof b->api.advertised_host);
    b->api.advertised_host[sizeof b->api.advertised_host - 1] = 0;
    b->api.advertised_port = adv[0].port;
    if (!b->api.advertised_host[0] || strcmp(b->api.advertised_host, "0.0.0.0") == 0 ||
        strcmp(b->api.advertised_host, "::") == 0)
        gethostname(b->api.advertised_host, sizeof b->api.advertised_host - 1);
    {
        struct stratus_group_conf grc;
        stratus_group_conf_defaults(&grc);
        grc.initial_rebalance_delay_ms = b->gc.initial_rebalance_delay_ms;
        grc.min_session_timeout_ms = b->gc.min_session_timeout_ms;
        grc.max_session_timeout_ms = b->gc.max_session_timeout_ms;
        grc.offsets_retention_ms = b->gc.offsets_retention_ms;
        grc.retention_check_interval_ms = b->gc.offsets_retention_check_ms;
        grc.max_metadata_bytes = (int64_t)b->gc.max_metadata_bytes;
        grc.max_group_size = (int32_t)b->gc.max_size;
        if ((rc = stratus_group_open(&grc, b->stream, &b->groups, eb)))
            goto out_stream;
    }
    b->api.groups = b->groups;
    if (b->cluster) {
        if ((rc = stratus_node_attach(b->cluster, b->stream, b->groups, eb)))
            goto out_groups;
        b->api.cluster = b->cluster;
    }
    stratus_api_init(&b->api);

    memset(&nc, 0, sizeof nc);
    nc.nlisteners = nls;
    for (int i = 0; i < nls; i++) {
        memcpy(nc.listen_host[i], ls[i].host, sizeof nc.listen_host[i]);
        nc.listen_port[i] = ls[i].port;
    }
    nc.threads = (int)b->bc.network_threads;
    if (nc.threads <= 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        nc.threads = ncpu < 2 ? 2 : (int)ncpu;
    }
    nc.max_request_bytes = (int64_t)b->bc.max_request_bytes;
    nc.idle_ms = b->bc.idle_timeout_ms;
    nc.max_inflight = (int)b->bc.max_inflight;
    if ((rc = stratus_net_start(&nc, &b->api, &b->net, eb)))
        goto out_groups;
    /* A listener on port 0 advertises the port it got. */
    if (b->api.advertised_port == 0 && !b->bc.advertised_listeners)
        b->api.advertised_port = stratus_net_port(b->net, 0);
    LOG_INFO("broker",
             "started node_id=%d listener=%s:%d advertised=%s:%d cluster_id=%s storage=%s "
             "net_threads=%d sched_slice_us=%u",
             b->api.node_id, ls[0].host, stratus_net_port(b->net, 0), b->api.advertised_host,
             b->api.advertised_port, b->api.cluster_id, stratus_storage_name(b->storage),
             nc.threads, stratus_sched_latency_slice());
    struct stratus_observe_deps od = {b->stream, b->net, b->cache, &b->api, b->wc.size};
    if ((rc = stratus_observe_start(conf, &od, &b->obs, eb))) {
        stratus_broker_stop(b, 0);
        return rc;
    }
    *out = b;
    return 0;

out_groups:
    stratus_node_stop(b->cluster);
    stratus_group_close(b->groups);
out_stream:
    stratus_stream_close(b->stream);
out_node:
    stratus_node_close(b->cluster);
out_cache:
    stratus_cache_close(b->cache);
out_storage:
    stratus_storage_close(b->storage);
out_free:
    free_confs(b);
    free(b);
    return rc;
}

const struct stratus_param *stratus_broker_section_params(const char *section)
{
    static const struct {
        const char *name;
        const struct stratus_param *params;
    } secs[] = {{"broker", broker_params}, {"wal", wal_params},     {"index", index_params},
                {"upload", upload_params}, {"group", group_params},
                {"cluster", cluster_params}};
    for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++)
        if (strcmp(section, secs[i].name) == 0)
            return secs[i].params;
    if (strcmp(section, "metrics") == 0)
        return stratus_observe_params();
    return NULL;
}

int stratus_broker_metrics_port(const struct stratus_broker *b)
{
    return stratus_observe_port(b->obs);
}

int stratus_broker_port(const struct stratus_broker *b)
{
    return stratus_net_port(b->net, 0);
}

void stratus_broker_stop(struct stratus_broker *b, long timeout_ms)
{
    if (!b)
        return;
    if (timeout_ms < 0)
        timeout_ms = b->bc.shutdown_timeout_ms;
    LOG_INFO("broker", "shutting down timeout_ms=%ld", timeout_ms);
    stratus_observe_stop(b->obs);
    if (b->cluster) /* planned stop: hand every partition over first (no recovery needed) */
        stratus_node_drain(b->cluster, timeout_ms);
    stratus_group_drain(b->groups); /* parked JoinGroup/SyncGroup answered, commits durable */
    stratus_net_shutdown(b->net, timeout_ms);
    stratus_node_stop(b->cluster); /* no more claims or moves; its hooks stay usable */
    stratus_group_close(b->groups);
    stratus_stream_close(b->stream);
    stratus_node_close(b->cluster); /* unregisters: anything still here fails over */
    stratus_net_free(b->net);
    if (b->bc.huge_frames) {
        struct stratus_hugeframes_stats hs;
        stratus_hugeframes_stats(&hs);
        stratus_hugeframes_stop();
        if (hs.reserved)
            LOG_INFO("broker", "huge frames: %llu MiB of the region used, %llu allocations "
                     "it could not take", (unsigned long long)(hs.used >> 20),
                     (unsigned long long)hs.fallbacks);
    }
    stratus_cache_close(b->cache);
    stratus_storage_close(b->storage);
    free_confs(b);
    free(b);
    LOG_INFO("broker", "stopped");
}
