/* metrics.h - the broker's metric registry: named counters, gauges and histograms, plus
 * collectors that report values at scrape time, rendered as Prometheus text format 0.0.4.
 *
 * A metric is registered once by name and lives until exit; registering an existing name
 * returns the same handle. A name may carry labels in Prometheus form,
 * `stratus_storage_calls_total{op="put"}`; metrics sharing the part before '{' (the family)
 * share one HELP/TYPE header. Updates are lock-free atomics: any thread may update or render.
 *
 * Histograms have fixed log-scale buckets in seconds (1-2.5-5 steps from 100 us to 10 s, then
 * +Inf); observations are given in microseconds. A histogram `stratus_x_seconds{api="Fetch"}`
 * renders as stratus_x_seconds_bucket{api="Fetch",le="..."}, _sum (seconds) and _count.
 *
 * Collectors are functions called at the start of every render (on the rendering thread) that
 * emit samples computed then (engine stats, process stats, per-group lag): nothing they emit is
 * kept, so a series that disappears (a deleted group) stops being reported.
 * Names must match [a-zA-Z_:][a-zA-Z0-9_:]*; label values are escaped by the caller with
 * stratus_metrics_escape() when they come from users (group ids).
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_METRICS_METRICS_H
#define STRATUS_METRICS_METRICS_H

#include "stratus/stratus_plugin.h" /* struct stratus_metric, enum stratus_metric_type */

#include <stddef.h>
#include <stdint.h>

/* Core-only metric types beyond the SDK's counter and gauge. */
#define STRATUS_METRIC_HISTOGRAM 3
#define STRATUS_METRIC_SUMMARY   4 /* emitted by collectors only: _sum and _count samples */

/* Upper bounds of the histogram buckets, in microseconds (+Inf is implicit). */
#define STRATUS_METRICS_NBUCKETS 16
extern const int64_t stratus_metrics_bucket_us[STRATUS_METRICS_NBUCKETS];

/* Registers (or finds) a metric. A name registered before with another type, or an invalid
 * name, returns NULL (every update function accepts NULL as a no-op). @locality any */
struct stratus_metric *stratus_metrics_counter(const char *name, const char *help);
struct stratus_metric *stratus_metrics_gauge(const char *name, const char *help);
struct stratus_metric *stratus_metrics_histogram(const char *name, const char *help);
struct stratus_metric *stratus_metrics_register(int type, const char *name, const char *help);
/* The metric registered under exactly this name, or NULL. */
struct stratus_metric *stratus_metrics_find(const char *name);

/* Counters: adds v (v < 0 is ignored). Gauges: sets to v. NULL m is a no-op. */
void stratus_metric_add(struct stratus_metric *m, int64_t v);
/* Gauges only: adds v (may be negative). */
void stratus_metric_gauge_add(struct stratus_metric *m, int64_t v);
/* Counters and gauges: the value. Histograms: the number of observations. */
int64_t stratus_metric_value(const struct stratus_metric *m);
/* Histograms: records one observation of us microseconds (negative counts as 0). */
void stratus_metric_observe_us(struct stratus_metric *m, int64_t us);
/* Histograms: the sum of observations in microseconds. */
int64_t stratus_metric_sum_us(const struct stratus_metric *m);

/* ---- collectors ---- */
struct stratus_metrics_sink; /* where a collector emits, valid during the call only */

typedef void stratus_metrics_collect_fn(void *arg, struct stratus_metrics_sink *sink);

/* Adds / removes a collector. After remove returns, fn is not running and will not run again
 * with that arg. @locality any */
void stratus_metrics_add_collector(stratus_metrics_collect_fn *fn, void *arg);
void stratus_metrics_remove_collector(stratus_metrics_collect_fn *fn, void *arg);

/* Emits one sample. family is the metric name without labels or suffix; sample is the full
 * sample name (family plus optional _sum/_count suffix and labels), NULL = family. For
 * STRATUS_METRIC_SUMMARY emit "<family>_sum" and "<family>_count" samples. */
void stratus_metrics_emit(struct stratus_metrics_sink *sink,
                          int type,
                          const char *family,
                          const char *sample,
                          const char *help,
                          double value);

/* Writes v into out (cap bytes, NUL-terminated, truncated) escaped as a label value:
 * backslash, double quote and newline get a backslash. */
void stratus_metrics_escape(const char *v, char *out, size_t cap);

/* Runs the collectors, then renders every metric and emitted sample in Prometheus text format
 * 0.0.4, families sorted by name. *out is malloc'd (the caller frees it); returns its length. */
size_t stratus_metrics_render(char **out);

/* ---- per-topic traffic (topic.c) ---- */
enum { STRATUS_METRICS_TOPIC_IN = 0, STRATUS_METRICS_TOPIC_OUT = 1 };

/* Turns the topic label on or off ([metrics] topic_labels); off (the default) counts every
 * topic into one unlabelled series. @locality startup */
void stratus_metrics_set_topic_labels(int on);
/* Counts bytes and records (the sum of lastOffsetDelta + 1 over the v2 record batches in
 * batches/len; a truncated tail is counted in bytes only) into
 * stratus_topic_{bytes,records}_{in,out}_total. @locality any, non-blocking */
void stratus_metrics_topic_io(int dir, const char *topic, const uint8_t *batches, size_t len);

#endif
