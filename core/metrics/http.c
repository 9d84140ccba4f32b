/* http.c - the metrics listener (see http.h): one thread, one epoll loop, one request per
 * connection, Connection: close.
 *
 * Owns: the listening socket, the loop and its thread, and every accepted connection (struct
 * hconn: socket, request buffer of HTTP_MAX_REQUEST bytes, the response being written, its
 * timeout timer). Only the listener thread touches connections; stop() posts nothing, it stops
 * the loop, joins the thread and then frees what is left.
 * Wire format: HTTP/1.0 or 1.1 requests "METHOD SP TARGET SP HTTP/1.x CRLF headers CRLF CRLF
 * [body of Content-Length bytes]"; responses are HTTP/1.1 with Content-Length.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "metrics/http.h"

#include "metrics/metrics.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/loop.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_MAX_REQUEST 8192
#define HTTP_MAX_CONNS   64
#define HTTP_TIMEOUT_MS  10000

struct hconn {
    int fd;
    struct stratus_metrics_http *h;
    struct hconn *prev, *next;
    char req[HTTP_MAX_REQUEST + 1];
    size_t rlen;
    char *resp; /* malloc'd response, NULL while reading */
    size_t resp_len, resp_off;
    uint64_t timer;
};

struct stratus_metrics_http {
    struct stratus_metrics_http_conf conf;
    int lfd;
    int port;
    struct stratus_loop *loop;
    pthread_t tid;
    struct hconn *conns; /* listener thread only */
    int nconns;
};

static const char *const log_level_names[] = {"error", "warn", "info", "debug", "trace"};

int stratus_metrics_http_parse_addr(
    const char *spec, char *host, size_t cap, int *port, struct stratus_errbuf *eb)
{
    const char *colon, *h = spec;
    size_t hl;
    char *end;
    long p;

    if (!spec || !*spec)
        return stratus_errf(eb, STRATUS_EINVAL, "empty listen address");
    if (*spec == '[') {
        const char *rb = strchr(spec, ']');
        if (!rb || rb[1] != ':')
            return stratus_errf(eb, STRATUS_EINVAL, "bad listen address '%s'", spec);
        h = spec + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon)
            return stratus_errf(eb, STRATUS_EINVAL, "listen address '%s' has no port", spec);
        hl = (size_t)(colon - spec);
    }
    if (hl >= cap)
        return stratus_errf(eb, STRATUS_EINVAL, "listen host too long in '%s'", spec);
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (colon[1] == 0 || *end || errno || p < 0 || p > 65535)
        return stratus_errf(eb, STRATUS_EINVAL, "bad port in listen address '%s'", spec);
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (int)p;
    return 0;
}

/* ---- connections ---- */

static void hconn_close(struct hconn *c)
{
    struct stratus_metrics_http *h = c->h;
    stratus_loop_del_fd(h->loop, c->fd);
    close(c->fd);
    if (c->timer)
        stratus_loop_timer_cancel(h->loop, c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    free(c->resp);
    free(c);
}

static void hconn_timeout(void *arg)
{
    struct hconn *c = arg;
    c->timer = 0;
    hconn_close(c);
}

static void hconn_on_event(void *arg, uint32_t events);

/* Writes what it can of the response; closes when done. */
static void hconn_write(struct hconn *c)
{
    while (c->resp_off < c->resp_len) {
        ssize_t n = send(c->fd, c->resp + c->resp_off, c->resp_len - c->resp_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                stratus_loop_mod_fd(c->h->loop, c->fd, EPOLLOUT, hconn_on_event, c);
                return;
            }
            break;
        }
        c->resp_off += (size_t)n;
    }
    hconn_close(c);
}

static void hconn_respond(struct hconn *c,
                          int status,
                          const char *reason,
                          const char *ctype,
                          const char *body,
                          size_t blen)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason, ctype, blen);
    c->resp_len = (size_t)n + blen;
    c->resp = xmalloc(c->resp_len);
    memcpy(c->resp, hdr, (size_t)n);
    if (blen)
        memcpy(c->resp + n, body, blen);
    c->resp_off = 0;
    hconn_write(c);
}

static void hconn_text(struct hconn *c, int status, const char *reason, const char *text)
{
    hconn_respond(c, status, reason, "text/plain; charset=utf-8", text, strlen(text));
}

/* Finds "name=value" in a query or form body; copies value into out. */
static int http_form_value(const char *s, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = s, *end = s + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t vl = (size_t)(stop - p - (ptrdiff_t)nl - 1);
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, p + nl + 1, vl);
            out[vl] = 0;
            return 1;
        }
        p = stop + 1;
    }
    return 0;
}

