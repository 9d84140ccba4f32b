/* storage_s3.c - stratus-storage-s3.so: a storage plugin on Amazon S3 and S3-compatible stores
 * (MinIO, Ceph RGW, Cloudflare R2, OSS, COS), through the shared HTTP layer (plugins/common).
 *
 * Object key K is stored as S3 key <prefix>K in <bucket>; URLs are path-style
 * (<endpoint>/<bucket>/<key>) or virtual-hosted (<scheme>://<bucket>.<endpoint host>/<key>).
 * Requests are signed with SigV4 (UNSIGNED-PAYLOAD unless payload_signing, Content-MD5 on
 * every upload so S3 checks integrity either way); credentials come from s3_creds.c.
 *   put   PutObject up to multipart_threshold; above it CreateMultipartUpload, UploadPart of
 *         part_size pieces on upload_concurrency threads, CompleteMultipartUpload (a 200 whose
 *         body is <Error> is a failure), AbortMultipartUpload on any failure.
 *         if_absent -> If-None-Match: *, if_match -> If-Match: <etag>; 412/409 -> EEXIST.
 *   get   GET with Range: bytes=a-b; 416 (at/past the end) -> *got = 0.
 *   head  HEAD: Content-Length, ETag, Last-Modified.
 *   del   DeleteObjects (POST ?delete, Quiet) in batches of 1000; NoSuchKey is success.
 *   list  ListObjectsV2 with prefix, start-after and continuation tokens (S3 lists in UTF-8
 *         binary key order, which is the lexicographic byte order the SDK wants).
 * ETags are kept as S3 sends them (quoted). The instance holds no mutable state outside the
 * HTTP pool and the credentials cache, both thread-safe, so every op is thread-safe.
 * Limit: keys are read from list replies as XML text (no encoding-type=url, whose '+'
 * handling differs between S3 and emulators), so keys with XML-invalid control characters
 * cannot be listed.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "common/enc.h"
#include "common/hash.h"
#include "common/http.h"
#include "common/sbuf.h"
#include "common/sigv4.h"
#include "common/timefmt.h"
#include "common/xml.h"
#include "s3_creds.h"
#include "stratus/stratus_storage.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S3_DELETE_BATCH  1000
#define S3_MAX_PARTS     10000
#define S3_LIST_BODY_MAX (8 * 1024 * 1024)

struct s3_conf {
    char *bucket;
    char *region;
    char *endpoint;
    int path_style;
    char *access_key_id;
    char *secret_access_key;
    char *session_token;
    char *profile;
    char *sts_endpoint;
    char *prefix;
    uint64_t part_size;
    uint64_t multipart_threshold;
    int64_t upload_concurrency;
    int64_t connect_timeout;
    int64_t stall_timeout;
    int64_t request_timeout;
    char *ca_file;
    char *ca_path;
    int insecure_skip_verify;
    int payload_signing;
};

static const struct stratus_param s3_params[] = {
    STRATUS_PARAM_STR("bucket",
                      NULL,
                      STRATUS_P_REQUIRED,
                      struct s3_conf,
                      bucket,
                      "Bucket holding the objects (must exist)"),
    STRATUS_PARAM_STR("region",
                      "us-east-1",
                      0,
                      struct s3_conf,
                      region,
                      "Region used in the SigV4 scope and the default endpoint"),
    STRATUS_PARAM_STR(
        "endpoint",
        NULL,
        0,
        struct s3_conf,
        endpoint,
        "Endpoint URL (http[s]://host[:port]); default https://s3.<region>.amazonaws.com"),
    STRATUS_PARAM_BOOL("path_style",
                       "false",
                       0,
                       struct s3_conf,
                       path_style,
                       "Address the bucket in the path (MinIO, moto) instead of the host name"),
    STRATUS_PARAM_STR("access_key_id",
                      NULL,
                      0,
                      struct s3_conf,
                      access_key_id,
                      "Static access key; default: AWS env, shared file, web identity, ECS, IMDS"),
    STRATUS_PARAM_STR("secret_access_key",
                      NULL,
                      STRATUS_P_SECRET,
                      struct s3_conf,
                      secret_access_key,
                      "Static secret key (with access_key_id)"),
    STRATUS_PARAM_STR("session_token",
                      NULL,
                      STRATUS_P_SECRET,
                      struct s3_conf,
                      session_token,
                      "Session token of temporary static credentials"),
    STRATUS_PARAM_STR("profile",
                      NULL,
                      0,
                      struct s3_conf,
                      profile,
                      "Profile of the shared credentials file; default AWS_PROFILE or default"),
    STRATUS_PARAM_STR("sts_endpoint",
                      NULL,
                      0,
                      struct s3_conf,
                      sts_endpoint,
                      "STS endpoint for web identity; default AWS_ENDPOINT_URL_STS or regional"),
    STRATUS_PARAM_STR("prefix",
                      "",
                      0,
                      struct s3_conf,
                      prefix,
                      "Prepended to every object key (e.g. \"stratus/\")"),
    STRATUS_PARAM_SIZE("part_size",
                       "8MiB",
                       0,
                       struct s3_conf,
                       part_size,
                       5 * 1024 * 1024,
                       5LL * 1024 * 1024 * 1024,
                       "Multipart part size (S3 minimum 5 MiB)"),
    STRATUS_PARAM_SIZE("multipart_threshold",
                       "16MiB",
                       0,
                       struct s3_conf,
                       multipart_threshold,
                       1,
                       5LL * 1024 * 1024 * 1024,
                       "Objects above this size use multipart upload"),
    STRATUS_PARAM_INT("upload_concurrency",
                      "4",
                      0,
                      struct s3_conf,
                      upload_concurrency,
                      1,
                      64,
                      "Parts uploaded in parallel per multipart put"),
    STRATUS_PARAM_MS("connect_timeout",
                     "10s",
                     0,
                     struct s3_conf,
                     connect_timeout,
                     1,
                     600000,
                     "TCP + TLS connect timeout"),
    STRATUS_PARAM_MS("stall_timeout",
                     "30s",
                     0,
                     struct s3_conf,
                     stall_timeout,
                     1000,
                     3600000,
                     "Abort a request when no byte moved for this long (incl. first byte)"),
    STRATUS_PARAM_MS("request_timeout",
                     "5m",
                     0,
                     struct s3_conf,
                     request_timeout,
                     0,
                     86400000,
                     "Whole-request limit; 0 = none"),
    STRATUS_PARAM_STR("ca_file",
                      NULL,
                      0,
                      struct s3_conf,
                      ca_file,
                      "PEM CA bundle for TLS verification; default: the system's"),
    STRATUS_PARAM_STR("ca_path",
                      NULL,
                      0,
                      struct s3_conf,
                      ca_path,
                      "Directory of hashed CA certificates; default: the system's"),
    STRATUS_PARAM_BOOL("insecure_skip_verify",
                       "false",
                       0,
                       struct s3_conf,
                       insecure_skip_verify,
                       "Do not verify TLS certificates (testing only)"),
    STRATUS_PARAM_BOOL("payload_signing",
                       "false",
                       0,
                       struct s3_conf,
                       payload_signing,
                       "Sign the SHA-256 of bodies instead of UNSIGNED-PAYLOAD"),
    STRATUS_PARAM_END,
};

struct s3 {
    const struct stratus_host *host;
    const struct s3_conf *conf;
    char *base;   /* URL up to the bucket root, no trailing '/' */
    char *prefix; /* "" when none */
    struct stratus_http *http;
    struct s3_creds_provider *creds;
};

