/* stratus-bench.c - a Kafka producer/consumer benchmark on librdkafka, the user-facing
 * equivalent of Kafka's producer-perf-test and consumer-perf-test, for Stratus or any broker.
 *
 * Modes:
 *   produce   N producer threads, each with its own rd_kafka_t, send records of a fixed size
 *             flat out or at a fixed aggregate rate, for a duration or a count; reports msgs/s,
 *             MB/s and produce latency (produce() call -> delivery report).
 *   consume   N consumer threads, each with its own rd_kafka_t and a share of the partitions
 *             read with the simple consumer (consume_start per partition, no group.id, no
 *             group protocol); reports msgs/s, MB/s and end-to-end latency (send time
 *             written into the payload -> the consumer's poll returns it).
 *   metadata  prints the number of topics and partitions the broker reports.
 * Topics: -t NAME is one topic; with --topics K the topics are NAME-0 .. NAME-(K-1) and records
 * go round-robin over every partition of every topic. --create creates them first through the
 * admin API (CreateTopics) with -p partitions each; "already exists" is fine.
 *
 * Payload format (every record this tool produces; little-endian):
 *   bytes 0..3  magic "SBN1"
 *   bytes 4..11 send time, CLOCK_MONOTONIC microseconds (same-machine end-to-end latency)
 *   the rest    filler bytes
 * Records without the magic are counted but give no end-to-end latency.
 *
 * Output: a progress line on stderr once a second (unless -q), a human summary on stderr, and a
 * final single line on stdout: `RESULT {json}` with every figure, for scripts (tests/bench/run.sh);
 * client_cpu_s there is this process's own CPU time (all threads) from start to the report.
 * Latencies are kept in a log-linear histogram (32 sub-buckets per power of two, <= 3% error);
 * max is exact.
 *
 * Not a test: it reports numbers and exits 0 unless the run itself failed (errors, nothing
 * delivered). SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAGIC "SBN1"
#define BENCH_HDR 12
#define HIST_SUB 64
#define HIST_N (HIST_SUB + 58 * 32)
#define MAX_X 64
#define CONSUME_WAIT_MS 2 /* rd_kafka_consume_batch_queue timeout: see consumer_main */

/* ---- latency histogram --------------------------------------------------------------- */
struct hist {
    uint64_t n, max, sum;
    uint64_t b[HIST_N];
};

static int hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - 5; /* v >> shift is in [32, 63] */
    int idx = HIST_SUB + (shift - 1) * 32 + (int)((v >> shift) - 32);
    return idx < HIST_N ? idx : HIST_N - 1;
}

static uint64_t hist_value(int idx) /* the middle of the bucket */
{
    if (idx < HIST_SUB)
        return (uint64_t)idx;
    int k = idx - HIST_SUB;
    int shift = k / 32 + 1;
    uint64_t m = (uint64_t)(k % 32 + 32);
    return (m << shift) + ((1ull << shift) >> 1);
}

static void hist_add(struct hist *h, uint64_t v)
{
    h->n++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
    h->b[hist_index(v)]++;
}

static void hist_merge(struct hist *dst, const struct hist *src)
{
    dst->n += src->n;
    dst->sum += src->sum;
    if (src->max > dst->max)
        dst->max = src->max;
    for (int i = 0; i < HIST_N; i++)
        dst->b[i] += src->b[i];
}

static uint64_t hist_pct(const struct hist *h, double p)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)((double)h->n * p / 100.0 + 0.999999);
    if (want < 1)
        want = 1;
    uint64_t seen = 0;
    for (int i = 0; i < HIST_N; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t v = hist_value(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

/* ---- options --------------------------------------------------------------------------- */
enum mode { MODE_PRODUCE, MODE_CONSUME, MODE_METADATA };

struct opts {
    enum mode mode;
    const char *bootstrap, *topic, *acks, *compression, *from, *tag, *stats;
    int topics, partitions, threads, linger_ms, batch_size, create, eof, quiet, split;
    int passes; /* consume --eof: read every partition this many times over */
    size_t size;
    double rate_msgs, duration;
    int64_t count;
    const char *xkey[MAX_X], *xval[MAX_X];
    int nx;
};

static struct opts O = {
    .bootstrap = "127.0.0.1:9092",
    .topic = "bench",
    .acks = "all",
    .compression = "none",
    .from = "end",
    .tag = "",
    .topics = 0,
    .partitions = 8,
    .passes = 1,
    .threads = 1,
    .linger_ms = 5,
    .batch_size = 1 << 20,
    .size = 1024,
    .count = -1,
};

static volatile sig_atomic_t g_stop;
static atomic_int g_errors;
static char g_first_error[256];
static pthread_mutex_t g_err_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* This process's CPU seconds so far, user + system, every thread (librdkafka's included): the
 * load generator's own cost, which shares the machine's cores with the broker. */
static double self_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void note_error(const char *fmt, ...)
{
    atomic_fetch_add(&g_errors, 1);
    pthread_mutex_lock(&g_err_mu);
    if (!g_first_error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g_first_error, sizeof g_first_error, fmt, ap);
        va_end(ap);
        fprintf(stderr, "stratus-bench: %s\n", g_first_error);
    }
    pthread_mutex_unlock(&g_err_mu);
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "stratus-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void conf_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[256];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK)
        die("config %s=%s: %s", k, v, err);
}

