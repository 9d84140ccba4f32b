/* metrics.c - the metric registry (see metrics.h): a mutex-guarded list and hash for
 * registration and rendering, atomic values for updates, collectors called at render time.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "metrics/metrics.h"

#include "util/alloc.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const int64_t stratus_metrics_bucket_us[STRATUS_METRICS_NBUCKETS] = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
static const char *const bucket_le[STRATUS_METRICS_NBUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",   "0.1",     "0.25",   "0.5",   "1",      "2.5",   "5",    "10"};

struct metric_hist {
    _Atomic uint64_t buckets[STRATUS_METRICS_NBUCKETS + 1]; /* last: above every bound */
    _Atomic int64_t sum_us;
};

struct stratus_metric {
    char *name; /* full name, labels included */
    char *help;
    int type; /* STRATUS_METRIC_COUNTER, _GAUGE or _HISTOGRAM */
    _Atomic int64_t value;
    struct metric_hist *hist;         /* histograms only */
    struct stratus_metric *next;      /* registry list */
    struct stratus_metric *hash_next; /* hash chain */
};

#define METRICS_HASH 1024

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stratus_metric *metrics_head; /* guarded by metrics_lock; entries never freed */
static struct stratus_metric *metrics_hash[METRICS_HASH];
static size_t metrics_count;

struct collector {
    stratus_metrics_collect_fn *fn;
    void *arg;
    struct collector *next;
};
/* Held while collectors run and while the list changes: remove() waits for a running render. */
static pthread_mutex_t collectors_lock = PTHREAD_MUTEX_INITIALIZER;
static struct collector *collectors;

static uint32_t metrics_hash_of(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h % METRICS_HASH;
}

static int metrics_name_ok(const char *name)
{
    const char *p = name;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == ':'))
        return 0;
    for (p++; *p && *p != '{'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == ':'))
            return 0;
    if (*p == '{') {
        size_t n = strlen(p);
        if (n < 2 || p[n - 1] != '}')
            return 0;
    }
    return 1;
}

static struct stratus_metric *metrics_lookup_locked(const char *name, uint32_t h)
{
    for (struct stratus_metric *m = metrics_hash[h]; m; m = m->hash_next)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

struct stratus_metric *stratus_metrics_register(int type, const char *name, const char *help)
{
    struct stratus_metric *m;
    uint32_t h;

