/* gcs_auth.c - OAuth2 access tokens for the GCS plugin (see gcs_auth.h): service-account JWT
 * bearer flow (RFC 7523, signed RS256 with OpenSSL libcrypto), metadata server, static token.
 *
 * Wire formats:
 *   JWT       base64url(header) "." base64url(claims) "." base64url(RSASSA-PKCS1-v1_5-SHA256)
 *             header {"alg":"RS256","typ":"JWT","kid":<private_key_id>}
 *             claims {"iss":<client_email>,"scope":<scope>,"aud":<token_uri>,"iat":T,"exp":T+3600}
 *   exchange  POST token_uri, application/x-www-form-urlencoded:
 *             grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>
 *   metadata  GET {md}/computeMetadata/v1/instance/service-accounts/default/token?scopes=<scope>
 *             with "Metadata-Flavor: Google" (the reply must carry the same header)
 * SPDX-License-Identifier: Apache-2.0
 */
#include "gcs_auth.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/enc.h"
#include "common/json.h"
#include "common/sbuf.h"

#define GCS_KEYFILE_MAX (256 * 1024)
#define GCS_JWT_LIFETIME_S 3600
#define GCS_REFRESH_EARLY_MS (5 * 60 * 1000)

struct gcs_auth {
    int mode;
    char *token;          /* static token */
    char *client_email;
    char *private_key_id; /* "" when the key has none */
    char *token_uri;
    char *metadata_url;   /* full token URL of the metadata server */
    char *scope;
    EVP_PKEY *pkey;
    struct stratus_http *http;
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
    char desc[300];
    pthread_mutex_t mu;   /* guards the cache below and serializes refreshes */
    char *cached;         /* access token, malloc'd */
    int64_t expires_ms;   /* when the cached token expires */
    int64_t refresh_ms;   /* when to refresh it */
};

static char *gcs_strdup(const char *s)
{
    return strdup(s ? s : "");
}

static void gcs_wipe_free(char *p)
{
    if (p) {
        volatile char *v = p;
        while (*v)
            *v++ = 0;
        free(p);
    }
}

/* ---- service-account key ------------------------------------------------------------------ */

static int gcs_read_file(const char *path, char **out, size_t *len, struct stratus_errbuf *eb)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return stratus_errf(eb, STRATUS_EINVAL, "credentials_file %s: %s", path, strerror(errno));
    char *buf = malloc(GCS_KEYFILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, GCS_KEYFILE_MAX + 1, f);
    int err = ferror(f);
    fclose(f);
    if (err || n > GCS_KEYFILE_MAX) {
        free(buf);
        return stratus_errf(eb, STRATUS_EINVAL, "credentials_file %s: %s", path,
                            err ? "read error" : "larger than 256 KiB");
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

static int gcs_load_key(struct gcs_auth *a, const char *path, struct stratus_errbuf *eb)
{
    char *doc = NULL, *pem = NULL;
    size_t len = 0;
    char type[64] = "", email[512] = "", kid[256] = "", uri[1024] = "";
    int rc = gcs_read_file(path, &doc, &len, eb);
    if (rc < 0)
        return rc;
    pem = malloc(len + 1);
    if (!pem) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
        goto out;
    }
    if (stratus_json_get_str(doc, len, "type", type, sizeof type) < 0) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "credentials_file %s: not a JSON key (no \"type\")",
                          path);
        goto out;
    }
    if (strcmp(type, "service_account") != 0) {
        rc = stratus_errf(eb, STRATUS_EINVAL,
                          "credentials_file %s: type \"%s\" is not supported (want "
                          "service_account)",
                          path, type);
        goto out;
    }
    if (stratus_json_get_str(doc, len, "client_email", email, sizeof email) < 0 || !email[0] ||
        stratus_json_get_str(doc, len, "private_key", pem, len + 1) < 0 || !pem[0]) {
        rc = stratus_errf(eb, STRATUS_EINVAL,
                          "credentials_file %s: client_email or private_key missing", path);
        goto out;
    }
    stratus_json_get_str(doc, len, "private_key_id", kid, sizeof kid);
    if (stratus_json_get_str(doc, len, "token_uri", uri, sizeof uri) < 0 || !uri[0])
        snprintf(uri, sizeof uri, "%s", GCS_DEFAULT_TOKEN_URI);
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (bio) {
        a->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    if (!a->pkey || EVP_PKEY_base_id(a->pkey) != EVP_PKEY_RSA) {
        rc = stratus_errf(eb, STRATUS_EINVAL,
                          "credentials_file %s: private_key is not a PEM RSA private key", path);
        goto out;
    }
    a->client_email = gcs_strdup(email);
    a->private_key_id = gcs_strdup(kid);
    a->token_uri = gcs_strdup(uri);
    if (!a->client_email || !a->private_key_id || !a->token_uri)
        rc = stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
out:
    if (pem) {
        memset(pem, 0, len + 1);
        free(pem);
    }
    if (doc) {
        memset(doc, 0, len);
        free(doc);
    }
    return rc;
}

