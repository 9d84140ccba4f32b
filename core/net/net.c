/* net.c - listeners, network threads and connections (see net.h).
 *
 * Ownership. A network thread (struct nthread) owns its loop and its connections. A connection
 * (struct conn) owns its socket, its read buffer and its queue of requests in arrival order. A
 * request (struct stratus_req) is owned by its connection's queue; a parked request is also
 * referenced by whoever will finish it, so a connection that closes while requests are parked
 * stays allocated (refs) until the last one finishes. Only the owning thread touches a
 * connection: stratus_req_finish() from another thread posts to the owning loop.
 *
 * Spreading connections: whichever thread the kernel wakes for a listener accepts, then gives
 * the socket to the thread with the fewest connections (ties in turn), handing it over through
 * that thread's incoming list when it is another. Left where the accept happened, the busy
 * connections of a few producers tend to share one thread, whose parsing and WAL writes then
 * serve them all while the other threads idle.
 *
 * Frame handling: bytes are read into a 64 KiB buffer; each complete frame is copied out into
 * its own allocation (the request body must outlive the read buffer while parked); a frame of
 * BIG_FRAME bytes or more that is not all there yet is read straight into its own allocation,
 * and after one the next read stops at HEAD_READ bytes, so that only the head of the next
 * frame is copied when it is a large one too (a producer's connection). While a large frame is
 * read, the socket's low-water mark keeps the thread asleep until a good part of the rest is
 * there (BIG_LOWAT). Frames are stratus_rcbufs (util/alloc.h): produce's log-cache batches
 * keep a reference instead of a copy, so Produce frames come from the huge-frame arena (kept
 * memory, populated ahead: util/hugeframes.h). Each thread keeps two spent large response
 * buffers for the next Fetch responses (page faults, see NET_SPARE_BUFS).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "net.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "api/api.h"
#include "metrics/metrics.h"
#include "proto/codec.h"
#include "proto/kerr.h"
#include "proto/kafka.h"
#include "proto/proto_gen.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/loop.h"
#include "util/sched.h"

#define RBUF_SIZE (64 * 1024)
/* A frame of this size or more, not all read yet, continues into its own allocation; after one,
 * reads into the buffer stop at HEAD_READ bytes. Workload 1's produce frames (~80 KiB) were
 * otherwise copied out of the buffer for most of their length: 64 KiB read with the header. */
#define BIG_FRAME (16 * 1024)
#define HEAD_READ (4 * 1024)
/* While a large frame is read, the socket's low-water mark (SO_RCVLOWAT) asks the kernel to
 * wake the thread only once this much of the rest (or all of it, if less) has arrived,
 * instead of for each segment: every wake-up is a context switch, dear in a VM. */
#define BIG_LOWAT (256 * 1024)
/* Fetch responses run to tens of MiB; each one in a fresh buffer cost a page fault per 4 KiB
 * (mmap'd by malloc, grown by realloc): ~20% of the broker's CPU serving cached data. Each
 * thread keeps a few spent response buffers and hands them to the next Fetch requests. */
#define NET_SPARE_BUFS 2
#define NET_SPARE_MIN (256u * 1024)
#define NET_SPARE_MAX (64u << 20)

struct nthread;

struct preq {
    struct stratus_req req; /* first member: a struct stratus_req * is a struct preq * */
    struct preq *next;
    struct conn *conn;
    uint8_t *frame; /* owned: the whole request frame payload */
    int done;       /* the response body is complete */
    int in_handler; /* stratus_api_handle() is on the stack */
    int finished_in_handler;
    int64_t t0_us; /* when the frame was complete (request latency metric) */
};

struct conn {
    int fd;
    struct nthread *t;
    struct conn *prev, *next; /* thread's list of open connections */
    char peer[NI_MAXHOST + NI_MAXSERV + 2];
    uint8_t *rbuf;
    size_t rlen;
    uint8_t *big;      /* a frame of BIG_FRAME bytes or more being read into its own buffer */
    size_t big_len, big_have;
    int after_big;     /* the last frame was read as big: read HEAD_READ bytes next */
    int lowat;         /* SO_RCVLOWAT set on the socket (1: the kernel's default) */
    struct preq *head, *tail; /* requests in arrival order, not yet sent */
    int inflight;
    size_t woff;       /* bytes of head's response already written */
    int reading_paused;
    int want_out;      /* EPOLLOUT registered */
    int closed;        /* socket closed; waiting for parked requests */
    int close_when_sent;
    int refs;          /* 1 while open + 1 per request in the queue (+1 while flush_next) */
    int flush_queued;  /* on the thread's flush list */
    struct conn *flush_next;
    int64_t last_active_ms;
};

