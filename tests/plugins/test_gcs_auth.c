/* link: stratus_gcs_auth stratus_plugin_common */
/* test_gcs_auth.c - unit tests of plugins/storage-gcs/gcs_auth.c below the plugin ABI: the
 * RS256 JWT of the service-account flow (decoded and checked claim by claim, its signature
 * verified with OpenSSL against the key's public half, a tampered token refused), key-file
 * errors, mode selection (auth = auto, GOOGLE_APPLICATION_CREDENTIALS, GCE_METADATA_HOST), the
 * static and none modes, and an unreachable metadata server classified as transient.
 * The token exchange itself is tested against tests/plugins/gcs_server.py by
 * test_gcs_conformance.py.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/enc.h"
#include "common/json.h"
#include "common/sbuf.h"
#include "gcs_auth.h"
#include "test.h"

static char dir[256];

static int64_t fixed_now(void *ctx)
{
    (void)ctx;
    return 1700000000123LL;
}

static struct stratus_http_opts hopts = {.connect_timeout_ms = 2000, .stall_timeout_ms = 2000};

static int new_auth(const char *mode, const char *file, const char *token, const char *md,
                    struct gcs_auth **a, struct stratus_errbuf *eb)
{
    struct gcs_auth_conf c = {.mode = mode, .credentials_file = file, .token = token,
                              .metadata_endpoint = md, .now_ms = fixed_now, .http_opts = &hopts};
    return gcs_auth_new(&c, a, eb);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* Writes a service-account key file holding pkey; returns 0. */
static void write_key(const char *path, EVP_PKEY *pkey, const char *type)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, pkey, NULL, NULL, 0, NULL, NULL);
    char *pem = NULL;
    long n = BIO_get_mem_data(b, &pem);
    struct stratus_sbuf sb = {0};
    stratus_sbuf_printf(&sb, "{\"type\": \"%s\", \"project_id\": \"p\", \"private_key_id\": "
                             "\"kid-123\", \"private_key\": ",
                        type);
    stratus_json_quote(&sb, pem, (size_t)n);
    stratus_sbuf_puts(&sb, ", \"client_email\": \"sa@p.iam.gserviceaccount.com\", "
                           "\"token_uri\": \"http://127.0.0.1:1/token\"}");
    write_file(path, stratus_sbuf_str(&sb));
    stratus_sbuf_free(&sb);
    BIO_free(b);
}

