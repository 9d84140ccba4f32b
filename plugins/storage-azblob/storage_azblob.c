/* storage_azblob.c - stratus-storage-azblob.so: a storage plugin on Azure Blob Storage (and
 * Azurite, its emulator), through the shared HTTP layer (plugins/common).
 *
 * Object key K is block blob <prefix>K in <container>; URLs are <endpoint>/<container>/<blob>,
 * where endpoint defaults to https://<account>.blob.core.windows.net (Azurite's path-style
 * form is http://127.0.0.1:<port>/<account>). Every request carries x-ms-date and x-ms-version
 * and is authorized by Shared Key, a SAS token in the query, or a managed identity bearer token
 * (azblob_auth.c). Content-MD5 goes with every upload, so the service checks integrity.
 *   put   Put Blob (BlockBlob) up to single_put_max; above it Put Block of block_size pieces on
 *         upload_concurrency threads, then Put Block List. Block ids carry a per-upload nonce, so
 *         two writers racing on one blob never mix their uncommitted blocks.
 *         if_absent -> If-None-Match: * (Azure answers 409 BlobAlreadyExists), if_match ->
 *         If-Match: <etag> (412 ConditionNotMet, or 404 when the blob is gone) -> EEXIST.
 *   get   Get Blob with x-ms-range: bytes=a-b; 416 InvalidRange (at/past the end) -> *got = 0.
 *   head  Get Blob Properties (HEAD): Content-Length, ETag, Last-Modified.
 *   del   Delete Blob per key (x-ms-delete-snapshots: include), several keys in parallel; 404
 *         BlobNotFound is success.
 *   list  List Blobs (restype=container&comp=list) with prefix and marker paging; start_after
 *         is applied by skipping (Azure has no start-after). The service lists in key order.
 * ETags are kept as Azure sends them (quoted). The instance holds no mutable state outside the
 * HTTP pool, the token cache and an atomic nonce counter, so every op is thread-safe.
 * Limit: list() reads blob names as XML text; a name Azure sends with Encoded="true" (one
 * with XML-invalid control characters) would come back percent-encoded. Stratus's keys never
 * contain such characters.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "azblob_auth.h"
#include "common/enc.h"
#include "common/hash.h"
#include "common/http.h"
#include "common/sbuf.h"
#include "common/timefmt.h"
#include "common/xml.h"
#include "stratus/stratus_storage.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define AZB_MAX_BLOCKS     50000
#define AZB_MAX_BLOCK_SIZE (4000ULL * 1024 * 1024)
#define AZB_LIST_BODY_MAX  (16 * 1024 * 1024)
#define AZB_MAX_THREADS    64

struct azb_conf {
    char *account;
    char *container;
    char *endpoint;
    char *auth;
    char *shared_key;
    char *sas_token;
    char *identity_endpoint;
    char *identity_client_id;
    char *prefix;
    uint64_t block_size;
    uint64_t single_put_max;
    int64_t upload_concurrency;
    int64_t list_page_size;
    int create_container;
    char *api_version;
    int64_t connect_timeout;
    int64_t stall_timeout;
    int64_t request_timeout;
    char *ca_file;
    char *ca_path;
    int insecure_skip_verify;
};

/* clang-format off */
static const struct stratus_param azb_params[] = {
    STRATUS_PARAM_STR("account", NULL, 0, struct azb_conf, account,
                      "Storage account name; default AZURE_STORAGE_ACCOUNT"),
    STRATUS_PARAM_STR("container", NULL, STRATUS_P_REQUIRED, struct azb_conf, container,
                      "Container holding the blobs (must exist unless create_container)"),
    STRATUS_PARAM_STR("endpoint", NULL, 0, struct azb_conf, endpoint,
                      "Blob endpoint URL; default https://<account>.blob.core.windows.net "
                      "(Azurite: http://127.0.0.1:10000/devstoreaccount1)"),
    STRATUS_PARAM_STR("auth", NULL, 0, struct azb_conf, auth,
                      "shared_key | sas | managed_identity; default: the first one configured"),
    STRATUS_PARAM_STR("shared_key", NULL, STRATUS_P_SECRET, struct azb_conf, shared_key,
                      "Account key (base64); default AZURE_STORAGE_KEY"),
    STRATUS_PARAM_STR("sas_token", NULL, STRATUS_P_SECRET, struct azb_conf, sas_token,
                      "SAS token (query string); default AZURE_STORAGE_SAS_TOKEN"),
    STRATUS_PARAM_STR("identity_endpoint", NULL, 0, struct azb_conf, identity_endpoint,
                      "Managed identity token URL; default IDENTITY_ENDPOINT or Azure IMDS"),
    STRATUS_PARAM_STR("identity_client_id", NULL, 0, struct azb_conf, identity_client_id,
                      "Client id of a user-assigned identity; default AZURE_CLIENT_ID"),
    STRATUS_PARAM_STR("prefix", "", 0, struct azb_conf, prefix,
                      "Prepended to every blob name (e.g. \"stratus/\")"),
    STRATUS_PARAM_SIZE("block_size", "8MiB", 0, struct azb_conf, block_size, 1,
                       AZB_MAX_BLOCK_SIZE, "Block size of Put Block uploads"),
    STRATUS_PARAM_SIZE("single_put_max", "32MiB", 0, struct azb_conf, single_put_max, 1,
                       5000LL * 1024 * 1024, "Objects above this size are uploaded in blocks"),
    STRATUS_PARAM_INT("upload_concurrency", "4", 0, struct azb_conf, upload_concurrency, 1,
                      AZB_MAX_THREADS, "Blocks uploaded (and blobs deleted) in parallel"),
    STRATUS_PARAM_INT("list_page_size", "5000", 0, struct azb_conf, list_page_size, 1, 5000,
                      "maxresults of each List Blobs page"),
    STRATUS_PARAM_BOOL("create_container", "false", 0, struct azb_conf, create_container,
                       "Create the container at open when it does not exist"),
    STRATUS_PARAM_STR("api_version", "2021-08-06", 0, struct azb_conf, api_version,
                      "x-ms-version sent with every request"),
    STRATUS_PARAM_MS("connect_timeout", "10s", 0, struct azb_conf, connect_timeout, 1, 600000,
                     "TCP + TLS connect timeout"),
    STRATUS_PARAM_MS("stall_timeout", "30s", 0, struct azb_conf, stall_timeout, 1000, 3600000,
                     "Abort a request when no byte moved for this long (incl. first byte)"),
    STRATUS_PARAM_MS("request_timeout", "5m", 0, struct azb_conf, request_timeout, 0, 86400000,
                     "Whole-request limit; 0 = none"),
    STRATUS_PARAM_STR("ca_file", NULL, 0, struct azb_conf, ca_file,
                      "PEM CA bundle for TLS verification; default: the system's"),
    STRATUS_PARAM_STR("ca_path", NULL, 0, struct azb_conf, ca_path,
                      "Directory of hashed CA certificates; default: the system's"),
    STRATUS_PARAM_BOOL("insecure_skip_verify", "false", 0, struct azb_conf, insecure_skip_verify,
                       "Do not verify TLS certificates (testing only)"),
    STRATUS_PARAM_END,
};
/* clang-format on */