/* base64url without padding, appended to sb. */
static void gcs_b64url(struct stratus_sbuf *sb, const void *data, size_t len)
{
    size_t cap = 4 * ((len + 2) / 3) + 1;
    char *tmp = malloc(cap);
    if (!tmp) {
        sb->err = 1;
        return;
    }
    size_t n = stratus_enc_base64(data, len, tmp, cap);
    for (size_t i = 0; i < n; i++) {
        if (tmp[i] == '+')
            tmp[i] = '-';
        else if (tmp[i] == '/')
            tmp[i] = '_';
        else if (tmp[i] == '=') {
            n = i;
            break;
        }
    }
    stratus_sbuf_append(sb, tmp, n);
    free(tmp);
}

int gcs_auth_make_jwt(const struct gcs_auth *a, int64_t now_s, char **out,
                      struct stratus_errbuf *eb)
{
    struct stratus_sbuf hdr = {0}, cl = {0}, jwt = {0};
    unsigned char *sig = NULL;
    size_t siglen = 0;
    int rc = 0;
    *out = NULL;
    if (!a->pkey)
        return stratus_errf(eb, STRATUS_EINVAL, "no service-account key loaded");
    stratus_sbuf_puts(&hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\"");
    if (a->private_key_id[0]) {
        stratus_sbuf_puts(&hdr, ",\"kid\":");
        stratus_json_quote(&hdr, a->private_key_id, strlen(a->private_key_id));
    }
    stratus_sbuf_putc(&hdr, '}');
    stratus_sbuf_puts(&cl, "{\"iss\":");
    stratus_json_quote(&cl, a->client_email, strlen(a->client_email));
    stratus_sbuf_puts(&cl, ",\"scope\":");
    stratus_json_quote(&cl, a->scope, strlen(a->scope));
    stratus_sbuf_puts(&cl, ",\"aud\":");
    stratus_json_quote(&cl, a->token_uri, strlen(a->token_uri));
    stratus_sbuf_printf(&cl, ",\"iat\":%lld,\"exp\":%lld}", (long long)now_s,
                        (long long)(now_s + GCS_JWT_LIFETIME_S));
    if (hdr.err || cl.err) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
        goto out;
    }
    gcs_b64url(&jwt, hdr.p, hdr.len);
    stratus_sbuf_putc(&jwt, '.');
    gcs_b64url(&jwt, cl.p, cl.len);
    if (jwt.err) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
        goto out;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
        goto out;
    }
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, a->pkey) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)jwt.p, jwt.len) != 1 ||
        !(sig = malloc(siglen)) ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)jwt.p, jwt.len) != 1) {
        EVP_MD_CTX_free(md);
        rc = stratus_errf(eb, STRATUS_EINVAL, "signing the JWT with the service-account key failed");
        goto out;
    }
    EVP_MD_CTX_free(md);
    stratus_sbuf_putc(&jwt, '.');
    gcs_b64url(&jwt, sig, siglen);
    if (jwt.err) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
        goto out;
    }
    *out = jwt.p;
    jwt.p = NULL;
