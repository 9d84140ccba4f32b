/* azblob_auth.h - how storage-azblob authenticates its requests to Azure Blob Storage:
 *   Shared Key  azblob_sharedkey_sign(): the "SharedKey" scheme of the Blob service
 *               (version 2009-09-19 and later, with the 2015-02-21 rule that a zero
 *               Content-Length is signed as an empty string), a pure function of the request,
 *               the account and the key, so tests check it byte for byte;
 *   SAS         nothing to sign: the plugin appends the token to every URL's query;
 *   Azure AD    an OAuth2 bearer token for https://storage.azure.com/ from a managed
 *               identity endpoint: Azure IMDS (GET <endpoint>?api-version=2018-02-01&resource=
 *               ...[&client_id=...] with "Metadata: true"), or the App Service / Container Apps
 *               / Arc form (IDENTITY_ENDPOINT + IDENTITY_HEADER, api-version 2019-08-01,
 *               header X-IDENTITY-HEADER). The token is cached and refreshed ahead of its
 *               expiry (5 minutes, or half its lifetime when shorter); when a refresh fails
 *               while the cached token is still valid it keeps being used.
 * Thread-safe: the signer is pure; azblob_token_get() may be called from any thread (one
 * fetch at a time under the provider's mutex). No secret is ever written to an error message.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_AZBLOB_AUTH_H
#define STRATUS_AZBLOB_AUTH_H

#include "common/http.h"
#include "common/sbuf.h"

#include <stddef.h>
#include <stdint.h>

#define AZBLOB_KEY_MAX   128  /* decoded account key bytes (Azure's are 64) */
#define AZBLOB_TOKEN_MAX 8192 /* bearer token bytes incl. NUL */

/* Appends the Shared Key string-to-sign of rq (which must already carry x-ms-date and every
 * header it will be sent with) to out:
 *   VERB \n Content-Encoding \n Content-Language \n Content-Length \n Content-MD5 \n
 *   Content-Type \n Date \n If-Modified-Since \n If-Match \n If-None-Match \n
 *   If-Unmodified-Since \n Range \n CanonicalizedHeaders CanonicalizedResource
 * Content-Length is rq->body_len when a body is sent (empty when 0); Content-Type is the one
 * the HTTP layer will send (application/octet-stream for a PUT/POST without one).
 * CanonicalizedHeaders: every x-ms-* header, name lowercased, value trimmed with inner
 * whitespace runs collapsed, sorted by name, "name:value\n" each. CanonicalizedResource:
 * "/" account path (the URL path as sent, so path-style Azurite URLs give
 * "/devstoreaccount1/devstoreaccount1/container/blob"), then for each query parameter, sorted by
 * lowercased name, "\nname:v1,v2" with the values URL-decoded and sorted.
 * 0, or STRATUS_EINVAL (unparsable URL) / STRATUS_ENOMEM. */
int azblob_sharedkey_string_to_sign(const struct stratus_http_req *rq,
                                    const char *account,
                                    struct stratus_sbuf *out,
                                    struct stratus_errbuf *eb);

/* Signs rq: adds "Authorization: SharedKey <account>:<base64 HMAC-SHA256(key, string)>".
 * key is the decoded account key. 0 or STRATUS_E*. */
int azblob_sharedkey_sign(struct stratus_http_req *rq,
                          const char *account,
                          const uint8_t *key,
                          size_t key_len,
                          struct stratus_errbuf *eb);

/* ---- managed identity tokens ------------------------------------------------------------- */

struct azblob_token_conf {
    const char *endpoint;        /* token URL without query; NULL = default (see .c) */
    const char *identity_header; /* non-NULL: App Service form (X-IDENTITY-HEADER) */
    const char *client_id;       /* user-assigned identity; NULL = system-assigned */
    const char *resource;        /* NULL = "https://storage.azure.com/" */
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
    const struct stratus_http_opts *http_opts; /* NULL = defaults */
};

struct azblob_token;

/* Creates the provider (it does not fetch yet). strings are copied. 0 or STRATUS_E*. */
int azblob_token_new(const struct azblob_token_conf *conf,
                     struct azblob_token **out,
                     struct stratus_errbuf *eb);
void azblob_token_free(struct azblob_token *t);
/* Copies a valid bearer token into out (AZBLOB_TOKEN_MAX bytes), fetching or refreshing it
 * first when needed; *age_ms (may be NULL) gets the time since the token was fetched.
 * 0, or STRATUS_EAGAIN (endpoint unreachable / 5xx / 429), STRATUS_EAUTH (the endpoint
 * refused: no identity, wrong client_id...), STRATUS_EPROTO (reply without a token). */
int azblob_token_get(struct azblob_token *t, char *out, int64_t *age_ms, struct stratus_errbuf *eb);
/* Drops the cached token: the next azblob_token_get() fetches a new one. */
void azblob_token_invalidate(struct azblob_token *t);
/* The token URL in use (for logs). */
const char *azblob_token_endpoint(const struct azblob_token *t);

#endif
