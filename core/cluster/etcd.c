/* etcd.c - the etcd v3 JSON-gateway client (see etcd.h for the wire format, threads and
 * ownership). Owns: the endpoint list and the index of the last good endpoint, a pool of idle
 * curl handles (kept-alive connections), the auth token, the keepalive thread and its lease
 * table, and one thread plus one curl handle per watch.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cluster/etcd.h"

#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ETCD_MAX_ENDPOINTS 16
#define ETCD_POOL_MAX      16
#define ETCD_MAX_REPLY     (64u << 20) /* a reply (or one watch message) larger than this fails */

/* Request flags (internal). */
#define CALL_REPEATABLE 0x1 /* may be sent again to another endpoint after an ambiguous error */
#define CALL_NOAUTH     0x2 /* no Authorization header (authenticate itself) */

struct lease_entry {
    int64_t id;
    int64_t ttl_ms;
    int64_t last_ok_ms; /* monotonic time of the last successful keepalive (or keep) */
    int64_t next_ms;    /* when to send the next keepalive */
    stratus_etcd_lease_lost_cb cb;
    void *arg;
    struct lease_entry *next;
};

struct stratus_etcd {
    char *endpoints[ETCD_MAX_ENDPOINTS];
    int n_endpoints;
    atomic_int cur; /* index of the endpoint that answered last */
    char *prefix;
    size_t prefix_len;
    long connect_timeout_ms, request_timeout_ms;
    char *ca_file, *cert_file, *key_file;
    char *username, *password;

    pthread_mutex_t mu; /* guards pool, token */
    CURL *pool[ETCD_POOL_MAX];
    int n_pool;
    char *token;        /* auth token or NULL */
    uint64_t token_gen; /* bumped on every refresh */

    pthread_mutex_t ka_mu; /* guards the lease table and ka_* */
    pthread_cond_t ka_cond;
    struct lease_entry *leases;
    int ka_running, ka_stop;
    pthread_t ka_thread;
    int64_t ka_busy_id; /* lease whose keepalive is in flight (0 = none) */
};

/* ---- small helpers ------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;
static void etcd_curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *etcd_b64_encode(const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
    size_t i;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64chars[v >> 18];
        *o++ = b64chars[(v >> 12) & 63];
        *o++ = b64chars[(v >> 6) & 63];
        *o++ = b64chars[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = b64chars[v >> 18];
        *o++ = b64chars[(v >> 12) & 63];
        *o++ = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    return out;
}

static int b64_val(int ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+' || ch == '-')
        return 62;
    if (ch == '/' || ch == '_')
        return 63;
    return -1;
}

/* Decodes into a malloc'd, NUL-terminated buffer; returns -1 on bad input. */
static int etcd_b64_decode(const char *s, char **out, size_t *out_len)
{
    size_t len = strlen(s), n = 0;
    char *buf = malloc(len / 4 * 3 + 4);
    uint32_t acc = 0;
    int bits = 0;
    if (!buf)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v;
        if (s[i] == '=')
            break;
        v = b64_val((unsigned char)s[i]);
        if (v < 0) {
            free(buf);
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    return 0;
}

/* A JSON int64 that the gateway sends as a string (or, defensively, a number); absent = 0. */
static int64_t json_i64(const json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    return 0;
}

/* A uint64 (member ids use the full range), as a string; absent = 0. */
static uint64_t json_u64(const json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    return s ? (uint64_t)strtoull(s, NULL, 10) : 0;
}

static void json_set_i64(json_t *obj, const char *name, int64_t v)
{
    char s[32];
    snprintf(s, sizeof s, "%" PRId64, v);
    json_object_set_new(obj, name, json_string(s));
}

/* prefix + key, base64'd. */
static char *etcd_key_b64(struct stratus_etcd *c, const void *key, size_t key_len)
{
    char *full = xmalloc(c->prefix_len + key_len + 1), *out;
    memcpy(full, c->prefix, c->prefix_len);
    if (key_len)
        memcpy(full + c->prefix_len, key, key_len);
    out = etcd_b64_encode(full, c->prefix_len + key_len);
    free(full);
    return out;
}

/* The end of the range of every key starting with prefix+key: the prefix with its last byte
 * below 0xff incremented (bytes after it dropped); "\0" (all keys) when there is none. */
static char *etcd_prefix_end_b64(struct stratus_etcd *c, const void *key, size_t key_len)
{
    size_t n = c->prefix_len + key_len;
    unsigned char *full = xmalloc(n + 1);
    char *out;
    memcpy(full, c->prefix, c->prefix_len);
    if (key_len)
        memcpy(full + c->prefix_len, key, key_len);
    while (n > 0 && full[n - 1] == 0xff)
        n--;
    if (n == 0) {
        full[0] = 0;
        n = 1;
    } else {
        full[n - 1]++;
    }
    out = etcd_b64_encode(full, n);
    free(full);
    return out;
}

static void
json_set_key(struct stratus_etcd *c, json_t *obj, const char *name, const void *key, size_t key_len)
{
    char *b = etcd_key_b64(c, key, key_len);
    json_object_set_new(obj, name, json_string(b));
    free(b);
}

/* Sets key and range_end from key/flags/range_end. */
static void json_set_range(struct stratus_etcd *c,
                           json_t *obj,
                           const void *key,
                           size_t key_len,
                           int flags,
                           const void *range_end,
                           size_t range_end_len)
{
    json_set_key(c, obj, "key", key, key_len);
    if (range_end && range_end_len) {
        json_set_key(c, obj, "range_end", range_end, range_end_len);
    } else if (flags & STRATUS_ETCD_PREFIX) {
        char *b = etcd_prefix_end_b64(c, key, key_len);
        json_object_set_new(obj, "range_end", json_string(b));
        free(b);
    }
}

void stratus_etcd_kv_free(struct stratus_etcd_kv *kv)
{
    if (!kv)
        return;
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof *kv);
}

void stratus_etcd_resp_free(struct stratus_etcd_resp *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_kvs; i++)
        stratus_etcd_kv_free(&r->kvs[i]);
    free(r->kvs);
    memset(r, 0, sizeof *r);
}

void stratus_etcd_txn_result_free(struct stratus_etcd_txn_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_responses; i++)
        stratus_etcd_resp_free(&r->responses[i]);
    free(r->responses);
    free(r->types);
    memset(r, 0, sizeof *r);
}

/* Parses one mvccpb.KeyValue, stripping the client prefix from the key. */
static int etcd_parse_kv(struct stratus_etcd *c,
                         const json_t *j,
                         struct stratus_etcd_kv *kv,
                         struct stratus_errbuf *eb)
{
    const char *k = json_string_value(json_object_get(j, "key"));
    const char *v = json_string_value(json_object_get(j, "value"));
    char *raw = NULL;
    size_t raw_len = 0;