/* ---- requests ---------------------------------------------------------------------------- */

/* Sets rq's URL to the object (key != NULL: <prefix><key>) or bucket root, plus query. */
static int s3_url(struct s3 *s, struct stratus_http_req *rq, const char *key, const char *query)
{
    struct stratus_sbuf u = {0};
    stratus_sbuf_puts(&u, s->base);
    stratus_sbuf_putc(&u, '/');
    if (key) {
        stratus_enc_uri(&u, s->prefix, strlen(s->prefix), 1);
        stratus_enc_uri(&u, key, strlen(key), 1);
    }
    if (query && *query) {
        stratus_sbuf_putc(&u, '?');
        stratus_sbuf_puts(&u, query);
    }
    int rc = u.err ? STRATUS_ENOMEM : stratus_http_req_url(rq, "%s", u.p);
    stratus_sbuf_free(&u);
    if (rc)
        rq->err = 1;
    return rc;
}

static void s3_content_md5(struct stratus_http_req *rq, const void *data, size_t len)
{
    uint8_t md5[STRATUS_MD5_LEN];
    char b64[32];
    stratus_hash_md5(data, len, md5);
    stratus_enc_base64(md5, sizeof md5, b64, sizeof b64);
    stratus_http_req_header(rq, "Content-MD5", "%s", b64);
}