/* A socket accepted by one thread for another (thread_accept), waiting in its incoming list. */
struct incoming {
    struct incoming *next;
    int fd;
    socklen_t sl;
    struct sockaddr_storage ss;
};

struct nthread {
    struct stratus_net *net;
    struct stratus_loop *loop;
    pthread_t tid;
    struct conn *conns;
    atomic_int nconns;        /* connections owned, and handed over but not yet adopted */
    pthread_mutex_t in_mu;    /* guards in */
    struct incoming *in;      /* owned: sockets handed over by other threads, newest first */
    uint64_t idle_timer;
    int draining;
    struct { uint8_t *buf; size_t cap; } spare[NET_SPARE_BUFS]; /* owned, reused responses */
    int nspare;
    struct conn *flushq; /* connections with responses finished during this loop iteration */
};

struct stratus_net {
    struct stratus_net_conf conf;
    struct stratus_api_ctx *ctx;
    int lfd[STRATUS_NET_MAX_LISTENERS];
    int port[STRATUS_NET_MAX_LISTENERS];
    int nthreads;
    struct nthread *threads;
    atomic_int busy; /* requests in flight over all threads */
    atomic_uint rr;  /* where pick_thread starts looking */
    atomic_uint_fast64_t accepted, open, requests, bytes_in, bytes_out, proto_errors;
};

static void conn_update_events(struct conn *c);
static void conn_flush(struct conn *c);
static void conn_close(struct conn *c, const char *why);
static void conn_process(struct conn *c);

/* ---- request metrics: stratus_requests_total{api,version}, stratus_request_errors_total{api},
 * stratus_request_duration_seconds{api} (frame complete -> response written, parked time
 * included). Handles are registered on first use and cached here. */
#define NET_MAX_API 128
#define NET_MAX_VER 32
static struct stratus_metric *_Atomic net_m_requests[NET_MAX_API][NET_MAX_VER];
static struct stratus_metric *_Atomic net_m_errors[NET_MAX_API + 1];
static struct stratus_metric *_Atomic net_m_latency[NET_MAX_API];

static const char *net_api_name(int16_t key)
{
    const struct kapi_info *ki = kapi_lookup(key);
    return ki ? ki->name : "unknown";
}

static void net_count_request(int16_t key, int16_t ver)
{
    char name[160];
    if (key < 0 || key >= NET_MAX_API || ver < 0 || ver >= NET_MAX_VER)
        key = -1, ver = 0;
    struct stratus_metric *m = key >= 0 ? atomic_load(&net_m_requests[key][ver]) : NULL;
    if (!m) {
        if (key >= 0)
            snprintf(name, sizeof name, "stratus_requests_total{api=\"%s\",version=\"%d\"}",
                     net_api_name(key), ver);
        else
            snprintf(name, sizeof name, "stratus_requests_total{api=\"unknown\",version=\"0\"}");
        m = stratus_metrics_counter(name, "Kafka requests received, by API and version");
        if (key >= 0)
            atomic_store(&net_m_requests[key][ver], m);
    }
    stratus_metric_add(m, 1);
}

static void net_count_error(int16_t key)
{
    char name[160];
    int i = key >= 0 && key < NET_MAX_API ? key : NET_MAX_API;
    struct stratus_metric *m = atomic_load(&net_m_errors[i]);
    if (!m) {
        snprintf(name, sizeof name, "stratus_request_errors_total{api=\"%s\"}",
                 i < NET_MAX_API ? net_api_name(key) : "unknown");
        m = stratus_metrics_counter(name, "Requests that failed as a protocol error and closed "
                                          "the connection, by API");
        atomic_store(&net_m_errors[i], m);
    }
    stratus_metric_add(m, 1);
}

static void net_observe_latency(int16_t key, int64_t t0_us)
{
    char name[160];
    if (key < 0 || key >= NET_MAX_API || t0_us == 0)
        return;
    struct stratus_metric *m = atomic_load(&net_m_latency[key]);
    if (!m) {
        snprintf(name, sizeof name, "stratus_request_duration_seconds{api=\"%s\"}",
                 net_api_name(key));
        m = stratus_metrics_histogram(name, "Time from a complete request frame to its response "
                                            "written (long-poll waits included), by API");
        atomic_store(&net_m_latency[key], m);
    }
    stratus_metric_observe_us(m, stratus_mono_us() - t0_us);
}

/* ---- connections ---------------------------------------------------------------------- */

static void conn_unref(struct conn *c)
{
    if (--c->refs > 0)
        return;
    free(c->rbuf);
    stratus_rcbuf_unref(c->big);
    free(c);
}

