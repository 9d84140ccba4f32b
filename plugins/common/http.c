/* http.c - the shared HTTP client of the cloud plugins on libcurl (see http.h): a pool of
 * easy handles guarded by a mutex, a curl share (DNS cache, TLS sessions) with one lock per
 * shared data kind, request/response builders, and failure classification.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "http.h"

#include "json.h"
#include "timefmt.h"

#include "stratus/stratus_storage.h"
#include "xml.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_DEFAULT_BODY_MAX (1024 * 1024)

struct stratus_http {
    pthread_mutex_t mu; /* guards idle/nidle */
    CURL **idle;
    int nidle, max_idle;
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    int share_mu_init;
    char *ca_file, *ca_path, *user_agent;
    int insecure;
    long connect_ms, stall_s, total_ms;
    int global_init;
};

/* ---- client ------------------------------------------------------------------------------ */

static void http_share_lock(CURL *c, curl_lock_data data, curl_lock_access acc, void *arg)
{
    (void)c;
    (void)acc;
    struct stratus_http *h = arg;
    pthread_mutex_lock(&h->share_mu[data]);
}

static void http_share_unlock(CURL *c, curl_lock_data data, void *arg)
{
    (void)c;
    struct stratus_http *h = arg;
    pthread_mutex_unlock(&h->share_mu[data]);
}

static char *http_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int stratus_http_new(const struct stratus_http_opts *opts,
                     struct stratus_http **out,
                     struct stratus_errbuf *eb)
{
    struct stratus_http_opts zero = {0};
    struct stratus_http *h = NULL;
    *out = NULL;
    if (!opts)
        opts = &zero;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return stratus_errf(eb, STRATUS_EIO, "http: curl_global_init failed");
    h = calloc(1, sizeof *h);
    if (!h)
        goto nomem;
    h->global_init = 1;
    pthread_mutex_init(&h->mu, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&h->share_mu[i], NULL);
    h->share_mu_init = 1;
    h->max_idle = opts->max_idle_handles > 0 ? opts->max_idle_handles : 16;
    h->idle = calloc((size_t)h->max_idle, sizeof *h->idle);
    h->ca_file = http_strdup(opts->ca_file && *opts->ca_file ? opts->ca_file : NULL);
    h->ca_path = http_strdup(opts->ca_path && *opts->ca_path ? opts->ca_path : NULL);
    h->user_agent = http_strdup(opts->user_agent ? opts->user_agent : "stratus");
    if (!h->idle || !h->user_agent || (opts->ca_file && *opts->ca_file && !h->ca_file) ||
        (opts->ca_path && *opts->ca_path && !h->ca_path))
        goto nomem;
    h->insecure = opts->insecure;
    h->connect_ms = opts->connect_timeout_ms > 0 ? (long)opts->connect_timeout_ms : 10000;
    long stall_ms = opts->stall_timeout_ms > 0 ? (long)opts->stall_timeout_ms : 30000;
    h->stall_s = stall_ms < 1000 ? 1 : (stall_ms + 999) / 1000;
    h->total_ms = opts->total_timeout_ms > 0 ? (long)opts->total_timeout_ms : 0;
    h->share = curl_share_init();
    if (!h->share)
        goto nomem;
    curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, http_share_lock);
    curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, http_share_unlock);
    curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    *out = h;
    return 0;
nomem:
    stratus_http_free(h);
    if (!h)
        curl_global_cleanup();
    return stratus_errf(eb, STRATUS_ENOMEM, "http: out of memory");
}

void stratus_http_free(struct stratus_http *h)
{
    if (!h)
        return;
    for (int i = 0; i < h->nidle; i++)
        curl_easy_cleanup(h->idle[i]);
    free(h->idle);
    if (h->share)
        curl_share_cleanup(h->share);
    if (h->share_mu_init) {
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
            pthread_mutex_destroy(&h->share_mu[i]);
        pthread_mutex_destroy(&h->mu);
    }
    free(h->ca_file);
    free(h->ca_path);
    free(h->user_agent);
    int gi = h->global_init;
    free(h);
    if (gi)
        curl_global_cleanup();
}

