/* s3_creds.c - the AWS credentials provider chain of storage-s3 (see s3_creds.h).
 * Replies parsed: STS AssumeRoleWithWebIdentityResponse (XML), ECS and IMDS credential
 * documents (JSON: AccessKeyId, SecretAccessKey, Token, Expiration as ISO 8601).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "s3_creds.h"

#include "common/enc.h"
#include "common/json.h"
#include "common/sbuf.h"
#include "common/timefmt.h"
#include "common/xml.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S3_CREDS_REFRESH_EARLY_MS (5 * 60 * 1000)
#define S3_CREDS_DOC_MAX          (64 * 1024)

enum s3_creds_kind {
    S3_CREDS_CONFIG,
    S3_CREDS_ENV,
    S3_CREDS_FILE,
    S3_CREDS_WEB_IDENTITY,
    S3_CREDS_ECS,
    S3_CREDS_IMDS,
};

struct s3_creds_provider {
    pthread_mutex_t mu; /* guards cur and stale */
    int kind;
    struct s3_creds cur;
    int stale;
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
    struct stratus_http *http; /* for sources 4-6 */
    /* web identity */
    char *sts_url, *role_arn, *token_file, *session_name;
    /* ecs */
    char *ecs_url, *ecs_auth, *ecs_auth_file;
    /* imds */
    char *imds_base;
};

static const char *s3_creds_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int
s3_creds_set(struct s3_creds *c, const char *ak, const char *sk, const char *tok, int64_t exp)
{
    if (!ak || !sk || !*ak || !*sk || strlen(ak) >= sizeof c->access_key_id ||
        strlen(sk) >= sizeof c->secret_access_key ||
        (tok && strlen(tok) >= sizeof c->session_token))
        return -1;
    snprintf(c->access_key_id, sizeof c->access_key_id, "%s", ak);
    snprintf(c->secret_access_key, sizeof c->secret_access_key, "%s", sk);
    snprintf(c->session_token, sizeof c->session_token, "%s", tok ? tok : "");
    c->expires_ms = exp;
    return 0;
}

/* ---- shared credentials file --------------------------------------------------------- */

static char *s3_creds_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = 0;
    return s;
}

/* 1 = found, 0 = no such file/profile/keys, -1 = malformed */
static int s3_creds_from_file(const char *path, const char *profile, struct s3_creds *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096], ak[256] = "", sk[256] = "", tok[4096] = "";
    int in = 0;
    while (fgets(line, sizeof line, f)) {
        char *s = s3_creds_trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (!e)
                continue;
            *e = 0;
            char *name = s3_creds_trim(s + 1);
            if (strncmp(name, "profile ", 8) == 0)
                name = s3_creds_trim(name + 8);
            in = strcmp(name, profile) == 0;
            continue;
        }
        if (!in)
            continue;
        char *eq = strchr(s, '=');
        if (!eq)
            continue;
        *eq = 0;
        char *k = s3_creds_trim(s), *v = s3_creds_trim(eq + 1);
        if (strcasecmp(k, "aws_access_key_id") == 0)
            snprintf(ak, sizeof ak, "%s", v);
        else if (strcasecmp(k, "aws_secret_access_key") == 0)
            snprintf(sk, sizeof sk, "%s", v);
        else if (strcasecmp(k, "aws_session_token") == 0)
            snprintf(tok, sizeof tok, "%s", v);
    }
    fclose(f);
    if (!ak[0] && !sk[0])
        return 0;
    return s3_creds_set(out, ak, sk, tok, 0) == 0 ? 1 : -1;
}

/* ---- fetchers of temporary credentials ------------------------------------------------- */

