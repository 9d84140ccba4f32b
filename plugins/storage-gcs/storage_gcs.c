/* storage_gcs.c - stratus-storage-gcs.so: a storage plugin on Google Cloud Storage through its
 * JSON API (https://cloud.google.com/storage/docs/json_api), on the shared HTTP layer
 * (plugins/common); OAuth2 tokens come from gcs_auth.c.
 *
 * Object key K is the GCS object <prefix>K in <bucket>; object names are percent-encoded
 * whole (a '/' becomes %2F) in paths and queries.
 *   put   up to resumable_threshold: one multipart upload (uploadType=multipart, a
 *         multipart/related body of the JSON metadata {"name","crc32c"} and the bytes);
 *         above it a resumable upload: POST uploadType=resumable (metadata with crc32c) gives
 *         a session URI, then PUTs of chunk_size (a multiple of 256 KiB) with Content-Range
 *         "bytes a-b/" "*" (last: "bytes a-b/total" + x-goog-hash), each answered 308 with
 *         "Range: bytes=0-N" (the server may keep less than it got: we resend from N+1); a
 *         dropped chunk is resumed after a status query (an empty PUT with Content-Range
 *         "bytes *" "/<total>"), at most 3 times.
 *         if_absent -> ifGenerationMatch=0, if_match -> ifGenerationMatch=<etag>; 412 ->
 *         STRATUS_EEXIST. The object resource of the reply must carry our crc32c (GCS also
 *         checks it, since we send it): a mismatch is STRATUS_ECORRUPT.
 *   get   GET .../o/<name>?alt=media with Range; 416 -> *got = 0; a reply holding the whole
 *         object is checked against x-goog-hash crc32c.
 *   head  GET .../o/<name> (the object resource): size, generation, updated.
 *   del   DELETE .../o/<name> per key; 404 is success.
 *   list  GET .../o?prefix=&startOffset=&pageToken=&maxResults= (names in UTF-8 byte order);
 *         startOffset is inclusive, so the start_after name itself is skipped.
 * The etag is the object's generation as decimal text, so if_match maps to ifGenerationMatch.
 * Errors: stratus_http_classify reads GCS's {"error":{"code","message"}}; a 401 drops the
 * cached token (a retry then fetches a fresh one).
 * SPDX-License-Identifier: Apache-2.0
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/enc.h"
#include "common/hash.h"
#include "common/http.h"
#include "common/json.h"
#include "common/sbuf.h"
#include "common/timefmt.h"
#include "gcs_auth.h"
#include "stratus/stratus_storage.h"

#define GCS_CHUNK_ALIGN (256 * 1024)
#define GCS_RESUME_TRIES 3
#define GCS_LIST_BODY_MAX (16 * 1024 * 1024)
#define GCS_META_BODY_MAX (1024 * 1024)

struct gcs_conf {
    char *bucket;
    char *endpoint;
    char *auth;
    char *credentials_file;
    char *token;
    char *metadata_endpoint;
    char *scope;
    char *prefix;
    uint64_t resumable_threshold;
    uint64_t chunk_size;
    int64_t list_page_size;
    int64_t connect_timeout;
    int64_t stall_timeout;
    int64_t request_timeout;
    char *ca_file;
    char *ca_path;
    int insecure_skip_verify;
};

static const struct stratus_param gcs_params[] = {
    STRATUS_PARAM_STR("bucket", NULL, STRATUS_P_REQUIRED, struct gcs_conf, bucket,
                      "Bucket holding the objects (must exist)"),
    STRATUS_PARAM_STR("endpoint", NULL, 0, struct gcs_conf, endpoint,
                      "JSON API root; default $STORAGE_EMULATOR_HOST or https://storage.googleapis.com"),
    STRATUS_PARAM_STR("auth", "auto", 0, struct gcs_conf, auth,
                      "service_account | metadata | token | none | auto (key file if any, else metadata)"),
    STRATUS_PARAM_STR("credentials_file", NULL, 0, struct gcs_conf, credentials_file,
                      "Service-account JSON key; default $GOOGLE_APPLICATION_CREDENTIALS"),
    STRATUS_PARAM_STR("token", NULL, STRATUS_P_SECRET, struct gcs_conf, token,
                      "Static OAuth2 access token (auth = token)"),
    STRATUS_PARAM_STR("metadata_endpoint", NULL, 0, struct gcs_conf, metadata_endpoint,
                      "Metadata server; default http://$GCE_METADATA_HOST or http://metadata.google.internal"),
    STRATUS_PARAM_STR("scope", GCS_SCOPE_RW, 0, struct gcs_conf, scope,
                      "OAuth2 scope requested for the token"),
    STRATUS_PARAM_STR("prefix", "", 0, struct gcs_conf, prefix,
                      "Prepended to every object name (e.g. \"stratus/\")"),
    STRATUS_PARAM_SIZE("resumable_threshold", "8MiB", 0, struct gcs_conf, resumable_threshold, 1,
                       5LL * 1024 * 1024 * 1024, "Objects above this size use a resumable upload"),
    STRATUS_PARAM_SIZE("chunk_size", "8MiB", 0, struct gcs_conf, chunk_size, GCS_CHUNK_ALIGN,
                       1024LL * 1024 * 1024, "Resumable upload chunk (a multiple of 256 KiB)"),
    STRATUS_PARAM_INT("list_page_size", "1000", 0, struct gcs_conf, list_page_size, 1, 1000,
                      "maxResults of each list request"),
    STRATUS_PARAM_MS("connect_timeout", "10s", 0, struct gcs_conf, connect_timeout, 1, 600000,
                     "TCP + TLS connect timeout"),
    STRATUS_PARAM_MS("stall_timeout", "30s", 0, struct gcs_conf, stall_timeout, 1000, 3600000,
                     "Abort a request when no byte moved for this long (incl. first byte)"),
    STRATUS_PARAM_MS("request_timeout", "5m", 0, struct gcs_conf, request_timeout, 0, 86400000,
                     "Whole-request limit; 0 = none"),
    STRATUS_PARAM_STR("ca_file", NULL, 0, struct gcs_conf, ca_file,
                      "PEM CA bundle for TLS verification; default: the system's"),
    STRATUS_PARAM_STR("ca_path", NULL, 0, struct gcs_conf, ca_path,
                      "Directory of hashed CA certificates; default: the system's"),
    STRATUS_PARAM_BOOL("insecure_skip_verify", "false", 0, struct gcs_conf, insecure_skip_verify,
                       "Do not verify TLS certificates (testing only)"),
    STRATUS_PARAM_END,
};

struct gcs {
    const struct stratus_host *host;
    const struct gcs_conf *conf;
    char *api;    /* <endpoint>/storage/v1/b/<bucket> */
    char *upload; /* <endpoint>/upload/storage/v1/b/<bucket>/o */
    char *prefix;
    struct stratus_http *http;
    struct gcs_auth *auth;
};