static void preq_free(struct preq *r)
{
    struct nthread *t = r->conn->t;
    if (r->req.resp_release) {
        r->req.resp_release(r->req.resp_release_arg);
        r->req.resp_release = NULL;
    }
    if (r->req.resp.buf && r->req.resp.cap >= NET_SPARE_MIN && r->req.resp.cap <= NET_SPARE_MAX &&
        t->nspare < NET_SPARE_BUFS) {
        t->spare[t->nspare].buf = r->req.resp.buf;
        t->spare[t->nspare].cap = r->req.resp.cap;
        t->nspare++;
        r->req.resp.buf = NULL;
        r->req.resp.len = r->req.resp.cap = 0;
    }
    kw_free(&r->req.resp);
    arena_free_all(&r->req.arena);
    stratus_rcbuf_unref(r->frame);
    free(r);
}

static void conn_close(struct conn *c, const char *why)
{
    struct nthread *t = c->t;
    struct preq *r, *next, **pp;

    if (c->closed)
        return;
    LOG_DEBUG("net", "closing connection peer=%s reason=%s", c->peer, why);
    c->closed = 1;
    stratus_loop_del_fd(t->loop, c->fd);
    close(c->fd);
    c->fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        t->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    atomic_fetch_sub(&t->net->open, 1);
    atomic_fetch_sub(&t->nconns, 1);
    /* Free the requests that are complete; parked ones are freed when they finish. */
    pp = &c->head;
    for (r = c->head; r; r = next) {
        next = r->next;
        if (r->done) {
            *pp = next;
            atomic_fetch_sub(&t->net->busy, 1);
            preq_free(r);
            c->refs--;
        } else {
            pp = &r->next;
        }
    }
    c->tail = NULL;
    for (r = c->head; r; r = r->next)
        c->tail = r;
    conn_unref(c);
}

/* Runs on the owning loop when a parked request has its response. */
static void preq_finished_on_loop(void *arg)
{
    struct preq *r = arg;
    struct conn *c = r->conn;

    r->done = 1;
    if (c->closed) {
        /* Unlink from the dead connection's queue and free. */
        struct preq **pp = &c->head;
        while (*pp && *pp != r)
            pp = &(*pp)->next;
        if (*pp)
            *pp = r->next;
        atomic_fetch_sub(&c->t->net->busy, 1);
        preq_free(r);
        conn_unref(c);
        return;
    }
    /* Sent at the end of the loop iteration (net_after_iteration): the WAL completes several
     * requests of a connection at once, and one send() of all their responses costs the
     * loopback/TCP path once instead of once each. */
    if (!c->flush_queued) {
        c->flush_queued = 1;
        c->refs++;
        c->flush_next = c->t->flushq;
        c->t->flushq = c;
    }
}

/* The loop's end-of-iteration hook: sends what the iteration's finished requests made ready. */
static void net_after_iteration(void *arg)
{
    struct nthread *t = arg;

    while (t->flushq) {
        struct conn *c = t->flushq;
        t->flushq = c->flush_next;
        c->flush_next = NULL;
        c->flush_queued = 0;
        if (!c->closed)
            conn_flush(c);
        conn_unref(c);
    }
}

static void preq_finish(struct stratus_req *req)
{
    struct preq *r = (struct preq *)req;

    if (stratus_loop_current() == req->loop) { /* in_handler is the loop thread's: read here */
        if (r->in_handler)
            r->finished_in_handler = 1; /* conn_handle_frame completes it */
        else
            preq_finished_on_loop(r);
        return;
    }
    if (stratus_loop_post(req->loop, preq_finished_on_loop, r) != 0)
        LOG_WARN("net", "dropping a response: network thread is gone");
}

/* The iovecs of a spliced response (codec.h: buf with the splices inserted) from byte woff of
 * the whole, at most max of them; returns how many. */
static int resp_iov(const struct kwrite *w, size_t woff, struct iovec *iov, int max)
{
    size_t pos = 0, boff = 0; /* logical position; buf offset reached */
    int n = 0;

    for (size_t i = 0; i <= w->nsplices && n < max; i++) {
        size_t bend = i < w->nsplices ? w->splices[i].off : w->len;
        /* buf[boff, bend) */
        if (bend > boff) {
            size_t len = bend - boff;
            if (woff < pos + len) {
                size_t skip = woff > pos ? woff - pos : 0;
                iov[n].iov_base = w->buf + boff + skip;
                iov[n].iov_len = len - skip;
                n++;
            }
            pos += len;
            boff = bend;
        }
        if (i == w->nsplices || n == max)
            break;
        size_t len = w->splices[i].n;
        if (len && woff < pos + len) {
            size_t skip = woff > pos ? woff - pos : 0;
            iov[n].iov_base = (void *)(uintptr_t)(w->splices[i].p + skip);
            iov[n].iov_len = len - skip;
            n++;
        }
        pos += len;
    }
    return n;
}