static int s3_creds_from_json(
    const char *doc, size_t len, struct s3_creds *out, struct stratus_errbuf *eb, const char *what)
{
    char ak[128], sk[128], tok[4096] = "", exp[64] = "";
    int64_t exp_ms = 0;
    if (stratus_json_get_str(doc, len, "AccessKeyId", ak, sizeof ak) < 0 ||
        stratus_json_get_str(doc, len, "SecretAccessKey", sk, sizeof sk) < 0)
        return stratus_errf(eb, STRATUS_EPROTO, "%s: reply lacks AccessKeyId/SecretAccessKey",
                            what);
    stratus_json_get_str(doc, len, "Token", tok, sizeof tok);
    if (stratus_json_get_str(doc, len, "Expiration", exp, sizeof exp) == 0 &&
        stratus_timefmt_parse_iso8601(exp, &exp_ms) < 0)
        return stratus_errf(eb, STRATUS_EPROTO, "%s: bad Expiration", what);
    if (s3_creds_set(out, ak, sk, tok, exp_ms) < 0)
        return stratus_errf(eb, STRATUS_EPROTO, "%s: credentials too long", what);
    return 0;
}

static char *s3_creds_read_file(const char *path, size_t max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max, f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = 0;
    return buf;
}

/* One HTTP call of a fetcher; the reply body lands in rs. */
static int s3_creds_call(struct s3_creds_provider *p,
                         struct stratus_http_req *rq,
                         struct stratus_http_resp *rs,
                         const char *what,
                         struct stratus_errbuf *eb)
{
    stratus_http_resp_init(rs);
    rs->body_max = S3_CREDS_DOC_MAX;
    int rc = stratus_http_do(p->http, rq, rs, eb);
    if (rc == 0)
        rc = stratus_http_classify(rs, what, eb);
    return rc;
}