/* ---- requests ---------------------------------------------------------------------------- */

/* Appends the percent-encoded full object name (<prefix><key>) to sb. */
static void gcs_enc_name(const struct gcs *g, struct stratus_sbuf *sb, const char *key)
{
    stratus_enc_uri(sb, g->prefix, strlen(g->prefix), 0);
    stratus_enc_uri(sb, key, strlen(key), 0);
}

/* Sets rq's URL to the object resource <api>/o/<name> plus query (may be NULL). */
static int gcs_obj_url(const struct gcs *g, struct stratus_http_req *rq, const char *key,
                       const char *query)
{
    struct stratus_sbuf u = {0};
    stratus_sbuf_printf(&u, "%s/o/", g->api);
    gcs_enc_name(g, &u, key);
    if (query && *query)
        stratus_sbuf_printf(&u, "?%s", query);
    int rc = u.err ? STRATUS_ENOMEM : stratus_http_req_url(rq, "%s", u.p);
    stratus_sbuf_free(&u);
    if (rc)
        rq->err = 1;
    return rc;
}

/* Authorizes and performs rq; classifies the reply. 0 only for a 2xx status (and 308 when
 * allow_308). A 401 on a token from a refreshable source (service account, metadata) drops the
 * cached token and sends once more with a fresh one, as Google's client libraries do. */
static int gcs_send(struct gcs *g, struct stratus_http_req *rq, struct stratus_http_resp *rs,
                    const char *what, int allow_308, struct stratus_errbuf *eb)
{
    char authz[4200];
    int rc;
    for (int attempt = 0;; attempt++) {
        rc = gcs_auth_header(g->auth, authz, sizeof authz, eb);
        if (rc < 0)
            return rc;
        if (authz[0])
            stratus_http_req_header(rq, "Authorization", "%s", authz);
        rc = stratus_http_do(g->http, rq, rs, eb);
        stratus_http_req_header(rq, "Authorization", NULL);
        int again = rc == 0 && rs->status == 401 && attempt == 0 &&
                    gcs_auth_invalidate(g->auth, authz);
        memset(authz, 0, sizeof authz);
        if (rc < 0)
            return rc;
        if (!again)
            break;
        /* the token was refused (revoked, or expired early): once more with a fresh one */
        void *dst = rs->dst;
        size_t cap = rs->dst_cap, max = rs->body_max;
        stratus_http_resp_free(rs);
        stratus_http_resp_init(rs);
        rs->dst = dst;
        rs->dst_cap = cap;
        rs->body_max = max;
    }
    if (allow_308 && rs->status == 308)
        return 0;
    rc = stratus_http_classify(rs, what, eb);
    if (rs->status == 401)
        rc = STRATUS_EAUTH;
    return rc;
}