enum azb_auth { AZB_AUTH_SHARED_KEY = 1, AZB_AUTH_SAS, AZB_AUTH_MI };

struct azb {
    const struct stratus_host *host;
    const struct azb_conf *conf;
    char *account;
    char *base;   /* <endpoint>/<container>, no trailing '/' */
    char *prefix; /* "" when none */
    char *sas;    /* SAS query without '?' (AZB_AUTH_SAS) */
    int auth;     /* enum azb_auth */
    uint8_t key[AZBLOB_KEY_MAX];
    size_t key_len;
    struct azblob_token *token;
    struct stratus_http *http;
    uint64_t nonce_seed;
    atomic_uint_fast64_t nonce_ctr;
};

static const char *azb_auth_name(int a)
{
    return a == AZB_AUTH_SHARED_KEY ? "shared_key" : a == AZB_AUTH_SAS ? "sas" : "managed_identity";
}

/* ---- requests ---------------------------------------------------------------------------- */

/* Sets rq's URL to the blob <prefix><key> (key != NULL) or the container, plus query. */
static int azb_url(struct azb *s, struct stratus_http_req *rq, const char *key, const char *query)
{
    struct stratus_sbuf u = {0};
    stratus_sbuf_puts(&u, s->base);
    if (key) {
        stratus_sbuf_putc(&u, '/');
        stratus_enc_uri(&u, s->prefix, strlen(s->prefix), 1);
        stratus_enc_uri(&u, key, strlen(key), 1);
    }
    char sep = '?';
    if (query && *query) {
        stratus_sbuf_putc(&u, '?');
        stratus_sbuf_puts(&u, query);
        sep = '&';
    }
    if (s->auth == AZB_AUTH_SAS && s->sas[0]) {
        stratus_sbuf_putc(&u, sep);
        stratus_sbuf_puts(&u, s->sas);
    }
    int rc = u.err ? STRATUS_ENOMEM : stratus_http_req_url(rq, "%s", u.p);
    stratus_sbuf_free(&u);
    if (rc)
        rq->err = 1;
    return rc;
}

static void azb_content_md5(struct stratus_http_req *rq, const void *data, size_t len)
{
    uint8_t md5[STRATUS_MD5_LEN];
    char b64[32];
    stratus_hash_md5(data, len, md5);
    stratus_enc_base64(md5, sizeof md5, b64, sizeof b64);
    stratus_http_req_header(rq, "Content-MD5", "%s", b64);
}

