/* link: stratus_metrics stratus_util */
/* test_metrics.c - the metric registry (counters, gauges, histograms, collectors, rendering,
 * escaping) and the metrics HTTP listener (routes, readiness, log level, limits).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "metrics/http.h"
#include "metrics/metrics.h"
#include "test.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

static void test_registry(void)
{
    struct stratus_metric *c = stratus_metrics_counter("t_requests_total{api=\"Fetch\"}", "reqs");
    struct stratus_metric *c2 = stratus_metrics_counter("t_requests_total{api=\"Fetch\"}", "x");
    struct stratus_metric *g = stratus_metrics_gauge("t_bytes", "bytes");
    CHECK(c != NULL);
    CHECK(c == c2);
    CHECK(stratus_metrics_gauge("t_requests_total{api=\"Fetch\"}", "") == NULL); /* type clash */
    CHECK(stratus_metrics_counter("9bad", "") == NULL);
    CHECK(stratus_metrics_counter("bad name", "") == NULL);
    CHECK(stratus_metrics_counter("t_x{unterminated", "") == NULL);
    stratus_metric_add(c, 3);
    stratus_metric_add(c, -5); /* ignored */
    CHECK_EQ(stratus_metric_value(c), 3);
    stratus_metric_add(g, 10);
    stratus_metric_gauge_add(g, -4);
    CHECK_EQ(stratus_metric_value(g), 6);
    CHECK(stratus_metrics_find("t_bytes") == g);
    stratus_metric_add(NULL, 1); /* no-op */
}

static void test_histogram(void)
{
    struct stratus_metric *h =
        stratus_metrics_histogram("t_latency_seconds{op=\"put\"}", "latency");
    CHECK(h != NULL);
    stratus_metric_observe_us(h, 50);       /* le 0.0001 */
    stratus_metric_observe_us(h, 100);      /* le 0.0001 (bound inclusive) */
    stratus_metric_observe_us(h, 3000);     /* le 0.005 */
    stratus_metric_observe_us(h, 20000000); /* +Inf only */
    CHECK_EQ(stratus_metric_value(h), 4);
    CHECK_EQ(stratus_metric_sum_us(h), 50 + 100 + 3000 + 20000000);
    char *text = NULL;
    stratus_metrics_render(&text);
    CHECK(contains(text, "# TYPE t_latency_seconds histogram\n"));
    CHECK(contains(text, "t_latency_seconds_bucket{op=\"put\",le=\"0.0001\"} 2\n"));
    CHECK(contains(text, "t_latency_seconds_bucket{op=\"put\",le=\"0.0025\"} 2\n"));
    CHECK(contains(text, "t_latency_seconds_bucket{op=\"put\",le=\"0.005\"} 3\n"));
    CHECK(contains(text, "t_latency_seconds_bucket{op=\"put\",le=\"10\"} 3\n"));
    CHECK(contains(text, "t_latency_seconds_bucket{op=\"put\",le=\"+Inf\"} 4\n"));
    CHECK(contains(text, "t_latency_seconds_sum{op=\"put\"} 20.003150\n"));
    CHECK(contains(text, "t_latency_seconds_count{op=\"put\"} 4\n"));
    free(text);
    /* An unlabelled histogram. */
    struct stratus_metric *h2 = stratus_metrics_histogram("t_plain_seconds", "plain");
    stratus_metric_observe_us(h2, 1);
    stratus_metrics_render(&text);
    CHECK(contains(text, "t_plain_seconds_bucket{le=\"0.0001\"} 1\n"));
    CHECK(contains(text, "t_plain_seconds_sum 0.000001\n"));
    CHECK(contains(text, "t_plain_seconds_count 1\n"));
    free(text);
}

static int collect_calls;

static void collect(void *arg, struct stratus_metrics_sink *s)
{
    collect_calls++;
    stratus_metrics_emit(s, STRATUS_METRIC_GAUGE, "t_emitted", NULL, "emitted gauge",
                         *(double *)arg);
    stratus_metrics_emit(s, STRATUS_METRIC_GAUGE, "t_lag", "t_lag{group=\"b\"}", "lag", 2);
    stratus_metrics_emit(s, STRATUS_METRIC_GAUGE, "t_lag", "t_lag{group=\"a\"}", "lag", 1);
    stratus_metrics_emit(s, STRATUS_METRIC_SUMMARY, "t_write_seconds", "t_write_seconds_sum",
                         "writes", 1.5);
    stratus_metrics_emit(s, STRATUS_METRIC_SUMMARY, "t_write_seconds", "t_write_seconds_count",
                         "writes", 3);
    stratus_metrics_emit(s, STRATUS_METRIC_GAUGE, "bad name", NULL, "", 1); /* dropped */
}

