/* http.h - the HTTP client every cloud storage plugin shares (plugins/common), on libcurl.
 *
 * One struct stratus_http per plugin instance: a mutex-guarded pool of curl easy handles (each
 * keeps its live keep-alive connections between calls) plus a curl share of DNS and TLS
 * sessions, so calls from several I/O threads reuse connections. TLS peer and host
 * verification are on unless opts.insecure; the proxy environment (https_proxy, no_proxy...)
 * is honoured as curl does. One call = one attempt: the core owns retries and backoff, so
 * this layer never retries (apart from curl's own silent reconnect of a dead pooled socket).
 *
 * Typical call (see plugins/storage-s3/storage_s3.c):
 *     struct stratus_http_req rq;
 *     struct stratus_http_resp rs;
 *     stratus_http_req_init(&rq, "PUT");
 *     stratus_http_req_url(&rq, "%s/%s", base, encoded_key);
 *     stratus_http_req_header(&rq, "If-None-Match", "*");
 *     stratus_http_req_body(&rq, data, len);        (borrowed until do() returns)
 *     sign(&rq) ... adds headers
 *     stratus_http_resp_init(&rs);
 *     rc = stratus_http_do(http, &rq, &rs, &eb);    transport failures -> EAGAIN etc.
 *     if (rc == 0) rc = stratus_http_classify(&rs, "put key", &eb);  status -> STRATUS_E*
 *     etag = stratus_http_resp_header(&rs, "etag");
 *     stratus_http_resp_free(&rs); stratus_http_req_free(&rq);
 *
 * Threads: stratus_http_do() may be called from any number of threads at once on one client;
 * a req/resp pair belongs to one thread. new/free run once, with no call in flight.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_COMMON_HTTP_H
#define STRATUS_COMMON_HTTP_H

#include "stratus/stratus_err.h"

#include <stddef.h>
#include <stdint.h>

/* ---- client ------------------------------------------------------------------------------ */

struct stratus_http_opts {
    const char *ca_file;        /* PEM bundle for TLS verification (NULL: system default) */
    const char *ca_path;        /* directory of hashed CA certs (NULL: system default) */
    int insecure;               /* 1 = do not verify TLS peers (tests only; logged) */
    int64_t connect_timeout_ms; /* TCP+TLS connect; 0 = 10 s */
    int64_t stall_timeout_ms;   /* first byte / any gap with no byte moving; 0 = 30 s */
    int64_t total_timeout_ms;   /* whole request; 0 = none beyond the stall timeout */
    int max_idle_handles;       /* easy handles kept for reuse; 0 = 16 */
    const char *user_agent;     /* User-Agent header; NULL = "stratus" */
};

struct stratus_http; /* opaque, owned by the plugin instance */

/* Creates a client; the opts strings are copied. 0, or STRATUS_ENOMEM / STRATUS_EINVAL. */
int stratus_http_new(const struct stratus_http_opts *opts,
                     struct stratus_http **out,
                     struct stratus_errbuf *eb);
/* Frees the client and its idle handles (closing their connections). NULL is fine. */
void stratus_http_free(struct stratus_http *h);

/* ---- request ----------------------------------------------------------------------------- */

#define STRATUS_HTTP_MAX_HEADERS 32

struct stratus_http_header {
    char *name;  /* as given ("x-amz-date"); owned by the req */
    char *value; /* trimmed; owned by the req */
};

struct stratus_http_req {
    const char *method; /* "GET" "HEAD" "PUT" "POST" "DELETE" "PATCH" (borrowed literal) */
    char *url;          /* absolute, already percent-encoded; owned (stratus_http_req_url) */
    struct stratus_http_header hdr[STRATUS_HTTP_MAX_HEADERS];
    size_t nhdr;
    const void *body; /* borrowed until stratus_http_do() returns; NULL = no body */
    size_t body_len;  /* sent as Content-Length (also for len 0 on PUT/POST) */
    int err;          /* latched by a failed builder call; stratus_http_do() then fails */
};

