/* azblob_auth.c - Shared Key signing and the managed identity token provider of
 * storage-azblob (see azblob_auth.h for the formats).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "azblob_auth.h"

#include "common/enc.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/sigv4.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AZBLOB_DEFAULT_IMDS     "http://169.254.169.254/metadata/identity/oauth2/token"
#define AZBLOB_DEFAULT_RESOURCE "https://storage.azure.com/"
#define AZBLOB_REFRESH_AHEAD_MS (5 * 60 * 1000)

/* ---- Shared Key -------------------------------------------------------------------------- */

struct azblob_kv {
    char *name; /* lowercased */
    char *value;
};

static int azblob_kv_cmp(const void *a, const void *b)
{
    const struct azblob_kv *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static void azblob_kv_free(struct azblob_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

/* Appends a header value trimmed, inner whitespace runs collapsed to one space. */
static void azblob_put_value(struct stratus_sbuf *sb, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    int space = 0;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') {
            space = 1;
            continue;
        }
        if (space)
            stratus_sbuf_putc(sb, ' ');
        space = 0;
        stratus_sbuf_putc(sb, *v);
    }
}

static const char *azblob_hdr(const struct stratus_http_req *rq, const char *name)
{
    const char *v = stratus_http_req_get_header(rq, name);
    return v ? v : "";
}