out:
    free(sig);
    stratus_sbuf_free(&hdr);
    stratus_sbuf_free(&cl);
    stratus_sbuf_free(&jwt);
    return rc;
}

/* ---- token fetch --------------------------------------------------------------------------- */

/* Parses a token reply into a->cached and the expiry times. */
static int gcs_take_token(struct gcs_auth *a, const struct stratus_http_resp *rs, const char *what,
                          int64_t now, struct stratus_errbuf *eb)
{
    const char *b = rs->body ? rs->body : "";
    char tok[4096], type[32] = "";
    int64_t expires_in = 0;
    if (stratus_json_get_str(b, rs->body_len, "access_token", tok, sizeof tok) < 0 || !tok[0])
        return stratus_errf(eb, STRATUS_EPROTO, "%s: no access_token in the reply", what);
    if (stratus_json_get_str(b, rs->body_len, "token_type", type, sizeof type) == 0 && type[0] &&
        strcasecmp(type, "Bearer") != 0) {
        memset(tok, 0, sizeof tok);
        return stratus_errf(eb, STRATUS_EPROTO, "%s: token_type %s is not Bearer", what, type);
    }
    if (stratus_json_get_int(b, rs->body_len, "expires_in", &expires_in) < 0 || expires_in <= 0)
        expires_in = 3600;
    char *t = strdup(tok);
    memset(tok, 0, sizeof tok);
    if (!t)
        return stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
    gcs_wipe_free(a->cached);
    a->cached = t;
    a->expires_ms = now + expires_in * 1000;
    int64_t early = GCS_REFRESH_EARLY_MS;
    if (early > expires_in * 1000 / 2)
        early = expires_in * 1000 / 2;
    a->refresh_ms = a->expires_ms - early;
    return 0;
}

/* Classifies a failed token reply: refusals are EAUTH, 5xx/429 EAGAIN. */
static int gcs_token_error(const struct stratus_http_resp *rs, const char *what,
                           struct stratus_errbuf *eb)
{
    int rc = stratus_http_classify(rs, what, eb);
    if (rc == 0)
        return 0;
    if (rs->status == 400 || rs->status == 401 || rs->status == 403 || rs->status == 404)
        rc = STRATUS_EAUTH;
    return rc;
}

/* stratus_http_do() with `what` (which names the token source) before a transport error. */
static int gcs_do(struct gcs_auth *a, struct stratus_http_req *rq, struct stratus_http_resp *rs,
                  const char *what, struct stratus_errbuf *eb)
{
    struct stratus_errbuf teb = {{0}};
    int rc = stratus_http_do(a->http, rq, rs, &teb);
    if (rc < 0)
        stratus_errf(eb, rc, "%.120s: %s", what, teb.msg);
    return rc;
}

static int gcs_fetch_sa(struct gcs_auth *a, int64_t now, struct stratus_errbuf *eb)
{
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    struct stratus_sbuf body = {0};
    char *jwt = NULL;
    char what[1200];
    snprintf(what, sizeof what, "service account %s: token exchange at %s", a->client_email,
             a->token_uri);
    int rc = gcs_auth_make_jwt(a, now / 1000, &jwt, eb);
    if (rc < 0)
        return rc;
    stratus_sbuf_puts(&body, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
                             "&assertion=");
    stratus_sbuf_puts(&body, jwt); /* base64url and '.': nothing to escape */
    free(jwt);
    if (body.err) {
        stratus_sbuf_free(&body);
        return stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
    }
    stratus_http_req_init(&rq, "POST");
    stratus_http_resp_init(&rs);
    stratus_http_req_url(&rq, "%s", a->token_uri);
    stratus_http_req_header(&rq, "Content-Type", "application/x-www-form-urlencoded");
    stratus_http_req_body(&rq, body.p, body.len);
    rs.body_max = 64 * 1024;
    rc = gcs_do(a, &rq, &rs, what, eb);
    if (rc == 0)
        rc = gcs_token_error(&rs, what, eb);
    if (rc == 0)
        rc = gcs_take_token(a, &rs, what, now, eb);
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    stratus_sbuf_free(&body);
    return rc;
}