static void
http_set_loglevel(struct hconn *c, const char *query, size_t qlen, const char *body, size_t blen)
{
    char want[32] = "", msg[96];
    int lvl;

    if (!(query && http_form_value(query, qlen, "level", want, sizeof want)) &&
        !http_form_value(body, blen, "level", want, sizeof want)) {
        size_t n = blen;
        while (n && (body[n - 1] == '\n' || body[n - 1] == '\r' || body[n - 1] == ' '))
            n--;
        if (n >= sizeof want)
            n = sizeof want - 1;
        memcpy(want, body, n);
        want[n] = 0;
    }
    lvl = want[0] ? stratus_log_parse_level(want) : -1;
    if (lvl < 0) {
        hconn_text(c, 400, "Bad Request", "unknown level: use error, warn, info, debug or trace\n");
        return;
    }
    int old = stratus_log_level;
    stratus_log_level = lvl;
    LOG_WARN("metrics", "log level changed from=%s to=%s by=%s", log_level_names[old],
             log_level_names[lvl], "POST /loglevel");
    snprintf(msg, sizeof msg, "%s\n", log_level_names[lvl]);
    hconn_text(c, 200, "OK", msg);
}

/* Handles a complete request: head is the request line + headers (NUL-terminated, the blank
 * line cut off), body/blen what follows. */
static void hconn_route(struct hconn *c, char *head, const char *body, size_t blen)
{
    char *sp1 = strchr(head, ' '), *sp2, *eol;
    const char *method = head, *target, *query = NULL;
    size_t plen, qlen = 0;

    eol = strstr(head, "\r\n");
    if (eol)
        *eol = 0;
    if (!sp1) {
        hconn_text(c, 400, "Bad Request", "bad request line\n");
        return;
    }
    *sp1 = 0;
    target = sp1 + 1;
    sp2 = strchr(target, ' ');
    if (!sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        hconn_text(c, 400, "Bad Request", "bad request line\n");
        return;
    }
    *sp2 = 0;
    const char *q = strchr(target, '?');
    plen = q ? (size_t)(q - target) : strlen(target);
    if (q) {
        query = q + 1;
        qlen = strlen(query);
    }
#define PATH_IS(p) (plen == strlen(p) && memcmp(target, p, plen) == 0)
    int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (PATH_IS("/metrics")) {
        if (!is_get) {
            hconn_text(c, 405, "Method Not Allowed", "GET only\n");
            return;
        }
        char *text = NULL;
        size_t len = stratus_metrics_render(&text);
        hconn_respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text,
                      strcmp(method, "HEAD") == 0 ? 0 : len);
        free(text);
    } else if (PATH_IS("/healthz")) {
        if (!is_get)
            hconn_text(c, 405, "Method Not Allowed", "GET only\n");
        else
            hconn_text(c, 200, "OK", "ok\n");
    } else if (PATH_IS("/readyz")) {
        char why[256] = "", msg[300];
        if (!is_get) {
            hconn_text(c, 405, "Method Not Allowed", "GET only\n");
            return;
        }
        if (!c->h->conf.ready || c->h->conf.ready(c->h->conf.ready_arg, why, sizeof why)) {
            hconn_text(c, 200, "OK", "ready\n");
        } else {
            snprintf(msg, sizeof msg, "not ready: %s\n", why[0] ? why : "unknown");
            hconn_text(c, 503, "Service Unavailable", msg);
        }
    } else if (PATH_IS("/loglevel")) {
        if (is_get) {
            char msg[32];
            int l = stratus_log_level;
            snprintf(msg, sizeof msg, "%s\n",
                     l >= 0 && l <= STRATUS_LOG_TRACE ? log_level_names[l] : "?");
            hconn_text(c, 200, "OK", msg);
        } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
            http_set_loglevel(c, query, qlen, body, blen);
        } else {
            hconn_text(c, 405, "Method Not Allowed", "GET or POST\n");
        }
    } else {
        hconn_text(c, 404, "Not Found", "not found: try /metrics, /healthz, /readyz\n");
    }
#undef PATH_IS
}

/* Content-Length of the headers in head (NUL-terminated), 0 when absent, -1 when bad. */
static long http_content_length(const char *head)
{
    const char *p = head;
    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, "Content-Length:", 15) == 0) {
            char *end;
            long v = strtol(p + 15, &end, 10);
            if (v < 0 || (*end != '\r' && *end != ' ' && *end != 0))
                return -1;
            return v;
        }
    }
    return 0;
}