/* base64url (no padding) -> bytes, NUL-terminated; length or -1. */
static long b64url(const char *s, size_t n, char *out, size_t cap)
{
    char tmp[4096];
    if (n + 4 > sizeof tmp)
        return -1;
    size_t i;
    for (i = 0; i < n; i++)
        tmp[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    while (i % 4)
        tmp[i++] = '=';
    long k = stratus_enc_base64_decode(tmp, i, (uint8_t *)out, cap - 1);
    if (k >= 0)
        out[k] = 0;
    return k;
}

static int verify(EVP_PKEY *pkey, const char *jwt)
{
    const char *dot2 = strrchr(jwt, '.');
    unsigned char sig[1024];
    long sl = b64url(dot2 + 1, strlen(dot2 + 1), (char *)sig, sizeof sig);
    if (sl <= 0)
        return 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
             EVP_DigestVerify(md, sig, (size_t)sl, (const unsigned char *)jwt,
                              (size_t)(dot2 - jwt)) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

static void test_jwt(EVP_PKEY *pkey, const char *keyfile)
{
    struct stratus_errbuf eb = {{0}};
    struct gcs_auth *a = NULL;
    char *jwt = NULL;
    CHECK_EQ(new_auth("service_account", keyfile, NULL, NULL, &a, &eb), 0);
    if (!a)
        return;
    CHECK(strstr(gcs_auth_describe(a), "sa@p.iam.gserviceaccount.com") != NULL);
    CHECK_EQ(gcs_auth_mode(a), GCS_AUTH_SERVICE_ACCOUNT);
    CHECK_EQ(gcs_auth_make_jwt(a, 1700000000, &jwt, &eb), 0);
    if (!jwt) {
        gcs_auth_free(a);
        return;
    }
    const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    CHECK(d1 && d2 && !strchr(d2 + 1, '.'));
    CHECK(strcspn(jwt, "+/= ") == strlen(jwt)); /* base64url, unpadded */
    char hdr[512], cl[1024], s[256];
    int64_t v;
    CHECK(b64url(jwt, (size_t)(d1 - jwt), hdr, sizeof hdr) > 0);
    CHECK(b64url(d1 + 1, (size_t)(d2 - d1 - 1), cl, sizeof cl) > 0);
    CHECK(stratus_json_get_str(hdr, strlen(hdr), "alg", s, sizeof s) == 0);
    CHECK_STR(s, "RS256");
    CHECK(stratus_json_get_str(hdr, strlen(hdr), "typ", s, sizeof s) == 0);
    CHECK_STR(s, "JWT");
    CHECK(stratus_json_get_str(hdr, strlen(hdr), "kid", s, sizeof s) == 0);
    CHECK_STR(s, "kid-123");
    CHECK(stratus_json_get_str(cl, strlen(cl), "iss", s, sizeof s) == 0);
    CHECK_STR(s, "sa@p.iam.gserviceaccount.com");
    CHECK(stratus_json_get_str(cl, strlen(cl), "aud", s, sizeof s) == 0);
    CHECK_STR(s, "http://127.0.0.1:1/token");
    CHECK(stratus_json_get_str(cl, strlen(cl), "scope", s, sizeof s) == 0);
    CHECK_STR(s, "https://www.googleapis.com/auth/devstorage.read_write");
    CHECK(stratus_json_get_int(cl, strlen(cl), "iat", &v) == 0 && v == 1700000000);
    CHECK(stratus_json_get_int(cl, strlen(cl), "exp", &v) == 0 && v == 1700003600);
    CHECK(verify(pkey, jwt));
    /* a changed claim breaks the signature */
    char *bad = strdup(jwt);
    bad[(d1 - jwt) + 5] = bad[(d1 - jwt) + 5] == 'A' ? 'B' : 'A';
    CHECK(!verify(pkey, bad));
    free(bad);
    free(jwt);
    /* the token fetch goes to the key's token_uri (port 1: refused) -> transient */
    char hv[64];
    int rc = gcs_auth_header(a, hv, sizeof hv, &eb);
    CHECK_EQ(rc, STRATUS_EAGAIN);
    CHECK(strstr(eb.msg, "token exchange") != NULL);
    gcs_auth_free(a);
}

static void test_errors(EVP_PKEY *pkey)
{
    struct stratus_errbuf eb = {{0}};
    struct gcs_auth *a = NULL;
    char p[512];
    snprintf(p, sizeof p, "%s/missing.json", dir);
    CHECK_EQ(new_auth("service_account", p, NULL, NULL, &a, &eb), STRATUS_EINVAL);
    CHECK(a == NULL && strstr(eb.msg, "missing.json") != NULL);
    snprintf(p, sizeof p, "%s/user.json", dir);
    write_key(p, pkey, "authorized_user");
    CHECK_EQ(new_auth("service_account", p, NULL, NULL, &a, &eb), STRATUS_EINVAL);
    CHECK(strstr(eb.msg, "authorized_user") != NULL);
    snprintf(p, sizeof p, "%s/badpem.json", dir);
    write_file(p, "{\"type\":\"service_account\",\"client_email\":\"x@y\",\"private_key\":"
                  "\"-----BEGIN PRIVATE KEY-----\\nnonsense\\n-----END PRIVATE KEY-----\\n\"}");
    CHECK_EQ(new_auth("service_account", p, NULL, NULL, &a, &eb), STRATUS_EINVAL);
    CHECK(strstr(eb.msg, "not a PEM RSA private key") != NULL);
    snprintf(p, sizeof p, "%s/notjson.json", dir);
    write_file(p, "hello");
    CHECK_EQ(new_auth("service_account", p, NULL, NULL, &a, &eb), STRATUS_EINVAL);
    CHECK_EQ(new_auth("token", NULL, NULL, NULL, &a, &eb), STRATUS_EINVAL);
    CHECK_EQ(new_auth("kerberos", NULL, NULL, NULL, &a, &eb), STRATUS_EINVAL);
    CHECK(strstr(eb.msg, "kerberos") != NULL);
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    CHECK_EQ(new_auth("service_account", NULL, NULL, NULL, &a, &eb), STRATUS_EINVAL);
    CHECK(strstr(eb.msg, "GOOGLE_APPLICATION_CREDENTIALS") != NULL);
}

static void test_modes(const char *keyfile)
{
    struct stratus_errbuf eb = {{0}};
    struct gcs_auth *a = NULL;
    char hv[128];
    CHECK_EQ(new_auth("none", NULL, NULL, NULL, &a, &eb), 0);
    CHECK(a && gcs_auth_header(a, hv, sizeof hv, &eb) == 0 && hv[0] == 0);
    CHECK_EQ(gcs_auth_invalidate(a, ""), 0);
    gcs_auth_free(a);
    CHECK_EQ(new_auth("token", NULL, "tok-1", NULL, &a, &eb), 0);
    CHECK(a && gcs_auth_header(a, hv, sizeof hv, &eb) == 0);
    CHECK_STR(hv, "Bearer tok-1");
    CHECK_EQ(gcs_auth_invalidate(a, hv), 0); /* nothing to refresh */
    gcs_auth_free(a);

    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    unsetenv("GCE_METADATA_HOST");
    CHECK_EQ(new_auth(NULL, NULL, NULL, NULL, &a, &eb), 0);
    CHECK(a && gcs_auth_mode(a) == GCS_AUTH_METADATA);
    CHECK(a && strstr(gcs_auth_describe(a), "http://metadata.google.internal") != NULL);
    gcs_auth_free(a);
    setenv("GCE_METADATA_HOST", "127.0.0.1:1", 1);
    CHECK_EQ(new_auth("metadata", NULL, NULL, NULL, &a, &eb), 0);
    CHECK(a && strstr(gcs_auth_describe(a), "http://127.0.0.1:1") != NULL);
    /* nothing listens there: transient, not an auth failure */
    CHECK_EQ(gcs_auth_header(a, hv, sizeof hv, &eb), STRATUS_EAGAIN);
    CHECK(strstr(eb.msg, "metadata server") != NULL);
    gcs_auth_free(a);
    CHECK_EQ(new_auth("metadata", NULL, NULL, "http://10.9.8.7:99/", &a, &eb), 0);
    CHECK(a && strstr(gcs_auth_describe(a), "http://10.9.8.7:99") != NULL);
    gcs_auth_free(a);
    unsetenv("GCE_METADATA_HOST");

    setenv("GOOGLE_APPLICATION_CREDENTIALS", keyfile, 1);
    CHECK_EQ(new_auth("auto", NULL, NULL, NULL, &a, &eb), 0);
    CHECK(a && gcs_auth_mode(a) == GCS_AUTH_SERVICE_ACCOUNT);
    gcs_auth_free(a);
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/stratus-gcs-auth-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    EVP_PKEY *pkey = EVP_RSA_gen(2048);
    CHECK(pkey != NULL);
    char keyfile[512];
    snprintf(keyfile, sizeof keyfile, "%s/sa.json", dir);
    if (pkey) {
        write_key(keyfile, pkey, "service_account");
        test_jwt(pkey, keyfile);
        test_errors(pkey);
        test_modes(keyfile);
    }
    EVP_PKEY_free(pkey);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    TEST_REPORT();
}