/* Dates, version and authorization; performs rq; classifies the reply (0 only for 2xx). */
static int azb_send(struct azb *s,
                    struct stratus_http_req *rq,
                    struct stratus_http_resp *rs,
                    const char *what,
                    struct stratus_errbuf *eb)
{
    char date[STRATUS_TIMEFMT_RFC1123_LEN];
    int64_t token_age = 0;
    int rc;
    stratus_timefmt_rfc1123(s->host->now_ms(s->host->hctx), date);
    stratus_http_req_header(rq, "x-ms-date", "%s", date);
    stratus_http_req_header(rq, "x-ms-version", "%s", s->conf->api_version);
    if (s->auth == AZB_AUTH_SHARED_KEY) {
        rc = azblob_sharedkey_sign(rq, s->account, s->key, s->key_len, eb);
        if (rc < 0)
            return rc;
    } else if (s->auth == AZB_AUTH_MI) {
        char *tok = malloc(AZBLOB_TOKEN_MAX);
        if (!tok)
            return stratus_errf(eb, STRATUS_ENOMEM, "%s: out of memory", what);
        rc = azblob_token_get(s->token, tok, &token_age, eb);
        if (rc == 0 && stratus_http_req_header(rq, "Authorization", "Bearer %s", tok) < 0)
            rc = stratus_errf(eb, STRATUS_ENOMEM, "%s: out of memory", what);
        memset(tok, 0, AZBLOB_TOKEN_MAX);
        free(tok);
        if (rc < 0) {
            char m[sizeof eb->msg];
            snprintf(m, sizeof m, "%s", eb->msg);
            return stratus_errf(eb, rc, "%s: %s", what, m);
        }
    }
    rc = stratus_http_do(s->http, rq, rs, eb);
    if (rc < 0)
        return rc;
    rc = stratus_http_classify(rs, what, eb);
    if (rc == 0)
        return 0;
    /* Azure's messages end "\nRequestId:<id>\nTime:<when>": keep one line, drop the time */
    char *tm = strstr(eb->msg, "\nTime:");
    if (tm)
        *tm = 0;
    for (char *p = eb->msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    char code[64];
    stratus_http_error_code(rs, code, sizeof code);
    if (rs->status == 409 && strcmp(code, "BlobAlreadyExists") != 0 &&
        strcmp(code, "ConditionNotMet") != 0 && strcmp(code, "TargetConditionNotMet") != 0)
        rc = STRATUS_EIO; /* a lease, a blob of another type...: not a failed precondition */
    else if (strcmp(code, "Md5Mismatch") == 0 || strcmp(code, "OperationTimedOut") == 0)
        rc = STRATUS_EAGAIN; /* corrupted in flight / server side timeout: send it again */
    else if (rs->status == 401 && s->auth == AZB_AUTH_MI && token_age > 60 * 1000) {
        /* an old token refused (expired early, revoked): fetch a fresh one and retry */
        azblob_token_invalidate(s->token);
        rc = STRATUS_EAGAIN;
    }
    if (rc == STRATUS_EAUTH) {
        /* say which credentials were refused, then Azure's reason: AuthenticationErrorDetail
         * ("The token is expired", "The MAC signature found in the HTTP request ... is not
         * the same as any computed signature") says more than the generic Message */
        char m[sizeof eb->msg], detail[200] = "";
        struct stratus_xml_span doc = {rs->body ? rs->body : "", rs->body_len};
        if (stratus_xml_get(doc, "AuthenticationErrorDetail", detail, sizeof detail) == 0 &&
            detail[0])
            snprintf(m, sizeof m, "%s: HTTP %ld %s: %s", what, rs->status, code, detail);
        else
            snprintf(m, sizeof m, "%s", eb->msg);
        stratus_errf(eb, rc, "credentials refused (auth=%s, account=%s): %s",
                     azb_auth_name(s->auth), s->account, m);
    }
    return rc;
}

static void azb_copy_etag(char *etag_out, const char *etag)
{
    if (etag_out)
        snprintf(etag_out, 128, "%s", etag ? etag : "");
}

static void azb_conditions(struct stratus_http_req *rq, int if_absent, const char *if_match)
{
    if (if_absent)
        stratus_http_req_header(rq, "If-None-Match", "*");
    if (if_match)
        stratus_http_req_header(rq, "If-Match", "%s", if_match);
}

/* ---- parallel work ----------------------------------------------------------------------- */

/* Runs fn(ctx, i) for i in [0, n) on up to nthreads threads (the caller's included); stops
 * handing out items after the first failure, whose code and message it returns. */
struct azb_par {
    int (*fn)(void *ctx, size_t i, struct stratus_errbuf *eb);
    void *ctx;
    size_t n;
    atomic_size_t next;
    pthread_mutex_t mu; /* guards rc, eb */
    int rc;
    struct stratus_errbuf eb;
};

static void *azb_par_worker(void *arg)
{
    struct azb_par *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int failed = p->rc != 0;
        pthread_mutex_unlock(&p->mu);
        if (failed)
            break;
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n)
            break;
        struct stratus_errbuf eb = {{0}};
        int rc = p->fn(p->ctx, i, &eb);
        if (rc < 0) {
            pthread_mutex_lock(&p->mu);
            if (!p->rc) {
                p->rc = rc;
                p->eb = eb;
            }
            pthread_mutex_unlock(&p->mu);
            break;
        }
    }
    return NULL;
}