/* Sorted, decoded query parameters of q into *out (count *n). 0 or -1 (ENOMEM). */
static int azblob_query_params(const char *q, struct azblob_kv **out, size_t *n)
{
    size_t cap = 1;
    for (const char *p = q; *p; p++)
        cap += *p == '&';
    struct azblob_kv *kv = calloc(cap, sizeof *kv);
    size_t k = 0;
    if (!kv)
        return -1;
    const char *p = q;
    while (*p) {
        size_t len = strcspn(p, "&");
        if (len) {
            const char *eq = memchr(p, '=', len);
            size_t nl = eq ? (size_t)(eq - p) : len;
            struct stratus_sbuf nm = {0}, val = {0};
            stratus_enc_uri_decode(&nm, p, nl, 0);
            if (eq)
                stratus_enc_uri_decode(&val, eq + 1, len - nl - 1, 0);
            stratus_sbuf_putc(&nm, 0);
            stratus_sbuf_putc(&val, 0);
            if (nm.err || val.err) {
                stratus_sbuf_free(&nm);
                stratus_sbuf_free(&val);
                azblob_kv_free(kv, k);
                return -1;
            }
            for (char *c = nm.p; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            kv[k].name = nm.p;
            kv[k].value = val.p;
            k++;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    qsort(kv, k, sizeof *kv, azblob_kv_cmp);
    *out = kv;
    *n = k;
    return 0;
}

int azblob_sharedkey_string_to_sign(const struct stratus_http_req *rq,
                                    const char *account,
                                    struct stratus_sbuf *out,
                                    struct stratus_errbuf *eb)
{
    struct stratus_sbuf host = {0}, path = {0}, query = {0};
    struct azblob_kv *hk = NULL, *qk = NULL;
    size_t nh = 0, nq = 0;
    int rc = 0;
    if (!rq->url || !rq->method || stratus_sigv4_url_parts(rq->url, &host, &path, &query) < 0) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "shared key: cannot parse the request URL");
        goto out;
    }
    int with_body = rq->body || strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "POST") == 0 ||
                    strcmp(rq->method, "PATCH") == 0;
    const char *ct = stratus_http_req_get_header(rq, "Content-Type");
    if (!ct)
        ct = with_body ? "application/octet-stream" : "";

    stratus_sbuf_printf(out, "%s\n", rq->method);
    stratus_sbuf_printf(out, "%s\n", azblob_hdr(rq, "Content-Encoding"));
    stratus_sbuf_printf(out, "%s\n", azblob_hdr(rq, "Content-Language"));
    if (with_body && rq->body_len > 0)
        stratus_sbuf_printf(out, "%zu\n", rq->body_len);
    else
        stratus_sbuf_putc(out, '\n');
    stratus_sbuf_printf(out, "%s\n", azblob_hdr(rq, "Content-MD5"));
    stratus_sbuf_printf(out, "%s\n", ct);
    stratus_sbuf_printf(out, "%s\n", azblob_hdr(rq, "Date"));
    stratus_sbuf_printf(out, "%s\n", azblob_hdr(rq, "If-Modified-Since"));
    stratus_sbuf_printf(out, "%s\n", azblob_hdr(rq, "If-Match"));
    stratus_sbuf_printf(out, "%s\n", azblob_hdr(rq, "If-None-Match"));
    stratus_sbuf_printf(out, "%s\n", azblob_hdr(rq, "If-Unmodified-Since"));
    stratus_sbuf_printf(out, "%s\n", azblob_hdr(rq, "Range"));

    /* canonicalized headers */
    hk = calloc(rq->nhdr ? rq->nhdr : 1, sizeof *hk);
    if (!hk)
        goto nomem;
    for (size_t i = 0; i < rq->nhdr; i++) {
        if (strncasecmp(rq->hdr[i].name, "x-ms-", 5) != 0)
            continue;
        struct stratus_sbuf v = {0};
        azblob_put_value(&v, rq->hdr[i].value);
        stratus_sbuf_putc(&v, 0); /* a NUL-terminated (possibly empty) copy */
        char *nm = strdup(rq->hdr[i].name);
        if (v.err || !nm) {
            free(nm);
            stratus_sbuf_free(&v);
            goto nomem;
        }
        for (char *c = nm; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        hk[nh].name = nm;
        hk[nh].value = v.p;
        nh++;
    }
    qsort(hk, nh, sizeof *hk, azblob_kv_cmp);
    for (size_t i = 0; i < nh; i++)
        stratus_sbuf_printf(out, "%s:%s\n", hk[i].name, hk[i].value);

    /* canonicalized resource */
    stratus_sbuf_printf(out, "/%s%s", account, stratus_sbuf_str(&path));
    if (azblob_query_params(stratus_sbuf_str(&query), &qk, &nq) < 0)
        goto nomem;
    for (size_t i = 0; i < nq; i++) {
        if (i > 0 && strcmp(qk[i].name, qk[i - 1].name) == 0) {
            stratus_sbuf_printf(out, ",%s", qk[i].value);
            continue;
        }
        stratus_sbuf_printf(out, "\n%s:%s", qk[i].name, qk[i].value);
    }
    if (out->err)
        goto nomem;
    goto out;
nomem:
    rc = stratus_errf(eb, STRATUS_ENOMEM, "shared key: out of memory");
out:
    azblob_kv_free(hk, nh);
    azblob_kv_free(qk, nq);
    stratus_sbuf_free(&host);
    stratus_sbuf_free(&path);
    stratus_sbuf_free(&query);
    return rc;
}

int azblob_sharedkey_sign(struct stratus_http_req *rq,
                          const char *account,
                          const uint8_t *key,
                          size_t key_len,
                          struct stratus_errbuf *eb)
{
    struct stratus_sbuf sts = {0};
    uint8_t mac[STRATUS_SHA256_LEN];
    char b64[64];
    int rc = azblob_sharedkey_string_to_sign(rq, account, &sts, eb);
    if (rc == 0) {
        stratus_hash_hmac_sha256(key, key_len, sts.p, sts.len, mac);
        stratus_enc_base64(mac, sizeof mac, b64, sizeof b64);
        if (stratus_http_req_header(rq, "Authorization", "SharedKey %s:%s", account, b64) < 0)
            rc = stratus_errf(eb, STRATUS_ENOMEM, "shared key: out of memory");
    }
    stratus_sbuf_free(&sts);
    return rc;
}

/* ---- managed identity -------------------------------------------------------------------- */

struct azblob_token {
    pthread_mutex_t mu; /* guards token, fetched_ms, expires_ms; held during a fetch */
    char *endpoint, *identity_header, *client_id, *resource;
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
    struct stratus_http *http;
    char token[AZBLOB_TOKEN_MAX];
    int64_t fetched_ms, expires_ms; /* expires_ms 0 = no token */
};

static char *azblob_dup(const char *s, int *fail)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *fail = 1;
    return d;
}