/* Signs and performs rq; classifies the reply. 0 only for a 2xx status. */
static int s3_send(struct s3 *s,
                   struct stratus_http_req *rq,
                   struct stratus_http_resp *rs,
                   const char *what,
                   struct stratus_errbuf *eb)
{
    struct s3_creds cr;
    int rc = s3_creds_get(s->creds, &cr, eb);
    if (rc < 0)
        return rc;
    struct stratus_sigv4_creds sc = {cr.access_key_id, cr.secret_access_key, cr.session_token};
    const char *ph = (rq->body && rq->body_len && !s->conf->payload_signing)
                         ? STRATUS_SIGV4_UNSIGNED_PAYLOAD
                         : NULL;
    rc = stratus_sigv4_sign(rq, &sc, s->conf->region, "s3", s->host->now_ms(s->host->hctx), ph,
                            STRATUS_SIGV4_CONTENT_SHA256_HEADER, NULL, eb);
    memset(&cr, 0, sizeof cr);
    if (rc < 0)
        return rc;
    rc = stratus_http_do(s->http, rq, rs, eb);
    if (rc < 0)
        return rc;
    rc = stratus_http_classify(rs, what, eb);
    if (rc == STRATUS_EAUTH || rc == STRATUS_EIO) {
        char code[64];
        stratus_http_error_code(rs, code, sizeof code);
        if (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "TokenRefreshRequired") == 0) {
            s3_creds_invalidate(s->creds);
            rc = STRATUS_EAGAIN; /* the retry signs with fresh credentials */
        }
    }
    return rc;
}

static void s3_copy_etag(char *etag_out, const char *etag)
{
    if (etag_out)
        snprintf(etag_out, 128, "%s", etag ? etag : "");
}


static void s3_conditions(struct stratus_http_req *rq, int if_absent, const char *if_match)
{
    if (if_absent)
        stratus_http_req_header(rq, "If-None-Match", "*");
    if (if_match)
        stratus_http_req_header(rq, "If-Match", "%s", if_match);
}

/* ---- put --------------------------------------------------------------------------------- */

static int s3_put_single(struct s3 *s,
                         const char *key,
                         const void *data,
                         size_t len,
                         int if_absent,
                         const char *if_match,
                         char *etag_out,
                         struct stratus_errbuf *eb)
{
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char what[1100];
    snprintf(what, sizeof what, "put %s", key);
    stratus_http_req_init(&rq, "PUT");
    stratus_http_resp_init(&rs);
    s3_url(s, &rq, key, NULL);
    stratus_http_req_body(&rq, data, len);
    s3_content_md5(&rq, data, len);
    s3_conditions(&rq, if_absent, if_match);
    int rc = s3_send(s, &rq, &rs, what, eb);
    if (rc == 0)
        s3_copy_etag(etag_out, stratus_http_resp_header(&rs, "etag"));
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    return rc;
}

struct s3_mpu {
    struct s3 *s;
    const char *key;
    char upload_id[1024];
    char upload_id_enc[3072];
    const unsigned char *data;
    size_t len, part_size;
    size_t nparts;
    atomic_size_t next;
    char (*etags)[128];
    pthread_mutex_t mu; /* guards rc, eb */
    int rc;
    struct stratus_errbuf eb;
};

static int s3_mpu_part(struct s3_mpu *m, size_t i, struct stratus_errbuf *eb)
{
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char q[3200], what[1100];
    size_t off = i * m->part_size;
    size_t n = m->len - off < m->part_size ? m->len - off : m->part_size;
    snprintf(q, sizeof q, "partNumber=%zu&uploadId=%s", i + 1, m->upload_id_enc);
    snprintf(what, sizeof what, "put %s part %zu", m->key, i + 1);
    stratus_http_req_init(&rq, "PUT");
    stratus_http_resp_init(&rs);
    s3_url(m->s, &rq, m->key, q);
    stratus_http_req_body(&rq, m->data + off, n);
    s3_content_md5(&rq, m->data + off, n);
    int rc = s3_send(m->s, &rq, &rs, what, eb);
    if (rc == 0) {
        const char *et = stratus_http_resp_header(&rs, "etag");
        if (!et || !*et)
            rc = stratus_errf(eb, STRATUS_EPROTO, "%s: no ETag in the reply", what);
        else
            snprintf(m->etags[i], sizeof m->etags[i], "%s", et);
    }
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    return rc;
}

