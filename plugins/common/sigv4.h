/* sigv4.h - AWS Signature Version 4 over a struct stratus_http_req, as a pure function of
 * (request, credentials, region, service, time): no clock, no I/O, so tests compare it with
 * botocore byte for byte (tests/plugins/test_s3_sigv4.py).
 *
 * Canonical request (S3 flavour, as botocore's S3SigV4Auth): the URL path is used as given
 * (already URI-encoded by the caller, never normalized nor double-encoded); the query is split
 * on '&' and '=', its pairs sorted by name then value, each kept as encoded in the URL (a name
 * without '=' gets "="); every request header is signed except authorization and botocore's
 * list (connection expect keep-alive proxy-authenticate proxy-authorization te trailer
 * transfer-encoding upgrade user-agent x-amzn-trace-id), names lowercased, values trimmed with
 * inner whitespace runs collapsed, sorted by name; host comes from the URL (":port" omitted for 80
 * on http and 443 on https) and is set on the request.
 * Adds to the request: Host, X-Amz-Date, X-Amz-Security-Token (when a session token is given),
 * X-Amz-Content-SHA256 (when flags has STRATUS_SIGV4_CONTENT_SHA256_HEADER) and Authorization.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_COMMON_SIGV4_H
#define STRATUS_COMMON_SIGV4_H

#include "http.h"
#include "sbuf.h"

#include <stdint.h>

struct stratus_sigv4_creds {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL or "" when none */
};

#define STRATUS_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

enum stratus_sigv4_flags {
    STRATUS_SIGV4_CONTENT_SHA256_HEADER = 1 << 0, /* S3: send x-amz-content-sha256 */
};

/* Signs rq in place. payload_hash: NULL = hex SHA-256 of rq->body (empty body allowed), or a
 * given value such as STRATUS_SIGV4_UNSIGNED_PAYLOAD. When canon (may be NULL) is given, the
 * canonical request and the string to sign are appended to it, separated by "\n----\n", for
 * tests and debugging. 0, STRATUS_EINVAL (bad URL / missing credentials) or STRATUS_ENOMEM. */
int stratus_sigv4_sign(struct stratus_http_req *rq,
                       const struct stratus_sigv4_creds *creds,
                       const char *region,
                       const char *service,
                       int64_t now_ms,
                       const char *payload_hash,
                       int flags,
                       struct stratus_sbuf *canon,
                       struct stratus_errbuf *eb);

/* Splits an absolute URL into its host header value ("h" or "h:port"), path ("/" when empty)
 * and query ("" when none), each a NUL-terminated copy appended to its sbuf. 0 or -1.
 * Shared with the other signers (Azure Shared Key needs the same parts). */
int stratus_sigv4_url_parts(const char *url,
                            struct stratus_sbuf *host,
                            struct stratus_sbuf *path,
                            struct stratus_sbuf *query);

#endif