    memset(kv, 0, sizeof *kv);
    if (!json_is_object(j))
        return stratus_errf(eb, STRATUS_EPROTO, "etcd: kv is not an object");
    if (etcd_b64_decode(k ? k : "", &raw, &raw_len) < 0)
        return stratus_errf(eb, STRATUS_EPROTO, "etcd: bad base64 key");
    if (raw_len >= c->prefix_len && memcmp(raw, c->prefix, c->prefix_len) == 0) {
        memmove(raw, raw + c->prefix_len, raw_len - c->prefix_len + 1);
        raw_len -= c->prefix_len;
    }
    kv->key = raw;
    kv->key_len = raw_len;
    if (etcd_b64_decode(v ? v : "", &kv->value, &kv->value_len) < 0) {
        stratus_etcd_kv_free(kv);
        return stratus_errf(eb, STRATUS_EPROTO, "etcd: bad base64 value");
    }
    kv->create_revision = json_i64(j, "create_revision");
    kv->mod_revision = json_i64(j, "mod_revision");
    kv->version = json_i64(j, "version");
    kv->lease = json_i64(j, "lease");
    return 0;
}

/* Fills resp from a Range/Put/DeleteRange response object; kvs_name is "kvs", "prev_kv" (one
 * object) or "prev_kvs". */
static int etcd_parse_resp(struct stratus_etcd *c,
                           const json_t *j,
                           const char *kvs_name,
                           struct stratus_etcd_resp *resp,
                           struct stratus_errbuf *eb)
{
    json_t *kvs = json_object_get(j, kvs_name);
    int rc;

    memset(resp, 0, sizeof *resp);
    resp->revision = json_i64(json_object_get(j, "header"), "revision");
    resp->count = json_i64(j, strcmp(kvs_name, "prev_kvs") == 0 ? "deleted" : "count");
    resp->more = json_is_true(json_object_get(j, "more"));
    if (json_is_object(kvs)) {
        resp->kvs = xcalloc(1, sizeof *resp->kvs);
        if ((rc = etcd_parse_kv(c, kvs, &resp->kvs[0], eb)) < 0) {
            stratus_etcd_resp_free(resp);
            return rc;
        }
        resp->n_kvs = 1;
    } else if (json_is_array(kvs) && json_array_size(kvs) > 0) {
        size_t n = json_array_size(kvs);
        resp->kvs = xcalloc(n, sizeof *resp->kvs);
        for (size_t i = 0; i < n; i++) {
            if ((rc = etcd_parse_kv(c, json_array_get(kvs, i), &resp->kvs[i], eb)) < 0) {
                stratus_etcd_resp_free(resp);
                return rc;
            }
            resp->n_kvs = i + 1;
        }
    }
    return 0;
}

/* ---- HTTP ---------------------------------------------------------------------------- */

struct etcd_buf {
    char *p;
    size_t len, cap;
    int overflow;
};

static size_t etcd_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct etcd_buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > ETCD_MAX_REPLY) {
        b->overflow = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, ptr, n);
    b->len += n;
    b->p[b->len] = 0;
    return n;
}

/* Options every handle of this client carries (request and watch handles). */
static void etcd_handle_setup(struct stratus_etcd *c, CURL *h)
{
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 5L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 2L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    if (c->cert_file)
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
    if (c->key_file)
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
}

static CURL *etcd_handle_get(struct stratus_etcd *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->n_pool > 0)
        h = c->pool[--c->n_pool];
    pthread_mutex_unlock(&c->mu);
    if (!h) {
        h = curl_easy_init();
        if (h)
            etcd_handle_setup(c, h);
    }
    return h;
}

static void etcd_handle_put(struct stratus_etcd *c, CURL *h)
{
    pthread_mutex_lock(&c->mu);
    if (c->n_pool < ETCD_POOL_MAX) {
        c->pool[c->n_pool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (h)
        curl_easy_cleanup(h);
}

/* A copy of the current token (or NULL) and its generation. */
static char *etcd_token_copy(struct stratus_etcd *c, uint64_t *gen)
{
    char *t;
    pthread_mutex_lock(&c->mu);
    t = c->token ? xstrdup(c->token) : NULL;
    *gen = c->token_gen;
    pthread_mutex_unlock(&c->mu);
    return t;
}

static int etcd_map_grpc(int code)
{
    switch (code) {
    case 3: /* InvalidArgument */
        return STRATUS_EINVAL;
    case 5: /* NotFound */
        return STRATUS_ENOTFOUND;
    case 6: /* AlreadyExists */
    case 9: /* FailedPrecondition */
        return STRATUS_EEXIST;
    case 7:  /* PermissionDenied */
    case 16: /* Unauthenticated */
        return STRATUS_EAUTH;
    case 11: /* OutOfRange: compacted or future revision */
        return STRATUS_ERANGE;
    case 4:  /* DeadlineExceeded */
    case 8:  /* ResourceExhausted */
    case 10: /* Aborted */
    case 14: /* Unavailable */
        return STRATUS_EAGAIN;
    case 12: /* Unimplemented */
        return STRATUS_ENOTSUP;
    default:
        return STRATUS_EIO;
    }
}

/* Whether an error reply means the token must be renewed. */
static int etcd_is_token_error(int http, int grpc, const char *msg)
{
    if (http == 401 || grpc == 16)
        return 1;
    return msg && (strstr(msg, "invalid auth token") || strstr(msg, "user name is empty"));
}

static int etcd_authenticate(struct stratus_etcd *c, uint64_t seen_gen, struct stratus_errbuf *eb);

/* One POST of body to path on the endpoints in turn; *out gets the parsed JSON reply. */
static int etcd_call_body(struct stratus_etcd *c,
                          const char *path,
                          const char *body,
                          int flags,
                          int only,
                          json_t **out,
                          struct stratus_errbuf *eb)
{
    int n = only >= 0 ? 1 : c->n_endpoints, start = only >= 0 ? only : atomic_load(&c->cur);
    int rc = STRATUS_EAGAIN;
    int auth_retried = 0;
    char last[200] = "no endpoint tried";

    *out = NULL;
    for (int attempt = 0; attempt < n; attempt++) {
        int idx = (start + attempt) % c->n_endpoints;
        struct etcd_buf b = {0};
        struct curl_slist *hdrs = NULL;
        char url[512], auth_hdr[1024];
        CURL *h;
        CURLcode cc;
        long http = 0;
        uint64_t gen = 0;
        char *token = NULL;
        json_t *reply = NULL;
        json_error_t jerr;
        int grpc;
        const char *msg;

        if (!(flags & CALL_NOAUTH) && c->username) {
            token = etcd_token_copy(c, &gen);
            if (!token) {
                int arc = etcd_authenticate(c, gen, eb);
                if (arc == STRATUS_EAUTH)
                    return arc;
                token = etcd_token_copy(c, &gen);
            }
        }
        h = etcd_handle_get(c);
        if (!h) {
            free(token);
            return stratus_errf(eb, STRATUS_ENOMEM, "etcd: curl_easy_init failed");
        }
        snprintf(url, sizeof url, "%s%s", c->endpoints[idx], path);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        hdrs = curl_slist_append(hdrs, "Expect:");
        if (token) {
            snprintf(auth_hdr, sizeof auth_hdr, "Authorization: %s", token);
            hdrs = curl_slist_append(hdrs, auth_hdr);
        }
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->request_timeout_ms);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, etcd_write_cb);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        cc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(hdrs);
        free(token);
        if (cc != CURLE_OK) {
            /* The request surely did not reach etcd when the connection was never made. */
            int unsent = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
                         cc == CURLE_SSL_CONNECT_ERROR;
            curl_easy_cleanup(h); /* its connection may be broken: do not pool it */
            free(b.p);
            snprintf(last, sizeof last, "%s: %s", c->endpoints[idx],
                     b.overflow ? "reply too large" : curl_easy_strerror(cc));
            if (b.overflow)
                return stratus_errf(eb, STRATUS_ENOMEM, "etcd %s: %s", path, last);
            if (unsent || (flags & CALL_REPEATABLE))
                continue;
            return stratus_errf(eb, STRATUS_EAGAIN, "etcd %s: outcome unknown: %s", path, last);
        }
        etcd_handle_put(c, h);
        reply = b.len ? json_loadb(b.p, b.len, 0, &jerr) : NULL;
        if (http == 200) {
            free(b.p);
            if (!json_is_object(reply)) {
                json_decref(reply);
                return stratus_errf(eb, STRATUS_EPROTO, "etcd %s: %s: reply is not a JSON object",
                                    path, c->endpoints[idx]);
            }
            atomic_store(&c->cur, idx);
            *out = reply;
            return 0;
        }
        grpc = (int)json_integer_value(json_object_get(reply, "code"));
        msg = json_string_value(json_object_get(reply, "message"));
        if (!msg)
            msg = json_string_value(json_object_get(reply, "error"));
        snprintf(last, sizeof last, "%s: HTTP %ld: %s", c->endpoints[idx], http,
                 msg ? msg : (b.p ? b.p : ""));
        free(b.p);
        if (!(flags & CALL_NOAUTH) && c->username && !auth_retried &&
            etcd_is_token_error((int)http, grpc, msg)) {
            json_decref(reply);
            auth_retried = 1;
            if ((rc = etcd_authenticate(c, gen, eb)) < 0)
                return rc;
            attempt--; /* the same endpoint again, with the new token */
            continue;
        }
        json_decref(reply);
        if (http >= 500 || http == 429 || grpc == 14) {
            int unsent = msg && (strstr(msg, "no leader") || strstr(msg, "not capable") ||
                                 strstr(msg, "too many requests"));
            if (unsent || (flags & CALL_REPEATABLE))
                continue;
            return stratus_errf(eb, STRATUS_EAGAIN, "etcd %s: outcome unknown: %s", path, last);
        }
        rc = grpc ? etcd_map_grpc(grpc) : (http == 404 ? STRATUS_ENOTFOUND : STRATUS_EIO);
        return stratus_errf(eb, rc, "etcd %s: %s", path, last);
    }
    return stratus_errf(eb, STRATUS_EAGAIN, "etcd %s: no endpoint answered (last %s)", path, last);
}