static CURL *http_take(struct stratus_http *h)
{
    CURL *c = NULL;
    pthread_mutex_lock(&h->mu);
    if (h->nidle > 0)
        c = h->idle[--h->nidle];
    pthread_mutex_unlock(&h->mu);
    return c ? c : curl_easy_init();
}

static void http_give(struct stratus_http *h, CURL *c)
{
    pthread_mutex_lock(&h->mu);
    if (h->nidle < h->max_idle) {
        h->idle[h->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&h->mu);
    if (c)
        curl_easy_cleanup(c);
}

/* ---- request ----------------------------------------------------------------------------- */

void stratus_http_req_init(struct stratus_http_req *rq, const char *method)
{
    memset(rq, 0, sizeof *rq);
    rq->method = method;
}

void stratus_http_req_free(struct stratus_http_req *rq)
{
    free(rq->url);
    for (size_t i = 0; i < rq->nhdr; i++) {
        free(rq->hdr[i].name);
        free(rq->hdr[i].value);
    }
    memset(rq, 0, sizeof *rq);
}

int stratus_http_req_url(struct stratus_http_req *rq, const char *fmt, ...)
{
    va_list ap;
    char *u = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&u, fmt, ap);
    va_end(ap);
    if (n < 0) {
        rq->err = 1;
        return STRATUS_ENOMEM;
    }
    free(rq->url);
    rq->url = u;
    return 0;
}

static char *http_trim_dup(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    return strndup(s, n);
}

static int http_hdr_find(const struct stratus_http_header *hv, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(hv[i].name, name) == 0)
            return (int)i;
    return -1;
}

int stratus_http_req_header(struct stratus_http_req *rq, const char *name, const char *fmt, ...)
{
    int i = http_hdr_find(rq->hdr, rq->nhdr, name);
    if (!fmt) {
        if (i >= 0) {
            free(rq->hdr[i].name);
            free(rq->hdr[i].value);
            rq->hdr[i] = rq->hdr[--rq->nhdr];
        }
        return 0;
    }
    va_list ap;
    char *v = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&v, fmt, ap);
    va_end(ap);
    if (n < 0)
        goto nomem;
    if (strpbrk(v, "\r\n") || strpbrk(name, "\r\n: ")) { /* no header injection */
        free(v);
        rq->err = 1;
        return STRATUS_EINVAL;
    }
    char *tv = http_trim_dup(v, (size_t)n);
    free(v);
    if (!tv)
        goto nomem;
    if (i >= 0) {
        free(rq->hdr[i].value);
        rq->hdr[i].value = tv;
        return 0;
    }
    if (rq->nhdr >= STRATUS_HTTP_MAX_HEADERS) {
        free(tv);
        rq->err = 1;
        return STRATUS_ERANGE;
    }
    char *nm = strdup(name);
    if (!nm) {
        free(tv);
        goto nomem;
    }
    rq->hdr[rq->nhdr].name = nm;
    rq->hdr[rq->nhdr].value = tv;
    rq->nhdr++;
    return 0;
nomem:
    rq->err = 1;
    return STRATUS_ENOMEM;
}

const char *stratus_http_req_get_header(const struct stratus_http_req *rq, const char *name)
{
    int i = http_hdr_find(rq->hdr, rq->nhdr, name);
    return i >= 0 ? rq->hdr[i].value : NULL;
}

int stratus_http_req_body(struct stratus_http_req *rq, const void *data, size_t len)
{
    rq->body = data ? data : "";
    rq->body_len = len;
    if (!stratus_http_req_get_header(rq, "Content-Type"))
        return stratus_http_req_header(rq, "Content-Type", "application/octet-stream");
    return 0;
}

int stratus_http_req_range(struct stratus_http_req *rq, uint64_t off, uint64_t len)
{
    if (len == 0)
        return STRATUS_EINVAL;
    return stratus_http_req_header(rq, "Range", "bytes=%llu-%llu", (unsigned long long)off,
                                   (unsigned long long)(off + len - 1));
}

/* ---- response ---------------------------------------------------------------------------- */

void stratus_http_resp_init(struct stratus_http_resp *rs)
{
    memset(rs, 0, sizeof *rs);
}

static void http_resp_clear_headers(struct stratus_http_resp *rs)
{
    for (size_t i = 0; i < rs->nhdr; i++) {
        free(rs->hdr[i].name);
        free(rs->hdr[i].value);
    }
    rs->nhdr = 0;
}