static int gcs_fetch_metadata(struct gcs_auth *a, int64_t now, struct stratus_errbuf *eb)
{
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char what[1200];
    snprintf(what, sizeof what, "metadata server %s", a->metadata_url);
    stratus_http_req_init(&rq, "GET");
    stratus_http_resp_init(&rs);
    struct stratus_sbuf u = {0};
    stratus_sbuf_printf(&u, "%s?scopes=", a->metadata_url);
    stratus_enc_uri(&u, a->scope, strlen(a->scope), 0);
    if (u.err) {
        stratus_sbuf_free(&u);
        return stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
    }
    stratus_http_req_url(&rq, "%s", u.p);
    stratus_sbuf_free(&u);
    stratus_http_req_header(&rq, "Metadata-Flavor", "Google");
    rs.body_max = 64 * 1024;
    int rc = gcs_do(a, &rq, &rs, what, eb);
    if (rc == 0) {
        rc = stratus_http_classify(&rs, what, eb);
        if (rs.status == 403 || rs.status == 401)
            rc = STRATUS_EAUTH;
        else if (rs.status == 404) /* no service account attached to the instance */
            rc = stratus_errf(eb, STRATUS_EAUTH,
                              "%s: HTTP 404: the instance has no default service account", what);
    }
    if (rc == 0) {
        const char *fl = stratus_http_resp_header(&rs, "metadata-flavor");
        if (!fl || strcmp(fl, "Google") != 0)
            rc = stratus_errf(eb, STRATUS_EPROTO,
                              "%s: reply lacks Metadata-Flavor: Google (not a metadata server)",
                              what);
    }
    if (rc == 0)
        rc = gcs_take_token(a, &rs, what, now, eb);
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    return rc;
}