static void *s3_mpu_worker(void *arg)
{
    struct s3_mpu *m = arg;
    for (;;) {
        pthread_mutex_lock(&m->mu);
        int failed = m->rc != 0;
        pthread_mutex_unlock(&m->mu);
        if (failed)
            break;
        size_t i = atomic_fetch_add(&m->next, 1);
        if (i >= m->nparts)
            break;
        struct stratus_errbuf eb = {{0}};
        int rc = s3_mpu_part(m, i, &eb);
        if (rc < 0) {
            pthread_mutex_lock(&m->mu);
            if (!m->rc) {
                m->rc = rc;
                m->eb = eb;
            }
            pthread_mutex_unlock(&m->mu);
            break;
        }
    }
    return NULL;
}

static void s3_mpu_abort(struct s3_mpu *m)
{
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    struct stratus_errbuf eb = {{0}};
    char q[3100];
    snprintf(q, sizeof q, "uploadId=%s", m->upload_id_enc);
    stratus_http_req_init(&rq, "DELETE");
    stratus_http_resp_init(&rs);
    s3_url(m->s, &rq, m->key, q);
    int rc = s3_send(m->s, &rq, &rs, "abort multipart upload", &eb);
    if (rc < 0 && rc != STRATUS_ENOTFOUND)
        m->s->host->log(m->s->host->hctx, STRATUS_LOG_WARN,
                        "s3: abort of multipart upload of %s failed (a lifecycle rule should "
                        "clean it up): %s",
                        m->key, eb.msg);
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
}

static int s3_put_multipart(struct s3 *s,
                            const char *key,
                            const void *data,
                            size_t len,
                            int if_absent,
                            const char *if_match,
                            char *etag_out,
                            struct stratus_errbuf *eb)
{
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    struct stratus_sbuf xml = {0}, enc = {0};
    char what[1100];
    pthread_t tid[64];
    size_t nthreads = 0;
    int rc, started = 0;
    struct s3_mpu *m = calloc(1, sizeof *m);
    if (!m)
        return stratus_errf(eb, STRATUS_ENOMEM, "put %s: out of memory", key);
    m->s = s;
    m->key = key;
    m->data = data;
    m->len = len;
    m->part_size = (size_t)s->conf->part_size;
    m->nparts = (len + m->part_size - 1) / m->part_size;
    while (m->nparts > S3_MAX_PARTS) { /* grow parts for huge objects */
        m->part_size *= 2;
        m->nparts = (len + m->part_size - 1) / m->part_size;
    }
    pthread_mutex_init(&m->mu, NULL);
    m->etags = calloc(m->nparts, sizeof *m->etags);
    if (!m->etags) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "put %s: out of memory", key);
        goto out;
    }

    /* 1. create */
    snprintf(what, sizeof what, "put %s: create multipart upload", key);
    stratus_http_req_init(&rq, "POST");
    stratus_http_resp_init(&rs);
    s3_url(s, &rq, key, "uploads");
    rc = s3_send(s, &rq, &rs, what, eb);
    if (rc == 0) {
        struct stratus_xml_span doc = {rs.body ? rs.body : "", rs.body_len};
        if (stratus_xml_get(doc, "UploadId", m->upload_id, sizeof m->upload_id) < 0 ||
            !m->upload_id[0])
            rc = stratus_errf(eb, STRATUS_EPROTO, "%s: no UploadId in the reply", what);
    }
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    if (rc < 0)
        goto out;
    started = 1;
    stratus_enc_uri(&enc, m->upload_id, strlen(m->upload_id), 0);
    if (enc.err || enc.len >= sizeof m->upload_id_enc) {
        rc = stratus_errf(eb, STRATUS_EPROTO, "put %s: UploadId too long", key);
        goto out;
    }
    memcpy(m->upload_id_enc, enc.p, enc.len + 1);

    /* 2. parts, on this thread and up to upload_concurrency - 1 others */
    size_t want = (size_t)s->conf->upload_concurrency;
    if (want > m->nparts)
        want = m->nparts;
    for (size_t i = 1; i < want && i < 64; i++) {
        if (pthread_create(&tid[nthreads], NULL, s3_mpu_worker, m) != 0)
            break;
        nthreads++;
    }
    s3_mpu_worker(m);
    for (size_t i = 0; i < nthreads; i++)
        pthread_join(tid[i], NULL);
    if (m->rc < 0) {
        rc = m->rc;
        *eb = m->eb;
        goto out;
    }

    /* 3. complete */
    stratus_sbuf_puts(
        &xml, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (size_t i = 0; i < m->nparts; i++) {
        stratus_sbuf_printf(&xml, "<Part><PartNumber>%zu</PartNumber><ETag>", i + 1);
        stratus_xml_escape(&xml, m->etags[i], strlen(m->etags[i]));
        stratus_sbuf_puts(&xml, "</ETag></Part>");
    }
    stratus_sbuf_puts(&xml, "</CompleteMultipartUpload>");
    if (xml.err) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "put %s: out of memory", key);
        goto out;
    }
    char q[3100];
    snprintf(q, sizeof q, "uploadId=%s", m->upload_id_enc);
    snprintf(what, sizeof what, "put %s: complete multipart upload", key);
    stratus_http_req_init(&rq, "POST");
    stratus_http_resp_init(&rs);
    s3_url(s, &rq, key, q);
    stratus_http_req_header(&rq, "Content-Type", "application/xml");
    stratus_http_req_body(&rq, xml.p, xml.len);
    s3_content_md5(&rq, xml.p, xml.len);
    s3_conditions(&rq, if_absent, if_match);
    rc = s3_send(s, &rq, &rs, what, eb);
    if (rc == 0) {
        /* S3 may answer 200 and put an <Error> in the body */
        struct stratus_xml_span doc = {rs.body ? rs.body : "", rs.body_len}, e;
        char etag[128] = "";
        if (stratus_xml_find(doc, "Error", &e) == 0) {
            rs.status = 500;
            rc = stratus_http_classify(&rs, what, eb);
        } else if (stratus_xml_get(doc, "ETag", etag, sizeof etag) < 0) {
            const char *h = stratus_http_resp_header(&rs, "etag");
            snprintf(etag, sizeof etag, "%s", h ? h : "");
        }
        if (rc == 0) {
            s3_copy_etag(etag_out, etag);
            started = 0; /* completed: nothing to abort */
        }
    }
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
out:
    if (started)
        s3_mpu_abort(m);
    stratus_sbuf_free(&xml);
    stratus_sbuf_free(&enc);
    free(m->etags);
    pthread_mutex_destroy(&m->mu);
    free(m);
    return rc;
}