static rd_kafka_conf_t *base_conf(void)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    conf_set(c, "bootstrap.servers", O.bootstrap);
    conf_set(c, "client.id", "stratus-bench");
    return c;
}

/* --stats FILE: librdkafka's statistics (every 1 s unless -X statistics.interval.ms says
 * otherwise), one JSON object per line, from every client of this run. Its per-broker
 * "rtt" (request sent -> response read), "int_latency" (produce() -> into a request) and
 * "outbuf_latency" windows split a produce latency between the client and the broker. */
static FILE *g_stats;
static pthread_mutex_t g_stats_mu = PTHREAD_MUTEX_INITIALIZER;

static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    (void)opaque;
    pthread_mutex_lock(&g_stats_mu);
    fwrite(json, 1, len, g_stats);
    fputc('\n', g_stats);
    fflush(g_stats);
    pthread_mutex_unlock(&g_stats_mu);
    return 0; /* librdkafka frees json */
}

static void apply_extra(rd_kafka_conf_t *c)
{
    if (g_stats) {
        conf_set(c, "statistics.interval.ms", "1000");
        rd_kafka_conf_set_stats_cb(c, stats_cb);
    }
    for (int i = 0; i < O.nx; i++)
        conf_set(c, O.xkey[i], O.xval[i]);
}

/* ---- topics ---------------------------------------------------------------------------- */
static int g_ntopics;
static char **g_topic_names;

static void topics_init(void)
{
    g_ntopics = O.topics > 0 ? O.topics : 1;
    g_topic_names = calloc((size_t)g_ntopics, sizeof *g_topic_names);
    for (int i = 0; i < g_ntopics; i++) {
        size_t n = strlen(O.topic) + 16;
        g_topic_names[i] = malloc(n);
        if (O.topics > 0)
            snprintf(g_topic_names[i], n, "%s-%d", O.topic, i);
        else
            snprintf(g_topic_names[i], n, "%s", O.topic);
    }
}

/* Creates every topic with O.partitions partitions; an existing topic is fine. */
static void topics_create(void)
{
    char err[256];
    rd_kafka_conf_t *c = base_conf();
    apply_extra(c);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!rk)
        die("rd_kafka_new: %s", err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    const int chunk = 50; /* topics per CreateTopics request */
    int created = 0, existed = 0;
    for (int at = 0; at < g_ntopics; at += chunk) {
        int n = g_ntopics - at < chunk ? g_ntopics - at : chunk;
        rd_kafka_NewTopic_t **nt = calloc((size_t)n, sizeof *nt);
        for (int i = 0; i < n; i++) {
            nt[i] = rd_kafka_NewTopic_new(g_topic_names[at + i], O.partitions, 1, err, sizeof err);
            if (!nt[i])
                die("NewTopic %s: %s", g_topic_names[at + i], err);
        }
        rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        rd_kafka_AdminOptions_set_operation_timeout(ao, 60000, err, sizeof err);
        rd_kafka_AdminOptions_set_request_timeout(ao, 120000, err, sizeof err);
        rd_kafka_CreateTopics(rk, nt, (size_t)n, ao, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 180000);
        if (!ev)
            die("CreateTopics: no answer within 180 s");
        if (rd_kafka_event_error(ev))
            die("CreateTopics: %s (the broker may not support it: create topics another way)",
                rd_kafka_event_error_string(ev));
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t nres = 0;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &nres);
        for (size_t i = 0; i < nres; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
            if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                existed++;
            else if (e)
                die("create topic %s: %s", rd_kafka_topic_result_name(tr[i]),
                    rd_kafka_topic_result_error_string(tr[i]) ? rd_kafka_topic_result_error_string(tr[i])
                                                              : rd_kafka_err2str(e));
            else
                created++;
        }
        rd_kafka_event_destroy(ev);
        rd_kafka_AdminOptions_destroy(ao);
        rd_kafka_NewTopic_destroy_array(nt, (size_t)n);
        free(nt);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    if (!O.quiet)
        fprintf(stderr, "stratus-bench: topics created=%d existed=%d partitions=%d\n", created,
                existed, O.partitions);
}