static int azb_parallel(int (*fn)(void *, size_t, struct stratus_errbuf *),
                        void *ctx,
                        size_t n,
                        size_t nthreads,
                        struct stratus_errbuf *eb)
{
    pthread_t tid[AZB_MAX_THREADS];
    size_t started = 0;
    struct azb_par *p = calloc(1, sizeof *p);
    if (!p)
        return stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    atomic_init(&p->next, 0);
    pthread_mutex_init(&p->mu, NULL);
    if (nthreads > n)
        nthreads = n;
    for (size_t i = 1; i < nthreads && i < AZB_MAX_THREADS; i++) {
        if (pthread_create(&tid[started], NULL, azb_par_worker, p) != 0)
            break; /* fewer threads is still correct */
        started++;
    }
    azb_par_worker(p);
    for (size_t i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    int rc = p->rc;
    if (rc < 0 && eb)
        *eb = p->eb;
    pthread_mutex_destroy(&p->mu);
    free(p);
    return rc;
}

/* ---- put --------------------------------------------------------------------------------- */

static int
azb_head(void *inst, const char *key, struct stratus_object_info *info, struct stratus_errbuf *eb);

/* Checks a put's precondition against the blob as it is now: STRATUS_EEXIST when it fails,
 * 0 when it holds (for now: the commit still carries the condition), or the HEAD's error. */
static int azb_precondition(
    struct azb *s, const char *key, int if_absent, const char *if_match, struct stratus_errbuf *eb)
{
    struct stratus_object_info *info = malloc(sizeof *info);
    if (!info)
        return stratus_errf(eb, STRATUS_ENOMEM, "put %s: out of memory", key);
    int rc = azb_head(s, key, info, eb);
    if (rc == 0 && if_absent)
        rc = stratus_errf(eb, STRATUS_EEXIST, "put %s: the blob exists (if_absent)", key);
    else if (rc == 0 && if_match && strcmp(info->etag, if_match) != 0)
        rc = stratus_errf(eb, STRATUS_EEXIST, "put %s: etag %s, not %s (if_match)", key, info->etag,
                          if_match);
    else if (rc == STRATUS_ENOTFOUND && if_absent)
        rc = 0;
    else if (rc == STRATUS_ENOTFOUND && if_match && !strstr(eb->msg, "ContainerNotFound"))
        rc = stratus_errf(eb, STRATUS_EEXIST, "put %s: no such blob (if_match)", key);
    free(info);
    return rc;
}

static int azb_put_single(struct azb *s,
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
    azb_url(s, &rq, key, NULL);
    stratus_http_req_body(&rq, data, len);
    stratus_http_req_header(&rq, "x-ms-blob-type", "BlockBlob");
    azb_content_md5(&rq, data, len);
    azb_conditions(&rq, if_absent, if_match);
    int rc = azb_send(s, &rq, &rs, what, eb);
    if (rc == 0)
        azb_copy_etag(etag_out, stratus_http_resp_header(&rs, "etag"));
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    return rc;
}

#define AZB_BLOCK_ID_RAW 24 /* 16 hex digits of nonce + 8 digits of index: base64 w/o '=' */

struct azb_blocks {
    struct azb *s;
    const char *key;
    const unsigned char *data;
    size_t len, block_size, nblocks;
    uint64_t nonce;
};

/* The base64 id of block i (AZB_BLOCK_ID_RAW * 4 / 3 chars) into out (64 bytes). */
static void azb_block_id(const struct azb_blocks *b, size_t i, char out[64])
{
    char raw[AZB_BLOCK_ID_RAW + 1];
    snprintf(raw, sizeof raw, "%016" PRIx64 "%08zu", b->nonce, i);
    stratus_enc_base64(raw, AZB_BLOCK_ID_RAW, out, 64);
}

static int azb_put_block(void *ctx, size_t i, struct stratus_errbuf *eb)
{
    struct azb_blocks *b = ctx;
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    struct stratus_sbuf q = {0};
    char id[64], what[1100];
    size_t off = i * b->block_size;
    size_t n = b->len - off < b->block_size ? b->len - off : b->block_size;
    azb_block_id(b, i, id);
    stratus_sbuf_puts(&q, "comp=block&blockid=");
    stratus_enc_uri(&q, id, strlen(id), 0);
    if (q.err)
        return stratus_errf(eb, STRATUS_ENOMEM, "put %s: out of memory", b->key);
    snprintf(what, sizeof what, "put %s block %zu", b->key, i);
    stratus_http_req_init(&rq, "PUT");
    stratus_http_resp_init(&rs);
    azb_url(b->s, &rq, b->key, q.p);
    stratus_http_req_body(&rq, b->data + off, n);
    azb_content_md5(&rq, b->data + off, n);
    int rc = azb_send(b->s, &rq, &rs, what, eb);
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    stratus_sbuf_free(&q);
    return rc;
}

static int azb_put_blocks(struct azb *s,
                          const char *key,
                          const void *data,
                          size_t len,
                          int if_absent,
                          const char *if_match,
                          char *etag_out,
                          struct stratus_errbuf *eb)
{
    struct azb_blocks b = {s, key, data, len, (size_t)s->conf->block_size, 0, 0};
    struct stratus_sbuf xml = {0};
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char what[1100];
    int rc;
    b.nblocks = (len + b.block_size - 1) / b.block_size;
    while (b.nblocks > AZB_MAX_BLOCKS && b.block_size * 2 <= AZB_MAX_BLOCK_SIZE) {
        b.block_size *= 2;
        b.nblocks = (len + b.block_size - 1) / b.block_size;
    }
    if (b.nblocks > AZB_MAX_BLOCKS)
        return stratus_errf(eb, STRATUS_EINVAL,
                            "put %s: %zu bytes is over Azure's block blob "
                            "limit",
                            key, len);
    b.nonce = s->nonce_seed ^ (atomic_fetch_add(&s->nonce_ctr, 1) * 0x9e3779b97f4a7c15ULL);