#define NET_IOV 128

/* Bytes of r's response on the wire (0 for a request answered with nothing). */
static size_t preq_wire_len(const struct preq *r)
{
    return r->req.no_response ? 0 : r->req.resp.len + r->req.resp.spliced;
}

/* Adds the iovecs of r's response from byte off to iov (at most max); returns how many. */
static int preq_iov(const struct preq *r, size_t off, struct iovec *iov, int max)
{
    if (r->req.no_response || max <= 0)
        return 0;
    if (r->req.resp.nsplices)
        return resp_iov(&r->req.resp, off, iov, max);
    if (off >= r->req.resp.len)
        return 0;
    iov[0].iov_base = r->req.resp.buf + off;
    iov[0].iov_len = r->req.resp.len - off;
    return 1;
}

/* Sends complete responses from the head of the queue, in order: every consecutive finished
 * one in one sendmsg() (up to NET_IOV pieces), then retires those fully written. */
static void conn_flush(struct conn *c)
{
    struct nthread *t = c->t;

    while (c->head && c->head->done && !c->closed) {
        struct iovec iov[NET_IOV];
        int niov = 0;
        size_t off = c->woff, want = 0;
        for (struct preq *r = c->head; r && r->done && niov < NET_IOV; r = r->next) {
            int k = preq_iov(r, off, iov + niov, NET_IOV - niov);
            for (int i = 0; i < k; i++)
                want += iov[niov + i].iov_len;
            niov += k;
            off = 0;
            if (r->req.close_after)
                break; /* nothing after a protocol error is answered */
        }
        size_t sent = 0;
        if (want > 0) {
            ssize_t n;
            if (niov == 1) {
                n = send(c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
            } else {
                struct msghdr mh = {0};
                mh.msg_iov = iov;
                mh.msg_iovlen = (size_t)niov;
                n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
            }
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    if (!c->want_out) {
                        c->want_out = 1;
                        conn_update_events(c);
                    }
                    return;
                }
                conn_close(c, strerror(errno));
                return;
            }
            sent = (size_t)n;
            atomic_fetch_add(&t->net->bytes_out, (uint64_t)n);
        }
        /* retire every response now written in full (and answer-less ones between them) */
        while (c->head && c->head->done) {
            struct preq *r = c->head;
            size_t rem = preq_wire_len(r) - c->woff;
            if (sent < rem) {
                c->woff += sent;
                break;
            }
            sent -= rem;
            c->woff = 0;
            c->head = r->next;
            if (!c->head)
                c->tail = NULL;
            c->inflight--;
            if (!r->req.no_response && !r->req.close_after)
                net_observe_latency(r->req.api_key, r->t0_us);
            int close_after = r->req.close_after;
            atomic_fetch_sub(&t->net->busy, 1);
            preq_free(r);
            c->refs--;
            if (close_after) {
                conn_close(c, close_after == STRATUS_CLOSE_REFUSED ? "acks=0 produce refused"
                                                                   : "protocol error");
                return;
            }
        }
    }
    if (c->closed)
        return;
    if (c->want_out && !c->head) {
        c->want_out = 0;
        conn_update_events(c);
    }
    if (c->reading_paused && c->inflight < t->net->conf.max_inflight && !c->close_when_sent) {
        c->reading_paused = 0;
        conn_update_events(c);
        conn_process(c); /* frames may already be buffered */
    }
    if (c->close_when_sent && !c->head)
        conn_close(c, "closed after last response");
}

/* Writes the response frame prefix (size placeholder + header) for req. */
static void begin_response(struct stratus_req *req)
{
    kw_reserve_i32(&req->resp); /* the size, patched by finish_frame */
    kafka_response_header_encode(&req->resp, req->api_key, req->api_version, req->correlation_id);
}

static void finish_frame(struct stratus_req *req)
{
    if (req->resp.len >= 4)
        kw_patch_i32(&req->resp, 0, (int32_t)(req->resp.len + req->resp.spliced - 4));
}

static void finish_wrapper(struct stratus_req *req)
{
    finish_frame(req);
    preq_finish(req);
}