/* Partition count of every topic, from metadata (waits up to 30 s for all topics to appear).
 * Returns the total number of partitions; fills counts[i]. */
static int topics_partitions(int *counts)
{
    char err[256];
    rd_kafka_conf_t *c = base_conf();
    apply_extra(c);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!rk)
        die("rd_kafka_new: %s", err);
    uint64_t deadline = mono_us() + 30 * 1000000ull;
    int total = 0;
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
        int missing = 0;
        total = 0;
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (int i = 0; i < g_ntopics; i++) {
                counts[i] = 0;
                for (int t = 0; t < md->topic_cnt; t++)
                    if (!strcmp(md->topics[t].topic, g_topic_names[i]) && !md->topics[t].err)
                        counts[i] = md->topics[t].partition_cnt;
                if (counts[i] == 0)
                    missing++;
                total += counts[i];
            }
            rd_kafka_metadata_destroy(md);
            if (!missing)
                break;
        }
        if (mono_us() > deadline || g_stop)
            die("metadata: %s; %d of %d topics missing (create them with --create)",
                e ? rd_kafka_err2str(e) : "ok", missing, g_ntopics);
        usleep(200000);
    }
    rd_kafka_destroy(rk);
    return total;
}

/* ---- shared progress --------------------------------------------------------------------- */
struct worker {
    pthread_t tid;
    int id;
    rd_kafka_t *rk;
    pthread_mutex_t mu; /* guards the histograms; taken by the worker and the reporter */
    struct hist lat, ilat;
    atomic_llong msgs, bytes; /* delivered (produce) or consumed (consume) */
    atomic_llong sent;
    long long failed;
    /* partitions this worker owns: (topic index, partition) */
    int *ptopic, *ppart;
    int nparts;
    int eof_left;
    int joined;
    uint64_t first_us, last_us; /* consume: when its first and last records came (read after join) */
    double rate; /* msgs/s for this worker, 0 = flat out */
    int64_t quota; /* messages to send, -1 = unlimited */
};

static struct worker *W;
static uint64_t g_t0;

/* ---- produce ----------------------------------------------------------------------------- */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct worker *w = opaque;
    (void)rk;
    if (m->err) {
        w->failed++;
        note_error("delivery failed: %s", rd_kafka_err2str(m->err));
        return;
    }
    uint64_t now = mono_us();
    uint64_t sent = (uint64_t)(uintptr_t)m->_private;
    pthread_mutex_lock(&w->mu);
    hist_add(&w->lat, now - sent);
    hist_add(&w->ilat, now - sent);
    pthread_mutex_unlock(&w->mu);
    atomic_fetch_add(&w->msgs, 1);
    atomic_fetch_add(&w->bytes, (long long)m->len);
}