/* Takes req (decref'd here). only >= 0: that endpoint only, no failover. */
static int etcd_call_one(struct stratus_etcd *c,
                         const char *path,
                         json_t *req,
                         int flags,
                         int only,
                         json_t **out,
                         struct stratus_errbuf *eb)
{
    char *body = json_dumps(req, JSON_COMPACT);
    int rc;
    json_decref(req);
    if (!body)
        return stratus_errf(eb, STRATUS_ENOMEM, "etcd: json_dumps failed");
    rc = etcd_call_body(c, path, body, flags, only, out, eb);
    free(body);
    return rc;
}

static int etcd_call(struct stratus_etcd *c,
                     const char *path,
                     json_t *req,
                     int flags,
                     json_t **out,
                     struct stratus_errbuf *eb)
{
    return etcd_call_one(c, path, req, flags, -1, out, eb);
}

/* Gets a new token unless another thread already replaced the one of generation seen_gen. */
static int etcd_authenticate(struct stratus_etcd *c, uint64_t seen_gen, struct stratus_errbuf *eb)
{
    json_t *req, *reply = NULL;
    const char *tok;
    int rc;

    pthread_mutex_lock(&c->mu);
    if (c->token && c->token_gen != seen_gen) {
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    pthread_mutex_unlock(&c->mu);
    req = json_object();
    json_object_set_new(req, "name", json_string(c->username));
    json_object_set_new(req, "password", json_string(c->password ? c->password : ""));
    if ((rc = etcd_call(c, "/v3/auth/authenticate", req, CALL_NOAUTH | CALL_REPEATABLE, &reply,
                        eb)) < 0)
        return rc == STRATUS_EINVAL ? STRATUS_EAUTH : rc; /* bad user or password */
    tok = json_string_value(json_object_get(reply, "token"));
    if (!tok || !*tok) {
        json_decref(reply);
        return stratus_errf(eb, STRATUS_EAUTH,
                            "etcd: authenticate returned no token (is auth "
                            "enabled on the server?)");
    }
    pthread_mutex_lock(&c->mu);
    free(c->token);
    c->token = xstrdup(tok);
    c->token_gen++;
    pthread_mutex_unlock(&c->mu);
    json_decref(reply);
    LOG_INFO("etcd", "authenticated user=%s", c->username);
    return 0;
}

/* ---- open / close -------------------------------------------------------------------- */

static char *opt_dup(const char *s)
{
    return s && *s ? xstrdup(s) : NULL;
}

int stratus_etcd_open(const struct stratus_etcd_config *cfg,
                      struct stratus_etcd **out,
                      struct stratus_errbuf *eb)
{
    struct stratus_etcd *c;
    char *list, *save = NULL, *tok;
    int rc;

    *out = NULL;
    if (!cfg || !cfg->endpoints || !*cfg->endpoints)
        return stratus_errf(eb, STRATUS_EINVAL, "etcd: no endpoints");
    pthread_once(&curl_once, etcd_curl_init);
    if (curl_init_rc < 0)
        return stratus_errf(eb, STRATUS_EIO, "etcd: curl_global_init failed");
    c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->ka_mu, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&c->ka_cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    list = xstrdup(cfg->endpoints);
    for (tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        size_t l = strlen(tok);
        if (c->n_endpoints == ETCD_MAX_ENDPOINTS) {
            free(list);
            rc = stratus_errf(eb, STRATUS_EINVAL, "etcd: more than %d endpoints",
                              ETCD_MAX_ENDPOINTS);
            goto fail;
        }
        if (strncmp(tok, "http://", 7) != 0 && strncmp(tok, "https://", 8) != 0) {
            rc = stratus_errf(eb, STRATUS_EINVAL, "etcd: endpoint '%s' is not http(s)://", tok);
            free(list);
            goto fail;
        }
        while (l > 0 && tok[l - 1] == '/')
            tok[--l] = 0;
        c->endpoints[c->n_endpoints++] = xstrdup(tok);
    }
    free(list);
    if (c->n_endpoints == 0) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "etcd: no endpoints");
        goto fail;
    }
    c->prefix = xstrdup(cfg->prefix ? cfg->prefix : "");
    c->prefix_len = strlen(c->prefix);
    c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 1000;
    c->request_timeout_ms = cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : 5000;
    c->ca_file = opt_dup(cfg->ca_file);
    c->cert_file = opt_dup(cfg->cert_file);
    c->key_file = opt_dup(cfg->key_file);
    c->username = opt_dup(cfg->username);
    c->password = cfg->password ? xstrdup(cfg->password) : NULL;
    *out = c;
    return 0;