static int gcs_is_generation(const char *s)
{
    if (!s || !*s || strlen(s) > 20)
        return 0;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

static void gcs_crc_b64(uint32_t crc, char out[16])
{
    uint8_t be[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
    stratus_enc_base64(be, 4, out, 16);
}

/* Appends the object metadata {"name": <prefix><key>, "crc32c": <b64>} to sb. */
static void gcs_metadata(const struct gcs *g, struct stratus_sbuf *sb, const char *key,
                         const char *crc_b64)
{
    struct stratus_sbuf name = {0};
    stratus_sbuf_puts(&name, g->prefix);
    stratus_sbuf_puts(&name, key);
    stratus_sbuf_puts(sb, "{\"name\":");
    stratus_json_quote(sb, stratus_sbuf_str(&name), name.len);
    stratus_sbuf_printf(sb, ",\"contentType\":\"application/octet-stream\",\"crc32c\":\"%s\"}",
                        crc_b64);
    if (name.err)
        sb->err = 1;
    stratus_sbuf_free(&name);
}

/* Checks the object resource a completed upload returned; writes its generation as etag. */
static int gcs_check_uploaded(const struct stratus_http_resp *rs, const char *what, size_t len,
                              const char *crc_b64, char *etag_out, struct stratus_errbuf *eb)
{
    const char *b = rs->body ? rs->body : "";
    char gen[32] = "", crc[32] = "";
    int64_t size = -1;
    if (stratus_json_get_str(b, rs->body_len, "generation", gen, sizeof gen) < 0 ||
        !gcs_is_generation(gen))
        return stratus_errf(eb, STRATUS_EPROTO, "%s: no generation in the object resource", what);
    if (stratus_json_get_int(b, rs->body_len, "size", &size) == 0 && size != (int64_t)len)
        return stratus_errf(eb, STRATUS_ECORRUPT, "%s: stored %" PRId64 " bytes, sent %zu", what,
                            size, len);
    if (stratus_json_get_str(b, rs->body_len, "crc32c", crc, sizeof crc) == 0 &&
        strcmp(crc, crc_b64) != 0)
        return stratus_errf(eb, STRATUS_ECORRUPT, "%s: stored crc32c %s, sent %s", what, crc,
                            crc_b64);
    if (etag_out)
        snprintf(etag_out, 128, "%s", gen);
    return 0;
}

/* ---- put --------------------------------------------------------------------------------- */

static int gcs_put_multipart(struct gcs *g, const char *key, const void *data, size_t len,
                             const char *cond, const char *crc_b64, char *etag_out,
                             const char *what, struct stratus_errbuf *eb)
{
    struct stratus_sbuf meta = {0}, body = {0}, u = {0};
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char boundary[64];
    int rc;
    gcs_metadata(g, &meta, key, crc_b64);
    /* a boundary that does not occur in the data */
    for (unsigned i = 0;; i++) {
        snprintf(boundary, sizeof boundary, "stratus_gcs_%s_%zu_%u", crc_b64, len, i);
        for (char *p = boundary; *p; p++)
            if (*p == '+' || *p == '/' || *p == '=')
                *p = 'x';
        if (!memmem(data, len, boundary, strlen(boundary)))
            break;
    }
    stratus_sbuf_printf(&body, "--%s\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n",
                        boundary);
    stratus_sbuf_append(&body, meta.p, meta.len);
    stratus_sbuf_printf(&body, "\r\n--%s\r\nContent-Type: application/octet-stream\r\n\r\n",
                        boundary);
    stratus_sbuf_append(&body, data, len);
    stratus_sbuf_printf(&body, "\r\n--%s--\r\n", boundary);
    stratus_sbuf_printf(&u, "%s?uploadType=multipart%s", g->upload, cond);
    if (meta.err || body.err || u.err) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "%s: out of memory", what);
        goto out;
    }
    stratus_http_req_init(&rq, "POST");
    stratus_http_resp_init(&rs);
    rs.body_max = GCS_META_BODY_MAX;
    stratus_http_req_url(&rq, "%s", u.p);
    stratus_http_req_header(&rq, "Content-Type", "multipart/related; boundary=%s", boundary);
    stratus_http_req_body(&rq, body.p, body.len);
    rc = gcs_send(g, &rq, &rs, what, 0, eb);
    if (rc == 0)
        rc = gcs_check_uploaded(&rs, what, len, crc_b64, etag_out, eb);
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
out:
    stratus_sbuf_free(&meta);
    stratus_sbuf_free(&body);
    stratus_sbuf_free(&u);
    return rc;
}

