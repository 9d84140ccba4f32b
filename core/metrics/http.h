/* http.h - the metrics listener: a small HTTP/1.1 server on its own thread (one epoll loop,
 * util/loop.h) serving the metric registry and the health endpoints. It never touches a
 * network thread.
 *
 * Routes (anything else is 404; a method other than those listed is 405):
 *   GET  /metrics    Prometheus text format 0.0.4 (stratus_metrics_render)
 *   GET  /healthz    200 "ok" while the process serves (liveness)
 *   GET  /readyz     200 "ready", or 503 with the reason from the ready callback (readiness)
 *   GET  /loglevel   the current log level
 *   POST /loglevel   sets the log level: ?level=debug in the query, or the body "debug" /
 *                    "level=debug"; 400 on an unknown level
 * Limits: a request (line, headers and body) larger than 8 KiB gets 431 and is closed; a
 * connection that has not sent a whole request in 10 s is closed; at most 64 connections, more
 * are closed at once. Every response carries Connection: close.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_METRICS_HTTP_H
#define STRATUS_METRICS_HTTP_H

#include "stratus/stratus_err.h"

#include <stddef.h>

struct stratus_metrics_http;

/* Readiness: returns 1 when ready; else 0 with a one-line reason written into why.
 * Called on the listener thread; may block briefly (it is not a network thread). */
typedef int stratus_ready_fn(void *arg, char *why, size_t cap);

struct stratus_metrics_http_conf {
    const char *listen;      /* "HOST:PORT" or "[V6]:PORT"; port 0 picks a free port */
    stratus_ready_fn *ready; /* NULL = always ready */
    void *ready_arg;
};

/* @locality startup. Binds the address (an error names it) and starts the listener thread. */
int stratus_metrics_http_start(const struct stratus_metrics_http_conf *conf,
                               struct stratus_metrics_http **out,
                               struct stratus_errbuf *eb);
/* The bound port. */
int stratus_metrics_http_port(const struct stratus_metrics_http *h);
/* @locality any (not the listener thread). Stops the thread, closes every connection, frees. */
void stratus_metrics_http_stop(struct stratus_metrics_http *h);

/* Splits "HOST:PORT" / "[V6]:PORT" / ":PORT" into host (cap bytes) and port. 0 or
 * STRATUS_EINVAL with a message. */
int stratus_metrics_http_parse_addr(
    const char *spec, char *host, size_t cap, int *port, struct stratus_errbuf *eb);

#endif