fail:
    stratus_etcd_close(c);
    return rc;
}

void stratus_etcd_close(struct stratus_etcd *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->ka_mu);
    c->ka_stop = 1;
    pthread_cond_broadcast(&c->ka_cond);
    pthread_mutex_unlock(&c->ka_mu);
    if (c->ka_running)
        pthread_join(c->ka_thread, NULL);
    while (c->leases) {
        struct lease_entry *e = c->leases;
        c->leases = e->next;
        free(e);
    }
    for (int i = 0; i < c->n_pool; i++)
        curl_easy_cleanup(c->pool[i]);
    for (int i = 0; i < c->n_endpoints; i++)
        free(c->endpoints[i]);
    free(c->prefix);
    free(c->ca_file);
    free(c->cert_file);
    free(c->key_file);
    free(c->username);
    if (c->password) {
        memset(c->password, 0, strlen(c->password));
        free(c->password);
    }
    free(c->token);
    pthread_cond_destroy(&c->ka_cond);
    pthread_mutex_destroy(&c->ka_mu);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

const char *stratus_etcd_current_endpoint(struct stratus_etcd *c)
{
    return c->endpoints[atomic_load(&c->cur)];
}

int stratus_etcd_endpoint_count(struct stratus_etcd *c)
{
    return c->n_endpoints;
}

int stratus_etcd_status(struct stratus_etcd *c,
                        int endpoint,
                        struct stratus_etcd_member_status *st,
                        struct stratus_errbuf *eb)
{
    json_t *reply = NULL;
    int rc;

    memset(st, 0, sizeof *st);
    if (endpoint < 0 || endpoint >= c->n_endpoints)
        return stratus_errf(eb, STRATUS_EINVAL, "etcd: no endpoint %d", endpoint);
    if ((rc = etcd_call_one(c, "/v3/maintenance/status", json_object(), CALL_REPEATABLE, endpoint,
                            &reply, eb)) < 0)
        return rc;
    st->member_id = json_u64(json_object_get(reply, "header"), "member_id");
    st->leader_id = json_u64(reply, "leader");
    st->raft_term = json_i64(reply, "raftTerm");
    st->revision = json_i64(json_object_get(reply, "header"), "revision");
    st->db_size = json_i64(reply, "dbSize");
    if (json_is_string(json_object_get(reply, "version")))
        snprintf(st->version, sizeof st->version, "%s",
                 json_string_value(json_object_get(reply, "version")));
    json_decref(reply);
    return 0;
}

/* ---- KV ------------------------------------------------------------------------------ */

static json_t *etcd_op_json(struct stratus_etcd *c, const struct stratus_etcd_op *op)
{
    json_t *j = json_object();
    switch (op->type) {
    case STRATUS_ETCD_OP_PUT: {
        char *v = etcd_b64_encode(op->value ? op->value : "", op->value ? op->value_len : 0);
        json_set_key(c, j, "key", op->key, op->key_len);
        json_object_set_new(j, "value", json_string(v));
        free(v);
        if (op->lease)
            json_set_i64(j, "lease", op->lease);
        if (op->flags & STRATUS_ETCD_PREV_KV)
            json_object_set_new(j, "prev_kv", json_true());
        break;
    }
    case STRATUS_ETCD_OP_DELETE:
        json_set_range(c, j, op->key, op->key_len, op->flags, op->range_end, op->range_end_len);
        if (op->flags & STRATUS_ETCD_PREV_KV)
            json_object_set_new(j, "prev_kv", json_true());
        break;
    case STRATUS_ETCD_OP_RANGE:
        json_set_range(c, j, op->key, op->key_len, op->flags, op->range_end, op->range_end_len);
        if (op->limit > 0)
            json_set_i64(j, "limit", op->limit);
        if (op->revision > 0)
            json_set_i64(j, "revision", op->revision);
        if (op->keys_only)
            json_object_set_new(j, "keys_only", json_true());
        if (op->count_only)
            json_object_set_new(j, "count_only", json_true());
        break;
    }
    return j;
}

static const char *etcd_op_path(enum stratus_etcd_op_type t)
{
    return t == STRATUS_ETCD_OP_PUT      ? "/v3/kv/put"
           : t == STRATUS_ETCD_OP_DELETE ? "/v3/kv/deleterange"
                                         : "/v3/kv/range";
}

static const char *etcd_op_kvs_name(enum stratus_etcd_op_type t)
{
    return t == STRATUS_ETCD_OP_PUT ? "prev_kv" : t == STRATUS_ETCD_OP_DELETE ? "prev_kvs" : "kvs";
}

static int etcd_do_op(struct stratus_etcd *c,
                      const struct stratus_etcd_op *op,
                      struct stratus_etcd_resp *resp,
                      struct stratus_errbuf *eb)
{
    json_t *reply = NULL;
    struct stratus_etcd_resp tmp;
    int rc;

    if (resp)
        memset(resp, 0, sizeof *resp);
    if (op->key_len && !op->key)
        return stratus_errf(eb, STRATUS_EINVAL, "etcd: NULL key");
    rc = etcd_call(c, etcd_op_path(op->type), etcd_op_json(c, op), CALL_REPEATABLE, &reply, eb);
    if (rc < 0)
        return rc;
    rc = etcd_parse_resp(c, reply, etcd_op_kvs_name(op->type), resp ? resp : &tmp, eb);
    json_decref(reply);
    if (rc == 0 && !resp)
        stratus_etcd_resp_free(&tmp);
    return rc;
}

int stratus_etcd_put(struct stratus_etcd *c,
                     const void *key,
                     size_t key_len,
                     const void *value,
                     size_t value_len,
                     int64_t lease,
                     int flags,
                     struct stratus_etcd_resp *resp,
                     struct stratus_errbuf *eb)
{
    struct stratus_etcd_op op = {.type = STRATUS_ETCD_OP_PUT,
                                 .key = key,
                                 .key_len = key_len,
                                 .value = value,
                                 .value_len = value_len,
                                 .lease = lease,
                                 .flags = flags & STRATUS_ETCD_PREV_KV};
    return etcd_do_op(c, &op, resp, eb);
}