/* Reads the committed size from a 308 reply ("Range: bytes=0-N" -> N+1; none -> 0). */
static int gcs_committed(const struct stratus_http_resp *rs, uint64_t *out)
{
    const char *r = stratus_http_resp_header(rs, "range");
    *out = 0;
    if (!r)
        return 0;
    unsigned long long a, b;
    if (sscanf(r, "bytes=%llu-%llu", &a, &b) != 2 || a != 0)
        return -1;
    *out = (uint64_t)b + 1;
    return 0;
}

static void gcs_resumable_cancel(struct gcs *g, const char *session)
{
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    struct stratus_errbuf eb = {{0}};
    stratus_http_req_init(&rq, "DELETE");
    stratus_http_resp_init(&rs);
    stratus_http_req_url(&rq, "%s", session);
    int rc = gcs_send(g, &rq, &rs, "cancel resumable upload", 0, &eb);
    /* GCS answers a cancelled session with 499 */
    if (rc < 0 && rs.status != 499 && rs.status != 404 && rs.status != 410)
        g->host->log(g->host->hctx, STRATUS_LOG_DEBUG,
                     "gcs: cancel of a resumable upload session failed (it expires in a week): %s",
                     eb.msg);
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
}

static int gcs_put_resumable(struct gcs *g, const char *key, const void *data, size_t len,
                             const char *cond, const char *crc_b64, char *etag_out,
                             const char *what, struct stratus_errbuf *eb)
{
    struct stratus_sbuf meta = {0}, u = {0};
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char *session = NULL;
    int rc, done = 0, resumes = 0, stuck = 0;
    uint64_t off = 0;
    const unsigned char *p = data;

    /* 1. start the session */
    gcs_metadata(g, &meta, key, crc_b64);
    stratus_sbuf_printf(&u, "%s?uploadType=resumable&name=", g->upload);
    gcs_enc_name(g, &u, key);
    stratus_sbuf_puts(&u, cond);
    if (meta.err || u.err) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "%s: out of memory", what);
        goto out;
    }
    stratus_http_req_init(&rq, "POST");
    stratus_http_resp_init(&rs);
    stratus_http_req_url(&rq, "%s", u.p);
    stratus_http_req_header(&rq, "Content-Type", "application/json; charset=UTF-8");
    stratus_http_req_header(&rq, "X-Upload-Content-Type", "application/octet-stream");
    stratus_http_req_header(&rq, "X-Upload-Content-Length", "%zu", len);
    stratus_http_req_body(&rq, meta.p, meta.len);
    rc = gcs_send(g, &rq, &rs, what, 0, eb);
    if (rc == 0) {
        const char *loc = stratus_http_resp_header(&rs, "location");
        if (!loc || !*loc)
            rc = stratus_errf(eb, STRATUS_EPROTO, "%s: no Location (session URI) in the reply",
                              what);
        else if (!(session = strdup(loc)))
            rc = stratus_errf(eb, STRATUS_ENOMEM, "%s: out of memory", what);
    }
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    if (rc < 0)
        goto out;

    /* 2. send the chunks */
    while (!done) {
        size_t n = len - off < g->conf->chunk_size ? (size_t)(len - off) : (size_t)g->conf->chunk_size;
        int last = off + n == len;
        char chunk_what[1200];
        snprintf(chunk_what, sizeof chunk_what, "%s: chunk at %" PRIu64, what, off);
        stratus_http_req_init(&rq, "PUT");
        stratus_http_resp_init(&rs);
        rs.body_max = GCS_META_BODY_MAX;
        stratus_http_req_url(&rq, "%s", session);
        if (last) {
            stratus_http_req_header(&rq, "Content-Range", "bytes %" PRIu64 "-%" PRIu64 "/%zu",
                                    off, off + n - 1, len);
            stratus_http_req_header(&rq, "x-goog-hash", "crc32c=%s", crc_b64);
        } else {
            stratus_http_req_header(&rq, "Content-Range", "bytes %" PRIu64 "-%" PRIu64 "/*", off,
                                    off + n - 1);
        }
        stratus_http_req_body(&rq, p + off, n);
        rc = gcs_send(g, &rq, &rs, chunk_what, 1, eb);
        if (rc == STRATUS_EAGAIN && resumes < GCS_RESUME_TRIES) {
            /* ask the session how much it has, then go on from there */
            resumes++;
            stratus_http_resp_free(&rs);
            stratus_http_req_free(&rq);
            stratus_http_req_init(&rq, "PUT");
            stratus_http_resp_init(&rs);
            rs.body_max = GCS_META_BODY_MAX;
            stratus_http_req_url(&rq, "%s", session);
            stratus_http_req_header(&rq, "Content-Range", "bytes */%zu", len);
            stratus_http_req_body(&rq, NULL, 0);
            rc = gcs_send(g, &rq, &rs, chunk_what, 1, eb);
        }
        if (rc < 0 && (rs.status == 404 || rs.status == 410)) {
            /* the session expired or was lost: the core's retry starts a new one */
            rc = stratus_errf(eb, STRATUS_EAGAIN, "%s: upload session gone (HTTP %ld)",
                              chunk_what, rs.status);
        } else if (rc == 0 && rs.status == 308) {
            uint64_t c;
            if (gcs_committed(&rs, &c) < 0 || c > len) {
                rc = stratus_errf(eb, STRATUS_EPROTO, "%s: bad Range in the 308 reply",
                                  chunk_what);
            } else if (c <= off && ++stuck > GCS_RESUME_TRIES) {
                rc = stratus_errf(eb, STRATUS_EAGAIN, "%s: the session makes no progress",
                                  chunk_what);
            } else {
                if (c > off)
                    stuck = 0;
                off = c;
            }
        } else if (rc == 0) {
            rc = gcs_check_uploaded(&rs, what, len, crc_b64, etag_out, eb);
            done = 1;
        }
        stratus_http_resp_free(&rs);
        stratus_http_req_free(&rq);
        if (rc < 0)
            break;
    }
    if (rc < 0 && rc != STRATUS_EEXIST)
        gcs_resumable_cancel(g, session);