    /* A precondition that already fails need not upload every block first. */
    if (if_absent || if_match) {
        rc = azb_precondition(s, key, if_absent, if_match, eb);
        if (rc == STRATUS_EEXIST || (rc < 0 && rc != STRATUS_EAGAIN))
            return rc;
    }
    rc = azb_parallel(azb_put_block, &b, b.nblocks, (size_t)s->conf->upload_concurrency, eb);
    if (rc < 0)
        return rc; /* uncommitted blocks are discarded by Azure after a week */

    stratus_sbuf_puts(&xml, "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for (size_t i = 0; i < b.nblocks; i++) {
        char id[64];
        azb_block_id(&b, i, id);
        stratus_sbuf_printf(&xml, "<Latest>%s</Latest>", id);
    }
    stratus_sbuf_puts(&xml, "</BlockList>");
    if (xml.err) {
        stratus_sbuf_free(&xml);
        return stratus_errf(eb, STRATUS_ENOMEM, "put %s: out of memory", key);
    }
    snprintf(what, sizeof what, "put %s: put block list", key);
    stratus_http_req_init(&rq, "PUT");
    stratus_http_resp_init(&rs);
    azb_url(s, &rq, key, "comp=blocklist");
    stratus_http_req_header(&rq, "Content-Type", "application/xml");
    stratus_http_req_body(&rq, xml.p, xml.len);
    azb_content_md5(&rq, xml.p, xml.len);
    azb_conditions(&rq, if_absent, if_match);
    rc = azb_send(s, &rq, &rs, what, eb);
    if (rc == 0)
        azb_copy_etag(etag_out, stratus_http_resp_header(&rs, "etag"));
    char code[64] = "";
    if (rc < 0)
        stratus_http_error_code(&rs, code, sizeof code);
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    stratus_sbuf_free(&xml);
    if (strcmp(code, "InvalidBlockList") == 0) {
        /* Another writer committed this blob meanwhile, which discards our uncommitted
         * blocks: a failed precondition when the commit was conditional, else try again. */
        struct stratus_errbuf peb = {{0}};
        int prc = (if_absent || if_match) ? azb_precondition(s, key, if_absent, if_match, &peb) : 0;
        if (prc == STRATUS_EEXIST) {
            *eb = peb;
            return prc;
        }
        rc = STRATUS_EAGAIN;
    }
    return rc;
}

static int azb_put(void *inst,
                   const char *key,
                   const void *data,
                   size_t len,
                   const struct stratus_put_opts *o,
                   char *etag_out,
                   struct stratus_errbuf *eb)
{
    struct azb *s = inst;
    int if_absent = 0, rc;
    const char *if_match = NULL;
    stratus_put_opts_read(o, &if_absent, &if_match);
    if (etag_out)
        etag_out[0] = 0;
    if (len > s->conf->single_put_max && len > s->conf->block_size)
        rc = azb_put_blocks(s, key, data, len, if_absent, if_match, etag_out, eb);
    else
        rc = azb_put_single(s, key, data, len, if_absent, if_match, etag_out, eb);
    /* If-Match on a missing blob: 404 BlobNotFound, which the SDK calls a failed
     * precondition (the current etag, none, differs) */
    if (rc == STRATUS_ENOTFOUND && if_match && !strstr(eb->msg, "ContainerNotFound"))
        rc = STRATUS_EEXIST;
    return rc;
}

/* ---- get / head -------------------------------------------------------------------------- */

static int
azb_head(void *inst, const char *key, struct stratus_object_info *info, struct stratus_errbuf *eb)
{
    struct azb *s = inst;
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char what[1100];
    snprintf(what, sizeof what, "head %s", key);
    stratus_http_req_init(&rq, "HEAD");
    stratus_http_resp_init(&rs);
    azb_url(s, &rq, key, NULL);
    int rc = azb_send(s, &rq, &rs, what, eb);
    if (rc == 0)
        rc = stratus_http_resp_object_info(&rs, key, what, info, eb);
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    return rc;
}

static int azb_get(void *inst,
                   const char *key,
                   uint64_t off,
                   size_t len,
                   void *dst,
                   size_t *got,
                   struct stratus_errbuf *eb)
{
    struct azb *s = inst;
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char what[1100];
    *got = 0;
    if (len == 0) { /* nothing to read: still report a missing key */
        struct stratus_object_info info;
        return azb_head(inst, key, &info, eb);
    }
    snprintf(what, sizeof what, "get %s [%" PRIu64 ", +%zu)", key, off, len);
    stratus_http_req_init(&rq, "GET");
    stratus_http_resp_init(&rs);
    azb_url(s, &rq, key, NULL);
    stratus_http_req_header(&rq, "x-ms-range", "bytes=%" PRIu64 "-%" PRIu64, off,
                            off + (uint64_t)len - 1);
    rs.dst = dst;
    rs.dst_cap = len;
    int rc = azb_send(s, &rq, &rs, what, eb);
    if (rc == STRATUS_ERANGE) { /* InvalidRange: at or past the end (or an empty blob) */
        rc = 0;
    } else if (rc == 0) {
        if (rs.status != 206 && off > 0)
            rc = stratus_errf(eb, STRATUS_EPROTO, "%s: server ignored the range (HTTP %ld)", what,
                              rs.status);
        else
            *got = rs.dst_len;
    } else if (rc == STRATUS_EPROTO && rs.status == 200 && off == 0) {
        rc = stratus_errf(eb, STRATUS_EPROTO, "%s: server ignored the range", what);
    }
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    return rc;
}

/* ---- delete ------------------------------------------------------------------------------ */

struct azb_dels {
    struct azb *s;
    const char *const *keys;
};

static int azb_del_one(void *ctx, size_t i, struct stratus_errbuf *eb)
{
    struct azb_dels *d = ctx;
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char what[1100];
    snprintf(what, sizeof what, "delete %s", d->keys[i]);
    stratus_http_req_init(&rq, "DELETE");
    stratus_http_resp_init(&rs);
    azb_url(d->s, &rq, d->keys[i], NULL);
    stratus_http_req_header(&rq, "x-ms-delete-snapshots", "include");
    int rc = azb_send(d->s, &rq, &rs, what, eb);
    if (rc == STRATUS_ENOTFOUND) {
        char code[64];
        stratus_http_error_code(&rs, code, sizeof code);
        if (strcmp(code, "ContainerNotFound") != 0)
            rc = 0; /* BlobNotFound: already gone */
    }
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    return rc;
}

static int azb_del(void *inst, const char *const *keys, size_t nkeys, struct stratus_errbuf *eb)
{
    struct azb *s = inst;
    struct azb_dels d = {s, keys};
    if (nkeys == 0)
        return 0;
    return azb_parallel(azb_del_one, &d, nkeys, (size_t)s->conf->upload_concurrency, eb);
}

/* ---- list -------------------------------------------------------------------------------- */

static int azb_list(void *inst,
                    const char *prefix,
                    const char *start_after,
                    stratus_list_fn *cb,
                    void *arg,
                    struct stratus_errbuf *eb)
{
    struct azb *s = inst;
    struct stratus_sbuf q = {0}, full = {0};
    char *marker = NULL;
    struct stratus_object_info *info = malloc(sizeof *info);
    char *kbuf = malloc(2200);
    char what[1100];
    int rc = 0;
    size_t plen = strlen(s->prefix);
    snprintf(what, sizeof what, "list %s", prefix ? prefix : "");
    if (!info || !kbuf) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "list: out of memory");
        goto out;
    }
    stratus_sbuf_puts(&full, s->prefix);
    stratus_sbuf_puts(&full, prefix ? prefix : "");
    for (;;) {
        struct stratus_http_req rq;
        struct stratus_http_resp rs;
        stratus_sbuf_reset(&q);
        stratus_sbuf_printf(&q, "restype=container&comp=list&maxresults=%" PRId64,
                            s->conf->list_page_size);
        if (full.len) {
            stratus_sbuf_puts(&q, "&prefix=");
            stratus_enc_uri(&q, full.p, full.len, 0);
        }
        if (marker) {
            stratus_sbuf_puts(&q, "&marker=");
            stratus_enc_uri(&q, marker, strlen(marker), 0);
        }
        if (q.err || full.err) {
            rc = stratus_errf(eb, STRATUS_ENOMEM, "list: out of memory");
            goto out;
        }
        stratus_http_req_init(&rq, "GET");
        stratus_http_resp_init(&rs);
        rs.body_max = AZB_LIST_BODY_MAX;
        azb_url(s, &rq, NULL, q.p);
        rc = azb_send(s, &rq, &rs, what, eb);
        free(marker);
        marker = NULL;
        if (rc == 0) {
            struct stratus_xml_span doc = {rs.body ? rs.body : "", rs.body_len}, blobs, b, pr;
            const char *cur = NULL;
            char tmp[64];
            if (stratus_xml_find(doc, "Blobs", &blobs) < 0) {
                blobs.p = "";
                blobs.len = 0;
            }
            while (rc == 0 && stratus_xml_next(blobs, "Blob", &cur, &b) == 0) {
                if (stratus_xml_get(b, "Name", kbuf, 2200) < 0) {
                    rc = stratus_errf(eb, STRATUS_EPROTO, "%s: bad Name in the reply", what);
                    break;
                }
                if (strncmp(kbuf, s->prefix, plen) != 0 || strlen(kbuf) - plen >= sizeof info->key)
                    continue;
                if (start_after && *start_after && strcmp(kbuf + plen, start_after) <= 0)
                    continue;
                memset(info, 0, sizeof *info);
                snprintf(info->key, sizeof info->key, "%s", kbuf + plen);
                if (stratus_xml_find(b, "Properties", &pr) < 0)
                    pr = b;
                if (stratus_xml_get(pr, "Content-Length", tmp, sizeof tmp) == 0)
                    info->size = strtoull(tmp, NULL, 10);
                if (stratus_xml_get(pr, "Last-Modified", tmp, sizeof tmp) == 0) {
                    int64_t ms;
                    if (stratus_timefmt_parse_rfc1123(tmp, &ms) == 0)
                        info->mtime_ms = ms;
                }
                /* List Blobs gives the ETag bare, Get Blob Properties quoted: quote it so
                 * head() and list() report the same tag */
                char et[sizeof info->etag - 2];
                if (stratus_xml_get(pr, "Etag", et, sizeof et) == 0 && et[0])
                    snprintf(info->etag, sizeof info->etag, et[0] == '"' ? "%s" : "\"%s\"", et);
                rc = cb(arg, info);
            }
            struct stratus_xml_span nm;
            if (rc == 0 && stratus_xml_find(doc, "NextMarker", &nm) == 0 && nm.len > 0) {
                marker = malloc(nm.len + 1);
                if (!marker || stratus_xml_text(nm, marker, nm.len + 1) < 0)
                    rc = stratus_errf(eb, STRATUS_EPROTO, "%s: bad NextMarker", what);
                else if (!marker[0]) {
                    free(marker);
                    marker = NULL;
                }
            }
        }
        stratus_http_resp_free(&rs);
        stratus_http_req_free(&rq);
        if (rc != 0 || !marker)
            break;
    }