int stratus_etcd_get(struct stratus_etcd *c,
                     const void *key,
                     size_t key_len,
                     struct stratus_etcd_resp *resp,
                     struct stratus_errbuf *eb)
{
    struct stratus_etcd_op op = {.type = STRATUS_ETCD_OP_RANGE, .key = key, .key_len = key_len};
    return etcd_do_op(c, &op, resp, eb);
}

int stratus_etcd_delete(struct stratus_etcd *c,
                        const void *key,
                        size_t key_len,
                        int flags,
                        struct stratus_etcd_resp *resp,
                        struct stratus_errbuf *eb)
{
    struct stratus_etcd_op op = {
        .type = STRATUS_ETCD_OP_DELETE, .key = key, .key_len = key_len, .flags = flags};
    return etcd_do_op(c, &op, resp, eb);
}

int stratus_etcd_range(struct stratus_etcd *c,
                       const struct stratus_etcd_op *op,
                       struct stratus_etcd_resp *resp,
                       struct stratus_errbuf *eb)
{
    if (resp)
        memset(resp, 0, sizeof *resp);
    if (op->type != STRATUS_ETCD_OP_RANGE)
        return stratus_errf(eb, STRATUS_EINVAL, "etcd: range with a non-range op");
    return etcd_do_op(c, op, resp, eb);
}

static json_t *etcd_ops_json(struct stratus_etcd *c, const struct stratus_etcd_op *ops, size_t n)
{
    static const char *const names[] = {"request_range", "request_put", "request_delete_range"};
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, names[ops[i].type], etcd_op_json(c, &ops[i]));
        json_array_append_new(a, o);
    }
    return a;
}

int stratus_etcd_txn(struct stratus_etcd *c,
                     const struct stratus_etcd_cmp *cmps,
                     size_t n_cmps,
                     const struct stratus_etcd_op *success,
                     size_t n_success,
                     const struct stratus_etcd_op *failure,
                     size_t n_failure,
                     struct stratus_etcd_txn_result *res,
                     struct stratus_errbuf *eb)
{
    static const char *const targets[] = {"VALUE", "VERSION", "CREATE", "MOD", "LEASE"};
    static const char *const fields[] = {"value", "version", "create_revision", "mod_revision",
                                         "lease"};
    static const char *const results[] = {"EQUAL", "NOT_EQUAL", "LESS", "GREATER"};
    json_t *req = json_object(), *ca = json_array(), *reply = NULL, *resps;
    int rc;

    memset(res, 0, sizeof *res);
    for (size_t i = 0; i < n_cmps; i++) {
        const struct stratus_etcd_cmp *cm = &cmps[i];
        json_t *o;
        if ((unsigned)cm->target > STRATUS_ETCD_CMP_LEASE ||
            (unsigned)cm->result > STRATUS_ETCD_GREATER) {
            json_decref(ca);
            json_decref(req);
            return stratus_errf(eb, STRATUS_EINVAL, "etcd: bad compare %zu", i);
        }
        o = json_object();
        json_set_key(c, o, "key", cm->key, cm->key_len);
        json_object_set_new(o, "target", json_string(targets[cm->target]));
        json_object_set_new(o, "result", json_string(results[cm->result]));
        if (cm->target == STRATUS_ETCD_CMP_VALUE) {
            char *v = etcd_b64_encode(cm->value ? cm->value : "", cm->value ? cm->value_len : 0);
            json_object_set_new(o, "value", json_string(v));
            free(v);
        } else {
            json_set_i64(o, fields[cm->target], cm->number);
        }
        json_array_append_new(ca, o);
    }
    json_object_set_new(req, "compare", ca);
    json_object_set_new(req, "success", etcd_ops_json(c, success, n_success));
    json_object_set_new(req, "failure", etcd_ops_json(c, failure, n_failure));
    if ((rc = etcd_call(c, "/v3/kv/txn", req, 0, &reply, eb)) < 0)
        return rc;
    res->succeeded = json_is_true(json_object_get(reply, "succeeded"));
    res->revision = json_i64(json_object_get(reply, "header"), "revision");
    resps = json_object_get(reply, "responses");
    if (json_is_array(resps) && json_array_size(resps) > 0) {
        size_t n = json_array_size(resps);
        const struct stratus_etcd_op *branch = res->succeeded ? success : failure;
        size_t n_branch = res->succeeded ? n_success : n_failure;
        res->types = xcalloc(n, sizeof *res->types);
        res->responses = xcalloc(n, sizeof *res->responses);
        for (size_t i = 0; i < n; i++) {
            json_t *r = json_array_get(resps, i), *body;
            enum stratus_etcd_op_type t;
            if ((body = json_object_get(r, "response_put")))
                t = STRATUS_ETCD_OP_PUT;
            else if ((body = json_object_get(r, "response_delete_range")))
                t = STRATUS_ETCD_OP_DELETE;
            else if ((body = json_object_get(r, "response_range")))
                t = STRATUS_ETCD_OP_RANGE;
            else if (i < n_branch) /* an all-default response serializes as {} */
                t = branch[i].type, body = r;
            else {
                rc = stratus_errf(eb, STRATUS_EPROTO, "etcd txn: unknown response %zu", i);
                goto fail;
            }
            res->types[i] = t;
            if ((rc = etcd_parse_resp(c, body, etcd_op_kvs_name(t), &res->responses[i], eb)) < 0)
                goto fail;
            if (!res->responses[i].revision)
                res->responses[i].revision = res->revision;
            res->n_responses = i + 1;
        }
    }
    json_decref(reply);
    return 0;
fail:
    json_decref(reply);
    stratus_etcd_txn_result_free(res);
    return rc;
}

int stratus_etcd_compact(struct stratus_etcd *c, int64_t revision, struct stratus_errbuf *eb)
{
    json_t *req = json_object(), *reply = NULL;
    int rc;

    json_set_i64(req, "revision", revision);
    json_object_set_new(req, "physical", json_true());
    if ((rc = etcd_call(c, "/v3/kv/compaction", req, CALL_REPEATABLE, &reply, eb)) < 0)
        return rc;
    json_decref(reply);
    return 0;
}

/* ---- leases -------------------------------------------------------------------------- */

int stratus_etcd_lease_grant(struct stratus_etcd *c,
                             int64_t ttl_s,
                             int64_t id,
                             int64_t *id_out,
                             int64_t *ttl_out,
                             struct stratus_errbuf *eb)
{
    json_t *req = json_object(), *reply = NULL;
    const char *err;
    int rc;