static int s3_put(void *inst,
                  const char *key,
                  const void *data,
                  size_t len,
                  const struct stratus_put_opts *opts,
                  char *etag_out,
                  struct stratus_errbuf *eb)
{
    struct s3 *s = inst;
    int if_absent, rc;
    const char *if_match;
    stratus_put_opts_read(opts, &if_absent, &if_match);
    if (etag_out)
        etag_out[0] = 0;
    if (len > s->conf->multipart_threshold && len > s->conf->part_size)
        rc = s3_put_multipart(s, key, data, len, if_absent, if_match, etag_out, eb);
    else
        rc = s3_put_single(s, key, data, len, if_absent, if_match, etag_out, eb);
    /* S3 answers If-Match on a missing key with 404 NoSuchKey: the SDK calls that a failed
     * precondition (the current etag, none, differs) */
    if (rc == STRATUS_ENOTFOUND && if_match && !strstr(eb->msg, "NoSuchBucket"))
        rc = STRATUS_EEXIST;
    return rc;
}

/* ---- get / head -------------------------------------------------------------------------- */

static int
s3_head(void *inst, const char *key, struct stratus_object_info *info, struct stratus_errbuf *eb)
{
    struct s3 *s = inst;
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char what[1100];
    snprintf(what, sizeof what, "head %s", key);
    stratus_http_req_init(&rq, "HEAD");
    stratus_http_resp_init(&rs);
    s3_url(s, &rq, key, NULL);
    int rc = s3_send(s, &rq, &rs, what, eb);
    if (rc == 0)
        rc = stratus_http_resp_object_info(&rs, key, what, info, eb);
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    return rc;
}