out:
    free(session);
    stratus_sbuf_free(&meta);
    stratus_sbuf_free(&u);
    return rc;
}

static int gcs_put(void *inst, const char *key, const void *data, size_t len,
                   const struct stratus_put_opts *o, char *etag_out, struct stratus_errbuf *eb)
{
    struct gcs *g = inst;
    int if_absent = 0;
    const char *if_match = NULL;
    char what[1100], cond[64] = "", crc_b64[16];
    if (etag_out)
        etag_out[0] = 0;
    stratus_put_opts_read(o, &if_absent, &if_match);
    snprintf(what, sizeof what, "put %s", key);
    if (if_absent) {
        snprintf(cond, sizeof cond, "&ifGenerationMatch=0");
    } else if (if_match) {
        if (!gcs_is_generation(if_match))
            return stratus_errf(eb, STRATUS_EEXIST,
                                "%s: if_match '%.40s' is not a GCS generation: it matches no "
                                "object",
                                what, if_match);
        snprintf(cond, sizeof cond, "&ifGenerationMatch=%s", if_match);
    }
    gcs_crc_b64(stratus_hash_crc32c(0, data, len), crc_b64);
    int rc;
    if (len > g->conf->resumable_threshold)
        rc = gcs_put_resumable(g, key, data, len, cond, crc_b64, etag_out, what, eb);
    else
        rc = gcs_put_multipart(g, key, data, len, cond, crc_b64, etag_out, what, eb);
    /* GCS answers ifGenerationMatch=N on a missing object with 412; should a front end say
     * 404 instead, that is still a failed precondition (the current generation, none,
     * differs) */
    if (rc == STRATUS_ENOTFOUND && if_match && !strstr(eb->msg, "bucket does not exist"))
        rc = STRATUS_EEXIST;
    return rc;
}

/* ---- get / head -------------------------------------------------------------------------- */

static int gcs_head(void *inst, const char *key, struct stratus_object_info *info,
                    struct stratus_errbuf *eb)
{
    struct gcs *g = inst;
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char what[1100];
    snprintf(what, sizeof what, "head %s", key);
    stratus_http_req_init(&rq, "GET");
    stratus_http_resp_init(&rs);
    rs.body_max = GCS_META_BODY_MAX;
    gcs_obj_url(g, &rq, key, NULL);
    int rc = gcs_send(g, &rq, &rs, what, 0, eb);
    if (rc == 0) {
        const char *b = rs.body ? rs.body : "";
        int64_t size = -1, ms;
        char upd[64];
        memset(info, 0, sizeof *info);
        snprintf(info->key, sizeof info->key, "%s", key);
        if (stratus_json_get_int(b, rs.body_len, "size", &size) < 0 || size < 0 ||
            stratus_json_get_str(b, rs.body_len, "generation", info->etag, sizeof info->etag) < 0 ||
            !gcs_is_generation(info->etag))
            rc = stratus_errf(eb, STRATUS_EPROTO, "%s: object resource lacks size or generation",
                              what);
        else
            info->size = (uint64_t)size;
        if (stratus_json_get_str(b, rs.body_len, "updated", upd, sizeof upd) == 0 &&
            stratus_timefmt_parse_iso8601(upd, &ms) == 0)
            info->mtime_ms = ms;
    }
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    return rc;
}