    if (ttl_s <= 0) {
        json_decref(req);
        return stratus_errf(eb, STRATUS_EINVAL, "etcd: lease TTL must be > 0");
    }
    json_set_i64(req, "TTL", ttl_s);
    if (id)
        json_set_i64(req, "ID", id);
    /* Not repeatable with a fixed id (a repeat would fail "lease already exists"); a repeated
     * grant without id at worst leaves an unused lease that expires by itself. */
    if ((rc = etcd_call(c, "/v3/lease/grant", req, id ? 0 : CALL_REPEATABLE, &reply, eb)) < 0)
        return rc;
    err = json_string_value(json_object_get(reply, "error"));
    if (err && *err) {
        rc = stratus_errf(eb, STRATUS_EIO, "etcd lease grant: %s", err);
        json_decref(reply);
        return rc;
    }
    if (id_out)
        *id_out = json_i64(reply, "ID");
    if (ttl_out)
        *ttl_out = json_i64(reply, "TTL");
    json_decref(reply);
    return 0;
}

int stratus_etcd_lease_revoke(struct stratus_etcd *c, int64_t id, struct stratus_errbuf *eb)
{
    json_t *req = json_object(), *reply = NULL;
    int rc;

    stratus_etcd_lease_unkeep(c, id);
    json_set_i64(req, "ID", id);
    if ((rc = etcd_call(c, "/v3/lease/revoke", req, CALL_REPEATABLE, &reply, eb)) < 0)
        return rc;
    json_decref(reply);
    return 0;
}

int stratus_etcd_lease_timetolive(struct stratus_etcd *c,
                                  int64_t id,
                                  int64_t *ttl_out,
                                  int64_t *granted_out,
                                  struct stratus_errbuf *eb)
{
    json_t *req = json_object(), *reply = NULL;
    int64_t ttl;
    int rc;

    json_set_i64(req, "ID", id);
    if ((rc = etcd_call(c, "/v3/lease/timetolive", req, CALL_REPEATABLE, &reply, eb)) < 0)
        return rc;
    ttl = json_i64(reply, "TTL");
    if (granted_out)
        *granted_out = json_i64(reply, "grantedTTL");
    if (ttl_out)
        *ttl_out = ttl;
    json_decref(reply);
    if (ttl < 0)
        return stratus_errf(eb, STRATUS_ENOTFOUND, "etcd: lease %" PRId64 " not found", id);
    return 0;
}

int stratus_etcd_lease_keepalive_once(struct stratus_etcd *c,
                                      int64_t id,
                                      int64_t *ttl_out,
                                      struct stratus_errbuf *eb)
{
    json_t *req = json_object(), *reply = NULL, *result;
    int64_t ttl;
    int rc;

    json_set_i64(req, "ID", id);
    if ((rc = etcd_call(c, "/v3/lease/keepalive", req, CALL_REPEATABLE, &reply, eb)) < 0)
        return rc;
    /* A streaming endpoint: the one reply is wrapped as {"result":{...}} (or {"error":...}). */
    result = json_object_get(reply, "result");
    if (!json_is_object(result)) {
        json_t *err = json_object_get(reply, "error");
        const char *m = json_string_value(json_object_get(err, "message"));
        int grpc = (int)json_integer_value(json_object_get(err, "grpc_code"));
        rc = stratus_errf(eb, grpc ? etcd_map_grpc(grpc) : STRATUS_EPROTO,
                          "etcd lease keepalive: %s", m ? m : "reply without result");
        json_decref(reply);
        return rc;
    }
    ttl = json_i64(result, "TTL");
    json_decref(reply);
    if (ttl_out)
        *ttl_out = ttl;
    if (ttl <= 0)
        return stratus_errf(eb, STRATUS_ENOTFOUND, "etcd: lease %" PRId64 " not found", id);
    return 0;
}

static void *etcd_keepalive_main(void *arg)
{
    struct stratus_etcd *c = arg;
    pthread_setname_np(pthread_self(), "etcd-keepalive"); /* top -H, perf, gdb */

    pthread_mutex_lock(&c->ka_mu);
    while (!c->ka_stop) {
        int64_t now = stratus_mono_ms(), next = now + 1000;
        struct lease_entry *due = NULL, **pp;
        for (struct lease_entry *e = c->leases; e; e = e->next) {
            if (e->next_ms <= now) {
                due = e;
                break;
            }
            if (e->next_ms < next)
                next = e->next_ms;
        }
        if (!due) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t wait_ms = next - now;
            ts.tv_sec += wait_ms / 1000;
            ts.tv_nsec += (wait_ms % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&c->ka_cond, &c->ka_mu, &ts);
            continue;
        }
        {
            int64_t id = due->id, ttl = 0;
            struct stratus_errbuf eb = {{0}};
            int rc, lost = 0;
            c->ka_busy_id = id;
            pthread_mutex_unlock(&c->ka_mu);
            rc = stratus_etcd_lease_keepalive_once(c, id, &ttl, &eb);
            pthread_mutex_lock(&c->ka_mu);
            c->ka_busy_id = 0;
            pthread_cond_broadcast(&c->ka_cond);
            /* The entry may have been unkept meanwhile: find it again. */
            for (pp = &c->leases; *pp && (*pp)->id != id; pp = &(*pp)->next)
                ;
            if (!*pp)
                continue;
            due = *pp;
            now = stratus_mono_ms();
            if (rc == 0) {
                due->ttl_ms = ttl * 1000;
                due->last_ok_ms = now;
                due->next_ms = now + (due->ttl_ms / 3 > 100 ? due->ttl_ms / 3 : 100);
            } else if (rc == STRATUS_ENOTFOUND) {
                lost = STRATUS_ENOTFOUND;
            } else if (now - due->last_ok_ms >= due->ttl_ms) {
                lost = STRATUS_EAGAIN;
            } else {
                LOG_WARN("etcd", "lease keepalive failed lease=%" PRId64 " err=%s", id, eb.msg);
                due->next_ms = now + 500;
            }
            if (lost) {
                stratus_etcd_lease_lost_cb cb = due->cb;
                void *cbarg = due->arg;
                *pp = due->next;
                free(due);
                LOG_WARN("etcd", "lease lost lease=%" PRId64 " err=%s", id,
                         rc == STRATUS_ENOTFOUND ? "not found" : eb.msg);
                c->ka_busy_id = id; /* unkeep waits until the callback returned */
                pthread_mutex_unlock(&c->ka_mu);
                if (cb)
                    cb(cbarg, id, lost);
                pthread_mutex_lock(&c->ka_mu);
                c->ka_busy_id = 0;
                pthread_cond_broadcast(&c->ka_cond);
            }
        }
    }
    pthread_mutex_unlock(&c->ka_mu);
    return NULL;
}

int stratus_etcd_lease_keep(struct stratus_etcd *c,
                            int64_t id,
                            int64_t ttl_s,
                            stratus_etcd_lease_lost_cb cb,
                            void *arg,
                            struct stratus_errbuf *eb)
{
    struct lease_entry *e;
    int64_t now = stratus_mono_ms();