static int s3_creds_fetch_web_identity(struct s3_creds_provider *p,
                                       struct s3_creds *out,
                                       struct stratus_errbuf *eb)
{
    struct stratus_sbuf body = {0};
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    int rc;
    char *tok = s3_creds_read_file(p->token_file, 64 * 1024);
    if (!tok)
        return stratus_errf(eb, STRATUS_EAUTH, "web identity: cannot read %s", p->token_file);
    stratus_sbuf_puts(&body, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=");
    stratus_enc_uri(&body, p->role_arn, strlen(p->role_arn), 0);
    stratus_sbuf_puts(&body, "&RoleSessionName=");
    stratus_enc_uri(&body, p->session_name, strlen(p->session_name), 0);
    stratus_sbuf_puts(&body, "&WebIdentityToken=");
    stratus_enc_uri(&body, tok, strlen(tok), 0);
    free(tok);
    stratus_http_req_init(&rq, "POST");
    stratus_http_req_url(&rq, "%s", p->sts_url);
    stratus_http_req_header(&rq, "Content-Type", "application/x-www-form-urlencoded");
    stratus_http_req_header(&rq, "Accept", "application/xml");
    stratus_http_req_body(&rq, body.p, body.len);
    if (body.err)
        rq.err = 1;
    rc = s3_creds_call(p, &rq, &rs, "sts AssumeRoleWithWebIdentity", eb);
    if (rc == 0) {
        struct stratus_xml_span doc = {rs.body ? rs.body : "", rs.body_len}, c;
        char ak[128], sk[128], st[4096], exp[64];
        int64_t exp_ms = 0;
        if (stratus_xml_find(doc, "Credentials", &c) < 0 ||
            stratus_xml_get(c, "AccessKeyId", ak, sizeof ak) < 0 ||
            stratus_xml_get(c, "SecretAccessKey", sk, sizeof sk) < 0 ||
            stratus_xml_get(c, "SessionToken", st, sizeof st) < 0 ||
            stratus_xml_get(c, "Expiration", exp, sizeof exp) < 0 ||
            stratus_timefmt_parse_iso8601(exp, &exp_ms) < 0 ||
            s3_creds_set(out, ak, sk, st, exp_ms) < 0)
            rc = stratus_errf(eb, STRATUS_EPROTO, "sts: malformed AssumeRoleWithWebIdentity reply");
    }
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    stratus_sbuf_free(&body);
    return rc;
}

static int
s3_creds_fetch_ecs(struct s3_creds_provider *p, struct s3_creds *out, struct stratus_errbuf *eb)
{
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    stratus_http_req_init(&rq, "GET");
    stratus_http_req_url(&rq, "%s", p->ecs_url);
    char *auth = p->ecs_auth_file ? s3_creds_read_file(p->ecs_auth_file, 16 * 1024) : NULL;
    if (auth || p->ecs_auth)
        stratus_http_req_header(&rq, "Authorization", "%s", auth ? auth : p->ecs_auth);
    free(auth);
    int rc = s3_creds_call(p, &rq, &rs, "ecs credentials", eb);
    if (rc == 0)
        rc = s3_creds_from_json(rs.body ? rs.body : "", rs.body_len, out, eb, "ecs credentials");
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    return rc;
}

static int
s3_creds_fetch_imds(struct s3_creds_provider *p, struct s3_creds *out, struct stratus_errbuf *eb)
{
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char token[1024] = "", role[256] = "";
    /* 1. session token */
    stratus_http_req_init(&rq, "PUT");
    stratus_http_req_url(&rq, "%s/latest/api/token", p->imds_base);
    stratus_http_req_header(&rq, "X-aws-ec2-metadata-token-ttl-seconds", "21600");
    int rc = s3_creds_call(p, &rq, &rs, "imds token", eb);
    if (rc == 0)
        snprintf(token, sizeof token, "%s", rs.body ? rs.body : "");
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    if (rc < 0)
        return rc;
    /* 2. role name */
    stratus_http_req_init(&rq, "GET");
    stratus_http_req_url(&rq, "%s/latest/meta-data/iam/security-credentials/", p->imds_base);
    stratus_http_req_header(&rq, "X-aws-ec2-metadata-token", "%s", token);
    rc = s3_creds_call(p, &rq, &rs, "imds role", eb);
    if (rc == 0) {
        const char *b = rs.body ? rs.body : "";
        size_t n = strcspn(b, "\r\n");
        if (n == 0 || n >= sizeof role)
            rc = stratus_errf(eb, STRATUS_EAUTH, "imds: no IAM role attached");
        else
            memcpy(role, b, n), role[n] = 0;
    }
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    if (rc < 0)
        return rc;
    /* 3. the role's credentials */
    struct stratus_sbuf enc = {0};
    stratus_enc_uri(&enc, role, strlen(role), 0);
    stratus_http_req_init(&rq, "GET");
    stratus_http_req_url(&rq, "%s/latest/meta-data/iam/security-credentials/%s", p->imds_base,
                         stratus_sbuf_str(&enc));
    stratus_sbuf_free(&enc);
    stratus_http_req_header(&rq, "X-aws-ec2-metadata-token", "%s", token);
    rc = s3_creds_call(p, &rq, &rs, "imds credentials", eb);
    if (rc == 0)
        rc = s3_creds_from_json(rs.body ? rs.body : "", rs.body_len, out, eb, "imds credentials");
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    return rc;
}

static int
s3_creds_fetch(struct s3_creds_provider *p, struct s3_creds *out, struct stratus_errbuf *eb)
{
    switch (p->kind) {
    case S3_CREDS_WEB_IDENTITY:
        return s3_creds_fetch_web_identity(p, out, eb);
    case S3_CREDS_ECS:
        return s3_creds_fetch_ecs(p, out, eb);
    case S3_CREDS_IMDS:
        return s3_creds_fetch_imds(p, out, eb);
    default:
        return stratus_errf(eb, STRATUS_EINVAL, "credentials: nothing to fetch");
    }
}

/* ---- provider ----------------------------------------------------------------------------- */

static char *s3_creds_strip_slash(const char *s)
{
    char *d = strdup(s);
    if (d) {
        size_t n = strlen(d);
        while (n && d[n - 1] == '/')
            d[--n] = 0;
    }
    return d;
}

int s3_creds_new(const struct s3_creds_conf *conf,
                 struct s3_creds_provider **out,
                 struct stratus_errbuf *eb)
{
    int rc = 0;
    struct s3_creds_provider *p = calloc(1, sizeof *p);
    *out = NULL;
    if (!p)
        return stratus_errf(eb, STRATUS_ENOMEM, "credentials: out of memory");
    pthread_mutex_init(&p->mu, NULL);
    p->now_ms = conf->now_ms;
    p->now_ctx = conf->now_ctx;