/* Handles one complete frame (payload of len bytes, ownership taken). */
static void conn_handle_frame(struct conn *c, uint8_t *frame, size_t len)
{
    struct nthread *t = c->t;
    struct preq *r = xcalloc(1, sizeof *r);
    struct RequestHeader h;
    struct kread rd;
    int flexible = 0;

    r->conn = c;
    r->frame = frame;
    r->req.frame = frame;
    r->req.frame_len = len;
    r->t0_us = stratus_mono_us();
    r->req.ctx = t->net->ctx;
    r->req.loop = t->loop;
    r->req.finish_fn = finish_wrapper;
    arena_init(&r->req.arena, 0);
    kw_init(&r->req.resp, (size_t)t->net->conf.max_request_bytes * 2);
    kr_init(&rd, frame, len, &r->req.arena);
    memset(&h, 0, sizeof h);
    int rc = kafka_request_header_decode(&rd, &h, &flexible);
    c->refs++;
    c->inflight++;
    atomic_fetch_add(&t->net->busy, 1);
    atomic_fetch_add(&t->net->requests, 1);
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    if ((rc != 0 && rc != STRATUS_ENOTSUP) || rd.err) {
        atomic_fetch_add(&t->net->proto_errors, 1);
        net_count_error(-1);
        LOG_WARN("net", "unparsable request header peer=%s len=%zu", c->peer, len);
        r->req.no_response = 1;
        r->req.close_after = STRATUS_CLOSE_PROTOCOL;
        r->done = 1;
        c->close_when_sent = 1; /* nothing after it is handled */
        return;
    }
    r->req.api_key = h.RequestApiKey;
    r->req.api_version = h.RequestApiVersion;
    r->req.correlation_id = h.CorrelationId;
    net_count_request(h.RequestApiKey, h.RequestApiVersion);
    if (h.ClientId.len > 0) {
        size_t n = (size_t)h.ClientId.len < sizeof r->req.client_id - 1
                       ? (size_t)h.ClientId.len
                       : sizeof r->req.client_id - 1;
        memcpy(r->req.client_id, h.ClientId.s, n);
        r->req.client_id[n] = 0;
    }
    r->req.body = rd.p;
    r->req.body_len = (size_t)(rd.end - rd.p);
    if (h.RequestApiKey == KAPI_Fetch && t->nspare > 0 &&
        t->spare[t->nspare - 1].cap <= r->req.resp.max) {
        t->nspare--;
        r->req.resp.buf = t->spare[t->nspare].buf;
        r->req.resp.cap = t->spare[t->nspare].cap;
    }
    begin_response(&r->req);
    r->in_handler = 1;
    rc = stratus_api_handle(&r->req);
    r->in_handler = 0;
    if (rc == STRATUS_API_DONE) {
        finish_frame(&r->req);
        r->done = 1;
    } else if (r->finished_in_handler) {
        r->done = 1; /* finish_wrapper already patched the frame size */
    }
    if (r->req.close_after) {
        c->close_when_sent = 1; /* nothing after it is handled */
        if (r->req.close_after == STRATUS_CLOSE_PROTOCOL) {
            atomic_fetch_add(&t->net->proto_errors, 1);
            net_count_error(r->req.api_key);
        }
    }
}

/* Sets the socket's low-water mark to what is left of the large frame being read, at most
 * BIG_LOWAT, or back to 1 with no large frame; never above what is left (the client may wait
 * for the answer before it sends more). A refusal leaves reads as they were. */
static void conn_set_lowat(struct conn *c)
{
    size_t left = c->big ? c->big_len - c->big_have : 0;
    int want;

    if (c->lowat > 1 && (size_t)c->lowat <= left)
        return; /* still under what is left: it wakes no later than the frame's end */
    want = left > BIG_LOWAT ? BIG_LOWAT : left >= BIG_FRAME ? (int)left : 1;
    if (want != c->lowat && setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof want) == 0)
        c->lowat = want;
}

/* Extracts and handles every complete frame in the read buffer. */
static void conn_process(struct conn *c)
{
    struct nthread *t = c->t;
    size_t off = 0;

    while (!c->closed && !c->reading_paused && !c->close_when_sent && c->rlen - off >= 4) {
        const uint8_t *p = c->rbuf + off;
        int32_t size = (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                                 (uint32_t)p[2] << 8 | p[3]);
        if (size < 8 || size > t->net->conf.max_request_bytes) {
            atomic_fetch_add(&t->net->proto_errors, 1);
            LOG_WARN("net", "bad frame size peer=%s size=%d max=%lld", c->peer, size,
                     (long long)t->net->conf.max_request_bytes);
            c->close_when_sent = 1;
            break;
        }
        if (c->rlen - off - 4 < (size_t)size) {
            if ((size_t)size >= BIG_FRAME) {
                /* Large: continue reading into its own allocation. */
                /* 512-aligned: the WAL writes large batches out of it in place */
                c->big = stratus_rcbuf_new_aligned((size_t)size, STRATUS_FRAME_ALIGN);
                if (!c->big) {
                    c->close_when_sent = 1;
                    break;
                }
                c->big_len = (size_t)size;
                c->big_have = c->rlen - off - 4;
                memcpy(c->big, p + 4, c->big_have);
                off = c->rlen;
            }
            break;
        }
        /* a Produce frame is kept (its batches stay in the log cache): from the arena */
        int api = (int)((uint32_t)p[4] << 8 | p[5]);
        uint8_t *frame = api == KAPI_Produce ? stratus_rcbuf_new_kept((size_t)size)
                                                  : stratus_rcbuf_new((size_t)size);
        if (!frame) {
            c->close_when_sent = 1;
            break;
        }
        c->after_big = 0;
        memcpy(frame, p + 4, (size_t)size);
        off += 4 + (size_t)size;
        conn_handle_frame(c, frame, (size_t)size);
        if (c->inflight >= t->net->conf.max_inflight && !c->reading_paused) {
            c->reading_paused = 1;
            conn_update_events(c);
        }
    }
    if (off) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    if (!c->closed)
        conn_flush(c);
}