static int s3_get(void *inst,
                  const char *key,
                  uint64_t off,
                  size_t len,
                  void *dst,
                  size_t *got,
                  struct stratus_errbuf *eb)
{
    struct s3 *s = inst;
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char what[1100];
    *got = 0;
    if (len == 0) { /* nothing to read: still report a missing key */
        struct stratus_object_info info;
        return s3_head(inst, key, &info, eb);
    }
    snprintf(what, sizeof what, "get %s [%" PRIu64 ", +%zu)", key, off, len);
    stratus_http_req_init(&rq, "GET");
    stratus_http_resp_init(&rs);
    s3_url(s, &rq, key, NULL);
    stratus_http_req_range(&rq, off, len);
    rs.dst = dst;
    rs.dst_cap = len;
    int rc = s3_send(s, &rq, &rs, what, eb);
    if (rc == STRATUS_ERANGE) { /* InvalidRange: at or past the end */
        rc = 0;
    } else if (rc == 0) {
        if (rs.status != 206 && off > 0)
            rc = stratus_errf(eb, STRATUS_EPROTO, "%s: server ignored the Range (HTTP %ld)", what,
                              rs.status);
        else
            *got = rs.dst_len;
    } else if (rc == STRATUS_EPROTO && rs.status == 200 && off == 0) {
        /* whole object sent instead of a range, larger than the buffer */
        rc = stratus_errf(eb, STRATUS_EPROTO, "%s: server ignored the Range", what);
    }
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    return rc;
}

/* ---- delete ------------------------------------------------------------------------------ */

static int s3_del_batch(struct s3 *s, const char *const *keys, size_t n, struct stratus_errbuf *eb)
{
    struct stratus_sbuf xml = {0};
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    int rc;
    stratus_sbuf_puts(
        &xml, "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>");
    for (size_t i = 0; i < n; i++) {
        stratus_sbuf_puts(&xml, "<Object><Key>");
        stratus_xml_escape(&xml, s->prefix, strlen(s->prefix));
        stratus_xml_escape(&xml, keys[i], strlen(keys[i]));
        stratus_sbuf_puts(&xml, "</Key></Object>");
    }
    stratus_sbuf_puts(&xml, "</Delete>");
    if (xml.err) {
        stratus_sbuf_free(&xml);
        return stratus_errf(eb, STRATUS_ENOMEM, "delete: out of memory");
    }
    stratus_http_req_init(&rq, "POST");
    stratus_http_resp_init(&rs);
    rs.body_max = S3_LIST_BODY_MAX;
    s3_url(s, &rq, NULL, "delete");
    stratus_http_req_header(&rq, "Content-Type", "application/xml");
    stratus_http_req_body(&rq, xml.p, xml.len);
    s3_content_md5(&rq, xml.p, xml.len);
    rc = s3_send(s, &rq, &rs, "delete", eb);
    if (rc == 0) {
        struct stratus_xml_span doc = {rs.body ? rs.body : "", rs.body_len}, e;
        const char *cur = NULL;
        while (stratus_xml_next(doc, "Error", &cur, &e) == 0) {
            char code[64] = "", k[1100] = "", msg[160] = "";
            stratus_xml_get(e, "Code", code, sizeof code);
            stratus_xml_get(e, "Key", k, sizeof k);
            stratus_xml_get(e, "Message", msg, sizeof msg);
            if (strcmp(code, "NoSuchKey") == 0)
                continue;
            int c = STRATUS_EIO;
            if (strcmp(code, "AccessDenied") == 0)
                c = STRATUS_EAUTH;
            else if (strcmp(code, "InternalError") == 0 || strcmp(code, "SlowDown") == 0 ||
                     strcmp(code, "ServiceUnavailable") == 0)
                c = STRATUS_EAGAIN;
            rc = stratus_errf(eb, c, "delete %s: %s: %s", k, code, msg);
            break;
        }
    }
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    stratus_sbuf_free(&xml);
    return rc;
}