static void hconn_on_event(void *arg, uint32_t events)
{
    struct hconn *c = arg;

    if (c->resp) {
        if (events & (EPOLLERR | EPOLLHUP))
            hconn_close(c);
        else
            hconn_write(c);
        return;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->req + c->rlen, HTTP_MAX_REQUEST - c->rlen, 0);
        if (n == 0) {
            hconn_close(c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                hconn_close(c);
            return;
        }
        c->rlen += (size_t)n;
        c->req[c->rlen] = 0;
        char *eoh = strstr(c->req, "\r\n\r\n");
        if (eoh) {
            size_t hlen = (size_t)(eoh - c->req) + 4;
            *eoh = 0;
            long cl = http_content_length(c->req);
            if (cl < 0) {
                hconn_text(c, 400, "Bad Request", "bad Content-Length\n");
                return;
            }
            if (hlen + (size_t)cl > HTTP_MAX_REQUEST) {
                hconn_text(c, 431, "Request Header Fields Too Large", "request too large\n");
                return;
            }
            if (c->rlen >= hlen + (size_t)cl) {
                hconn_route(c, c->req, c->req + hlen, (size_t)cl);
                return;
            }
            *eoh = '\r'; /* wait for the rest of the body */
        }
        if (c->rlen == HTTP_MAX_REQUEST) {
            hconn_text(c, 431, "Request Header Fields Too Large", "request too large\n");
            return;
        }
    }
}

static void http_on_accept(void *arg, uint32_t events)
{
    struct stratus_metrics_http *h = arg;
    (void)events;
    for (int i = 0; i < 16; i++) {
        int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (h->nconns >= HTTP_MAX_CONNS) {
            close(fd);
            continue;
        }
        struct hconn *c = xcalloc(1, sizeof *c);
        c->fd = fd;
        c->h = h;
        c->next = h->conns;
        if (h->conns)
            h->conns->prev = c;
        h->conns = c;
        h->nconns++;
        if (stratus_loop_add_fd(h->loop, fd, EPOLLIN | EPOLLRDHUP, hconn_on_event, c) != 0) {
            hconn_close(c);
            continue;
        }
        c->timer =
            stratus_loop_timer_at(h->loop, stratus_mono_ms() + HTTP_TIMEOUT_MS, hconn_timeout, c);
    }
}

static void *http_main(void *arg)
{
    struct stratus_metrics_http *h = arg;
    pthread_setname_np(pthread_self(), "metrics-http"); /* top -H, perf, gdb */
    stratus_loop_add_fd(h->loop, h->lfd, EPOLLIN, http_on_accept, h);
    stratus_loop_run(h->loop);
    while (h->conns)
        hconn_close(h->conns);
    stratus_loop_del_fd(h->loop, h->lfd);
    return NULL;
}

int stratus_metrics_http_start(const struct stratus_metrics_http_conf *conf,
                               struct stratus_metrics_http **out,
                               struct stratus_errbuf *eb)
{
    struct stratus_metrics_http *h;
    struct addrinfo hints = {0}, *res = NULL, *ai;
    char host[256], portstr[16];
    int port, rc, one = 1, fd = -1, err = 0;

    *out = NULL;
    if ((rc = stratus_metrics_http_parse_addr(conf->listen, host, sizeof host, &port, eb)))
        return rc;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(portstr, sizeof portstr, "%d", port);
    rc = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
    if (rc != 0)
        return stratus_errf(eb, STRATUS_EINVAL, "metrics listen %s: %s", conf->listen,
                            gai_strerror(rc));
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return stratus_errf(eb, STRATUS_EIO, "metrics listen %s: %s", conf->listen, strerror(err));
    h = xcalloc(1, sizeof *h);
    h->conf = *conf;
    h->lfd = fd;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    h->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    h->loop = stratus_loop_new("metrics-http", eb);
    if (!h->loop) {
        rc = STRATUS_EIO;
        goto out_close;
    }
    if (pthread_create(&h->tid, NULL, http_main, h) != 0) {
        rc = stratus_errf(eb, STRATUS_EIO, "cannot start the metrics listener thread");
        goto out_loop;
    }
    *out = h;
    return 0;

out_loop:
    stratus_loop_free(h->loop);
out_close:
    close(fd);
    free(h);
    return rc;
}

int stratus_metrics_http_port(const struct stratus_metrics_http *h)
{
    return h ? h->port : 0;
}

void stratus_metrics_http_stop(struct stratus_metrics_http *h)
{
    if (!h)
        return;
    stratus_loop_stop(h->loop);
    pthread_join(h->tid, NULL);
    stratus_loop_free(h->loop);
    close(h->lfd);
    free(h);
}