static void test_collectors_and_order(void)
{
    double v = 2.5;
    char *text = NULL;
    /* Families sharing a prefix must not split: t_fam, t_fam_bytes, t_fam{x}. */
    stratus_metric_add(stratus_metrics_gauge("t_fam", "fam"), 1);
    stratus_metric_add(stratus_metrics_gauge("t_fam_bytes", "fam bytes"), 2);
    stratus_metric_add(stratus_metrics_gauge("t_fam{x=\"1\"}", "fam"), 3);
    stratus_metrics_add_collector(collect, &v);
    stratus_metrics_render(&text);
    CHECK_EQ(collect_calls, 1);
    CHECK(contains(text, "# TYPE t_emitted gauge\nt_emitted 2.5\n"));
    CHECK(contains(text, "# TYPE t_lag gauge\nt_lag{group=\"a\"} 1\nt_lag{group=\"b\"} 2\n"));
    CHECK(contains(text, "# TYPE t_write_seconds summary\nt_write_seconds_count 3\n"
                         "t_write_seconds_sum 1.5\n"));
    CHECK(!contains(text, "bad name"));
    CHECK(contains(text, "# TYPE t_fam gauge\nt_fam 1\nt_fam{x=\"1\"} 3\n"));
    /* Exactly one header per family. */
    const char *p = text;
    int n = 0;
    while ((p = strstr(p, "# TYPE t_fam gauge")) != NULL) {
        n++;
        p++;
    }
    CHECK_EQ(n, 1);
    free(text);
    stratus_metrics_remove_collector(collect, &v);
    stratus_metrics_render(&text);
    CHECK_EQ(collect_calls, 1);
    CHECK(!contains(text, "t_emitted"));
    free(text);

    char esc[32];
    stratus_metrics_escape("a\"b\\c\nd", esc, sizeof esc);
    CHECK_STR(esc, "a\\\"b\\\\c\\nd");
    stratus_metrics_escape("abcdef", esc, 4);
    CHECK_STR(esc, "abc");
}

static void test_topic_io(void)
{
    /* Two v2 batch headers: lastOffsetDelta 2 and 0 -> 4 records. */
    uint8_t b[2 * 61];
    memset(b, 0, sizeof b);
    for (int i = 0; i < 2; i++) {
        uint8_t *h = b + 61 * i;
        h[11] = 49;             /* batchLength: 61 - 12 */
        h[26] = i == 0 ? 2 : 0; /* lastOffsetDelta */
    }
    stratus_metrics_topic_io(STRATUS_METRICS_TOPIC_IN, "demo", b, sizeof b);
    CHECK_EQ(stratus_metric_value(stratus_metrics_find("stratus_topic_records_in_total")), 4);
    CHECK_EQ(stratus_metric_value(stratus_metrics_find("stratus_topic_bytes_in_total")), 122);
    stratus_metrics_set_topic_labels(1);
    stratus_metrics_topic_io(STRATUS_METRICS_TOPIC_OUT, "demo", b, 61 + 10); /* torn tail */
    CHECK_EQ(stratus_metric_value(
                 stratus_metrics_find("stratus_topic_records_out_total{topic=\"demo\"}")),
             3);
    stratus_metrics_set_topic_labels(0);
}

/* ---- HTTP ---- */

static int ready_flag;

static int ready_cb(void *arg, char *why, size_t cap)
{
    (void)arg;
    if (!ready_flag)
        snprintf(why, cap, "degraded: WAL 95%% full");
    return ready_flag;
}