int azblob_token_new(const struct azblob_token_conf *conf,
                     struct azblob_token **out,
                     struct stratus_errbuf *eb)
{
    int fail = 0, rc;
    *out = NULL;
    struct azblob_token *t = calloc(1, sizeof *t);
    if (!t)
        return stratus_errf(eb, STRATUS_ENOMEM, "managed identity: out of memory");
    pthread_mutex_init(&t->mu, NULL);
    t->endpoint =
        azblob_dup(conf->endpoint && *conf->endpoint ? conf->endpoint : AZBLOB_DEFAULT_IMDS, &fail);
    t->identity_header = azblob_dup(conf->identity_header, &fail);
    t->client_id = azblob_dup(conf->client_id && *conf->client_id ? conf->client_id : NULL, &fail);
    t->resource = azblob_dup(conf->resource ? conf->resource : AZBLOB_DEFAULT_RESOURCE, &fail);
    t->now_ms = conf->now_ms;
    t->now_ctx = conf->now_ctx;
    if (fail) {
        azblob_token_free(t);
        return stratus_errf(eb, STRATUS_ENOMEM, "managed identity: out of memory");
    }
    struct stratus_http_opts ho = {0};
    if (conf->http_opts)
        ho = *conf->http_opts;
    ho.user_agent = "stratus-storage-azblob/0.1";
    if ((rc = stratus_http_new(&ho, &t->http, eb)) < 0) {
        azblob_token_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void azblob_token_free(struct azblob_token *t)
{
    if (!t)
        return;
    stratus_http_free(t->http);
    memset(t->token, 0, sizeof t->token);
    free(t->endpoint);
    free(t->identity_header);
    free(t->client_id);
    free(t->resource);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

const char *azblob_token_endpoint(const struct azblob_token *t)
{
    return t->endpoint;
}

void azblob_token_invalidate(struct azblob_token *t)
{
    pthread_mutex_lock(&t->mu);
    t->expires_ms = 0;
    pthread_mutex_unlock(&t->mu);
}

/* One fetch from the endpoint into t (called with t->mu held). */
static int azblob_token_fetch(struct azblob_token *t, int64_t now, struct stratus_errbuf *eb)
{
    struct stratus_sbuf u = {0};
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char tok[AZBLOB_TOKEN_MAX];
    int rc;
    stratus_sbuf_puts(&u, t->endpoint);
    stratus_sbuf_putc(&u, strchr(t->endpoint, '?') ? '&' : '?');
    stratus_sbuf_printf(
        &u, "api-version=%s&resource=", t->identity_header ? "2019-08-01" : "2018-02-01");
    stratus_enc_uri(&u, t->resource, strlen(t->resource), 0);
    if (t->client_id) {
        stratus_sbuf_puts(&u, "&client_id=");
        stratus_enc_uri(&u, t->client_id, strlen(t->client_id), 0);
    }
    if (u.err) {
        stratus_sbuf_free(&u);
        return stratus_errf(eb, STRATUS_ENOMEM, "managed identity: out of memory");
    }
    stratus_http_req_init(&rq, "GET");
    stratus_http_resp_init(&rs);
    rs.body_max = 64 * 1024;
    stratus_http_req_url(&rq, "%s", u.p);
    if (t->identity_header)
        stratus_http_req_header(&rq, "X-IDENTITY-HEADER", "%s", t->identity_header);
    else
        stratus_http_req_header(&rq, "Metadata", "true");
    rc = stratus_http_do(t->http, &rq, &rs, eb);
    if (rc == 0) {
        rc = stratus_http_classify(&rs, "managed identity token", eb);
        /* IMDS answers 400 when the VM has no identity or client_id names none of its
         * identities: not retryable, an auth problem. 404 also means "no identity here". */
        if (rc == STRATUS_EIO || rc == STRATUS_ENOTFOUND)
            rc = STRATUS_EAUTH;
    }
    if (rc == 0) {
        const char *b = rs.body ? rs.body : "";
        int64_t exp_on = 0, exp_in = 0;
        int have_on = stratus_json_get_int(b, rs.body_len, "expires_on", &exp_on) == 0;
        int have_in = stratus_json_get_int(b, rs.body_len, "expires_in", &exp_in) == 0;
        if (stratus_json_get_str(b, rs.body_len, "access_token", tok, sizeof tok) < 0 || !tok[0]) {
            rc = stratus_errf(eb, STRATUS_EPROTO,
                              "managed identity token: reply without an access_token");
        } else {
            int64_t exp = have_in ? now + exp_in * 1000 : have_on ? exp_on * 1000 : 0;
            if (exp <= now)
                exp = now + 60 * 60 * 1000; /* no usable expiry: assume Azure's 1 hour */
            memcpy(t->token, tok, sizeof tok);
            t->fetched_ms = now;
            t->expires_ms = exp;
        }
        memset(tok, 0, sizeof tok);
    }
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    stratus_sbuf_free(&u);
    return rc;
}

int azblob_token_get(struct azblob_token *t, char *out, int64_t *age_ms, struct stratus_errbuf *eb)
{
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    int64_t now = t->now_ms(t->now_ctx);
    int64_t life = t->expires_ms - t->fetched_ms;
    int64_t ahead = life / 2 < AZBLOB_REFRESH_AHEAD_MS ? life / 2 : AZBLOB_REFRESH_AHEAD_MS;
    if (t->expires_ms == 0 || now >= t->expires_ms - ahead) {
        struct stratus_errbuf feb = {{0}};
        rc = azblob_token_fetch(t, now, &feb);
        if (rc < 0) {
            if (t->expires_ms != 0 && now < t->expires_ms) {
                rc = 0; /* keep using the still-valid token; try again next call */
            } else {
                if (eb)
                    *eb = feb;
            }
        }
    }
    if (rc == 0) {
        memcpy(out, t->token, AZBLOB_TOKEN_MAX);
        if (age_ms)
            *age_ms = now - t->fetched_ms;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}
