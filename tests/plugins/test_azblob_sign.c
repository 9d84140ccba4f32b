/* link: stratus_azblob_auth stratus_plugin_common */
/* test_azblob_sign.c - unit tests of storage-azblob's Shared Key signer
 * (plugins/storage-azblob/azblob_auth.c): the string-to-sign of Put Blob, List Blobs, Delete
 * Blob, Create Container and Put Block requests, written out here from Azure's "Authorize with
 * Shared Key" rules (standard headers in their fixed order, a zero Content-Length signed as
 * "", x-ms-* headers lowercased/sorted/whitespace-collapsed, the canonicalized resource with
 * decoded, sorted, comma-joined query parameters, the path-style Azurite account doubled), and
 * one Authorization header whose HMAC was computed independently (Python hmac/hashlib) with the
 * Azurite dev account key. The signer is also proven live by tests/plugins/test_azblob.py:
 * Azurite checks every signature.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "azblob_auth.h"
#include "common/enc.h"
#include "test.h"

#include <stdlib.h>

#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define DATE "Tue, 02 Jan 2024 03:04:05 GMT"
#define BASE "http://127.0.0.1:10000/devstoreaccount1"

static void common_headers(struct stratus_http_req *rq)
{
    stratus_http_req_header(rq, "x-ms-version", "2021-08-06");
    stratus_http_req_header(rq, "x-ms-date", DATE);
}

/* The string-to-sign of rq for account devstoreaccount1, compared with want. */
static void check_sts(struct stratus_http_req *rq, const char *want)
{
    struct stratus_sbuf sb = {0};
    struct stratus_errbuf eb = {{0}};
    int rc = azblob_sharedkey_string_to_sign(rq, "devstoreaccount1", &sb, &eb);
    CHECK_EQ(rc, 0);
    CHECK_STR(stratus_sbuf_str(&sb), want);
    stratus_sbuf_free(&sb);
}

static void test_put_blob(void)
{
    struct stratus_http_req rq;
    struct stratus_errbuf eb = {{0}};
    uint8_t key[64];
    stratus_http_req_init(&rq, "PUT");
    stratus_http_req_url(&rq, BASE "/cont/a%%20b/c");
    stratus_http_req_body(&rq, "hello", 5);
    stratus_http_req_header(&rq, "Content-MD5", "XUFAKrxLKna5cZ2REBfFkg==");
    stratus_http_req_header(&rq, "x-ms-blob-type", "BlockBlob");
    stratus_http_req_header(&rq, "If-None-Match", "*");
    common_headers(&rq);
    const char *want =
        "PUT\n\n\n5\nXUFAKrxLKna5cZ2REBfFkg==\napplication/octet-stream\n\n\n\n*\n\n\n"
        "x-ms-blob-type:BlockBlob\nx-ms-date:" DATE "\nx-ms-version:2021-08-06\n"
        "/devstoreaccount1/devstoreaccount1/cont/a%20b/c";
    check_sts(&rq, want);
    long n = stratus_enc_base64_decode(DEV_KEY, strlen(DEV_KEY), key, sizeof key);
    CHECK_EQ(n, 64);
    CHECK_EQ(azblob_sharedkey_sign(&rq, "devstoreaccount1", key, (size_t)n, &eb), 0);
    /* python3: base64(hmac(b64decode(DEV_KEY), want, sha256)) */
    CHECK_STR(stratus_http_req_get_header(&rq, "Authorization"),
              "SharedKey devstoreaccount1:jBjcx5/0kLp9DSyAZzkBLH242dDl8/a5jOAPNLevIJw=");
    stratus_http_req_free(&rq);
}

static void test_list(void)
{
    struct stratus_http_req rq;
    stratus_http_req_init(&rq, "GET");
    stratus_http_req_url(&rq, "https://acct.blob.core.windows.net/cont?restype=container&comp=list"
                              "&maxresults=3&prefix=a%%2Fb%%20c&marker=2%%21x&Include=metadata"
                              "&include=snapshots");
    common_headers(&rq);
    check_sts(&rq, "GET\n\n\n\n\n\n\n\n\n\n\n\n"
                   "x-ms-date:" DATE "\nx-ms-version:2021-08-06\n"
                   "/devstoreaccount1/cont\ncomp:list\ninclude:metadata,snapshots\nmarker:2!x\n"
                   "maxresults:3\nprefix:a/b c\nrestype:container");
    stratus_http_req_free(&rq);
}

