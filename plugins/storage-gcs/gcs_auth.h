/* gcs_auth.h - OAuth2 access tokens for Google Cloud Storage, as Google's client libraries get
 * them: a service-account JSON key (an RS256-signed JWT exchanged at the key's token_uri), the
 * GCE/GKE metadata server, a static token, or none (emulators). A separate static library
 * (stratus_gcs_auth) so tests can drive it without the plugin ABI.
 *
 * Tokens are cached and refreshed before they expire (5 minutes early, or at half their
 * lifetime when that is shorter); one mutex serializes refreshes, so concurrent callers share
 * one token fetch. Token endpoint replies: {"access_token", "expires_in", "token_type"}.
 * The private key and tokens are never logged or put into error messages.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_GCS_AUTH_H
#define STRATUS_GCS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/http.h"
#include "stratus/stratus_err.h"

enum gcs_auth_mode {
    GCS_AUTH_NONE = 0,     /* no Authorization header (emulators, public buckets) */
    GCS_AUTH_TOKEN,        /* a static bearer token */
    GCS_AUTH_SERVICE_ACCOUNT, /* JSON key -> RS256 JWT -> token_uri */
    GCS_AUTH_METADATA,     /* GCE/GKE metadata server */
};

#define GCS_SCOPE_RW "https://www.googleapis.com/auth/devstorage.read_write"
#define GCS_DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define GCS_DEFAULT_METADATA "http://metadata.google.internal"

struct gcs_auth_conf {
    const char *mode;              /* "service_account" | "metadata" | "token" | "none" | NULL
                                    * or "" = auto: a key file (credentials_file or
                                    * GOOGLE_APPLICATION_CREDENTIALS) if any, else metadata */
    const char *credentials_file;  /* service-account JSON key; NULL: GOOGLE_APPLICATION_CREDENTIALS */
    const char *token;             /* for "token" */
    const char *metadata_endpoint; /* NULL: http://$GCE_METADATA_HOST or metadata.google.internal */
    const char *scope;             /* NULL: devstorage.read_write */
    int64_t (*now_ms)(void *ctx);  /* wall clock (the host's, injectable) */
    void *now_ctx;
    const struct stratus_http_opts *http_opts; /* for the token requests */
};

struct gcs_auth; /* opaque */

/* Creates a provider; reads and checks the key file now (a bad key fails here with
 * STRATUS_EINVAL or STRATUS_EAUTH and a message naming the file). No network I/O. */
int gcs_auth_new(const struct gcs_auth_conf *c, struct gcs_auth **out, struct stratus_errbuf *eb);
void gcs_auth_free(struct gcs_auth *a);
/* The mode in use as text ("service_account <client_email>", "metadata", ...). */
const char *gcs_auth_describe(const struct gcs_auth *a);
int gcs_auth_mode(const struct gcs_auth *a);

/* Writes the Authorization header value ("Bearer ...") into out, fetching or refreshing the
 * token when needed; "" for GCS_AUTH_NONE. 0, or STRATUS_EAUTH (refused: bad key, wrong
 * audience, no service account), STRATUS_EAGAIN (token endpoint unreachable or 5xx),
 * STRATUS_EPROTO (malformed reply), STRATUS_ENOMEM. Thread-safe. */
int gcs_auth_header(struct gcs_auth *a, char *out, size_t cap, struct stratus_errbuf *eb);
/* After a 401 from storage on the header value `used`: drops the cached token if it is still
 * that one (the next gcs_auth_header() fetches a new one). Returns 1 when a new token may help
 * (service account, metadata), else 0. */
int gcs_auth_invalidate(struct gcs_auth *a, const char *used);

/* The signed JWT assertion for a service account (exposed for tests): header.claims.sig in
 * base64url, claims {iss, scope, aud, iat, exp = iat + 3600}. out is malloc'd. */
int gcs_auth_make_jwt(const struct gcs_auth *a, int64_t now_s, char **out,
                      struct stratus_errbuf *eb);

#endif