static int s3_del(void *inst, const char *const *keys, size_t nkeys, struct stratus_errbuf *eb)
{
    struct s3 *s = inst;
    for (size_t i = 0; i < nkeys; i += S3_DELETE_BATCH) {
        size_t n = nkeys - i < S3_DELETE_BATCH ? nkeys - i : S3_DELETE_BATCH;
        int rc = s3_del_batch(s, keys + i, n, eb);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- list -------------------------------------------------------------------------------- */

static int s3_list(void *inst,
                   const char *prefix,
                   const char *start_after,
                   stratus_list_fn *cb,
                   void *arg,
                   struct stratus_errbuf *eb)
{
    struct s3 *s = inst;
    struct stratus_sbuf q = {0}, full = {0};
    char *token = NULL;
    struct stratus_object_info *info = malloc(sizeof *info);
    char *kbuf = malloc(2200);
    int rc = 0;
    size_t plen = strlen(s->prefix);
    if (!info || !kbuf) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "list: out of memory");
        goto out;
    }
    for (;;) {
        struct stratus_http_req rq;
        struct stratus_http_resp rs;
        stratus_sbuf_reset(&q);
        stratus_sbuf_reset(&full);
        stratus_sbuf_puts(&q, "list-type=2");
        if (token) {
            stratus_sbuf_puts(&q, "&continuation-token=");
            stratus_enc_uri(&q, token, strlen(token), 0);
        }
        stratus_sbuf_puts(&q, "&max-keys=1000&prefix=");
        stratus_sbuf_puts(&full, s->prefix);
        stratus_sbuf_puts(&full, prefix ? prefix : "");
        stratus_enc_uri(&q, stratus_sbuf_str(&full), full.len, 0);
        if (start_after && *start_after && !token) {
            stratus_sbuf_reset(&full);
            stratus_sbuf_puts(&full, s->prefix);
            stratus_sbuf_puts(&full, start_after);
            stratus_sbuf_puts(&q, "&start-after=");
            stratus_enc_uri(&q, stratus_sbuf_str(&full), full.len, 0);
        }
        if (q.err || full.err) {
            rc = stratus_errf(eb, STRATUS_ENOMEM, "list: out of memory");
            goto out;
        }
        stratus_http_req_init(&rq, "GET");
        stratus_http_resp_init(&rs);
        rs.body_max = S3_LIST_BODY_MAX;
        s3_url(s, &rq, NULL, q.p);
        char what[1100];
        snprintf(what, sizeof what, "list %s", prefix ? prefix : "");
        rc = s3_send(s, &rq, &rs, what, eb);
        free(token);
        token = NULL;
        int truncated = 0;
        if (rc == 0) {
            struct stratus_xml_span doc = {rs.body ? rs.body : "", rs.body_len}, c;
            const char *cur = NULL;
            char tmp[64];
            while (rc == 0 && stratus_xml_next(doc, "Contents", &cur, &c) == 0) {
                if (stratus_xml_get(c, "Key", kbuf, 2200) < 0) {
                    rc = stratus_errf(eb, STRATUS_EPROTO, "%s: bad Key in the reply", what);
                    break;
                }
                if (strncmp(kbuf, s->prefix, plen) != 0 || strlen(kbuf) - plen >= sizeof info->key)
                    continue;
                memset(info, 0, sizeof *info);
                snprintf(info->key, sizeof info->key, "%s", kbuf + plen);
                if (stratus_xml_get(c, "Size", tmp, sizeof tmp) == 0)
                    info->size = strtoull(tmp, NULL, 10);
                if (stratus_xml_get(c, "LastModified", tmp, sizeof tmp) == 0) {
                    int64_t ms;
                    if (stratus_timefmt_parse_iso8601(tmp, &ms) == 0)
                        info->mtime_ms = ms;
                }
                stratus_xml_get(c, "ETag", info->etag, sizeof info->etag);
                rc = cb(arg, info);
            }
            if (rc == 0 && stratus_xml_get(doc, "IsTruncated", tmp, sizeof tmp) == 0 &&
                strcmp(tmp, "true") == 0) {
                struct stratus_xml_span t;
                truncated = 1;
                if (stratus_xml_find(doc, "NextContinuationToken", &t) < 0 ||
                    !(token = malloc(t.len + 1)) || stratus_xml_text(t, token, t.len + 1) <= 0)
                    rc = stratus_errf(eb, STRATUS_EPROTO,
                                      "%s: truncated reply without a continuation token", what);
            }
        }
        stratus_http_resp_free(&rs);
        stratus_http_req_free(&rq);
        if (rc != 0 || !truncated)
            break;
    }
out:
    free(token);
    free(info);
    free(kbuf);
    stratus_sbuf_free(&q);
    stratus_sbuf_free(&full);
    return rc;
}

/* ---- open / close ------------------------------------------------------------------------ */

static void s3_close(void *inst)
{
    struct s3 *s = inst;
    if (!s)
        return;
    s3_creds_free(s->creds);
    stratus_http_free(s->http);
    free(s->base);
    free(s->prefix);
    free(s);
}

static int64_t s3_now(void *ctx)
{
    const struct stratus_host *h = ctx;
    return h->now_ms(h->hctx);
}

