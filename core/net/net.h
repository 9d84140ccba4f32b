/* net.h - the Kafka listeners and connections: several network threads, each with its own
 * epoll loop (util/loop.h), sharing the listening sockets (EPOLLEXCLUSIVE) and owning the
 * connections they accept.
 *
 * Wire format: each request is an int32 size followed by that many bytes (header + body);
 * responses likewise. Requests of one connection may be pipelined: they are decoded and
 * handled as they arrive, and their responses leave in request order. A frame larger than
 * max_request_bytes, or a header that does not parse, closes the connection (after the
 * responses already due). Connections idle longer than idle_ms are closed.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_NET_NET_H
#define STRATUS_NET_NET_H

#include <stdint.h>

#include "stratus/stratus_err.h"

struct stratus_api_ctx;
struct stratus_net;

#define STRATUS_NET_MAX_LISTENERS 8

struct stratus_net_conf {
    int nlisteners;
    char listen_host[STRATUS_NET_MAX_LISTENERS][256];
    int listen_port[STRATUS_NET_MAX_LISTENERS];
    int threads;               /* network threads (default: number of CPUs, at least 2) */
    int64_t max_request_bytes; /* socket.request.max.bytes (default 100 MiB) */
    int64_t idle_ms;           /* connections.max.idle.ms (default 600000) */
    int max_inflight;          /* requests in flight per connection before reads pause (64) */
};

/* @locality startup. Binds every listener (an error names the address), then starts the
 * network threads. */
int stratus_net_start(const struct stratus_net_conf *conf, struct stratus_api_ctx *ctx,
                      struct stratus_net **out, struct stratus_errbuf *eb);

/* The port a listener is bound to (useful when configured with port 0). */
int stratus_net_port(const struct stratus_net *net, int listener);

/* @locality any. Stops accepting, lets in-flight requests finish and their responses go out
 * (at most timeout_ms), then closes every connection and joins the threads. The loops stay
 * allocated (late completions may still post to them) until stratus_net_free(), which comes
 * after the storage engine has closed. */
void stratus_net_shutdown(struct stratus_net *net, int64_t timeout_ms);
void stratus_net_free(struct stratus_net *net);

struct stratus_net_stats {
    uint64_t connections_accepted, connections_open, requests, bytes_in, bytes_out,
        protocol_errors;
};
void stratus_net_get_stats(struct stratus_net *net, struct stratus_net_stats *out);

/* @locality any. The connections each network thread owns (thread i is "net-i"), into
 * counts[0..max); returns the number of threads. */
int stratus_net_thread_connections(struct stratus_net *net, int *counts, int max);

#endif