/* The crc32c of an x-goog-hash header ("crc32c=AAAAAA==,md5=..."), or -1 when absent. */
static int gcs_hash_crc(const char *h, uint32_t *out)
{
    const char *p = h ? strstr(h, "crc32c=") : NULL;
    if (!p)
        return -1;
    p += 7;
    size_t n = strcspn(p, ", ");
    uint8_t be[8];
    if (stratus_enc_base64_decode(p, n, be, sizeof be) != 4)
        return -1;
    *out = (uint32_t)be[0] << 24 | (uint32_t)be[1] << 16 | (uint32_t)be[2] << 8 | be[3];
    return 0;
}

static int gcs_get(void *inst, const char *key, uint64_t off, size_t len, void *dst, size_t *got,
                   struct stratus_errbuf *eb)
{
    struct gcs *g = inst;
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char what[1100];
    *got = 0;
    if (len == 0) { /* nothing to read: still report a missing key */
        struct stratus_object_info info;
        return gcs_head(inst, key, &info, eb);
    }
    snprintf(what, sizeof what, "get %s [%" PRIu64 ", +%zu)", key, off, len);
    stratus_http_req_init(&rq, "GET");
    stratus_http_resp_init(&rs);
    gcs_obj_url(g, &rq, key, "alt=media");
    stratus_http_req_range(&rq, off, len);
    rs.dst = dst;
    rs.dst_cap = len;
    int rc = gcs_send(g, &rq, &rs, what, 0, eb);
    if (rc == STRATUS_ERANGE) { /* at or past the end */
        rc = 0;
    } else if (rc == 0) {
        unsigned long long a = 0, b = 0, total = 0;
        const char *cr = stratus_http_resp_header(&rs, "content-range");
        int whole = 0;
        if (rs.status == 206) {
            if (!cr || sscanf(cr, "bytes %llu-%llu/%llu", &a, &b, &total) != 3 || a != off)
                rc = stratus_errf(eb, STRATUS_EPROTO, "%s: bad Content-Range in a 206 reply",
                                  what);
            else
                whole = a == 0 && b + 1 == total && rs.dst_len == total;
        } else if (off > 0) {
            rc = stratus_errf(eb, STRATUS_EPROTO, "%s: server ignored the Range (HTTP %ld)", what,
                              rs.status);
        } else {
            whole = 1;
        }
        uint32_t want;
        if (rc == 0 && whole && gcs_hash_crc(stratus_http_resp_header(&rs, "x-goog-hash"), &want) == 0 &&
            stratus_hash_crc32c(0, dst, rs.dst_len) != want)
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "%s: crc32c of the bytes read differs from "
                                                    "x-goog-hash", what);
        if (rc == 0)
            *got = rs.dst_len;
    } else if (rc == STRATUS_EPROTO && rs.status == 200 && off == 0) {
        rc = stratus_errf(eb, STRATUS_EPROTO, "%s: server ignored the Range", what);
    }
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    return rc;
}

/* ---- delete ------------------------------------------------------------------------------ */