int gcs_auth_header(struct gcs_auth *a, char *out, size_t cap, struct stratus_errbuf *eb)
{
    int rc = 0;
    out[0] = 0;
    switch (a->mode) {
    case GCS_AUTH_NONE:
        return 0;
    case GCS_AUTH_TOKEN:
        if ((size_t)snprintf(out, cap, "Bearer %s", a->token) >= cap)
            return stratus_errf(eb, STRATUS_EINVAL, "token is too long");
        return 0;
    default:
        break;
    }
    pthread_mutex_lock(&a->mu);
    int64_t now = a->now_ms(a->now_ctx);
    if (!a->cached || now >= a->refresh_ms) {
        struct stratus_errbuf feb = {{0}};
        rc = a->mode == GCS_AUTH_SERVICE_ACCOUNT ? gcs_fetch_sa(a, now, &feb)
                                                 : gcs_fetch_metadata(a, now, &feb);
        if (rc < 0) {
            /* a refresh that fails early can still serve the unexpired token */
            if (a->cached && now < a->expires_ms - 10000)
                rc = 0;
            else if (eb)
                *eb = feb;
        }
    }
    if (rc == 0 && (size_t)snprintf(out, cap, "Bearer %s", a->cached) >= cap)
        rc = stratus_errf(eb, STRATUS_EPROTO, "access token is too long");
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int gcs_auth_invalidate(struct gcs_auth *a, const char *used)
{
    if (a->mode != GCS_AUTH_SERVICE_ACCOUNT && a->mode != GCS_AUTH_METADATA)
        return 0;
    pthread_mutex_lock(&a->mu);
    /* drop it only if it is still the refused one (another thread may have refreshed it) */
    if (a->cached && used && strncmp(used, "Bearer ", 7) == 0 && strcmp(used + 7, a->cached) == 0) {
        gcs_wipe_free(a->cached);
        a->cached = NULL;
    }
    pthread_mutex_unlock(&a->mu);
    return 1;
}

/* ---- lifetime ------------------------------------------------------------------------------ */

const char *gcs_auth_describe(const struct gcs_auth *a)
{
    return a->desc;
}

int gcs_auth_mode(const struct gcs_auth *a)
{
    return a->mode;
}

void gcs_auth_free(struct gcs_auth *a)
{
    if (!a)
        return;
    stratus_http_free(a->http);
    EVP_PKEY_free(a->pkey);
    gcs_wipe_free(a->token);
    gcs_wipe_free(a->cached);
    free(a->client_email);
    free(a->private_key_id);
    free(a->token_uri);
    free(a->metadata_url);
    free(a->scope);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

int gcs_auth_new(const struct gcs_auth_conf *c, struct gcs_auth **out, struct stratus_errbuf *eb)
{
    int rc = 0;
    *out = NULL;
    struct gcs_auth *a = calloc(1, sizeof *a);
    if (!a)
        return stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
    pthread_mutex_init(&a->mu, NULL);
    a->now_ms = c->now_ms;
    a->now_ctx = c->now_ctx;
    a->scope = gcs_strdup(c->scope && *c->scope ? c->scope : GCS_SCOPE_RW);
    if (!a->scope) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
        goto fail;
    }
    const char *file = c->credentials_file && *c->credentials_file
                           ? c->credentials_file
                           : getenv("GOOGLE_APPLICATION_CREDENTIALS");
    if (file && !*file)
        file = NULL;
    const char *m = c->mode && *c->mode ? c->mode : "auto";
    if (strcmp(m, "auto") == 0)
        m = file ? "service_account" : "metadata";
    if (strcmp(m, "none") == 0) {
        a->mode = GCS_AUTH_NONE;
        snprintf(a->desc, sizeof a->desc, "none");
    } else if (strcmp(m, "token") == 0) {
        a->mode = GCS_AUTH_TOKEN;
        if (!c->token || !*c->token) {
            rc = stratus_errf(eb, STRATUS_EINVAL, "auth = token needs the token key");
            goto fail;
        }
        if (!(a->token = gcs_strdup(c->token))) {
            rc = stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
            goto fail;
        }
        snprintf(a->desc, sizeof a->desc, "static token");
    } else if (strcmp(m, "service_account") == 0) {
        a->mode = GCS_AUTH_SERVICE_ACCOUNT;
        if (!file) {
            rc = stratus_errf(eb, STRATUS_EINVAL,
                              "auth = service_account needs credentials_file or "
                              "GOOGLE_APPLICATION_CREDENTIALS");
            goto fail;
        }
        if ((rc = gcs_load_key(a, file, eb)) < 0)
            goto fail;
        snprintf(a->desc, sizeof a->desc, "service_account %.120s (token_uri %.120s)",
                 a->client_email, a->token_uri);
    } else if (strcmp(m, "metadata") == 0) {
        a->mode = GCS_AUTH_METADATA;
        char base[1024];
        const char *env = getenv("GCE_METADATA_HOST");
        if (c->metadata_endpoint && *c->metadata_endpoint)
            snprintf(base, sizeof base, "%s", c->metadata_endpoint);
        else if (env && *env)
            snprintf(base, sizeof base, "http://%s", env);
        else
            snprintf(base, sizeof base, "%s", GCS_DEFAULT_METADATA);
        size_t n = strlen(base);
        while (n && base[n - 1] == '/')
            base[--n] = 0;
        struct stratus_sbuf u = {0};
        stratus_sbuf_printf(&u, "%s%s/computeMetadata/v1/instance/service-accounts/default/token",
                            strstr(base, "://") ? "" : "http://", base);
        if (u.err) {
            stratus_sbuf_free(&u);
            rc = stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
            goto fail;
        }
        a->metadata_url = u.p;
        snprintf(a->desc, sizeof a->desc, "metadata server %.200s", base);
    } else {
        rc = stratus_errf(eb, STRATUS_EINVAL,
                          "auth = %s: want service_account, metadata, token or none", m);
        goto fail;
    }
    if (a->mode == GCS_AUTH_SERVICE_ACCOUNT || a->mode == GCS_AUTH_METADATA) {
        struct stratus_http_opts ho = *c->http_opts;
        ho.max_idle_handles = 2;
        if ((rc = stratus_http_new(&ho, &a->http, eb)) < 0)
            goto fail;
    }
    *out = a;
    return 0;
fail:
    gcs_auth_free(a);
    return rc;
}