static void *producer_main(void *arg)
{
    struct worker *w = arg;
    char *buf = malloc(O.size < BENCH_HDR ? BENCH_HDR : O.size);
    for (size_t i = 0; i < O.size; i++)
        buf[i] = (char)('a' + (i * 7 + (size_t)w->id) % 26);
    rd_kafka_topic_t **rkt = calloc((size_t)g_ntopics, sizeof *rkt);
    for (int i = 0; i < g_ntopics; i++)
        rkt[i] = rd_kafka_topic_new(w->rk, g_topic_names[i], NULL);
    uint64_t start = mono_us();
    int64_t n = 0;
    int rr = w->id; /* round-robin position over (topic, partition) */
    while (!g_stop && (w->quota < 0 || n < w->quota)) {
        if (w->rate > 0) {
            /* send what is due by now, then wait (serving delivery reports) until the next */
            double due = (double)(mono_us() - start) * w->rate / 1e6;
            if ((double)n >= due) {
                double next_us = ((double)n + 1) * 1e6 / w->rate;
                int64_t wait = (int64_t)(start + (uint64_t)next_us) - (int64_t)mono_us();
                if (wait > 1000)
                    rd_kafka_poll(w->rk, (int)(wait / 1000));
                else if (wait > 0) {
                    rd_kafka_poll(w->rk, 0);
                    struct timespec ts = {0, wait * 1000};
                    nanosleep(&ts, NULL);
                }
                continue;
            }
        }
        int k = rr % w->nparts;
        uint64_t now = mono_us();
        memcpy(buf, BENCH_MAGIC, 4);
        memcpy(buf + 4, &now, 8);
        int r = rd_kafka_produce(rkt[w->ptopic[k]], w->ppart[k], RD_KAFKA_MSG_F_COPY, buf, O.size,
                                 NULL, 0, (void *)(uintptr_t)now);
        if (r == -1) {
            rd_kafka_resp_err_t e = rd_kafka_last_error();
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(w->rk, 1);
                continue;
            }
            note_error("produce: %s", rd_kafka_err2str(e));
            break;
        }
        rr++;
        n++;
        atomic_fetch_add(&w->sent, 1);
        rd_kafka_poll(w->rk, 0);
    }
    /* wait for every outstanding delivery report (at most 60 s) */
    uint64_t deadline = mono_us() + 60000000ull;
    while (rd_kafka_outq_len(w->rk) > 0 && mono_us() < deadline)
        rd_kafka_poll(w->rk, 50);
    if (rd_kafka_outq_len(w->rk) > 0)
        note_error("%d messages still undelivered after 60 s", rd_kafka_outq_len(w->rk));
    for (int i = 0; i < g_ntopics; i++)
        rd_kafka_topic_destroy(rkt[i]);
    free(rkt);
    free(buf);
    return NULL;
}

static rd_kafka_t *make_producer(struct worker *w)
{
    char err[256], v[32];
    rd_kafka_conf_t *c = base_conf();
    conf_set(c, "acks", O.acks);
    snprintf(v, sizeof v, "%d", O.linger_ms);
    conf_set(c, "linger.ms", v);
    snprintf(v, sizeof v, "%d", O.batch_size);
    conf_set(c, "batch.size", v);
    conf_set(c, "compression.codec", O.compression);
    snprintf(v, sizeof v, "%d", O.batch_size > 1000000 ? O.batch_size + 4096 : 1000000);
    conf_set(c, "message.max.bytes", v);
    conf_set(c, "enable.idempotence", "false");
    apply_extra(c);
    rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
    rd_kafka_conf_set_opaque(c, w);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!rk)
        die("rd_kafka_new(producer): %s", err);
    return rk;
}

/* ---- consume ----------------------------------------------------------------------------- */
/* The simple (legacy) consumer: rd_kafka_consume_start_queue() per partition into one queue
 * per worker, no group.id and no group protocol, which the mock and Stratus both serve. */