static int gcs_del(void *inst, const char *const *keys, size_t nkeys, struct stratus_errbuf *eb)
{
    struct gcs *g = inst;
    for (size_t i = 0; i < nkeys; i++) {
        struct stratus_http_req rq;
        struct stratus_http_resp rs;
        char what[1100];
        snprintf(what, sizeof what, "delete %s", keys[i]);
        stratus_http_req_init(&rq, "DELETE");
        stratus_http_resp_init(&rs);
        gcs_obj_url(g, &rq, keys[i], NULL);
        int rc = gcs_send(g, &rq, &rs, what, 0, eb);
        if (rc == STRATUS_ENOTFOUND && !strstr(eb->msg, "bucket does not exist"))
            rc = 0;
        stratus_http_resp_free(&rs);
        stratus_http_req_free(&rq);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- list -------------------------------------------------------------------------------- */

static int gcs_list(void *inst, const char *prefix, const char *start_after, stratus_list_fn *cb,
                    void *arg, struct stratus_errbuf *eb)
{
    struct gcs *g = inst;
    struct stratus_sbuf u = {0}, full = {0}, skip = {0};
    char *token = NULL;
    struct stratus_object_info *info = malloc(sizeof *info);
    char *name = malloc(4200);
    size_t plen = strlen(g->prefix);
    int rc = 0;
    char what[1100];
    snprintf(what, sizeof what, "list %s", prefix ? prefix : "");
    if (!info || !name) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "list: out of memory");
        goto out;
    }
    stratus_sbuf_puts(&full, g->prefix);
    stratus_sbuf_puts(&full, prefix ? prefix : "");
    if (start_after && *start_after) {
        stratus_sbuf_puts(&skip, g->prefix);
        stratus_sbuf_puts(&skip, start_after);
    }
    for (;;) {
        struct stratus_http_req rq;
        struct stratus_http_resp rs;
        stratus_sbuf_reset(&u);
        stratus_sbuf_printf(&u, "%s/o?maxResults=%" PRId64 "&projection=noAcl", g->api,
                            g->conf->list_page_size);
        if (full.len) {
            stratus_sbuf_puts(&u, "&prefix=");
            stratus_enc_uri(&u, full.p, full.len, 0);
        }
        if (skip.len) {
            stratus_sbuf_puts(&u, "&startOffset=");
            stratus_enc_uri(&u, skip.p, skip.len, 0);
        }
        if (token) {
            stratus_sbuf_puts(&u, "&pageToken=");
            stratus_enc_uri(&u, token, strlen(token), 0);
        }
        stratus_sbuf_puts(&u, "&fields=items(name,size,generation,updated),nextPageToken");
        if (u.err || full.err || skip.err) {
            rc = stratus_errf(eb, STRATUS_ENOMEM, "list: out of memory");
            goto out;
        }
        stratus_http_req_init(&rq, "GET");
        stratus_http_resp_init(&rs);
        rs.body_max = GCS_LIST_BODY_MAX;
        stratus_http_req_url(&rq, "%s", u.p);
        rc = gcs_send(g, &rq, &rs, what, 0, eb);
        free(token);
        token = NULL;
        if (rc == 0) {
            const char *b = rs.body ? rs.body : "";
            struct stratus_json_val items, it, v;
            const char *cur = NULL;
            if (stratus_json_get(b, rs.body_len, "items", &items) == 0) {
                while (rc == 0 && stratus_json_next(&items, &cur, &it) == 0) {
                    if (stratus_json_get(it.p, it.len, "name", &v) < 0 ||
                        stratus_json_str(&v, name, 4200) < 0) {
                        rc = stratus_errf(eb, STRATUS_EPROTO, "%s: item without a name", what);
                        break;
                    }
                    if (skip.len && strcmp(name, skip.p) <= 0)
                        continue; /* startOffset is inclusive; start_after is not */
                    if (strncmp(name, g->prefix, plen) != 0 ||
                        strlen(name) - plen >= sizeof info->key)
                        continue;
                    memset(info, 0, sizeof *info);
                    snprintf(info->key, sizeof info->key, "%s", name + plen);
                    int64_t sz = 0, ms;
                    char upd[64];
                    if (stratus_json_get_int(it.p, it.len, "size", &sz) == 0 && sz > 0)
                        info->size = (uint64_t)sz;
                    stratus_json_get_str(it.p, it.len, "generation", info->etag,
                                         sizeof info->etag);
                    if (stratus_json_get_str(it.p, it.len, "updated", upd, sizeof upd) == 0 &&
                        stratus_timefmt_parse_iso8601(upd, &ms) == 0)
                        info->mtime_ms = ms;
                    rc = cb(arg, info);
                }
            }
            if (rc == 0 && stratus_json_get(b, rs.body_len, "nextPageToken", &v) == 0 &&
                v.type == STRATUS_JSON_STRING) {
                token = malloc(v.len + 1);
                if (!token || stratus_json_str(&v, token, v.len + 1) < 0)
                    rc = stratus_errf(eb, STRATUS_EPROTO, "%s: bad nextPageToken", what);
                else if (!token[0]) {
                    free(token);
                    token = NULL;
                }
            }
        }
        stratus_http_resp_free(&rs);
        stratus_http_req_free(&rq);
        if (rc != 0 || !token)
            break;
    }
out:
    free(token);
    free(info);
    free(name);
    stratus_sbuf_free(&u);
    stratus_sbuf_free(&full);
    stratus_sbuf_free(&skip);
    return rc;
}

/* ---- open / close ------------------------------------------------------------------------ */

static void gcs_close(void *inst)
{
    struct gcs *g = inst;
    if (!g)
        return;
    gcs_auth_free(g->auth);
    stratus_http_free(g->http);
    free(g->api);
    free(g->upload);
    free(g->prefix);
    free(g);
}

static int64_t gcs_now(void *ctx)
{
    const struct stratus_host *h = ctx;
    return h->now_ms(h->hctx);
}