    if (!name ||
        (type != STRATUS_METRIC_COUNTER && type != STRATUS_METRIC_GAUGE &&
         type != STRATUS_METRIC_HISTOGRAM) ||
        !metrics_name_ok(name))
        return NULL;
    h = metrics_hash_of(name);
    pthread_mutex_lock(&metrics_lock);
    m = metrics_lookup_locked(name, h);
    if (m) {
        if (m->type != type)
            m = NULL;
        goto out_unlock;
    }
    m = xcalloc(1, sizeof *m);
    m->name = xstrdup(name);
    m->help = xstrdup(help ? help : "");
    m->type = type;
    if (type == STRATUS_METRIC_HISTOGRAM)
        m->hist = xcalloc(1, sizeof *m->hist);
    m->next = metrics_head;
    metrics_head = m;
    m->hash_next = metrics_hash[h];
    metrics_hash[h] = m;
    metrics_count++;
out_unlock:
    pthread_mutex_unlock(&metrics_lock);
    return m;
}

struct stratus_metric *stratus_metrics_find(const char *name)
{
    struct stratus_metric *m;
    if (!name)
        return NULL;
    pthread_mutex_lock(&metrics_lock);
    m = metrics_lookup_locked(name, metrics_hash_of(name));
    pthread_mutex_unlock(&metrics_lock);
    return m;
}

struct stratus_metric *stratus_metrics_counter(const char *name, const char *help)
{
    return stratus_metrics_register(STRATUS_METRIC_COUNTER, name, help);
}

struct stratus_metric *stratus_metrics_gauge(const char *name, const char *help)
{
    return stratus_metrics_register(STRATUS_METRIC_GAUGE, name, help);
}

struct stratus_metric *stratus_metrics_histogram(const char *name, const char *help)
{
    return stratus_metrics_register(STRATUS_METRIC_HISTOGRAM, name, help);
}

void stratus_metric_add(struct stratus_metric *m, int64_t v)
{
    if (!m)
        return;
    if (m->type == STRATUS_METRIC_GAUGE)
        atomic_store_explicit(&m->value, v, memory_order_relaxed);
    else if (m->type == STRATUS_METRIC_COUNTER && v > 0)
        atomic_fetch_add_explicit(&m->value, v, memory_order_relaxed);
}

void stratus_metric_gauge_add(struct stratus_metric *m, int64_t v)
{
    if (m && m->type == STRATUS_METRIC_GAUGE)
        atomic_fetch_add_explicit(&m->value, v, memory_order_relaxed);
}

void stratus_metric_observe_us(struct stratus_metric *m, int64_t us)
{
    int i;
    if (!m || !m->hist)
        return;
    if (us < 0)
        us = 0;
    for (i = 0; i < STRATUS_METRICS_NBUCKETS && us > stratus_metrics_bucket_us[i]; i++)
        ;
    atomic_fetch_add_explicit(&m->hist->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->hist->sum_us, us, memory_order_relaxed);
}

static int64_t metric_hist_count(const struct stratus_metric *m)
{
    uint64_t n = 0;
    for (int i = 0; i <= STRATUS_METRICS_NBUCKETS; i++)
        n += atomic_load_explicit(&m->hist->buckets[i], memory_order_relaxed);
    return (int64_t)n;
}

int64_t stratus_metric_value(const struct stratus_metric *m)
{
    if (!m)
        return 0;
    if (m->hist)
        return metric_hist_count(m);
    return atomic_load_explicit(&((struct stratus_metric *)m)->value, memory_order_relaxed);
}

int64_t stratus_metric_sum_us(const struct stratus_metric *m)
{
    return m && m->hist ? atomic_load_explicit(&m->hist->sum_us, memory_order_relaxed) : 0;
}

/* ---- collectors ---- */

void stratus_metrics_add_collector(stratus_metrics_collect_fn *fn, void *arg)
{
    struct collector *c = xcalloc(1, sizeof *c);
    c->fn = fn;
    c->arg = arg;
    pthread_mutex_lock(&collectors_lock);
    c->next = collectors;
    collectors = c;
    pthread_mutex_unlock(&collectors_lock);
}

void stratus_metrics_remove_collector(stratus_metrics_collect_fn *fn, void *arg)
{
    pthread_mutex_lock(&collectors_lock);
    for (struct collector **pp = &collectors; *pp; pp = &(*pp)->next) {
        if ((*pp)->fn == fn && (*pp)->arg == arg) {
            struct collector *c = *pp;
            *pp = c->next;
            free(c);
            break;
        }
    }
    pthread_mutex_unlock(&collectors_lock);
}

/* One line (or, for a histogram, one family member) of the render. */
struct ritem {
    const char *family; /* not NUL-terminated at flen for registry metrics */
    size_t flen;
    const char *sample;
    const char *help;
    int type;
    double v;                 /* emitted samples */
    struct stratus_metric *m; /* registry metrics; NULL for emitted samples */
};

struct stratus_metrics_sink {
    struct ritem *items;
    size_t n, cap;
};

void stratus_metrics_emit(struct stratus_metrics_sink *sink,
                          int type,
                          const char *family,
                          const char *sample,
                          const char *help,
                          double value)
{
    struct ritem *it;
    if (!sink || !family || !metrics_name_ok(family) || (sample && !metrics_name_ok(sample)))
        return;
    if (sink->n == sink->cap) {
        sink->cap = sink->cap ? sink->cap * 2 : 64;
        sink->items = xrealloc(sink->items, sink->cap * sizeof *sink->items);
    }
    it = &sink->items[sink->n++];
    memset(it, 0, sizeof *it);
    it->family = xstrdup(family);
    it->flen = strlen(family);
    it->sample = xstrdup(sample ? sample : family);
    it->help = xstrdup(help ? help : "");
    it->type = type;
    it->v = value;
}

void stratus_metrics_escape(const char *v, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return;
    for (; v && *v && o + 1 < cap; v++) {
        char c = *v;
        if (c == '\\' || c == '"' || c == '\n') {
            if (o + 2 >= cap)
                break;
            out[o++] = '\\';
            c = c == '\n' ? 'n' : c;
        }
        out[o++] = c;
    }
    out[o] = 0;
}

static int ritem_cmp(const void *a, const void *b)
{
    const struct ritem *x = a, *y = b;
    size_t n = x->flen < y->flen ? x->flen : y->flen;
    int c = memcmp(x->family, y->family, n);
    if (c)
        return c;
    if (x->flen != y->flen)
        return x->flen < y->flen ? -1 : 1;
    return strcmp(x->sample, y->sample);
}

static size_t metrics_base_len(const char *name)
{
    const char *brace = strchr(name, '{');
    return brace ? (size_t)(brace - name) : strlen(name);
}

static const char *metrics_type_name(int type)
{
    switch (type) {
    case STRATUS_METRIC_COUNTER:
        return "counter";
    case STRATUS_METRIC_GAUGE:
        return "gauge";
    case STRATUS_METRIC_HISTOGRAM:
        return "histogram";
    case STRATUS_METRIC_SUMMARY:
        return "summary";
    default:
        return "untyped";
    }
}

static void metrics_print_help(FILE *f, const char *help)
{
    for (; *help; help++) {
        if (*help == '\\')
            fputs("\\\\", f);
        else if (*help == '\n')
            fputs("\\n", f);
        else
            fputc(*help, f);
    }
}

static void metrics_render_hist(FILE *f, const struct stratus_metric *m)
{
    size_t bl = metrics_base_len(m->name);
    const char *labels = m->name[bl] == '{' ? m->name + bl + 1 : "";
    int llen = *labels ? (int)strlen(labels) - 1 : 0; /* without the closing brace */
    uint64_t cum = 0;

    for (int i = 0; i <= STRATUS_METRICS_NBUCKETS; i++) {
        cum += atomic_load_explicit(&m->hist->buckets[i], memory_order_relaxed);
        fprintf(f, "%.*s_bucket{%.*s%sle=\"%s\"} %" PRIu64 "\n", (int)bl, m->name, llen, labels,
                llen ? "," : "", i < STRATUS_METRICS_NBUCKETS ? bucket_le[i] : "+Inf", cum);
    }
    fprintf(f, "%.*s_sum%s%.*s%s %.6f\n", (int)bl, m->name, llen ? "{" : "", llen, labels,
            llen ? "}" : "",
            (double)atomic_load_explicit(&m->hist->sum_us, memory_order_relaxed) / 1e6);
    fprintf(f, "%.*s_count%s%.*s%s %" PRIu64 "\n", (int)bl, m->name, llen ? "{" : "", llen, labels,
            llen ? "}" : "", cum);
}

size_t stratus_metrics_render(char **out)
{
    struct stratus_metrics_sink sink = {0};
    char *text = NULL;
    size_t len = 0, nreg = 0;
    FILE *f = open_memstream(&text, &len);

    stratus_assert(f != NULL);
    pthread_mutex_lock(&collectors_lock);
    for (struct collector *c = collectors; c; c = c->next)
        c->fn(c->arg, &sink);
    pthread_mutex_unlock(&collectors_lock);

    pthread_mutex_lock(&metrics_lock);
    size_t total = sink.n + metrics_count;
    if (sink.cap < total) {
        sink.cap = total;
        sink.items = xrealloc(sink.items, (sink.cap ? sink.cap : 1) * sizeof *sink.items);
    }
    for (struct stratus_metric *m = metrics_head; m; m = m->next) {
        struct ritem *it = &sink.items[sink.n + nreg++];
        memset(it, 0, sizeof *it);
        it->family = m->name;
        it->flen = metrics_base_len(m->name);
        it->sample = m->name;
        it->help = m->help;
        it->type = m->type;
        it->m = m;
    }
    pthread_mutex_unlock(&metrics_lock);
    qsort(sink.items, total, sizeof *sink.items, ritem_cmp);
    for (size_t i = 0; i < total; i++) {
        const struct ritem *it = &sink.items[i];
        if (i == 0 ||
            ritem_cmp(&(struct ritem){.family = sink.items[i - 1].family,
                                      .flen = sink.items[i - 1].flen,
                                      .sample = ""},
                      &(struct ritem){.family = it->family, .flen = it->flen, .sample = ""}) != 0) {
            fprintf(f, "# HELP %.*s ", (int)it->flen, it->family);
            metrics_print_help(f, it->help);
            fprintf(f, "\n# TYPE %.*s %s\n", (int)it->flen, it->family,
                    metrics_type_name(it->type));
        }
        if (it->m && it->m->hist)
            metrics_render_hist(f, it->m);
        else if (it->m)
            fprintf(f, "%s %" PRId64 "\n", it->sample, stratus_metric_value(it->m));
        else
            fprintf(f, "%s %.15g\n", it->sample, it->v);
    }
    fclose(f);
    /* Free the emitted samples' strings (registry items borrow theirs). */
    for (size_t i = 0; i < total; i++) {
        if (!sink.items[i].m) {
            free((char *)sink.items[i].family);
            free((char *)sink.items[i].sample);
            free((char *)sink.items[i].help);
        }
    }
    free(sink.items);
    *out = text;
    return len;
}