static void *consumer_main(void *arg)
{
    struct worker *w = arg;
    int64_t start_off = RD_KAFKA_OFFSET_END;
    if (!strcmp(O.from, "beginning"))
        start_off = RD_KAFKA_OFFSET_BEGINNING;
    else if (!strncmp(O.from, "tail:", 5))
        start_off = RD_KAFKA_OFFSET_TAIL(atoll(O.from + 5));
    rd_kafka_queue_t *q = rd_kafka_queue_new(w->rk);
    rd_kafka_topic_t **rkt = calloc((size_t)g_ntopics, sizeof *rkt);
    for (int k = 0; k < w->nparts; k++) {
        int t = w->ptopic[k];
        if (!rkt[t])
            rkt[t] = rd_kafka_topic_new(w->rk, g_topic_names[t], NULL);
        if (rd_kafka_consume_start_queue(rkt[t], w->ppart[k], start_off, q) == -1) {
            note_error("consume_start %s/%d: %s", g_topic_names[t], w->ppart[k],
                       rd_kafka_err2str(rd_kafka_last_error()));
            goto out;
        }
    }
    w->eof_left = w->nparts;
    int passes_left = O.passes - 1;
    rd_kafka_message_t *batch[1024];
    for (;;) {
        if (O.eof && w->eof_left <= 0 && passes_left > 0) {
            /* the next pass: every partition again from the start offset */
            passes_left--;
            for (int k = 0; k < w->nparts; k++) {
                rd_kafka_topic_t *t = rkt[w->ptopic[k]];
                rd_kafka_consume_stop(t, w->ppart[k]);
                if (rd_kafka_consume_start_queue(t, w->ppart[k], start_off, q) == -1) {
                    note_error("consume_start %s/%d: %s", g_topic_names[w->ptopic[k]],
                               w->ppart[k], rd_kafka_err2str(rd_kafka_last_error()));
                    goto out;
                }
            }
            w->eof_left = w->nparts;
        }
        if (g_stop || (w->quota >= 0 && atomic_load(&w->msgs) >= w->quota) ||
            (O.eof && w->eof_left <= 0))
            break;
        /* librdkafka returns a batch only once it is full (1024) or the timeout expires: the
         * last messages of a pass (or of a slow tail) wait out the whole timeout, which at
         * 100 ms put 0-7 steps of 100 ms into a 1.5 s workload-2c read (1.51-2.21 s, the
         * same broker and data) and that much into the e2e latency of a slow tail */
        ssize_t n = rd_kafka_consume_batch_queue(q, CONSUME_WAIT_MS, batch, 1024);
        if (n < 0) {
            note_error("consume: %s", rd_kafka_err2str(rd_kafka_last_error()));
            break;
        }
        uint64_t now = mono_us();
        long long nm = 0, nb = 0;
        pthread_mutex_lock(&w->mu);
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = batch[i];
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                w->eof_left--;
            } else if (m->err) {
                note_error("consume: %s", rd_kafka_message_errstr(m));
            } else {
                if (m->len >= BENCH_HDR && !memcmp(m->payload, BENCH_MAGIC, 4)) {
                    uint64_t sent;
                    memcpy(&sent, (const char *)m->payload + 4, 8);
                    if (sent <= now) {
                        hist_add(&w->lat, now - sent);
                        hist_add(&w->ilat, now - sent);
                    }
                }
                nm++;
                nb += (long long)m->len;
            }
            rd_kafka_message_destroy(m);
        }
        pthread_mutex_unlock(&w->mu);
        if (nm) {
            if (!w->first_us)
                w->first_us = now;
            w->last_us = now;
        }
        atomic_fetch_add(&w->msgs, nm);
        atomic_fetch_add(&w->bytes, nb);
    }
out:
    for (int k = 0; k < w->nparts; k++)
        if (rkt[w->ptopic[k]])
            rd_kafka_consume_stop(rkt[w->ptopic[k]], w->ppart[k]);
    for (int t = 0; t < g_ntopics; t++)
        if (rkt[t])
            rd_kafka_topic_destroy(rkt[t]);
    free(rkt);
    rd_kafka_queue_destroy(q);
    return NULL;
}

static rd_kafka_t *make_consumer(void)
{
    char err[256];
    rd_kafka_conf_t *c = base_conf();
    conf_set(c, "enable.partition.eof", O.eof ? "true" : "false");
    /* --eof: a partition's end is reported only by a fetch at its end, which the broker
     * holds for fetch.wait.max.ms (as Kafka does); at 100 ms each pass of workload 2c's read
     * ended with that wait (the mock answers at once), measured: 0.56-0.60 GB/s at 100 ms
     * against 1.33-1.53 GB/s at 10 ms on the same broker and data */
    conf_set(c, "fetch.wait.max.ms", O.eof ? "10" : "100");
    apply_extra(c);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!rk)
        die("rd_kafka_new(consumer): %s", err);
    return rk;
}

/* ---- metadata mode ------------------------------------------------------------------------- */
static int run_metadata(void)
{
    char err[256];
    rd_kafka_conf_t *c = base_conf();
    apply_extra(c);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!rk)
        die("rd_kafka_new: %s", err);
    uint64_t t0 = mono_us();
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, 30000);
    if (e)
        die("metadata: %s", rd_kafka_err2str(e));
    long parts = 0;
    for (int t = 0; t < md->topic_cnt; t++)
        parts += md->topics[t].partition_cnt;
    double ms = (double)(mono_us() - t0) / 1000.0;
    printf("RESULT {\"mode\":\"metadata\",\"tag\":\"%s\",\"brokers\":%d,\"topics\":%d,"
           "\"partitions\":%ld,\"ms\":%.1f}\n",
           O.tag, md->broker_cnt, md->topic_cnt, parts, ms);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return 0;
}