    /* 1. config */
    if (conf->access_key_id && *conf->access_key_id) {
        p->kind = S3_CREDS_CONFIG;
        if (s3_creds_set(&p->cur, conf->access_key_id, conf->secret_access_key, conf->session_token,
                         0) < 0) {
            rc = stratus_errf(eb, STRATUS_EINVAL,
                              "access_key_id is set but secret_access_key is missing or too long");
            goto fail;
        }
        goto done;
    }
    /* 2. environment */
    if (s3_creds_env("AWS_ACCESS_KEY_ID")) {
        p->kind = S3_CREDS_ENV;
        if (s3_creds_set(&p->cur, s3_creds_env("AWS_ACCESS_KEY_ID"),
                         s3_creds_env("AWS_SECRET_ACCESS_KEY"), s3_creds_env("AWS_SESSION_TOKEN"),
                         0) < 0) {
            rc = stratus_errf(eb, STRATUS_EINVAL,
                              "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
            goto fail;
        }
        goto done;
    }
    /* 3. shared credentials file */
    {
        char path[4096];
        const char *profile = conf->profile && *conf->profile ? conf->profile
                              : s3_creds_env("AWS_PROFILE")   ? s3_creds_env("AWS_PROFILE")
                                                              : "default";
        const char *f = s3_creds_env("AWS_SHARED_CREDENTIALS_FILE");
        if (f)
            snprintf(path, sizeof path, "%s", f);
        else if (s3_creds_env("HOME"))
            snprintf(path, sizeof path, "%s/.aws/credentials", s3_creds_env("HOME"));
        else
            path[0] = 0;
        int r = path[0] ? s3_creds_from_file(path, profile, &p->cur) : 0;
        if (r < 0) {
            rc = stratus_errf(eb, STRATUS_EINVAL, "%s [%s]: incomplete or too long keys", path,
                              profile);
            goto fail;
        }
        if (r > 0) {
            p->kind = S3_CREDS_FILE;
            goto done;
        }
    }
    /* 4-6: temporary credentials over HTTP */
    struct stratus_http_opts ho =
        conf->http_opts ? *conf->http_opts : (struct stratus_http_opts){0};
    ho.connect_timeout_ms = 2000;
    ho.stall_timeout_ms = 5000;
    ho.total_timeout_ms = 10000;
    ho.max_idle_handles = 2;
    if ((rc = stratus_http_new(&ho, &p->http, eb)) < 0)
        goto fail;
    if (s3_creds_env("AWS_WEB_IDENTITY_TOKEN_FILE") && s3_creds_env("AWS_ROLE_ARN")) {
        char def[256];
        const char *sts = conf->sts_endpoint && *conf->sts_endpoint
                              ? conf->sts_endpoint
                              : s3_creds_env("AWS_ENDPOINT_URL_STS");
        snprintf(def, sizeof def, "https://sts.%s.amazonaws.com",
                 conf->region && *conf->region ? conf->region : "us-east-1");
        p->kind = S3_CREDS_WEB_IDENTITY;
        p->sts_url = s3_creds_strip_slash(sts ? sts : def);
        p->role_arn = strdup(s3_creds_env("AWS_ROLE_ARN"));
        p->token_file = strdup(s3_creds_env("AWS_WEB_IDENTITY_TOKEN_FILE"));
        p->session_name =
            strdup(s3_creds_env("AWS_ROLE_SESSION_NAME") ? s3_creds_env("AWS_ROLE_SESSION_NAME")
                                                         : "stratus");
        if (!p->sts_url || !p->role_arn || !p->token_file || !p->session_name)
            goto nomem;
        if (p->sts_url[0] && !strstr(p->sts_url, "://")) {
            char *u = NULL;
            if (asprintf(&u, "https://%s", p->sts_url) < 0)
                goto nomem;
            free(p->sts_url);
            p->sts_url = u;
        }
        char *u = NULL;
        if (asprintf(&u, "%s/", p->sts_url) < 0)
            goto nomem;
        free(p->sts_url);
        p->sts_url = u;
    } else if (s3_creds_env("AWS_CONTAINER_CREDENTIALS_FULL_URI") ||
               s3_creds_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
        p->kind = S3_CREDS_ECS;
        if (s3_creds_env("AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
            p->ecs_url = strdup(s3_creds_env("AWS_CONTAINER_CREDENTIALS_FULL_URI"));
        } else if (asprintf(&p->ecs_url, "http://169.254.170.2%s",
                            s3_creds_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) < 0) {
            p->ecs_url = NULL;
        }
        if (!p->ecs_url)
            goto nomem;
        if (s3_creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"))
            p->ecs_auth_file = strdup(s3_creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"));
        else if (s3_creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN"))
            p->ecs_auth = strdup(s3_creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
    } else {
        const char *dis = s3_creds_env("AWS_EC2_METADATA_DISABLED");
        if (dis && strcasecmp(dis, "true") == 0) {
            rc = stratus_errf(eb, STRATUS_EAUTH,
                              "no AWS credentials: none in config, AWS_* env, shared file; "
                              "no web identity or container credentials; IMDS disabled");
            goto fail;
        }
        p->kind = S3_CREDS_IMDS;
        const char *ep = s3_creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
        p->imds_base = s3_creds_strip_slash(ep ? ep : "http://169.254.169.254");
        if (!p->imds_base)
            goto nomem;
    }
    rc = s3_creds_fetch(p, &p->cur, eb);
    if (rc < 0) {
        struct stratus_errbuf e2;
        snprintf(e2.msg, sizeof e2.msg, "%s", eb ? eb->msg : "");
        rc = stratus_errf(eb, rc == STRATUS_EAGAIN && p->kind == S3_CREDS_IMDS ? STRATUS_EAUTH : rc,
                          "no AWS credentials (%s): %s", s3_creds_source(p), e2.msg);
        goto fail;
    }
done:
    *out = p;
    return 0;
nomem:
    rc = stratus_errf(eb, STRATUS_ENOMEM, "credentials: out of memory");
fail:
    s3_creds_free(p);
    return rc;
}

void s3_creds_free(struct s3_creds_provider *p)
{
    if (!p)
        return;
    stratus_http_free(p->http);
    free(p->sts_url);
    free(p->role_arn);
    free(p->token_file);
    free(p->session_name);
    free(p->ecs_url);
    free(p->ecs_auth);
    free(p->ecs_auth_file);
    free(p->imds_base);
    memset(&p->cur, 0, sizeof p->cur);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int s3_creds_get(struct s3_creds_provider *p, struct s3_creds *out, struct stratus_errbuf *eb)
{
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    if (p->kind >= S3_CREDS_WEB_IDENTITY) {
        int64_t now = p->now_ms(p->now_ctx);
        int due =
            p->stale || (p->cur.expires_ms && now >= p->cur.expires_ms - S3_CREDS_REFRESH_EARLY_MS);
        if (due) {
            struct s3_creds fresh;
            rc = s3_creds_fetch(p, &fresh, eb);
            if (rc == 0) {
                p->cur = fresh;
                p->stale = 0;
            } else if (!p->stale && (!p->cur.expires_ms || now < p->cur.expires_ms)) {
                rc = 0; /* keep the still-valid ones; try again next call */
            } else if (rc != STRATUS_EAUTH) {
                rc = STRATUS_EAGAIN;
            }
            memset(&fresh, 0, sizeof fresh);
        }
    }
    if (rc == 0)
        *out = p->cur;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void s3_creds_invalidate(struct s3_creds_provider *p)
{
    pthread_mutex_lock(&p->mu);
    if (p->kind >= S3_CREDS_WEB_IDENTITY)
        p->stale = 1;
    pthread_mutex_unlock(&p->mu);
}

const char *s3_creds_source(const struct s3_creds_provider *p)
{
    static const char *const names[] = {"config",       "env", "shared-file",
                                        "web-identity", "ecs", "imds"};
    return names[p->kind];
}
