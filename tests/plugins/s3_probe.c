/* s3_probe.c - a test helper (not a test itself) that drives the S3 pieces of plugins/common
 * and plugins/storage-s3 directly, below the plugin ABI, for the Python tests:
 *   s3_probe sign    reads one JSON request per stdin line and prints, per line, the
 *                    Authorization header the C signer produced (tests/plugins/test_s3_sigv4.py
 *                    compares it with botocore). Input members: method, url, headers
 *                    ([[name, value], ...]), body_hex, akid, secret, token, region, service,
 *                    now_ms, unsigned_payload (bool), sha_header (bool).
 *   s3_probe creds [--profile P] [--region R] [--sts-endpoint URL] [--now MS] [--then MS]
 *                    resolves the credentials chain (env as set by the caller) and prints
 *                    "source akid secret token expires_ms" at --now and, when given, again
 *                    at --then (tests/plugins/test_s3_creds.py).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "common/json.h"
#include "common/sigv4.h"
#include "s3_creds.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int probe_hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int probe_sign_line(const char *line, size_t len)
{
    static char method[16], url[8192], akid[128], secret[128], token[2048], region[64], service[64],
        hexbody[65536], name[256], value[4096];
    static unsigned char body[32768];
    struct stratus_json_val v, hv, pair, e;
    int64_t now = 0;
    if (stratus_json_get_str(line, len, "method", method, sizeof method) < 0 ||
        stratus_json_get_str(line, len, "url", url, sizeof url) < 0 ||
        stratus_json_get_str(line, len, "akid", akid, sizeof akid) < 0 ||
        stratus_json_get_str(line, len, "secret", secret, sizeof secret) < 0 ||
        stratus_json_get_str(line, len, "region", region, sizeof region) < 0 ||
        stratus_json_get_str(line, len, "service", service, sizeof service) < 0 ||
        stratus_json_get_int(line, len, "now_ms", &now) < 0)
        return -1;
    token[0] = 0;
    stratus_json_get_str(line, len, "token", token, sizeof token);
    hexbody[0] = 0;
    stratus_json_get_str(line, len, "body_hex", hexbody, sizeof hexbody);
    size_t blen = strlen(hexbody) / 2;
    for (size_t i = 0; i < blen; i++)
        body[i] =
            (unsigned char)(probe_hexval(hexbody[2 * i]) << 4 | probe_hexval(hexbody[2 * i + 1]));
    int unsigned_payload =
        stratus_json_get(line, len, "unsigned_payload", &v) == 0 && v.type == STRATUS_JSON_TRUE;
    int sha_header =
        stratus_json_get(line, len, "sha_header", &v) == 0 && v.type == STRATUS_JSON_TRUE;

    struct stratus_http_req rq;
    stratus_http_req_init(&rq, method);
    stratus_http_req_url(&rq, "%s", url);
    if (stratus_json_get(line, len, "headers", &hv) == 0) {
        const char *cur = NULL;
        while (stratus_json_next(&hv, &cur, &pair) == 0) {
            const char *c2 = NULL;
            if (stratus_json_next(&pair, &c2, &e) < 0 ||
                stratus_json_str(&e, name, sizeof name) < 0 ||
                stratus_json_next(&pair, &c2, &e) < 0 ||
                stratus_json_str(&e, value, sizeof value) < 0)
                return -1;
            stratus_http_req_header(&rq, name, "%s", value);
        }
    }
    if (blen || strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
        rq.body = body;
        rq.body_len = blen;
    }
    struct stratus_sigv4_creds cr = {akid, secret, token};
    struct stratus_errbuf eb = {{0}};
    struct stratus_sbuf canon = {0};
    int rc = stratus_sigv4_sign(&rq, &cr, region, service, now,
                                unsigned_payload ? STRATUS_SIGV4_UNSIGNED_PAYLOAD : NULL,
                                sha_header ? STRATUS_SIGV4_CONTENT_SHA256_HEADER : 0, &canon, &eb);
    if (rc < 0) {
        printf("ERROR %s\n", eb.msg);
    } else {
        const char *a = stratus_http_req_get_header(&rq, "Authorization");
        printf("%s\t", a ? a : "");
        for (const char *p = stratus_sbuf_str(&canon); *p; p++)
            if (*p == '\n')
                fputs("\\n", stdout);
            else
                putchar(*p);
        putchar('\n');
    }
    fflush(stdout);
    stratus_sbuf_free(&canon);
    stratus_http_req_free(&rq);
    return 0;
}

static int64_t probe_clock_ms;
static int64_t probe_now(void *ctx)
{
    (void)ctx;
    return probe_clock_ms;
}

static void probe_print(struct s3_creds_provider *p)
{
    struct s3_creds c;
    struct stratus_errbuf eb = {{0}};
    int rc = s3_creds_get(p, &c, &eb);
    if (rc < 0)
        printf("ERROR %s %s\n", stratus_err_name(rc), eb.msg);
    else
        printf("%s %s %s %s %" PRId64 "\n", s3_creds_source(p), c.access_key_id,
               c.secret_access_key, c.session_token[0] ? c.session_token : "-", c.expires_ms);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "sign") == 0) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, stdin)) > 0) {
            if (probe_sign_line(line, (size_t)n) < 0) {
                printf("ERROR bad input line\n");
                fflush(stdout);
            }
        }
        free(line);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "creds") == 0) {
        struct s3_creds_conf cc = {.region = "us-east-1", .now_ms = probe_now};
        int64_t then = -1;
        probe_clock_ms = 1700000000000LL;
        for (int i = 2; i + 1 < argc; i += 2) {
            if (strcmp(argv[i], "--profile") == 0)
                cc.profile = argv[i + 1];
            else if (strcmp(argv[i], "--region") == 0)
                cc.region = argv[i + 1];
            else if (strcmp(argv[i], "--sts-endpoint") == 0)
                cc.sts_endpoint = argv[i + 1];
            else if (strcmp(argv[i], "--now") == 0)
                probe_clock_ms = strtoll(argv[i + 1], NULL, 10);
            else if (strcmp(argv[i], "--then") == 0)
                then = strtoll(argv[i + 1], NULL, 10);
        }
        struct s3_creds_provider *p = NULL;
        struct stratus_errbuf eb = {{0}};
        int rc = s3_creds_new(&cc, &p, &eb);
        if (rc < 0) {
            printf("ERROR %s %s\n", stratus_err_name(rc), eb.msg);
            return 0;
        }
        probe_print(p);
        if (then >= 0) {
            probe_clock_ms = then;
            probe_print(p);
        }
        s3_creds_free(p);
        return 0;
    }
    fprintf(stderr, "usage: s3_probe sign | creds [...]\n");
    return 2;
}