/* ---- main ------------------------------------------------------------------------------- */
static void usage(void)
{
    fprintf(stderr,
            "usage: stratus-bench produce|consume|metadata [options]\n"
            "  -b HOST:PORT        bootstrap (127.0.0.1:9092)\n"
            "  -t TOPIC            topic, or the prefix with --topics (bench)\n"
            "  --topics K          K topics named TOPIC-0..TOPIC-(K-1)\n"
            "  -p N                partitions per topic for --create (8)\n"
            "  --create            create the topics first (admin API)\n"
            "  -n N                producer / consumer threads, each its own client (1)\n"
            "  --split             producers divide the partitions between them (default:\n"
            "                      each producer sends to every partition)\n"
            "  -s BYTES            record size (1024)\n"
            "  --acks all|1|0      (all)\n"
            "  --linger MS         linger.ms (5)\n"
            "  --batch BYTES       batch.size (1048576)\n"
            "  --compression C     none|gzip|snappy|lz4|zstd (none)\n"
            "  --rate MSGS/S       fixed aggregate rate; --mbps MB/S the same in 10^6 B/s;\n"
            "                      none = flat out\n"
            "  -d SECONDS          duration (10 unless -c)\n"
            "  -c COUNT            records in total (produce) / to read (consume)\n"
            "  --from end|beginning|tail:N   consume start (end)\n"
            "  --eof               consume: stop when every partition reaches its end\n"
            "  --passes N          consume --eof: read every partition N times over (1)\n"
            "  -X KEY=VALUE        any librdkafka property (repeatable)\n"
            "  --tag NAME          copied into the RESULT line\n"
            "  --stats FILE        append librdkafka's statistics JSON (1/s) to FILE\n"
            "  -q                  no progress lines\n");
    exit(2);
}

static void parse(int argc, char **argv)
{
    if (argc < 2)
        usage();
    if (!strcmp(argv[1], "produce"))
        O.mode = MODE_PRODUCE;
    else if (!strcmp(argv[1], "consume"))
        O.mode = MODE_CONSUME;
    else if (!strcmp(argv[1], "metadata"))
        O.mode = MODE_METADATA;
    else
        usage();
    double mbps = 0;
    static const struct option lo[] = {
        {"topics", 1, 0, 'T'},   {"create", 0, 0, 'C'}, {"acks", 1, 0, 'a'},
        {"linger", 1, 0, 'l'},   {"batch", 1, 0, 'B'},  {"compression", 1, 0, 'z'},
        {"rate", 1, 0, 'r'},     {"mbps", 1, 0, 'm'},   {"from", 1, 0, 'f'},
        {"eof", 0, 0, 'e'},      {"tag", 1, 0, 'g'},    {"help", 0, 0, 'h'},
        {"split", 0, 0, 'S'},    {"stats", 1, 0, 'j'},  {"passes", 1, 0, 'P'},
        {0, 0, 0, 0}};
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "b:t:p:n:s:d:c:X:qh", lo, NULL)) != -1) {
        switch (ch) {
        case 'b': O.bootstrap = optarg; break;
        case 't': O.topic = optarg; break;
        case 'T': O.topics = atoi(optarg); break;
        case 'p': O.partitions = atoi(optarg); break;
        case 'C': O.create = 1; break;
        case 'n': O.threads = atoi(optarg); break;
        case 's': O.size = (size_t)atoll(optarg); break;
        case 'a': O.acks = optarg; break;
        case 'l': O.linger_ms = atoi(optarg); break;
        case 'B': O.batch_size = atoi(optarg); break;
        case 'z': O.compression = optarg; break;
        case 'r': O.rate_msgs = atof(optarg); break;
        case 'm': mbps = atof(optarg); break;
        case 'd': O.duration = atof(optarg); break;
        case 'c': O.count = atoll(optarg); break;
        case 'f': O.from = optarg; break;
        case 'e': O.eof = 1; break;
        case 'P': O.passes = atoi(optarg); break;
        case 'S': O.split = 1; break;
        case 'g': O.tag = optarg; break;
        case 'j': O.stats = optarg; break;
        case 'q': O.quiet = 1; break;
        case 'X': {
            char *eq = strchr(optarg, '=');
            if (!eq || O.nx >= MAX_X)
                usage();
            *eq = 0;
            O.xkey[O.nx] = optarg;
            O.xval[O.nx++] = eq + 1;
            break;
        }
        default: usage();
        }
    }
    if (O.threads < 1 || O.partitions < 1 || O.size < BENCH_HDR)
        die("need -n >= 1, -p >= 1, -s >= %d", BENCH_HDR);
    if (O.passes < 1 || (O.passes > 1 && !O.eof))
        die("--passes needs N >= 1, and --eof");
    if (mbps > 0)
        O.rate_msgs = mbps * 1e6 / (double)O.size;
    if (O.stats && !(g_stats = fopen(O.stats, "a")))
        die("--stats %s: %s", O.stats, strerror(errno));
    if (O.duration <= 0 && O.count < 0 && !O.eof)
        O.duration = 10;
}