static void test_delete_and_ranges(void)
{
    struct stratus_http_req rq;
    stratus_http_req_init(&rq, "DELETE");
    stratus_http_req_url(&rq, BASE "/cont/k");
    stratus_http_req_header(&rq, "x-ms-delete-snapshots", "include");
    stratus_http_req_header(&rq, "X-MS-Meta-Odd", "  a   b \t c  ");
    common_headers(&rq);
    check_sts(&rq, "DELETE\n\n\n\n\n\n\n\n\n\n\n\n"
                   "x-ms-date:" DATE "\nx-ms-delete-snapshots:include\nx-ms-meta-odd:a b c\n"
                   "x-ms-version:2021-08-06\n/devstoreaccount1/devstoreaccount1/cont/k");
    stratus_http_req_free(&rq);

    stratus_http_req_init(&rq, "GET");
    stratus_http_req_url(&rq, BASE "/cont/k");
    stratus_http_req_range(&rq, 10, 5);                      /* standard Range is a fixed line */
    stratus_http_req_header(&rq, "x-ms-range", "bytes=0-9"); /* x-ms-range is canonicalized */
    stratus_http_req_header(&rq, "If-Match", "\"0x8D\"");
    common_headers(&rq);
    check_sts(&rq, "GET\n\n\n\n\n\n\n\n\"0x8D\"\n\n\nbytes=10-14\n"
                   "x-ms-date:" DATE "\nx-ms-range:bytes=0-9\nx-ms-version:2021-08-06\n"
                   "/devstoreaccount1/devstoreaccount1/cont/k");
    stratus_http_req_free(&rq);
}

static void test_empty_bodies(void)
{
    struct stratus_http_req rq;
    /* PUT without a body: Content-Length 0 is signed as "", the HTTP layer's default
     * Content-Type is signed */
    stratus_http_req_init(&rq, "PUT");
    stratus_http_req_url(&rq, BASE "/cont?restype=container");
    common_headers(&rq);
    check_sts(&rq, "PUT\n\n\n\n\napplication/octet-stream\n\n\n\n\n\n\n"
                   "x-ms-date:" DATE "\nx-ms-version:2021-08-06\n"
                   "/devstoreaccount1/devstoreaccount1/cont\nrestype:container");
    stratus_http_req_free(&rq);

    /* Put Block: the block id's base64 is decoded in the resource; explicit Content-Type */
    stratus_http_req_init(&rq, "PUT");
    stratus_http_req_url(&rq, BASE "/cont/big?comp=block&blockid=YWJj%%2BZA%%3D%%3D");
    stratus_http_req_header(&rq, "Content-Type", "application/xml");
    stratus_http_req_body(&rq, "", 0);
    common_headers(&rq);
    check_sts(&rq, "PUT\n\n\n\n\napplication/xml\n\n\n\n\n\n\n"
                   "x-ms-date:" DATE "\nx-ms-version:2021-08-06\n"
                   "/devstoreaccount1/devstoreaccount1/cont/big\nblockid:YWJj+ZA==\ncomp:block");
    stratus_http_req_free(&rq);

    /* a bad URL is refused */
    struct stratus_sbuf sb = {0};
    struct stratus_errbuf eb = {{0}};
    stratus_http_req_init(&rq, "GET");
    stratus_http_req_url(&rq, "not a url");
    CHECK_EQ(azblob_sharedkey_string_to_sign(&rq, "a", &sb, &eb), STRATUS_EINVAL);
    stratus_http_req_free(&rq);
    stratus_sbuf_free(&sb);
}

int main(void)
{
    test_put_blob();
    test_list();
    test_delete_and_ranges();
    test_empty_bodies();
    TEST_REPORT();
}