out:
    free(marker);
    free(info);
    free(kbuf);
    stratus_sbuf_free(&q);
    stratus_sbuf_free(&full);
    return rc;
}

/* ---- open / close ------------------------------------------------------------------------ */

static void azb_close(void *inst)
{
    struct azb *s = inst;
    if (!s)
        return;
    azblob_token_free(s->token);
    stratus_http_free(s->http);
    memset(s->key, 0, sizeof s->key);
    if (s->sas) {
        memset(s->sas, 0, strlen(s->sas));
        free(s->sas);
    }
    free(s->account);
    free(s->base);
    free(s->prefix);
    free(s);
}

static int64_t azb_now(void *ctx)
{
    const struct stratus_host *h = ctx;
    return h->now_ms(h->hctx);
}

static const char *azb_nonempty(const char *a, const char *b)
{
    if (a && *a)
        return a;
    return b && *b ? b : NULL;
}

/* Chooses the auth mode and loads its secret. */
static int
azb_setup_auth(struct azb *s, const struct stratus_http_opts *ho, struct stratus_errbuf *eb)
{
    const struct azb_conf *c = s->conf;
    const char *key = azb_nonempty(c->shared_key, getenv("AZURE_STORAGE_KEY"));
    const char *sas = azb_nonempty(c->sas_token, getenv("AZURE_STORAGE_SAS_TOKEN"));
    const char *a = c->auth && *c->auth ? c->auth : NULL;
    if (!a)
        a = key ? "shared_key" : sas ? "sas" : "managed_identity";
    if (strcmp(a, "shared_key") == 0) {
        s->auth = AZB_AUTH_SHARED_KEY;
        if (!key)
            return stratus_errf(eb, STRATUS_EINVAL,
                                "auth=shared_key needs shared_key (or "
                                "AZURE_STORAGE_KEY)");
        long n = stratus_enc_base64_decode(key, strlen(key), s->key, sizeof s->key);
        if (n <= 0)
            return stratus_errf(eb, STRATUS_EINVAL, "shared_key is not valid base64");
        s->key_len = (size_t)n;
    } else if (strcmp(a, "sas") == 0) {
        s->auth = AZB_AUTH_SAS;
        if (!sas)
            return stratus_errf(eb, STRATUS_EINVAL,
                                "auth=sas needs sas_token (or "
                                "AZURE_STORAGE_SAS_TOKEN)");
        while (*sas == '?')
            sas++;
        if (!(s->sas = strdup(sas)))
            return stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
    } else if (strcmp(a, "managed_identity") == 0) {
        s->auth = AZB_AUTH_MI;
        const char *ep = c->identity_endpoint, *hdr = NULL;
        if (!ep || !*ep) {
            /* App Service, Container Apps, Functions, Arc: IDENTITY_ENDPOINT + HEADER */
            ep = azb_nonempty(getenv("IDENTITY_ENDPOINT"), NULL);
            hdr = ep ? azb_nonempty(getenv("IDENTITY_HEADER"), NULL) : NULL;
            if (!hdr)
                ep = NULL;
        }
        struct azblob_token_conf tc = {
            .endpoint = ep,
            .identity_header = hdr,
            .client_id = azb_nonempty(c->identity_client_id, getenv("AZURE_CLIENT_ID")),
            .now_ms = azb_now,
            .now_ctx = (void *)s->host,
            .http_opts = ho,
        };
        int rc = azblob_token_new(&tc, &s->token, eb);
        if (rc < 0)
            return rc;
        char tok[AZBLOB_TOKEN_MAX];
        struct stratus_errbuf teb = {{0}};
        rc = azblob_token_get(s->token, tok, NULL, &teb);
        memset(tok, 0, sizeof tok);
        if (rc == STRATUS_EAUTH || rc == STRATUS_EPROTO)
            return stratus_errf(eb, STRATUS_EAUTH, "managed identity at %s: %s",
                                azblob_token_endpoint(s->token), teb.msg);
        if (rc < 0) /* unreachable for now: requests will try again */
            s->host->log(s->host->hctx, STRATUS_LOG_WARN,
                         "azblob: no managed identity token yet from %s: %s",
                         azblob_token_endpoint(s->token), teb.msg);
    } else {
        return stratus_errf(eb, STRATUS_EINVAL,
                            "auth '%s': want shared_key, sas or managed_identity", a);
    }
    return 0;
}

