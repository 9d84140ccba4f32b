/* metrics.c - the metric registry (see metrics.h): a mutex-guarded list for registration and
 * rendering, atomic values for updates.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "metrics/metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

struct stratus_metric {
    char *name; /* full name, labels included */
    char *help;
    int type;   /* enum stratus_metric_type */
    _Atomic int64_t value;
    struct stratus_metric *next;
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stratus_metric *metrics_head; /* guarded by metrics_lock; entries never freed */
static size_t metrics_count;

struct stratus_metric *stratus_metrics_register(int type, const char *name, const char *help)
{
    struct stratus_metric *m;

    if (!name || (type != STRATUS_METRIC_COUNTER && type != STRATUS_METRIC_GAUGE))
        return NULL;
    pthread_mutex_lock(&metrics_lock);
    for (m = metrics_head; m; m = m->next)
        if (strcmp(m->name, name) == 0)
            break;
    if (m) {
        if (m->type != type)
            m = NULL;
        goto out_unlock;
    }
    m = xcalloc(1, sizeof *m);
    m->name = xstrdup(name);
    m->help = xstrdup(help ? help : "");
    m->type = type;
    m->next = metrics_head;
    metrics_head = m;
    metrics_count++;
out_unlock:
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

void stratus_metric_add(struct stratus_metric *m, int64_t v)
{
    if (!m)
        return;
    if (m->type == STRATUS_METRIC_GAUGE)
        atomic_store_explicit(&m->value, v, memory_order_relaxed);
    else if (v > 0)
        atomic_fetch_add_explicit(&m->value, v, memory_order_relaxed);
}

void stratus_metric_gauge_add(struct stratus_metric *m, int64_t v)
{
    if (m && m->type == STRATUS_METRIC_GAUGE)
        atomic_fetch_add_explicit(&m->value, v, memory_order_relaxed);
}

int64_t stratus_metric_value(const struct stratus_metric *m)
{
    return m ? atomic_load_explicit(&((struct stratus_metric *)m)->value, memory_order_relaxed) : 0;
}

static int metrics_cmp(const void *a, const void *b)
{
    const struct stratus_metric *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static size_t metrics_base_len(const char *name)
{
    const char *brace = strchr(name, '{');
    return brace ? (size_t)(brace - name) : strlen(name);
}

size_t stratus_metrics_render(char **out)
{
    char *text = NULL;
    size_t len = 0, n = 0;
    FILE *f = open_memstream(&text, &len);
    struct stratus_metric **all;

    stratus_assert(f != NULL);
    pthread_mutex_lock(&metrics_lock);
    all = xcalloc(metrics_count ? metrics_count : 1, sizeof *all);
    for (struct stratus_metric *m = metrics_head; m; m = m->next)
        all[n++] = m;
    pthread_mutex_unlock(&metrics_lock);
    qsort(all, n, sizeof *all, metrics_cmp);
    for (size_t i = 0; i < n; i++) {
        size_t bl = metrics_base_len(all[i]->name);
        if (i == 0 || metrics_base_len(all[i - 1]->name) != bl ||
            strncmp(all[i - 1]->name, all[i]->name, bl) != 0) {
            fprintf(f, "# HELP %.*s %s\n# TYPE %.*s %s\n", (int)bl, all[i]->name, all[i]->help,
                    (int)bl, all[i]->name,
                    all[i]->type == STRATUS_METRIC_COUNTER ? "counter" : "gauge");
        }
        fprintf(f, "%s %" PRId64 "\n", all[i]->name, stratus_metric_value(all[i]));
    }
    free(all);
    fclose(f);
    *out = text;
    return len;
}
