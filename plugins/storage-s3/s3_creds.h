/* s3_creds.h - where storage-s3 finds AWS credentials, in the order the AWS SDKs use:
 *   1. static keys from the plugin config (access_key_id / secret_access_key / session_token)
 *   2. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
 *   3. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials),
 *      profile from the config `profile`, else AWS_PROFILE, else "default"
 *   4. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (+ AWS_ROLE_SESSION_NAME),
 *      exchanged by STS AssumeRoleWithWebIdentity at sts_endpoint (config), else
 *      AWS_ENDPOINT_URL_STS, else https://sts.<region>.amazonaws.com
 *   5. ECS/EKS container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI, or
 *      http://169.254.170.2 + AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, with the header
 *      Authorization from AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)
 *   6. EC2 IMDSv2 (token PUT, then GET of the role's credentials) at
 *      AWS_EC2_METADATA_SERVICE_ENDPOINT or http://169.254.169.254, unless
 *      AWS_EC2_METADATA_DISABLED=true
 * Sources 4-6 give temporary credentials: they are cached and refreshed 5 minutes before they
 * expire (or at once after s3_creds_invalidate(), e.g. on ExpiredToken); when a refresh fails
 * and the cached credentials are still valid they keep being used.
 * Thread-safe: s3_creds_get() may be called from any thread; one refresh runs at a time.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_S3_CREDS_H
#define STRATUS_S3_CREDS_H

#include "common/http.h"

#include <stdint.h>

struct s3_creds {
    char access_key_id[128];
    char secret_access_key[128];
    char session_token[4096]; /* "" when none */
    int64_t expires_ms;       /* 0 = does not expire */
};

/* What the provider is configured with (all strings borrowed during s3_creds_new only). */
struct s3_creds_conf {
    const char *access_key_id, *secret_access_key, *session_token; /* config, may be NULL */
    const char *profile;      /* NULL = AWS_PROFILE or "default" */
    const char *region;       /* for the STS default endpoint */
    const char *sts_endpoint; /* NULL = AWS_ENDPOINT_URL_STS or the regional endpoint */
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
    const struct stratus_http_opts *http_opts; /* TLS options for STS; NULL = defaults */
};

struct s3_creds_provider;

/* Resolves the source (1-6 above) and fetches the first credentials. 0, or STRATUS_EAUTH when
 * no source gave credentials (eb names what was tried), or a transport error of the fetch. */
int s3_creds_new(const struct s3_creds_conf *conf,
                 struct s3_creds_provider **out,
                 struct stratus_errbuf *eb);
void s3_creds_free(struct s3_creds_provider *p);
/* Copies current credentials into out, refreshing first when needed. 0 or STRATUS_E*. */
int s3_creds_get(struct s3_creds_provider *p, struct s3_creds *out, struct stratus_errbuf *eb);
/* Forces a refresh at the next s3_creds_get() (no effect for static credentials). */
void s3_creds_invalidate(struct s3_creds_provider *p);
/* "config", "env", "shared-file", "web-identity", "ecs", "imds". */
const char *s3_creds_source(const struct s3_creds_provider *p);

#endif