    if (ttl_s <= 0)
        return stratus_errf(eb, STRATUS_EINVAL, "etcd: lease TTL must be > 0");
    pthread_mutex_lock(&c->ka_mu);
    for (e = c->leases; e; e = e->next) {
        if (e->id == id) {
            pthread_mutex_unlock(&c->ka_mu);
            return stratus_errf(eb, STRATUS_EEXIST, "etcd: lease %" PRId64 " already kept", id);
        }
    }
    if (!c->ka_running) {
        if (pthread_create(&c->ka_thread, NULL, etcd_keepalive_main, c) != 0) {
            pthread_mutex_unlock(&c->ka_mu);
            return stratus_errf(eb, STRATUS_ENOMEM, "etcd: keepalive thread: %s", strerror(errno));
        }
        c->ka_running = 1;
    }
    e = xcalloc(1, sizeof *e);
    e->id = id;
    e->ttl_ms = ttl_s * 1000;
    e->last_ok_ms = now;
    e->next_ms = now + e->ttl_ms / 3;
    e->cb = cb;
    e->arg = arg;
    e->next = c->leases;
    c->leases = e;
    pthread_cond_broadcast(&c->ka_cond);
    pthread_mutex_unlock(&c->ka_mu);
    return 0;
}

int stratus_etcd_lease_unkeep(struct stratus_etcd *c, int64_t id)
{
    struct lease_entry **pp, *e;
    int found = 0;

    pthread_mutex_lock(&c->ka_mu);
    for (pp = &c->leases; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            e = *pp;
            *pp = e->next;
            free(e);
            found = 1;
            break;
        }
    }
    /* A lost-callback for this lease may be running: wait until it returned. */
    while (c->ka_busy_id == id && c->ka_running && !pthread_equal(pthread_self(), c->ka_thread))
        pthread_cond_wait(&c->ka_cond, &c->ka_mu);
    pthread_mutex_unlock(&c->ka_mu);
    return found ? 0 : STRATUS_ENOTFOUND;
}

/* ---- watch --------------------------------------------------------------------------- */

struct stratus_etcd_watch {
    struct stratus_etcd *c;
    char *key;
    size_t key_len;
    int flags;
    stratus_etcd_watch_cb cb;
    void *arg;
    pthread_t thread;

    pthread_mutex_t mu; /* guards sock, stop, and the sleep */
    pthread_cond_t cond;
    curl_socket_t sock; /* the stream's socket while open, to shut it down on stop */
    atomic_int stop;
    atomic_llong last_rev; /* last revision delivered (or started after) */
    atomic_int reconnects;
    atomic_int connected;
    int ended;          /* compacted/canceled: the thread exits */
    int got_data;       /* this connection delivered a message */
    int64_t next_start; /* 0 = from now */

    struct etcd_buf line; /* bytes of the current, incomplete message line */
};

static curl_socket_t watch_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct stratus_etcd_watch *w = ud;
    curl_socket_t s;
    (void)purpose;
    s = socket(a->family, a->socktype, a->protocol);
    pthread_mutex_lock(&w->mu);
    w->sock = s;
    if (atomic_load(&w->stop) && s != CURL_SOCKET_BAD)
        shutdown(s, SHUT_RDWR);
    pthread_mutex_unlock(&w->mu);
    return s;
}

static int watch_close_socket(void *ud, curl_socket_t s)
{
    struct stratus_etcd_watch *w = ud;
    pthread_mutex_lock(&w->mu);
    if (w->sock == s)
        w->sock = CURL_SOCKET_BAD;
    close(s);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static int watch_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c2, curl_off_t d)
{
    struct stratus_etcd_watch *w = ud;
    (void)a, (void)b, (void)c2, (void)d;
    return atomic_load(&w->stop) ? 1 : 0;
}

/* Handles one message of the stream; returns -1 to end this connection. */
static int watch_message(struct stratus_etcd_watch *w, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb(text, len, 0, &jerr), *res, *events;
    int64_t base;
    int ret = 0;

    if (!json_is_object(msg)) {
        LOG_WARN("etcd", "watch: malformed message: %s", jerr.text);
        json_decref(msg);
        return -1;
    }
    res = json_object_get(msg, "result");
    if (!json_is_object(res)) {
        json_t *err = json_object_get(msg, "error");
        const char *m = json_string_value(json_object_get(err, "message"));
        LOG_WARN("etcd", "watch stream error: %s", m ? m : "(no result)");
        json_decref(msg);
        return -1;
    }
    w->got_data = 1;
    if (json_is_true(json_object_get(res, "created")))
        atomic_store(&w->connected, 1);
    if (json_is_true(json_object_get(res, "canceled"))) {
        struct stratus_etcd_event ev = {0};
        int64_t compact = json_i64(res, "compact_revision");
        const char *reason = json_string_value(json_object_get(res, "cancel_reason"));
        if (compact <= 0 && reason && strstr(reason, "no leader")) {
            json_decref(msg);
            return -1; /* the member lost its leader: reconnect (elsewhere) */
        }
        if (compact > 0) {
            ev.type = STRATUS_ETCD_EVENT_COMPACTED;
            ev.revision = compact;
        } else {
            ev.type = STRATUS_ETCD_EVENT_CANCELED;
            ev.error = reason ? reason : "canceled by etcd";
        }
        w->cb(w->arg, &ev);
        w->ended = 1;
        json_decref(msg);
        return -1;
    }
    if (json_is_true(json_object_get(res, "created")) && w->next_start == 0) {
        /* Watching from "now": the stream delivers revisions after this header's. */
        int64_t hrev = json_i64(json_object_get(res, "header"), "revision");
        if (hrev > atomic_load(&w->last_rev))
            atomic_store(&w->last_rev, hrev);
        w->next_start = hrev + 1;
    }
    events = json_object_get(res, "events");
    base = atomic_load(&w->last_rev);
    for (size_t i = 0; json_is_array(events) && i < json_array_size(events); i++) {
        json_t *je = json_array_get(events, i), *pk;
        const char *type = json_string_value(json_object_get(je, "type"));
        struct stratus_etcd_event ev = {0};
        struct stratus_errbuf eb;
        ev.type = type && strcmp(type, "DELETE") == 0 ? STRATUS_ETCD_EVENT_DELETE
                                                      : STRATUS_ETCD_EVENT_PUT;
        if (etcd_parse_kv(w->c, json_object_get(je, "kv"), &ev.kv, &eb) < 0) {
            LOG_WARN("etcd", "watch: bad event: %s", eb.msg);
            ret = -1;
            break;
        }
        pk = json_object_get(je, "prev_kv");
        if (json_is_object(pk) && etcd_parse_kv(w->c, pk, &ev.prev_kv, &eb) == 0)
            ev.has_prev_kv = 1;
        ev.revision = ev.kv.mod_revision;
        /* Duplicates can only come from a resume that overlapped: drop them. One revision may
         * carry several events (a txn), all in one message: compare with the message's base. */
        if (ev.revision > base || ev.revision == 0) {
            w->cb(w->arg, &ev);
            if (ev.revision > atomic_load(&w->last_rev))
                atomic_store(&w->last_rev, ev.revision);
            w->next_start = atomic_load(&w->last_rev) + 1;
        }
        stratus_etcd_kv_free(&ev.kv);
        stratus_etcd_kv_free(&ev.prev_kv);
    }
    json_decref(msg);
    return ret;
}