void stratus_http_resp_free(struct stratus_http_resp *rs)
{
    http_resp_clear_headers(rs);
    free(rs->body);
    rs->body = NULL;
    rs->body_len = rs->body_cap = 0;
}

const char *stratus_http_resp_header(const struct stratus_http_resp *rs, const char *name)
{
    int i = http_hdr_find(rs->hdr, rs->nhdr, name);
    return i >= 0 ? rs->hdr[i].value : NULL;
}

struct http_xfer {
    CURL *c;
    struct stratus_http_resp *rs;
    int ok2xx; /* -1 unknown, else whether the final status is 2xx */
    int nomem;
};

static size_t http_on_header(char *buf, size_t sz, size_t n, void *arg)
{
    struct http_xfer *x = arg;
    struct stratus_http_resp *rs = x->rs;
    size_t len = sz * n;
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) { /* a new response (after 1xx/redirect) */
        http_resp_clear_headers(rs);
        x->ok2xx = -1;
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon || rs->nhdr >= STRATUS_HTTP_MAX_RESP_HEADERS)
        return len;
    char *name = strndup(buf, (size_t)(colon - buf));
    char *val = http_trim_dup(colon + 1, len - (size_t)(colon + 1 - buf));
    if (!name || !val) {
        free(name);
        free(val);
        x->nomem = 1;
        return 0;
    }
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    rs->hdr[rs->nhdr].name = name;
    rs->hdr[rs->nhdr].value = val;
    rs->nhdr++;
    return len;
}

static int http_body_append(struct stratus_http_resp *rs, const char *buf, size_t len, size_t max)
{
    if (rs->body_len + len > max)
        return -1;
    if (rs->body_len + len + 1 > rs->body_cap) {
        size_t cap = rs->body_cap ? rs->body_cap : 4096;
        while (cap < rs->body_len + len + 1)
            cap *= 2;
        char *p = realloc(rs->body, cap);
        if (!p)
            return -2;
        rs->body = p;
        rs->body_cap = cap;
    }
    memcpy(rs->body + rs->body_len, buf, len);
    rs->body_len += len;
    rs->body[rs->body_len] = 0;
    return 0;
}

static size_t http_on_body(char *buf, size_t sz, size_t n, void *arg)
{
    struct http_xfer *x = arg;
    struct stratus_http_resp *rs = x->rs;
    size_t len = sz * n;
    if (x->ok2xx < 0) {
        long st = 0;
        curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &st);
        x->ok2xx = st >= 200 && st < 300;
    }
    if (!x->ok2xx) { /* error body: keep the head, drop the rest, keep the connection */
        size_t room =
            STRATUS_HTTP_ERR_BODY_MAX > rs->body_len ? STRATUS_HTTP_ERR_BODY_MAX - rs->body_len : 0;
        if (room &&
            http_body_append(rs, buf, len < room ? len : room, STRATUS_HTTP_ERR_BODY_MAX) == -2) {
            x->nomem = 1;
            return 0;
        }
        return len;
    }
    if (rs->dst) {
        if (len > rs->dst_cap - rs->dst_len) {
            rs->overflow = 1;
            return 0;
        }
        memcpy((char *)rs->dst + rs->dst_len, buf, len);
        rs->dst_len += len;
        return len;
    }
    int r = http_body_append(rs, buf, len, rs->body_max ? rs->body_max : HTTP_DEFAULT_BODY_MAX);
    if (r == -1)
        rs->overflow = 1;
    else if (r == -2)
        x->nomem = 1;
    return r == 0 ? len : 0;
}

/* ---- perform ----------------------------------------------------------------------------- */

/* "METHOD scheme://host/path" with the query (which may carry a SAS token) left out. */
static void http_what(const struct stratus_http_req *rq, char *out, size_t cap)
{
    const char *u = rq->url ? rq->url : "(no url)";
    size_t n = strcspn(u, "?");
    snprintf(out, cap, "%s %.*s", rq->method ? rq->method : "GET", (int)(n > 160 ? 160 : n), u);
}

