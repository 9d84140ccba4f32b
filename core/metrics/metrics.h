/* metrics.h - the broker's metric registry: named counters and gauges, rendered as Prometheus
 * text. Small on purpose (histograms come later).
 *
 * A metric is registered once by name and lives until exit; registering an existing name
 * returns the same handle. A name may carry labels in Prometheus form,
 * `stratus_storage_calls_total{op="put"}`; metrics sharing the part before '{' share one
 * HELP/TYPE header. Updates are lock-free atomics: any thread may update or render.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_METRICS_METRICS_H
#define STRATUS_METRICS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "stratus/stratus_plugin.h" /* struct stratus_metric, enum stratus_metric_type */

/* Registers (or finds) a metric. A name registered before with another type returns NULL.
 * @locality any */
struct stratus_metric *stratus_metrics_counter(const char *name, const char *help);
struct stratus_metric *stratus_metrics_gauge(const char *name, const char *help);
struct stratus_metric *stratus_metrics_register(int type, const char *name, const char *help);

/* Counters: adds v (v < 0 is ignored). Gauges: sets to v. NULL m is a no-op. */
void stratus_metric_add(struct stratus_metric *m, int64_t v);
/* Gauges only: adds v (may be negative). */
void stratus_metric_gauge_add(struct stratus_metric *m, int64_t v);
int64_t stratus_metric_value(const struct stratus_metric *m);

/* Renders every metric in Prometheus text format 0.0.4, sorted by name. *out is malloc'd
 * (the caller frees it); returns its length. */
size_t stratus_metrics_render(char **out);

#endif