static size_t watch_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct stratus_etcd_watch *w = ud;
    size_t n = size * nmemb, start = 0;

    if (atomic_load(&w->stop))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (ptr[i] != '\n')
            continue;
        if (w->line.len) {
            if (etcd_write_cb(ptr + start, 1, i - start, &w->line) != i - start)
                return 0;
            if (watch_message(w, w->line.p, w->line.len) < 0)
                return 0;
            w->line.len = 0;
        } else if (i > start) {
            if (watch_message(w, ptr + start, i - start) < 0)
                return 0;
        }
        start = i + 1;
    }
    if (start < n && etcd_write_cb(ptr + start, 1, n - start, &w->line) != n - start)
        return 0; /* message over the size limit */
    return n;
}

/* Sleeps up to ms unless stopped. */
static void watch_sleep(struct stratus_etcd_watch *w, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&w->mu);
    while (!atomic_load(&w->stop)) {
        if (pthread_cond_timedwait(&w->cond, &w->mu, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&w->mu);
}

static void *watch_main(void *arg)
{
    struct stratus_etcd_watch *w = arg;
    pthread_setname_np(pthread_self(), "etcd-watch"); /* top -H, perf, gdb */
    struct stratus_etcd *c = w->c;
    int idx = atomic_load(&c->cur), failures = 0, first = 1;
    CURL *h = curl_easy_init();

    if (!h) {
        LOG_ERROR("etcd", "watch: curl_easy_init failed");
        return NULL;
    }
    etcd_handle_setup(c, h);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, watch_open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, w);
    curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, watch_close_socket);
    curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, w);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, watch_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, w);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, watch_write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);

    while (!atomic_load(&w->stop) && !w->ended) {
        json_t *req = json_object(), *cr = json_object();
        struct curl_slist *hdrs = NULL;
        char url[512], auth_hdr[1024], *body, *token = NULL;
        uint64_t gen = 0;
        CURLcode cc;
        long http = 0;

        json_set_range(c, cr, w->key, w->key_len, w->flags, NULL, 0);
        if (w->next_start > 0)
            json_set_i64(cr, "start_revision", w->next_start);
        if (w->flags & STRATUS_ETCD_PREV_KV)
            json_object_set_new(cr, "prev_kv", json_true());
        json_object_set_new(req, "create_request", cr);
        body = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        if (c->username) {
            token = etcd_token_copy(c, &gen);
            if (!token) {
                struct stratus_errbuf eb;
                if (etcd_authenticate(c, gen, &eb) < 0)
                    LOG_WARN("etcd", "watch: authenticate: %s", eb.msg);
                token = etcd_token_copy(c, &gen);
            }
        }
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        hdrs = curl_slist_append(hdrs, "Expect:");
        /* Ask the member to cancel the stream when it loses its leader (clientv3's
         * WithRequireLeader), so a partitioned member does not hold the watch silently. */
        hdrs = curl_slist_append(hdrs, "Grpc-Metadata-hasleader: true");
        if (token) {
            snprintf(auth_hdr, sizeof auth_hdr, "Authorization: %s", token);
            hdrs = curl_slist_append(hdrs, auth_hdr);
        }
        snprintf(url, sizeof url, "%s/v3/watch", c->endpoints[idx]);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "{}");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        w->got_data = 0;
        w->line.len = 0;
        if (!first)
            atomic_fetch_add(&w->reconnects, 1);
        first = 0;
        cc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
        atomic_store(&w->connected, 0);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(hdrs);
        free(body);
        free(token);
        if (atomic_load(&w->stop) || w->ended)
            break;
        if (http == 401 && c->username) {
            struct stratus_errbuf eb;
            if (etcd_authenticate(c, gen, &eb) < 0)
                LOG_WARN("etcd", "watch: authenticate: %s", eb.msg);
        }
        LOG_INFO("etcd", "watch stream ended endpoint=%s curl=%s http=%ld rev=%lld",
                 c->endpoints[idx], curl_easy_strerror(cc), http,
                 (long long)atomic_load(&w->last_rev));
        if (w->got_data) {
            failures = 0; /* it worked for a while: retry the same endpoint at once */
        } else {
            failures++;
            idx = (idx + 1) % c->n_endpoints; /* fail over */
            if (failures >= c->n_endpoints) {
                int64_t ms =
                    50LL << (failures - c->n_endpoints < 5 ? failures - c->n_endpoints : 5);
                watch_sleep(w, ms > 1000 ? 1000 : ms);
            }
        }
    }
    curl_easy_cleanup(h);
    return NULL;
}

int stratus_etcd_watch_start(struct stratus_etcd *c,
                             const struct stratus_etcd_watch_opts *o,
                             stratus_etcd_watch_cb cb,
                             void *arg,
                             struct stratus_etcd_watch **out,
                             struct stratus_errbuf *eb)
{
    struct stratus_etcd_watch *w;
    pthread_condattr_t ca;

    *out = NULL;
    if (!cb || (o->key_len && !o->key))
        return stratus_errf(eb, STRATUS_EINVAL, "etcd watch: bad arguments");
    w = xcalloc(1, sizeof *w);
    w->c = c;
    w->key = xmalloc(o->key_len + 1);
    if (o->key_len)
        memcpy(w->key, o->key, o->key_len);
    w->key_len = o->key_len;
    w->flags = o->flags;
    w->cb = cb;
    w->arg = arg;
    w->sock = CURL_SOCKET_BAD;
    w->next_start = o->start_revision > 0 ? o->start_revision : 0;
    atomic_store(&w->last_rev, o->start_revision > 0 ? o->start_revision - 1 : 0);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        int err = errno;
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->mu);
        free(w->key);
        free(w);
        return stratus_errf(eb, STRATUS_ENOMEM, "etcd watch: thread: %s", strerror(err));
    }
    *out = w;
    return 0;
}

void stratus_etcd_watch_stop(struct stratus_etcd_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    atomic_store(&w->stop, 1);
    if (w->sock != CURL_SOCKET_BAD)
        shutdown(w->sock, SHUT_RDWR);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    free(w->line.p);
    free(w->key);
    free(w);
}

int64_t stratus_etcd_watch_revision(struct stratus_etcd_watch *w)
{
    return atomic_load(&w->last_rev);
}

int stratus_etcd_watch_reconnects(struct stratus_etcd_watch *w)
{
    return atomic_load(&w->reconnects);
}

int stratus_etcd_watch_connected(struct stratus_etcd_watch *w)
{
    return atomic_load(&w->connected);
}
