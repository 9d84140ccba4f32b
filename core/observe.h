/* observe.h - the broker's observability wiring: the [metrics] config section, the metrics
 * HTTP listener (core/metrics/http.h), the collectors that turn engine, network, cache, group
 * and process statistics into Prometheus samples at scrape time, and readiness.
 *
 * [metrics] keys: listen (HOST:PORT; unset = no listener), topic_labels (bool: label the
 * per-topic traffic counters by topic), ready_wal_percent (/readyz is 503 once the WAL ring is
 * this full, i.e. uploads are not keeping up).
 * Metric names are listed in README.md ("Operating Stratus").
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_OBSERVE_H
#define STRATUS_OBSERVE_H

#include "stratus/stratus_err.h"
#include "stratus/stratus_plugin.h"

#include <stdint.h>

struct stratus_conf;
struct stratus_stream;
struct stratus_net;
struct stratus_cache;
struct stratus_api_ctx;
struct stratus_observe;

/* What the collectors read; all borrowed, and they must outlive stratus_observe_stop(). */
struct stratus_observe_deps {
    struct stratus_stream *stream;
    struct stratus_net *net;
    struct stratus_cache *cache;
    struct stratus_api_ctx *api; /* api->groups is read at scrape time (may be NULL) */
    uint64_t wal_size_bytes;     /* the WAL ring size, for readiness */
};

/* The [metrics] parameter table (stratus config dump). */
const struct stratus_param *stratus_observe_params(void);

/* Validates [metrics] (keys, the listen address). */
int stratus_observe_check(const struct stratus_conf *conf, struct stratus_errbuf *eb);

/* @locality main thread, once the network is up. Registers the collectors and, when
 * [metrics] listen is set, starts the listener. *out is NULL when metrics are off. */
int stratus_observe_start(const struct stratus_conf *conf,
                          const struct stratus_observe_deps *deps,
                          struct stratus_observe **out,
                          struct stratus_errbuf *eb);
/* The listener's bound port (0 when off). */
int stratus_observe_port(const struct stratus_observe *o);
/* @locality main thread, first thing at shutdown: stops the listener and the collectors. */
void stratus_observe_stop(struct stratus_observe *o);

#endif