/* Builds s->base from endpoint, region, bucket and path_style. */
static int s3_make_base(struct s3 *s, struct stratus_errbuf *eb)
{
    const struct s3_conf *c = s->conf;
    char ep[1024];
    if (c->endpoint && *c->endpoint) {
        if (strstr(c->endpoint, "://"))
            snprintf(ep, sizeof ep, "%s", c->endpoint);
        else
            snprintf(ep, sizeof ep, "https://%s", c->endpoint);
    } else {
        snprintf(ep, sizeof ep, "https://s3.%s.amazonaws.com", c->region);
    }
    size_t n = strlen(ep);
    while (n && ep[n - 1] == '/')
        ep[--n] = 0;
    if (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)
        return stratus_errf(eb, STRATUS_EINVAL, "endpoint %s: scheme must be http or https", ep);
    struct stratus_sbuf b = {0};
    if (c->path_style) {
        stratus_sbuf_printf(&b, "%s/", ep);
        stratus_enc_uri(&b, c->bucket, strlen(c->bucket), 0);
    } else {
        const char *host = strstr(ep, "://") + 3;
        if (strchr(c->bucket, '.') && strncmp(ep, "https", 5) == 0)
            s->host->log(s->host->hctx, STRATUS_LOG_WARN,
                         "s3: bucket %s has dots: its virtual-hosted TLS name will not match "
                         "the wildcard certificate; set path_style = true",
                         c->bucket);
        stratus_sbuf_append(&b, ep, (size_t)(host - ep));
        stratus_sbuf_printf(&b, "%s.%s", c->bucket, host);
    }
    if (b.err) {
        stratus_sbuf_free(&b);
        return stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
    }
    s->base = b.p;
    return 0;
}

static int
s3_open(const struct stratus_host *host, const void *conf, void **inst, struct stratus_errbuf *eb)
{
    const struct s3_conf *c = conf;
    int rc;
    *inst = NULL;
    struct s3 *s = calloc(1, sizeof *s);
    if (!s)
        return stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
    s->host = host;
    s->conf = c;
    if (!c->bucket || !*c->bucket) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "bucket is required");
        goto fail;
    }
    if (!c->region || !*c->region) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "region must not be empty");
        goto fail;
    }
    if ((rc = s3_make_base(s, eb)) < 0)
        goto fail;
    s->prefix = strdup(c->prefix ? c->prefix : "");
    if (!s->prefix) {
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
        .user_agent = "stratus-storage-s3/0.1",
    };
    if (c->insecure_skip_verify)
        host->log(host->hctx, STRATUS_LOG_WARN,
                  "s3: TLS verification is OFF (insecure_skip_verify)");
    if ((rc = stratus_http_new(&ho, &s->http, eb)) < 0)
        goto fail;
    struct s3_creds_conf cc = {
        .access_key_id = c->access_key_id,
        .secret_access_key = c->secret_access_key,
        .session_token = c->session_token,
        .profile = c->profile,
        .region = c->region,
        .sts_endpoint = c->sts_endpoint,
        .now_ms = s3_now,
        .now_ctx = (void *)host,
        .http_opts = &ho,
    };
    if ((rc = s3_creds_new(&cc, &s->creds, eb)) < 0)
        goto fail;
    host->log(host->hctx, STRATUS_LOG_INFO,
              "s3: bucket=%s region=%s base=%s prefix=%s credentials=%s part_size=%" PRIu64
              " multipart_threshold=%" PRIu64,
              c->bucket, c->region, s->base, s->prefix, s3_creds_source(s->creds), c->part_size,
              c->multipart_threshold);
    *inst = s;
    return 0;
fail:
    s3_close(s);
    return rc;
}

static const struct stratus_storage_ops s3_ops = {
    .ops_size = sizeof(struct stratus_storage_ops),
    .open = s3_open,
    .close = s3_close,
    .put = s3_put,
    .get = s3_get,
    .head = s3_head,
    .del = s3_del,
    .list = s3_list,
};

static const struct stratus_plugin_desc s3_desc = {
    .desc_size = sizeof(struct stratus_plugin_desc),
    .abi_major = STRATUS_ABI_MAJOR,
    .abi_minor = STRATUS_ABI_MINOR,
    .build_sig = STRATUS_BUILD_SIG,
    .kind = STRATUS_PLUGIN_STORAGE,
    .name = "s3",
    .version = "0.1.0",
    .description = "Amazon S3 and S3-compatible object stores (SigV4, multipart, conditional puts)",
    .params = s3_params,
    .conf_size = sizeof(struct s3_conf),
    .ops = &s3_ops,
};

STRATUS_PLUGIN_DECLARE(s3_desc)