void stratus_http_req_init(struct stratus_http_req *rq, const char *method);
void stratus_http_req_free(struct stratus_http_req *rq);
/* Sets the URL (printf-style; the caller encodes path and query). 0 or STRATUS_ENOMEM. */
int stratus_http_req_url(struct stratus_http_req *rq, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Sets a header, replacing one of the same name (case-insensitive); a NULL fmt removes it.
 * 0, or STRATUS_ENOMEM / STRATUS_ERANGE (too many headers) / STRATUS_EINVAL (CR or LF in the
 * value, or a bad name: the request is then poisoned). Content-Type defaults to
 * application/octet-stream when a body is sent; "Expect:" is never sent. */
int stratus_http_req_header(struct stratus_http_req *rq, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The value of a header set on the request (case-insensitive), or NULL. */
const char *stratus_http_req_get_header(const struct stratus_http_req *rq, const char *name);
/* Sets the body (borrowed until stratus_http_do() returns) and, unless already set, the header
 * Content-Type: application/octet-stream. Call it before signing: the signers sign the
 * Content-Type they find. 0 or STRATUS_ENOMEM. */
int stratus_http_req_body(struct stratus_http_req *rq, const void *data, size_t len);
/* Adds "Range: bytes=off-(off+len-1)" (len >= 1). */
int stratus_http_req_range(struct stratus_http_req *rq, uint64_t off, uint64_t len);

/* ---- response ---------------------------------------------------------------------------- */

#define STRATUS_HTTP_MAX_RESP_HEADERS 48
#define STRATUS_HTTP_ERR_BODY_MAX     (64 * 1024) /* error bodies kept up to this, rest dropped */

struct stratus_http_resp {
    /* -- set by the caller before stratus_http_do() (stratus_http_resp_init zeroes all) -- */
    void *dst; /* if set, a 2xx body is written here (at most dst_cap bytes, more is
                * STRATUS_EPROTO); a non-2xx body still goes to `body` below */
    size_t dst_cap;
    size_t body_max; /* ceiling of the growable `body` for 2xx replies; 0 = 1 MiB; more is
                      * STRATUS_ENOMEM */
    /* -- filled by stratus_http_do() -- */
    long status;    /* HTTP status of the final response; 0 when none was received */
    size_t dst_len; /* bytes written into dst */
    char *body;     /* growable body (NUL-terminated), owned; freed by resp_free */
    size_t body_len;
    struct stratus_http_header hdr[STRATUS_HTTP_MAX_RESP_HEADERS]; /* names lowercased */
    size_t nhdr;
    /* internal */
    size_t body_cap;
    int overflow;
};

void stratus_http_resp_init(struct stratus_http_resp *rs);
/* Frees body and headers; the struct may then be reused after stratus_http_resp_init(). */
void stratus_http_resp_free(struct stratus_http_resp *rs);
/* The value of a response header (case-insensitive name), or NULL. */
const char *stratus_http_resp_header(const struct stratus_http_resp *rs, const char *name);

struct stratus_object_info;
/* Fills info for key from the Content-Length, ETag and Last-Modified headers of a successful
 * HEAD or GET (the S3 and Azure Blob answers). STRATUS_EPROTO when Content-Length is missing;
 * what names the call in the message. */
int stratus_http_resp_object_info(const struct stratus_http_resp *rs, const char *key,
                                  const char *what, struct stratus_object_info *info,
                                  struct stratus_errbuf *eb);

/* ---- calls ------------------------------------------------------------------------------- */

/* Performs one request. Returns 0 when an HTTP response arrived (whatever its status; check it
 * with stratus_http_classify), else:
 *   STRATUS_EAGAIN  connect refused/failed, reset, timeout, DNS failure, partial transfer
 *   STRATUS_EAUTH   TLS certificate or host verification failed
 *   STRATUS_EPROTO  2xx body longer than dst_cap, malformed reply
 *   STRATUS_ENOMEM  out of memory, or a 2xx body over body_max
 *   STRATUS_EINVAL  bad URL / unsupported scheme, or a builder call on rq had failed
 * with a message naming the method and URL (without its query) in eb. Thread-safe. */
int stratus_http_do(struct stratus_http *h,
                    const struct stratus_http_req *rq,
                    struct stratus_http_resp *rs,
                    struct stratus_errbuf *eb);

/* Maps an HTTP status to a STRATUS_E* code (2xx -> 0):
 *   404 -> ENOTFOUND; 409, 412 -> EEXIST; 408, 429, 500, 502, 503, 504 -> EAGAIN;
 *   401, 403 -> EAUTH; 416 -> ERANGE; 400 with code RequestTimeout/SlowDown -> EAGAIN;
 *   other 3xx/4xx/5xx -> EIO.
 * When non-zero, writes "<what>: HTTP <status> <code>: <message>" into eb, the provider's code
 * and message taken from (in order) an XML <Code>/<Message> body (S3, Azure), a JSON
 * {"error": {"message"...}} body (GCS, OAuth2 "error_description"), the x-amz-error-code /
 * x-ms-error-code headers, or the body's first bytes. */
int stratus_http_classify(const struct stratus_http_resp *rs,
                          const char *what,
                          struct stratus_errbuf *eb);
/* The provider error code of a failed response ("SlowDown", "BlobAlreadyExists"...) into out;
 * "" when none. Useful to refine stratus_http_classify (e.g. S3 ExpiredToken). */
void stratus_http_error_code(const struct stratus_http_resp *rs, char *out, size_t cap);

#endif