static void conn_on_event(void *arg, uint32_t events)
{
    struct conn *c = arg;
    struct nthread *t = c->t;

    c->refs++; /* keep c alive through this function */
    if (events & (EPOLLERR | EPOLLHUP)) {
        if (!(events & EPOLLIN)) {
            conn_close(c, "hangup");
            goto out;
        }
    }
    if ((events & EPOLLOUT) && !c->closed)
        conn_flush(c);
    if ((events & EPOLLIN) && !c->closed && !c->reading_paused) {
        for (int rounds = 0; rounds < 16 && !c->closed && !c->reading_paused; rounds++) {
            ssize_t n;
            if (c->big) {
                n = recv(c->fd, c->big + c->big_have, c->big_len - c->big_have, 0);
            } else {
                size_t room = RBUF_SIZE - c->rlen;
                if (c->after_big && c->rlen < HEAD_READ)
                    room = HEAD_READ - c->rlen;
                n = recv(c->fd, c->rbuf + c->rlen, room, 0);
            }
            if (n == 0) {
                /* Peer closed: answer nothing more; free what is done. */
                conn_close(c, "peer closed");
                break;
            }
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    conn_close(c, strerror(errno));
                break;
            }
            atomic_fetch_add(&t->net->bytes_in, (uint64_t)n);
            c->last_active_ms = stratus_mono_ms();
            if (c->big) {
                c->big_have += (size_t)n;
                if (c->big_have == c->big_len) {
                    uint8_t *frame = c->big;
                    size_t len = c->big_len;
                    c->big = NULL;
                    c->big_len = c->big_have = 0;
                    c->after_big = 1;
                    conn_handle_frame(c, frame, len);
                    conn_process(c);
                }
            } else {
                c->rlen += (size_t)n;
                conn_process(c);
                if (c->rlen == RBUF_SIZE && !c->big)
                    break; /* paused with a full buffer */
            }
        }
        if (!c->closed)
            conn_set_lowat(c);
    }
out:
    conn_unref(c);
}

static void conn_update_events(struct conn *c)
{
    uint32_t ev = 0;

    if (c->closed)
        return;
    if (!c->reading_paused && !c->close_when_sent)
        ev |= EPOLLIN;
    if (c->want_out)
        ev |= EPOLLOUT;
    stratus_loop_mod_fd(c->t->loop, c->fd, ev | EPOLLRDHUP, conn_on_event, c);
}