static int http_curl_err(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_AGAIN:
    case CURLE_WEIRD_SERVER_REPLY:
        return STRATUS_EAGAIN;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return STRATUS_EAUTH;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return STRATUS_EINVAL;
    case CURLE_OUT_OF_MEMORY:
        return STRATUS_ENOMEM;
    default:
        return STRATUS_EIO;
    }
}

int stratus_http_do(struct stratus_http *h,
                    const struct stratus_http_req *rq,
                    struct stratus_http_resp *rs,
                    struct stratus_errbuf *eb)
{
    char what[200];
    char cerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *hl = NULL;
    int rc = 0;
    http_what(rq, what, sizeof what);
    rs->status = 0;
    rs->dst_len = 0;
    rs->overflow = 0;
    rs->body_len = 0;
    http_resp_clear_headers(rs);
    if (rq->err || !rq->url || !rq->method)
        return stratus_errf(eb, STRATUS_EINVAL, "%s: incomplete request (out of memory?)", what);
    CURL *c = http_take(h);
    if (!c)
        return stratus_errf(eb, STRATUS_ENOMEM, "%s: curl_easy_init failed", what);
    curl_easy_reset(c);
    struct http_xfer x = {c, rs, -1, 0};

    /* headers; a failed append drops the whole list and fails the call */
    int has_ct = 0;
    for (size_t i = 0; i < rq->nhdr; i++) {
        char line[8192];
        if (strcasecmp(rq->hdr[i].name, "Content-Type") == 0)
            has_ct = 1;
        if (rq->hdr[i].value[0])
            snprintf(line, sizeof line, "%s: %s", rq->hdr[i].name, rq->hdr[i].value);
        else
            snprintf(line, sizeof line, "%s;", rq->hdr[i].name); /* curl: empty value */
        struct curl_slist *n = curl_slist_append(hl, line);
        if (!n)
            goto nomem;
        hl = n;
    }
    int with_body = rq->body || strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "POST") == 0 ||
                    strcmp(rq->method, "PATCH") == 0;
    const char *extra[] = {"Expect:",
                           with_body && !has_ct ? "Content-Type: application/octet-stream" : NULL};
    for (size_t i = 0; i < 2; i++) {
        if (!extra[i])
            continue;
        struct curl_slist *n = curl_slist_append(hl, extra[i]);
        if (!n)
            goto nomem;
        hl = n;
    }

    curl_easy_setopt(c, CURLOPT_URL, rq->url);
    curl_easy_setopt(c, CURLOPT_SHARE, h->share);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_ms);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->stall_s);
    if (h->total_ms)
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->total_ms);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, h->user_agent);
    if (h->insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    if (h->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    if (h->ca_path)
        curl_easy_setopt(c, CURLOPT_CAPATH, h->ca_path);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    if (strcmp(rq->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(rq->method, "GET") == 0 && !rq->body) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
        if (with_body) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        }
    }

    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
    } else if (x.nomem) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "%s: out of memory reading the reply", what);
    } else if (rs->overflow) {
        rc = rs->dst ? stratus_errf(eb, STRATUS_EPROTO, "%s: reply body larger than %zu bytes",
                                    what, rs->dst_cap)
                     : stratus_errf(eb, STRATUS_ENOMEM, "%s: reply body over %zu bytes", what,
                                    rs->body_max ? rs->body_max : (size_t)HTTP_DEFAULT_BODY_MAX);
    } else {
        rc = stratus_errf(eb, http_curl_err(cc), "%s: %s", what,
                          cerr[0] ? cerr : curl_easy_strerror(cc));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hl);
    http_give(h, c);
    return rc;
nomem:
    curl_slist_free_all(hl);
    http_give(h, c);
    return stratus_errf(eb, STRATUS_ENOMEM, "%s: out of memory", what);
}

/* ---- classification ---------------------------------------------------------------------- */