/* Sends req to 127.0.0.1:port and returns the whole response (malloc'd). */
static char *http(int port, const char *req, size_t len)
{
    struct sockaddr_in sa = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t cap = 1 << 20, n = 0;
    char *out = calloc(1, cap + 1);

    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return out;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    for (;;) {
        ssize_t r = recv(fd, out + n, cap - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    return out;
}

static char *get(int port, const char *req)
{
    return http(port, req, strlen(req));
}

static void test_http(void)
{
    struct stratus_metrics_http *h;
    struct stratus_errbuf eb = {{0}};
    struct stratus_metrics_http_conf conf = {"127.0.0.1:0", ready_cb, NULL};
    char host[64], *r;
    int port;

    CHECK_EQ(stratus_metrics_http_parse_addr("[::1]:9464", host, sizeof host, &port, &eb), 0);
    CHECK_STR(host, "::1");
    CHECK_EQ(port, 9464);
    CHECK_EQ(stratus_metrics_http_parse_addr(":80", host, sizeof host, &port, &eb), 0);
    CHECK_STR(host, "");
    CHECK(stratus_metrics_http_parse_addr("localhost", host, sizeof host, &port, &eb) < 0);
    CHECK(stratus_metrics_http_parse_addr("h:99999", host, sizeof host, &port, &eb) < 0);

    CHECK_EQ(stratus_metrics_http_start(&conf, &h, &eb), 0);
    port = stratus_metrics_http_port(h);
    CHECK(port > 0);
    stratus_metric_add(stratus_metrics_counter("t_http_total", "h"), 7);

    r = get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(contains(r, "HTTP/1.1 200 OK\r\n"));
    CHECK(contains(r, "Content-Type: text/plain; version=0.0.4"));
    CHECK(contains(r, "\nt_http_total 7\n"));
    free(r);
    r = get(port, "GET /healthz HTTP/1.0\r\n\r\n");
    CHECK(contains(r, "200 OK") && contains(r, "\r\n\r\nok\n"));
    free(r);
    ready_flag = 0;
    r = get(port, "GET /readyz HTTP/1.1\r\n\r\n");
    CHECK(contains(r, "HTTP/1.1 503 "));
    CHECK(contains(r, "not ready: degraded: WAL 95% full"));
    free(r);
    ready_flag = 1;
    r = get(port, "GET /readyz HTTP/1.1\r\n\r\n");
    CHECK(contains(r, "200 OK") && contains(r, "ready\n"));
    free(r);
    r = get(port, "GET /nope HTTP/1.1\r\n\r\n");
    CHECK(contains(r, "HTTP/1.1 404 "));
    free(r);
    r = get(port, "DELETE /metrics HTTP/1.1\r\n\r\n");
    CHECK(contains(r, "HTTP/1.1 405 "));
    free(r);
    r = get(port, "garbage\r\n\r\n");
    CHECK(contains(r, "HTTP/1.1 400 "));
    free(r);

    /* Log level: query, body, bad value. */
    int old = stratus_log_level;
    r = get(port, "POST /loglevel?level=debug HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    CHECK(contains(r, "200 OK") && contains(r, "debug\n"));
    CHECK_EQ(stratus_log_level, STRATUS_LOG_DEBUG);
    free(r);
    r = get(port, "POST /loglevel HTTP/1.1\r\nContent-Length: 5\r\n\r\nerror");
    CHECK_EQ(stratus_log_level, STRATUS_LOG_ERROR);
    free(r);
    r = get(port, "POST /loglevel HTTP/1.1\r\nContent-Length: 4\r\n\r\nloud");
    CHECK(contains(r, "HTTP/1.1 400 "));
    CHECK_EQ(stratus_log_level, STRATUS_LOG_ERROR);
    free(r);
    r = get(port, "GET /loglevel HTTP/1.1\r\n\r\n");
    CHECK(contains(r, "\r\n\r\nerror\n"));
    free(r);
    stratus_log_level = old;

    /* Oversized request: 431, and the listener keeps serving. */
    size_t big = 20000;
    char *req = malloc(big);
    memset(req, 'a', big);
    memcpy(req, "GET /metrics HTTP/1.1\r\nX: ", 26);
    r = http(port, req, big);
    CHECK(contains(r, "HTTP/1.1 431 "));
    free(r);
    free(req);
    r = get(port, "POST /loglevel HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
    CHECK(contains(r, "HTTP/1.1 431 "));
    free(r);
    r = get(port, "GET /healthz HTTP/1.1\r\n\r\n");
    CHECK(contains(r, "200 OK"));
    free(r);

    stratus_metrics_http_stop(h);
    /* A taken port is refused with the address in the message. */
    struct stratus_metrics_http *h2, *h3;
    conf.listen = "127.0.0.1:0";
    CHECK_EQ(stratus_metrics_http_start(&conf, &h2, &eb), 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", stratus_metrics_http_port(h2));
    conf.listen = addr;
    CHECK(stratus_metrics_http_start(&conf, &h3, &eb) < 0);
    CHECK(contains(eb.msg, addr));
    stratus_metrics_http_stop(h2);
}

int main(void)
{
    test_registry();
    test_histogram();
    test_collectors_and_order();
    test_topic_io();
    test_http();
    TEST_REPORT();
}