/* Makes fd (accepted, counted in t->nconns) a connection of t; t's thread only. */
static void conn_setup(struct nthread *t, int fd, const struct sockaddr_storage *ss, socklen_t sl)
{
    if (t->draining) {
        close(fd);
        atomic_fetch_sub(&t->nconns, 1);
        return;
    }
    struct conn *c = xcalloc(1, sizeof *c);
    c->fd = fd;
    c->t = t;
    c->refs = 1;
    c->rbuf = xmalloc(RBUF_SIZE);
    c->lowat = 1;
    c->last_active_ms = stratus_mono_ms();
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (getnameinfo((const struct sockaddr *)ss, sl, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(c->peer, sizeof c->peer, "%s:%s", host, serv);
    c->next = t->conns;
    if (t->conns)
        t->conns->prev = c;
    t->conns = c;
    atomic_fetch_add(&t->net->accepted, 1);
    atomic_fetch_add(&t->net->open, 1);
    if (stratus_loop_add_fd(t->loop, fd, EPOLLIN | EPOLLRDHUP, conn_on_event, c) != 0) {
        LOG_WARN("net", "cannot watch connection peer=%s", c->peer);
        conn_close(c, "epoll");
    }
}

/* The thread to own a new connection: the one with the fewest, ties taken in turn. */
static struct nthread *pick_thread(struct stratus_net *net)
{
    unsigned start = atomic_fetch_add(&net->rr, 1);
    struct nthread *best = NULL;
    int bestn = 0;

    for (int k = 0; k < net->nthreads; k++) {
        struct nthread *c = &net->threads[(start + (unsigned)k) % (unsigned)net->nthreads];
        int n = atomic_load(&c->nconns);
        if (!best || n < bestn) {
            best = c;
            bestn = n;
        }
    }
    return best;
}

/* Frees the sockets waiting in t's incoming list (closing them), or adopts them (adopt). */
static void take_incoming(struct nthread *t, int adopt)
{
    pthread_mutex_lock(&t->in_mu);
    struct incoming *in = t->in, *next, *rev = NULL;
    t->in = NULL;
    pthread_mutex_unlock(&t->in_mu);
    for (; in; in = next) { /* oldest first */
        next = in->next;
        in->next = rev;
        rev = in;
    }
    for (in = rev; in; in = next) {
        next = in->next;
        if (adopt) {
            conn_setup(t, in->fd, &in->ss, in->sl);
        } else {
            close(in->fd);
            atomic_fetch_sub(&t->nconns, 1);
        }
        free(in);
    }
}

static void adopt_task(void *arg)
{
    take_incoming(arg, 1);
}

static void thread_accept(struct nthread *t, int lfd)
{
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                LOG_WARN("net", "accept failed err=%s", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct nthread *to = pick_thread(t->net);
        if (!to) /* no threads: cannot happen once started */
            to = t;
        atomic_fetch_add(&to->nconns, 1);
        if (to == t) {
            conn_setup(t, fd, &ss, sl);
            continue;
        }
        struct incoming *in = xmalloc(sizeof *in);
        in->fd = fd;
        in->sl = sl;
        memcpy(&in->ss, &ss, sizeof ss);
        pthread_mutex_lock(&to->in_mu);
        in->next = to->in;
        to->in = in;
        pthread_mutex_unlock(&to->in_mu);
        /* refused only once to's loop has stopped: the socket is closed at stratus_net_free */
        stratus_loop_post(to->loop, adopt_task, to);
    }
}

struct lst_arg {
    struct nthread *t;
    int fd;
};

static void listener_on_event(void *arg, uint32_t events)
{
    struct lst_arg *la = arg;
    (void)events;
    if (!la->t->draining)
        thread_accept(la->t, la->fd);
}

static void idle_check(void *arg)
{
    struct nthread *t = arg;
    int64_t now = stratus_mono_ms();
    struct conn *c, *next;

    for (c = t->conns; c; c = next) {
        next = c->next;
        if (!c->head && now - c->last_active_ms > t->net->conf.idle_ms)
            conn_close(c, "idle");
    }
    t->idle_timer = stratus_loop_timer_at(t->loop, now + 1000, idle_check, t);
}

static void *thread_main(void *arg)
{
    struct nthread *t = arg;
    pthread_setname_np(pthread_self(), "net"); /* top -H, perf, gdb */
    (void)stratus_sched_latency_thread(); /* [broker] sched_slice_us; a refusal is logged */
    struct lst_arg la[STRATUS_NET_MAX_LISTENERS];

    for (int i = 0; i < t->net->conf.nlisteners; i++) {
        la[i].t = t;
        la[i].fd = t->net->lfd[i];
        stratus_loop_add_fd(t->loop, la[i].fd, EPOLLIN | EPOLLEXCLUSIVE, listener_on_event,
                            &la[i]);
    }
    t->idle_timer = stratus_loop_timer_at(t->loop, stratus_mono_ms() + 1000, idle_check, t);
    stratus_loop_set_after(t->loop, net_after_iteration, t);
    stratus_api_thread_start(t->loop);
    stratus_loop_run(t->loop);
    stratus_api_thread_stop(t->loop);
    net_after_iteration(t);
    while (t->conns)
        conn_close(t->conns, "shutdown");
    take_incoming(t, 0);
    return NULL;
}

static int bind_listener(const char *host, int port, int *fd_out, int *port_out,
                         struct stratus_errbuf *eb)
{
    struct addrinfo hints = {0}, *res = NULL, *ai;
    char portstr[16];
    int fd = -1, rc, one = 1;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(portstr, sizeof portstr, "%d", port);
    rc = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
    if (rc != 0)
        return stratus_errf(eb, STRATUS_EINVAL, "listener %s:%d: %s", host, port,
                            gai_strerror(rc));
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
            break;
        rc = errno;
        close(fd);
        fd = -1;
        errno = rc;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return stratus_errf(eb, STRATUS_EIO, "listener %s:%d: %s", host, port, strerror(errno));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return 0;
}

int stratus_net_start(const struct stratus_net_conf *conf, struct stratus_api_ctx *ctx,
                      struct stratus_net **out, struct stratus_errbuf *eb)
{
    struct stratus_net *net = xcalloc(1, sizeof *net);
    int rc, i;

    net->conf = *conf;
    net->ctx = ctx;
    if (net->conf.threads <= 0)
        net->conf.threads = 2;
    if (net->conf.max_request_bytes <= 0)
        net->conf.max_request_bytes = 100 * 1024 * 1024;
    if (net->conf.idle_ms <= 0)
        net->conf.idle_ms = 600000;
    if (net->conf.max_inflight <= 0)
        net->conf.max_inflight = 64;
    for (i = 0; i < conf->nlisteners; i++)
        net->lfd[i] = -1;
    for (i = 0; i < conf->nlisteners; i++) {
        rc = bind_listener(conf->listen_host[i], conf->listen_port[i], &net->lfd[i],
                           &net->port[i], eb);
        if (rc)
            goto out_close;
    }
    net->nthreads = net->conf.threads;
    net->threads = xcalloc((size_t)net->nthreads, sizeof *net->threads);
    for (i = 0; i < net->nthreads; i++) {
        char name[32];
        snprintf(name, sizeof name, "net-%d", i);
        net->threads[i].net = net;
        pthread_mutex_init(&net->threads[i].in_mu, NULL);
        net->threads[i].loop = stratus_loop_new(name, eb);
        if (!net->threads[i].loop) {
            rc = STRATUS_EIO;
            goto out_threads;
        }
    }
    for (i = 0; i < net->nthreads; i++) {
        if (pthread_create(&net->threads[i].tid, NULL, thread_main, &net->threads[i]) != 0) {
            rc = stratus_errf(eb, STRATUS_EIO, "cannot start network thread");
            /* threads already running are stopped by shutdown */
            net->nthreads = i;
            stratus_net_shutdown(net, 0);
            stratus_net_free(net);
            return rc;
        }
    }
    *out = net;
    return 0;

out_threads:
    for (i = 0; i < net->nthreads; i++)
        stratus_loop_free(net->threads[i].loop);
    free(net->threads);
out_close:
    for (i = 0; i < conf->nlisteners; i++)
        if (net->lfd[i] >= 0)
            close(net->lfd[i]);
    free(net);
    return rc;
}

int stratus_net_port(const struct stratus_net *net, int listener)
{
    return net->port[listener];
}

static void drain_task(void *arg)
{
    struct nthread *t = arg;

    t->draining = 1;
    for (int i = 0; i < t->net->conf.nlisteners; i++)
        stratus_loop_del_fd(t->loop, t->net->lfd[i]);
}

void stratus_net_shutdown(struct stratus_net *net, int64_t timeout_ms)
{
    int i;
    int64_t deadline = stratus_mono_ms() + timeout_ms;

    for (i = 0; i < net->nthreads; i++)
        stratus_loop_post(net->threads[i].loop, drain_task, &net->threads[i]);
    for (i = 0; i < net->conf.nlisteners; i++)
        shutdown(net->lfd[i], SHUT_RDWR);
    while (atomic_load(&net->busy) > 0 && stratus_mono_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (i = 0; i < net->nthreads; i++)
        stratus_loop_stop(net->threads[i].loop);
    for (i = 0; i < net->nthreads; i++)
        pthread_join(net->threads[i].tid, NULL);
    for (i = 0; i < net->conf.nlisteners; i++) {
        close(net->lfd[i]);
        net->lfd[i] = -1;
    }
}

void stratus_net_free(struct stratus_net *net)
{
    if (!net)
        return;
    for (int i = 0; i < net->nthreads; i++) {
        take_incoming(&net->threads[i], 0); /* handed over after the thread stopped */
        pthread_mutex_destroy(&net->threads[i].in_mu);
        stratus_loop_free(net->threads[i].loop);
        for (int k = 0; k < net->threads[i].nspare; k++)
            free(net->threads[i].spare[k].buf);
    }
    free(net->threads);
    free(net);
}

void stratus_net_get_stats(struct stratus_net *net, struct stratus_net_stats *out)
{
    out->connections_accepted = atomic_load(&net->accepted);
    out->connections_open = atomic_load(&net->open);
    out->requests = atomic_load(&net->requests);
    out->bytes_in = atomic_load(&net->bytes_in);
    out->bytes_out = atomic_load(&net->bytes_out);
    out->protocol_errors = atomic_load(&net->proto_errors);
}

int stratus_net_thread_connections(struct stratus_net *net, int *counts, int max)
{
    for (int i = 0; i < net->nthreads && i < max; i++)
        counts[i] = atomic_load(&net->threads[i].nconns);
    return net->nthreads;
}