/* Extracts the provider's code and message from a failed reply. */
static void http_provider_error(
    const struct stratus_http_resp *rs, char *code, size_t ccap, char *msg, size_t mcap)
{
    code[0] = msg[0] = 0;
    const char *b = rs->body;
    size_t n = rs->body_len;
    while (b && n && (*b == ' ' || *b == '\n' || *b == '\r' || *b == '\t')) {
        b++;
        n--;
    }
    if (b && n && *b == '<') {
        struct stratus_xml_span doc = {b, n};
        stratus_xml_get(doc, "Code", code, ccap);
        stratus_xml_get(doc, "Message", msg, mcap);
    } else if (b && n && *b == '{') {
        struct stratus_json_val v;
        if (stratus_json_get(b, n, "error", &v) == 0 && v.type == STRATUS_JSON_OBJECT) {
            stratus_json_get_str(v.p, v.len, "message", msg, mcap);
            if (stratus_json_get_str(v.p, v.len, "status", code, ccap) < 0)
                stratus_json_get_str(v.p, v.len, "code", code, ccap);
        } else if (v.type == STRATUS_JSON_STRING) {
            stratus_json_str(&v, code, ccap);
            stratus_json_get_str(b, n, "error_description", msg, mcap);
        } else {
            stratus_json_get_str(b, n, "message", msg, mcap);
            stratus_json_get_str(b, n, "code", code, ccap);
        }
    }
    if (!code[0]) {
        const char *h = stratus_http_resp_header(rs, "x-amz-error-code");
        if (!h)
            h = stratus_http_resp_header(rs, "x-ms-error-code");
        if (h)
            snprintf(code, ccap, "%s", h);
    }
    if (!msg[0]) {
        const char *h = stratus_http_resp_header(rs, "x-amz-error-message");
        if (h) {
            snprintf(msg, mcap, "%s", h);
        } else if (b && n && *b != '<' && *b != '{') {
            size_t k = n < mcap - 1 ? n : mcap - 1;
            for (size_t i = 0; i < k; i++)
                msg[i] = (b[i] >= 32 && b[i] < 127) ? b[i] : ' ';
            msg[k] = 0;
        }
    }
}

void stratus_http_error_code(const struct stratus_http_resp *rs, char *out, size_t cap)
{
    char msg[8];
    http_provider_error(rs, out, cap, msg, sizeof msg);
}

int stratus_http_classify(const struct stratus_http_resp *rs,
                          const char *what,
                          struct stratus_errbuf *eb)
{
    long st = rs->status;
    if (st >= 200 && st < 300)
        return 0;
    char code[64], msg[200];
    http_provider_error(rs, code, sizeof code, msg, sizeof msg);
    int rc;
    switch (st) {
    case 404:
        rc = STRATUS_ENOTFOUND;
        break;
    case 409:
    case 412:
        rc = STRATUS_EEXIST;
        break;
    case 408:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
        rc = STRATUS_EAGAIN;
        break;
    case 401:
    case 403:
        rc = STRATUS_EAUTH;
        break;
    case 416:
        rc = STRATUS_ERANGE;
        break;
    default:
        rc = STRATUS_EIO;
        if (strcmp(code, "RequestTimeout") == 0 || strcmp(code, "SlowDown") == 0 ||
            strcmp(code, "Throttling") == 0 || strcmp(code, "ServerBusy") == 0)
            rc = STRATUS_EAGAIN;
        else if (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "InvalidAccessKeyId") == 0 ||
                 strcmp(code, "AuthenticationFailed") == 0)
            rc = STRATUS_EAUTH;
    }
    return stratus_errf(eb, rc, "%s: HTTP %ld%s%s%s%s", what ? what : "request", st,
                        code[0] ? " " : "", code, msg[0] ? ": " : "", msg);
}

int stratus_http_resp_object_info(const struct stratus_http_resp *rs, const char *key,
                                  const char *what, struct stratus_object_info *info,
                                  struct stratus_errbuf *eb)
{
    const char *cl = stratus_http_resp_header(rs, "content-length");
    const char *et = stratus_http_resp_header(rs, "etag");
    const char *lm = stratus_http_resp_header(rs, "last-modified");
    char *end = NULL;
    int64_t ms = 0;

    memset(info, 0, sizeof *info);
    snprintf(info->key, sizeof info->key, "%s", key);
    info->size = cl ? strtoull(cl, &end, 10) : 0;
    snprintf(info->etag, sizeof info->etag, "%s", et ? et : "");
    if (lm && stratus_timefmt_parse_rfc1123(lm, &ms) == 0)
        info->mtime_ms = ms;
    if (!cl || end == cl)
        return stratus_errf(eb, STRATUS_EPROTO, "%s: no Content-Length", what);
    return 0;
}