/* Create Container; an existing one is fine. */
static int azb_create_container(struct azb *s, struct stratus_errbuf *eb)
{
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char what[300];
    snprintf(what, sizeof what, "create container %s", s->conf->container);
    stratus_http_req_init(&rq, "PUT");
    stratus_http_resp_init(&rs);
    azb_url(s, &rq, NULL, "restype=container");
    stratus_http_req_body(&rq, "", 0);
    int rc = azb_send(s, &rq, &rs, what, eb);
    if (rc < 0) {
        char code[64];
        stratus_http_error_code(&rs, code, sizeof code);
        if (rs.status == 409 && strcmp(code, "ContainerAlreadyExists") == 0)
            rc = 0;
    }
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    return rc;
}

static int
azb_open(const struct stratus_host *host, const void *conf, void **inst, struct stratus_errbuf *eb)
{
    const struct azb_conf *c = conf;
    int rc;
    *inst = NULL;
    struct azb *s = calloc(1, sizeof *s);
    if (!s)
        return stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
    s->host = host;
    s->conf = c;
    atomic_init(&s->nonce_ctr, 0);
    const char *account = azb_nonempty(c->account, getenv("AZURE_STORAGE_ACCOUNT"));
    if (!account) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "account is required (or AZURE_STORAGE_ACCOUNT)");
        goto fail;
    }
    if (!c->container || !*c->container || strchr(c->container, '/')) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "container must be a non-empty name without '/'");
        goto fail;
    }
    for (const char *p = account; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))) {
            rc = stratus_errf(eb, STRATUS_EINVAL,
                              "account '%s': lowercase letters and digits "
                              "only",
                              account);
            goto fail;
        }
    s->account = strdup(account);
    s->prefix = strdup(c->prefix ? c->prefix : "");
    struct stratus_sbuf b = {0};
    if (c->endpoint && *c->endpoint) {
        if (!strstr(c->endpoint, "://"))
            stratus_sbuf_puts(&b, "https://");
        stratus_sbuf_puts(&b, c->endpoint);
        while (b.len && b.p[b.len - 1] == '/')
            b.p[--b.len] = 0;
    } else {
        stratus_sbuf_printf(&b, "https://%s.blob.core.windows.net", account);
    }
    stratus_sbuf_putc(&b, '/');
    stratus_enc_uri(&b, c->container, strlen(c->container), 0);
    s->base = b.err ? NULL : b.p;
    if (!s->base)
        stratus_sbuf_free(&b);
    if (!s->account || !s->prefix || !s->base) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
        goto fail;
    }
    if (strncmp(s->base, "http://", 7) != 0 && strncmp(s->base, "https://", 8) != 0) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "endpoint %s: scheme must be http or https",
                          c->endpoint);
        goto fail;
    }
    if (getrandom(&s->nonce_seed, sizeof s->nonce_seed, 0) != (ssize_t)sizeof s->nonce_seed)
        s->nonce_seed = (uint64_t)host->now_ms(host->hctx) * 0x100000001b3ULL ^ (uintptr_t)s;
    struct stratus_http_opts ho = {
        .ca_file = c->ca_file,
        .ca_path = c->ca_path,
        .insecure = c->insecure_skip_verify,
        .connect_timeout_ms = c->connect_timeout,
        .stall_timeout_ms = c->stall_timeout,
        .total_timeout_ms = c->request_timeout,
        .max_idle_handles = 32,
        .user_agent = "stratus-storage-azblob/0.1",
    };
    if (c->insecure_skip_verify)
        host->log(host->hctx, STRATUS_LOG_WARN,
                  "azblob: TLS verification is OFF (insecure_skip_verify)");
    if ((rc = stratus_http_new(&ho, &s->http, eb)) < 0)
        goto fail;
    if ((rc = azb_setup_auth(s, &ho, eb)) < 0)
        goto fail;
    if (c->create_container && (rc = azb_create_container(s, eb)) < 0)
        goto fail;
    host->log(host->hctx, STRATUS_LOG_INFO,
              "azblob: account=%s container=%s base=%s prefix=%s auth=%s block_size=%" PRIu64
              " single_put_max=%" PRIu64,
              s->account, c->container, s->base, s->prefix, azb_auth_name(s->auth), c->block_size,
              c->single_put_max);
    *inst = s;
    return 0;
fail:
    azb_close(s);
    return rc;
}

static const struct stratus_storage_ops azb_ops = {
    .ops_size = sizeof(struct stratus_storage_ops),
    .open = azb_open,
    .close = azb_close,
    .put = azb_put,
    .get = azb_get,
    .head = azb_head,
    .del = azb_del,
    .list = azb_list,
};

static const struct stratus_plugin_desc azb_desc = {
    .desc_size = sizeof(struct stratus_plugin_desc),
    .abi_major = STRATUS_ABI_MAJOR,
    .abi_minor = STRATUS_ABI_MINOR,
    .build_sig = STRATUS_BUILD_SIG,
    .kind = STRATUS_PLUGIN_STORAGE,
    .name = "azblob",
    .version = "0.1.0",
    .description = "Azure Blob Storage and Azurite (Shared Key, SAS, managed identity; block "
                   "uploads, conditional puts)",
    .params = azb_params,
    .conf_size = sizeof(struct azb_conf),
    .ops = &azb_ops,
};

STRATUS_PLUGIN_DECLARE(azb_desc)