static void print_progress(double secs, long long dmsgs, long long dbytes, double dt,
                           const struct hist *ih, long long total)
{
    fprintf(stderr,
            "[%6.1fs] %10.0f msgs/s %8.2f MB/s  lat p50 %.2f p99 %.2f max %.2f ms  total %lld\n",
            secs, (double)dmsgs / dt, (double)dbytes / dt / 1e6, (double)hist_pct(ih, 50) / 1e3,
            (double)hist_pct(ih, 99) / 1e3, (double)ih->max / 1e3, total);
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    topics_init();
    if (O.mode == MODE_METADATA)
        return run_metadata();
    if (O.create)
        topics_create();
    int *counts = calloc((size_t)g_ntopics, sizeof *counts);
    int total_parts = topics_partitions(counts);

    /* deal (topic, partition) pairs round-robin to the workers; a producer sends to all of
     * them (each producer covers every partition), a consumer owns its share */
    int nw = O.threads;
    if ((O.mode == MODE_CONSUME || O.split) && nw > total_parts)
        nw = total_parts;
    W = calloc((size_t)nw, sizeof *W);
    for (int i = 0; i < nw; i++) {
        struct worker *w = &W[i];
        w->id = i;
        pthread_mutex_init(&w->mu, NULL);
        w->ptopic = calloc((size_t)total_parts, sizeof(int));
        w->ppart = calloc((size_t)total_parts, sizeof(int));
        w->quota = -1;
        if (O.count >= 0)
            w->quota = O.count / nw + (i < O.count % nw ? 1 : 0);
        w->rate = O.rate_msgs > 0 ? O.rate_msgs / nw : 0;
    }
    /* interleave partitions over topics so consecutive records hit different topics */
    int maxp = 0;
    for (int t = 0; t < g_ntopics; t++)
        if (counts[t] > maxp)
            maxp = counts[t];
    int k = 0;
    for (int p = 0; p < maxp; p++)
        for (int t = 0; t < g_ntopics; t++) {
            if (p >= counts[t])
                continue;
            if (O.mode == MODE_PRODUCE && !O.split) {
                for (int i = 0; i < nw; i++) {
                    W[i].ptopic[W[i].nparts] = t;
                    W[i].ppart[W[i].nparts++] = p;
                }
            } else {
                struct worker *w = &W[k % nw];
                w->ptopic[w->nparts] = t;
                w->ppart[w->nparts++] = p;
            }
            k++;
        }
    for (int i = 0; i < nw; i++)
        W[i].rk = O.mode == MODE_PRODUCE ? make_producer(&W[i]) : make_consumer();

    g_t0 = mono_us();
    for (int i = 0; i < nw; i++)
        pthread_create(&W[i].tid, NULL, O.mode == MODE_PRODUCE ? producer_main : consumer_main,
                       &W[i]);

    /* reporter: progress each second; stops the run at the deadline */
    uint64_t deadline = O.duration > 0 ? g_t0 + (uint64_t)(O.duration * 1e6) : UINT64_MAX;
    long long last_msgs = 0, last_bytes = 0;
    uint64_t last_t = g_t0;
    uint64_t first_t = 0, last_msg_t = 0; /* first and last second with traffic */
    int running = nw;
    while (running > 0) {
        usleep(100000);
        uint64_t now = mono_us();
        if (now >= deadline)
            g_stop = 1;
        long long msgs = 0, bytes = 0, sent = 0;
        for (int i = 0; i < nw; i++) {
            msgs += atomic_load(&W[i].msgs);
            bytes += atomic_load(&W[i].bytes);
            sent += atomic_load(&W[i].sent);
        }
        if (msgs > 0 && !first_t)
            first_t = now;
        if (msgs != last_msgs)
            last_msg_t = now;
        /* the run is over when every worker's quota is met (consume -c) */
        if (O.mode == MODE_CONSUME && O.count >= 0 && msgs >= O.count)
            g_stop = 1;
        if (now - last_t >= 1000000) {
            struct hist ih;
            memset(&ih, 0, sizeof ih);
            for (int i = 0; i < nw; i++) {
                pthread_mutex_lock(&W[i].mu);
                hist_merge(&ih, &W[i].ilat);
                memset(&W[i].ilat, 0, sizeof W[i].ilat);
                pthread_mutex_unlock(&W[i].mu);
            }
            if (!O.quiet)
                print_progress((double)(now - g_t0) / 1e6, msgs - last_msgs, bytes - last_bytes,
                               (double)(now - last_t) / 1e6, &ih, msgs);
            last_msgs = msgs;
            last_bytes = bytes;
            last_t = now;
        }
        (void)sent;
        /* are the workers done? (they exit on g_stop, quota or EOF) */
        running = 0;
        for (int i = 0; i < nw; i++) {
            if (W[i].joined)
                continue;
            if (pthread_tryjoin_np(W[i].tid, NULL) == 0)
                W[i].joined = 1;
            else
                running++;
        }
    }
    uint64_t t_end = mono_us();
    struct hist lat;
    memset(&lat, 0, sizeof lat);
    long long msgs = 0, bytes = 0, failed = 0;
    for (int i = 0; i < nw; i++) {
        hist_merge(&lat, &W[i].lat);
        msgs += atomic_load(&W[i].msgs);
        bytes += atomic_load(&W[i].bytes);
        failed += W[i].failed;
        rd_kafka_destroy(W[i].rk);
    }
    /* elapsed: for produce the wall time of the run (includes draining); for consume from the
     * first batch of records to the last, as the workers timed them (a consumer waiting for
     * data before or after the run does not count its idle time), or at the reporter's 0.1 s
     * resolution when there was only one batch */
    double secs = (double)(t_end - g_t0) / 1e6;
    uint64_t c_first = 0, c_last = 0;
    for (int i = 0; O.mode == MODE_CONSUME && i < nw; i++) {
        if (W[i].first_us && (!c_first || W[i].first_us < c_first))
            c_first = W[i].first_us;
        if (W[i].last_us > c_last)
            c_last = W[i].last_us;
    }
    if (O.mode == MODE_CONSUME && c_first && c_last > c_first)
        secs = (double)(c_last - c_first) / 1e6;
    else if (O.mode == MODE_CONSUME && first_t && last_msg_t > first_t)
        secs = (double)(last_msg_t - first_t) / 1e6 + 0.1;
    if (secs <= 0)
        secs = 1e-6;
    double mps = (double)msgs / secs, mbs = (double)bytes / secs / 1e6;
    const char *latname = O.mode == MODE_PRODUCE ? "produce" : "e2e";
    fprintf(stderr,
            "stratus-bench %s: %lld msgs, %.1f MB in %.2f s = %.0f msgs/s, %.2f MB/s; "
            "%s latency ms p50 %.2f p99 %.2f p99.9 %.2f max %.2f; errors %d\n",
            O.mode == MODE_PRODUCE ? "produce" : "consume", msgs, (double)bytes / 1e6, secs, mps,
            mbs, latname, (double)hist_pct(&lat, 50) / 1e3, (double)hist_pct(&lat, 99) / 1e3,
            (double)hist_pct(&lat, 99.9) / 1e3, (double)lat.max / 1e3, atomic_load(&g_errors));
    printf("RESULT {\"mode\":\"%s\",\"tag\":\"%s\",\"topics\":%d,\"partitions\":%d,"
           "\"threads\":%d,\"size\":%zu,\"acks\":\"%s\",\"linger_ms\":%d,\"batch_size\":%d,"
           "\"compression\":\"%s\",\"target_msgs_s\":%.1f,\"msgs\":%lld,\"bytes\":%lld,"
           "\"secs\":%.3f,\"msgs_s\":%.1f,\"mb_s\":%.3f,\"lat_kind\":\"%s\",\"lat_n\":%" PRIu64
           ",\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
           "\"failed\":%lld,\"errors\":%d,\"client_cpu_s\":%.3f}\n",
           O.mode == MODE_PRODUCE ? "produce" : "consume", O.tag, g_ntopics, total_parts, nw,
           O.size, O.acks, O.linger_ms, O.batch_size, O.compression, O.rate_msgs, msgs, bytes, secs,
           mps, mbs, latname, lat.n, (double)hist_pct(&lat, 50) / 1e3,
           (double)hist_pct(&lat, 99) / 1e3, (double)hist_pct(&lat, 99.9) / 1e3,
           (double)lat.max / 1e3, failed, atomic_load(&g_errors), self_cpu_s());
    fflush(stdout);
    for (int i = 0; i < nw; i++) {
        free(W[i].ptopic);
        free(W[i].ppart);
        pthread_mutex_destroy(&W[i].mu);
    }
    free(W);
    free(counts);
    for (int i = 0; i < g_ntopics; i++)
        free(g_topic_names[i]);
    free(g_topic_names);
    return msgs > 0 ? 0 : 1;
}