static int gcs_make_urls(struct gcs *g, struct stratus_errbuf *eb)
{
    const struct gcs_conf *c = g->conf;
    const char *env = getenv("STORAGE_EMULATOR_HOST");
    char ep[1024];
    if (c->endpoint && *c->endpoint)
        snprintf(ep, sizeof ep, "%s", c->endpoint);
    else if (env && *env)
        snprintf(ep, sizeof ep, "%s", env);
    else
        snprintf(ep, sizeof ep, "https://storage.googleapis.com");
    if (!strstr(ep, "://")) {
        char tmp[1024];
        snprintf(tmp, sizeof tmp, "%s", ep);
        snprintf(ep, sizeof ep, "https://%.1000s", tmp);
    }
    size_t n = strlen(ep);
    while (n && ep[n - 1] == '/')
        ep[--n] = 0;
    if (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)
        return stratus_errf(eb, STRATUS_EINVAL, "endpoint %s: scheme must be http or https", ep);
    struct stratus_sbuf a = {0}, u = {0};
    stratus_sbuf_printf(&a, "%s/storage/v1/b/", ep);
    stratus_enc_uri(&a, c->bucket, strlen(c->bucket), 0);
    stratus_sbuf_printf(&u, "%s/upload/storage/v1/b/", ep);
    stratus_enc_uri(&u, c->bucket, strlen(c->bucket), 0);
    stratus_sbuf_puts(&u, "/o");
    if (a.err || u.err) {
        stratus_sbuf_free(&a);
        stratus_sbuf_free(&u);
        return stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
    }
    g->api = a.p;
    g->upload = u.p;
    return 0;
}

static int gcs_open(const struct stratus_host *host, const void *conf, void **inst,
                    struct stratus_errbuf *eb)
{
    const struct gcs_conf *c = conf;
    int rc;
    *inst = NULL;
    struct gcs *g = calloc(1, sizeof *g);
    if (!g)
        return stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
    g->host = host;
    g->conf = c;
    if (!c->bucket || !*c->bucket) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "bucket is required");
        goto fail;
    }
    if (c->chunk_size % GCS_CHUNK_ALIGN) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "chunk_size %" PRIu64 " is not a multiple of 256 KiB",
                          c->chunk_size);
        goto fail;
    }
    if ((rc = gcs_make_urls(g, eb)) < 0)
        goto fail;
    if (!(g->prefix = strdup(c->prefix ? c->prefix : ""))) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
        goto fail;
    }
    struct stratus_http_opts ho = {
        .ca_file = c->ca_file,
        .ca_path = c->ca_path,
        .insecure = c->insecure_skip_verify,
        .connect_timeout_ms = c->connect_timeout,
        .stall_timeout_ms = c->stall_timeout,
        .total_timeout_ms = c->request_timeout,
        .max_idle_handles = 32,
        .user_agent = "stratus-storage-gcs/0.1",
    };
    if (c->insecure_skip_verify)
        host->log(host->hctx, STRATUS_LOG_WARN, "gcs: TLS verification is OFF (insecure_skip_verify)");
    if ((rc = stratus_http_new(&ho, &g->http, eb)) < 0)
        goto fail;
    struct gcs_auth_conf ac = {
        .mode = c->auth,
        .credentials_file = c->credentials_file,
        .token = c->token,
        .metadata_endpoint = c->metadata_endpoint,
        .scope = c->scope,
        .now_ms = gcs_now,
        .now_ctx = (void *)host,
        .http_opts = &ho,
    };
    if ((rc = gcs_auth_new(&ac, &g->auth, eb)) < 0)
        goto fail;
    host->log(host->hctx, STRATUS_LOG_INFO,
              "gcs: bucket=%s api=%s prefix=%s auth=%s resumable_threshold=%" PRIu64
              " chunk_size=%" PRIu64,
              c->bucket, g->api, g->prefix, gcs_auth_describe(g->auth), c->resumable_threshold,
              c->chunk_size);
    *inst = g;
    return 0;
fail:
    gcs_close(g);
    return rc;
}

static const struct stratus_storage_ops gcs_ops = {
    .ops_size = sizeof(struct stratus_storage_ops),
    .open = gcs_open,
    .close = gcs_close,
    .put = gcs_put,
    .get = gcs_get,
    .head = gcs_head,
    .del = gcs_del,
    .list = gcs_list,
};

static const struct stratus_plugin_desc gcs_desc = {
    .desc_size = sizeof(struct stratus_plugin_desc),
    .abi_major = STRATUS_ABI_MAJOR,
    .abi_minor = STRATUS_ABI_MINOR,
    .build_sig = STRATUS_BUILD_SIG,
    .kind = STRATUS_PLUGIN_STORAGE,
    .name = "gcs",
    .version = "0.1.0",
    .description = "Google Cloud Storage, JSON API (service account, metadata server, "
                   "resumable uploads, generation preconditions)",
    .params = gcs_params,
    .conf_size = sizeof(struct gcs_conf),
    .ops = &gcs_ops,
};

STRATUS_PLUGIN_DECLARE(gcs_desc)
