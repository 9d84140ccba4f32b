/* link: stratus_plugin_common */
/* test_s3_common.c - unit tests of plugins/common (the layer storage-s3, -azblob and -gcs
 * share): digests against published vectors, base64/hex/URI encodings, time formats, the XML
 * and JSON readers, sbuf ceilings, status classification with provider messages, and the HTTP
 * client against a scripted server thread on 127.0.0.1 (keep-alive reuse, a 503 body, a
 * dropped connection, a stall timeout, a body over the caller's buffer, connect refused).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "common/enc.h"
#include "common/hash.h"
#include "common/http.h"
#include "common/json.h"
#include "common/sbuf.h"
#include "common/timefmt.h"
#include "common/xml.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void hexof(const uint8_t *d, size_t n, char *out)
{
    stratus_enc_hex(d, n, out);
}

static void test_hash(void)
{
    uint8_t d[32];
    char hx[65];
    stratus_hash_sha256("abc", 3, d);
    hexof(d, 32, hx);
    CHECK_STR(hx, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    stratus_hash_sha256(NULL, 0, d);
    hexof(d, 32, hx);
    CHECK_STR(hx, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* RFC 4231 test case 2 */
    stratus_hash_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d);
    hexof(d, 32, hx);
    CHECK_STR(hx, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    stratus_hash_md5("", 0, d);
    hexof(d, 16, hx);
    CHECK_STR(hx, "d41d8cd98f00b204e9800998ecf8427e");
    CHECK_EQ(stratus_hash_crc32c(0, "123456789", 9), 0xe3069283u);
    CHECK_EQ(stratus_hash_crc32c(stratus_hash_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
}

static void test_enc(void)
{
    char b[64];
    uint8_t raw[64];
    CHECK_EQ(stratus_enc_base64("", 0, b, sizeof b), 0);
    CHECK_STR(b, "");
    stratus_enc_base64("f", 1, b, sizeof b);
    CHECK_STR(b, "Zg==");
    stratus_enc_base64("fo", 2, b, sizeof b);
    CHECK_STR(b, "Zm8=");
    stratus_enc_base64("foobar", 6, b, sizeof b);
    CHECK_STR(b, "Zm9vYmFy");
    CHECK_EQ(stratus_enc_base64("foobar", 6, b, 8), 0); /* too small */
    long n = stratus_enc_base64_decode("Zm9vYmE=", 8, raw, sizeof raw);
    CHECK(n == 5 && memcmp(raw, "fooba", 5) == 0);
    CHECK_EQ(stratus_enc_base64_decode("Zm9v!", 5, raw, sizeof raw), -1);
    CHECK_EQ(stratus_enc_base64_decode("Zm9vYmFy", 8, raw, 3), -1);
    const char *azkey =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    CHECK_EQ(stratus_enc_base64_decode(azkey, strlen(azkey), raw, sizeof raw), 64);
    stratus_enc_base64(raw, 64, b, 0); /* cap 0: no write */

    struct stratus_sbuf sb = {0};
    const char *k = "a b/c+d=é~_-.*";
    stratus_enc_uri(&sb, k, strlen(k), 1);
    CHECK_STR(stratus_sbuf_str(&sb), "a%20b/c%2Bd%3D%C3%A9~_-.%2A");
    stratus_sbuf_reset(&sb);
    stratus_enc_uri(&sb, k, strlen(k), 0);
    CHECK_STR(stratus_sbuf_str(&sb), "a%20b%2Fc%2Bd%3D%C3%A9~_-.%2A");
    stratus_sbuf_reset(&sb);
    stratus_enc_uri_decode(&sb, "a%20b+c%2B%zz%4", 15, 1);
    CHECK_STR(stratus_sbuf_str(&sb), "a b c+%zz%4");
    stratus_sbuf_free(&sb);

    struct stratus_sbuf cap = {.max = 8};
    stratus_sbuf_puts(&cap, "12345678");
    CHECK(!cap.err);
    stratus_sbuf_putc(&cap, '9');
    CHECK(cap.err);
    stratus_sbuf_printf(&cap, "%d", 1);
    CHECK_EQ(cap.len, 8);
    stratus_sbuf_free(&cap);
}

static void test_time(void)
{
    char b[32];
    int64_t ms;
    stratus_timefmt_iso8601_basic(1369353600000LL, b);
    CHECK_STR(b, "20130524T000000Z");
    stratus_timefmt_rfc1123(1369353600000LL, b);
    CHECK_STR(b, "Fri, 24 May 2013 00:00:00 GMT");
    stratus_timefmt_rfc1123(951782400000LL, b); /* leap day 2000 */
    CHECK_STR(b, "Tue, 29 Feb 2000 00:00:00 GMT");
    stratus_timefmt_iso8601_basic(4102444799000LL, b);
    CHECK_STR(b, "20991231T235959Z");
    CHECK(stratus_timefmt_parse_iso8601("2013-05-24T00:00:00.123Z", &ms) == 0 &&
          ms == 1369353600123LL);
    CHECK(stratus_timefmt_parse_iso8601("2013-05-24T02:00:00+02:00", &ms) == 0 &&
          ms == 1369353600000LL);
    CHECK(stratus_timefmt_parse_iso8601("20130524T000000Z", &ms) == 0 && ms == 1369353600000LL);
    CHECK(stratus_timefmt_parse_iso8601("2013-05-24T00:00:00.5Z", &ms) == 0 &&
          ms == 1369353600500LL);
    CHECK(stratus_timefmt_parse_iso8601("2013-05-24", &ms) < 0);
    CHECK(stratus_timefmt_parse_iso8601("2013-13-24T00:00:00Z", &ms) < 0);
    CHECK(stratus_timefmt_parse_iso8601("garbage", &ms) < 0);
    CHECK(stratus_timefmt_parse_rfc1123("Fri, 24 May 2013 00:00:00 GMT", &ms) == 0 &&
          ms == 1369353600000LL);
    CHECK(stratus_timefmt_parse_rfc1123("Fri, 24 Foo 2013 00:00:00 GMT", &ms) < 0);
    for (int64_t t = 0; t < 4102444800000LL; t += 86400000LL * 37 + 12345000) {
        char iso[32];
        int64_t back;
        stratus_timefmt_rfc1123(t, b);
        CHECK(stratus_timefmt_parse_rfc1123(b, &back) == 0 && back == t / 1000 * 1000);
        stratus_timefmt_iso8601_basic(t, iso);
        CHECK(stratus_timefmt_parse_iso8601(iso, &back) == 0 && back == t / 1000 * 1000);
    }
}

static void test_xml(void)
{
    const char *doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                      "<!-- <Contents>not this</Contents> -->"
                      "<Name>b</Name><IsTruncated>true</IsTruncated>"
                      "<Contents><Key>a&amp;b &lt;c&gt; &#233;&#x4E2D;</Key><Size>12</Size>"
                      "<ETag>&quot;abc&quot;</ETag></Contents>"
                      "<s3:Contents><s3:Key>second</s3:Key><Size>0</Size><Owner/></s3:Contents>"
                      "<NextContinuationToken>tok+/=</NextContinuationToken>"
                      "<Contents><Key><![CDATA[raw <x>&amp;]]></Key></Contents>"
                      "</ListBucketResult>";
    struct stratus_xml_span d = {doc, strlen(doc)}, c, k;
    char out[128];
    const char *cur = NULL;
    int n = 0;
    const char *want[] = {"a&b <c> \xc3\xa9\xe4\xb8\xad", "second", "raw <x>&amp;"};
    while (stratus_xml_next(d, "Contents", &cur, &c) == 0) {
        CHECK(stratus_xml_find(c, "Key", &k) == 0);
        CHECK(stratus_xml_text(k, out, sizeof out) >= 0);
        if (n < 3)
            CHECK_STR(out, want[n]);
        n++;
    }
    CHECK_EQ(n, 3);
    CHECK(stratus_xml_get(d, "ETag", out, sizeof out) == 0);
    CHECK_STR(out, "\"abc\"");
    CHECK(stratus_xml_get(d, "NextContinuationToken", out, sizeof out) == 0);
    CHECK_STR(out, "tok+/=");
    CHECK(stratus_xml_get(d, "Owner", out, sizeof out) == 0);
    CHECK_STR(out, "");
    CHECK(stratus_xml_get(d, "Missing", out, sizeof out) < 0);
    CHECK(stratus_xml_get(d, "Name", out, 1) < 0); /* does not fit */
    /* truncated input: never reads past the span */
    struct stratus_xml_span t = {doc, 120};
    CHECK(stratus_xml_find(t, "Contents", &c) < 0);
    const char *nested = "<A><A>in</A><B>x</B></A>";
    struct stratus_xml_span nd = {nested, strlen(nested)};
    CHECK(stratus_xml_find(nd, "A", &c) == 0 && c.len == strlen("<A>in</A><B>x</B>"));
    struct stratus_sbuf sb = {0};
    stratus_xml_escape(&sb, "a<&>\"'", 6);
    CHECK_STR(stratus_sbuf_str(&sb), "a&lt;&amp;&gt;&quot;&apos;");
    stratus_sbuf_free(&sb);
}

static void test_json(void)
{
    const char *doc =
        "{ \"Code\" : \"Success\", \"n\": 42, \"big\": \"18446744073709\","
        " \"nested\": {\"a\": [1, {\"b\": \"}\"}], \"msg\": \"x\\\"y\\u00e9\\ud83d\\ude00\"},"
        " \"esc\\u0041key\": true, \"arr\": [\"p\", \"q\", {}], \"Expiration\": \"2024\"}";
    size_t len = strlen(doc);
    char out[128];
    int64_t v;
    CHECK(stratus_json_get_str(doc, len, "Code", out, sizeof out) == 0);
    CHECK_STR(out, "Success");
    CHECK(stratus_json_get_int(doc, len, "n", &v) == 0 && v == 42);
    CHECK(stratus_json_get_int(doc, len, "big", &v) == 0 && v == 18446744073709LL);
    CHECK(stratus_json_get_str(doc, len, "nested.msg", out, sizeof out) == 0);
    CHECK_STR(out, "x\"y\xc3\xa9\xf0\x9f\x98\x80");
    struct stratus_json_val jv, e;
    CHECK(stratus_json_get(doc, len, "escAkey", &jv) == 0 && jv.type == STRATUS_JSON_TRUE);
    CHECK(stratus_json_get(doc, len, "arr", &jv) == 0 && jv.type == STRATUS_JSON_ARRAY);
    const char *cur = NULL;
    int n = 0;
    while (stratus_json_next(&jv, &cur, &e) == 0)
        n++;
    CHECK_EQ(n, 3);
    CHECK(stratus_json_get(doc, len, "b", &jv) < 0); /* only top-level members */
    CHECK(stratus_json_get("{\"a\": ", 6, "a", &jv) < 0);
    CHECK(stratus_json_get("[1]", 3, "a", &jv) < 0);
    CHECK(stratus_json_get("{\"a\":1,}", 8, "b", &jv) < 0);
    /* deep nesting is bounded, not a stack overflow */
    char deep[400];
    memset(deep, '[', sizeof deep);
    memcpy(deep, "{\"x\":", 5);
    CHECK(stratus_json_get(deep, sizeof deep, "y", &jv) < 0);
    struct stratus_sbuf sb = {0};
    stratus_json_quote(&sb, "a\"b\\\n", 5);
    CHECK_STR(stratus_sbuf_str(&sb), "\"a\\\"b\\\\\\u000a\"");
    stratus_sbuf_free(&sb);
}

static void test_classify(void)
{
    struct stratus_http_resp rs;
    struct stratus_errbuf eb = {{0}};
    stratus_http_resp_init(&rs);
    rs.status = 200;
    CHECK_EQ(stratus_http_classify(&rs, "x", &eb), 0);
    const struct {
        long st;
        const char *body;
        int want;
        const char *msg;
    } cases[] = {
        {404, "<Error><Code>NoSuchKey</Code><Message>The key does not exist</Message></Error>",
         STRATUS_ENOTFOUND, "get k: HTTP 404 NoSuchKey: The key does not exist"},
        {412, "", STRATUS_EEXIST, "get k: HTTP 412"},
        {409,
         "\xef\xbb\xbf<?xml?><Error><Code>BlobAlreadyExists</Code><Message>The specified blob "
         "already exists.\nRequestId:1</Message></Error>",
         STRATUS_EEXIST, NULL},
        {503,
         "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
         STRATUS_EAGAIN, "get k: HTTP 503 SlowDown: Please reduce your request rate."},
        {429, "", STRATUS_EAGAIN, NULL},
        {500, "", STRATUS_EAGAIN, NULL},
        {502, "", STRATUS_EAGAIN, NULL},
        {504, "", STRATUS_EAGAIN, NULL},
        {400, "<Error><Code>RequestTimeout</Code></Error>", STRATUS_EAGAIN, NULL},
        {400, "<Error><Code>ExpiredToken</Code></Error>", STRATUS_EAUTH, NULL},
        {400, "<Error><Code>InvalidArgument</Code></Error>", STRATUS_EIO, NULL},
        {403, "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
         STRATUS_EAUTH, "get k: HTTP 403 AccessDenied: Access Denied"},
        {401,
         "{\"error\": {\"code\": 401, \"message\": \"Invalid Credentials\", \"status\": "
         "\"UNAUTHENTICATED\"}}",
         STRATUS_EAUTH, "get k: HTTP 401 UNAUTHENTICATED: Invalid Credentials"},
        {400, "{\"error\": \"invalid_grant\", \"error_description\": \"Bad JWT\"}", STRATUS_EIO,
         "get k: HTTP 400 invalid_grant: Bad JWT"},
        {416, "", STRATUS_ERANGE, NULL},
        {301, "", STRATUS_EIO, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        stratus_http_resp_init(&rs);
        rs.status = cases[i].st;
        rs.body = (char *)cases[i].body;
        rs.body_len = strlen(cases[i].body);
        int rc = stratus_http_classify(&rs, "get k", &eb);
        CHECK_EQ(rc, cases[i].want);
        if (cases[i].msg)
            CHECK_STR(eb.msg, cases[i].msg);
    }
}

/* ---- scripted HTTP server ----------------------------------------------------------------- */

enum { SRV_OK, SRV_503, SRV_DROP, SRV_STALL, SRV_BIG, SRV_ECHO };

struct srv {
    int fd, port;
    int script[16];
    int nscript;
    int accepted; /* connections accepted */
    int served;
};

/* Reads one request (headers + Content-Length body); returns the body length or -1. */
static long srv_read_req(int c, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(c, buf + n, cap - 1 - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        buf[n] = 0;
        char *e = strstr(buf, "\r\n\r\n");
        if (e) {
            char *cl = strcasestr(buf, "content-length:");
            long bl = cl ? strtol(cl + 15, NULL, 10) : 0;
            size_t have = n - (size_t)(e + 4 - buf);
            while ((long)have < bl) {
                r = read(c, buf + n, cap - 1 - n);
                if (r <= 0)
                    return -1;
                n += (size_t)r;
                have += (size_t)r;
            }
            return bl;
        }
    }
}

static void srv_write(int c, const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(c, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    static char buf[1 << 16];
    while (s->served < s->nscript) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        s->accepted++;
        int keep = 1;
        while (keep && s->served < s->nscript) {
            long bl = srv_read_req(c, buf, sizeof buf);
            if (bl < 0)
                break;
            int act = s->script[s->served++];
            switch (act) {
            case SRV_OK:
                srv_write(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"e1\"\r\n"
                             "x-amz-request-id: R1\r\n\r\nhello");
                break;
            case SRV_ECHO: {
                char hdr[128];
                snprintf(hdr, sizeof hdr, "HTTP/1.1 200 OK\r\nContent-Length: %ld\r\n\r\n", bl);
                srv_write(c, hdr);
                char *body = strstr(buf, "\r\n\r\n") + 4;
                if (write(c, body, (size_t)bl) < 0)
                    keep = 0;
                break;
            }
            case SRV_503: {
                const char *b = "<Error><Code>SlowDown</Code><Message>Please reduce your "
                                "request rate.</Message></Error>";
                char hdr[128];
                snprintf(hdr, sizeof hdr, "HTTP/1.1 503 Slow Down\r\nContent-Length: %zu\r\n\r\n",
                         strlen(b));
                srv_write(c, hdr);
                srv_write(c, b);
            } break;
            case SRV_DROP:
                keep = 0;
                break;
            case SRV_STALL: /* say nothing until the client gives up and closes */
                while (read(c, buf, sizeof buf) > 0)
                    ;
                keep = 0;
                break;
            case SRV_BIG:
                srv_write(c, "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n01234567890123456789");
                break;
            }
        }
        close(c);
    }
    return NULL;
}

static void test_http(void)
{
    struct srv s = {0};
    s.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CHECK(bind(s.fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(s.fd, 8) == 0);
    getsockname(s.fd, (struct sockaddr *)&a, &al);
    s.port = ntohs(a.sin_port);
    /* curl silently retries once a request whose reused connection died: two drops */
    int script[] = {SRV_OK,   SRV_ECHO, SRV_OK,    SRV_503, SRV_DROP,
                    SRV_DROP, SRV_BIG,  SRV_STALL, SRV_OK};
    memcpy(s.script, script, sizeof script);
    s.nscript = (int)(sizeof script / sizeof script[0]);
    pthread_t th;
    pthread_create(&th, NULL, srv_main, &s);

    struct stratus_http *h = NULL;
    struct stratus_errbuf eb = {{0}};
    struct stratus_http_opts o = {.stall_timeout_ms = 1000, .connect_timeout_ms = 2000};
    CHECK_EQ(stratus_http_new(&o, &h, &eb), 0);
    struct stratus_http_req rq;
    struct stratus_http_resp rs;
    char dst[8];

    /* 1. 200 with a body into the growable buffer, headers captured */
    stratus_http_req_init(&rq, "GET");
    stratus_http_req_url(&rq, "http://127.0.0.1:%d/k?secret=sas", s.port);
    stratus_http_resp_init(&rs);
    CHECK_EQ(stratus_http_do(h, &rq, &rs, &eb), 0);
    CHECK_EQ(rs.status, 200);
    CHECK(rs.body_len == 5 && memcmp(rs.body, "hello", 5) == 0);
    CHECK_STR(stratus_http_resp_header(&rs, "ETag"), "\"e1\"");
    CHECK_STR(stratus_http_resp_header(&rs, "x-amz-request-id"), "R1");
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);

    /* 2. PUT body echoed (octet-stream, exact bytes incl. NULs), same connection */
    stratus_http_req_init(&rq, "PUT");
    stratus_http_req_url(&rq, "http://127.0.0.1:%d/k", s.port);
    stratus_http_req_body(&rq, "a\0b\0c", 5);
    CHECK_STR(stratus_http_req_get_header(&rq, "content-type"), "application/octet-stream");
    stratus_http_resp_init(&rs);
    CHECK_EQ(stratus_http_do(h, &rq, &rs, &eb), 0);
    CHECK(rs.body_len == 5 && memcmp(rs.body, "a\0b\0c", 5) == 0);
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);

    /* 3. into a caller buffer */
    stratus_http_req_init(&rq, "GET");
    stratus_http_req_url(&rq, "http://127.0.0.1:%d/k", s.port);
    stratus_http_req_range(&rq, 10, 5);
    CHECK_STR(stratus_http_req_get_header(&rq, "Range"), "bytes=10-14");
    stratus_http_resp_init(&rs);
    rs.dst = dst;
    rs.dst_cap = sizeof dst;
    CHECK_EQ(stratus_http_do(h, &rq, &rs, &eb), 0);
    CHECK(rs.dst_len == 5 && memcmp(dst, "hello", 5) == 0 && rs.body_len == 0);
    CHECK_EQ(s.accepted, 1); /* three calls, one keep-alive connection */

    /* 4. 503: error body kept apart from dst, classified with the provider code */
    CHECK_EQ(stratus_http_do(h, &rq, &rs, &eb), 0);
    CHECK_EQ(rs.status, 503);
    CHECK_EQ(rs.dst_len, 0);
    CHECK_EQ(stratus_http_classify(&rs, "get k", &eb), STRATUS_EAGAIN);
    CHECK(strstr(eb.msg, "SlowDown") != NULL);

    /* 5. connection dropped without a reply (twice): retryable */
    CHECK_EQ(stratus_http_do(h, &rq, &rs, &eb), STRATUS_EAGAIN);
    CHECK(strstr(eb.msg, "secret=sas") == NULL);

    /* 6. body larger than the caller's buffer */
    rs.dst_cap = 8;
    CHECK_EQ(stratus_http_do(h, &rq, &rs, &eb), STRATUS_EPROTO);

    /* 7. no byte for longer than the stall timeout: retryable */
    CHECK_EQ(stratus_http_do(h, &rq, &rs, &eb), STRATUS_EAGAIN);
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);

    /* 8. still usable afterwards */
    stratus_http_req_init(&rq, "GET");
    stratus_http_req_url(&rq, "http://127.0.0.1:%d/k", s.port);
    stratus_http_resp_init(&rs);
    CHECK_EQ(stratus_http_do(h, &rq, &rs, &eb), 0);
    CHECK_EQ(rs.status, 200);
    stratus_http_resp_free(&rs);
    stratus_http_req_free(&rq);
    pthread_join(th, NULL);
    close(s.fd);

    /* 9. connection refused (the port is closed now) */
    stratus_http_req_init(&rq, "GET");
    stratus_http_req_url(&rq, "http://127.0.0.1:%d/k", s.port);
    stratus_http_resp_init(&rs);
    CHECK_EQ(stratus_http_do(h, &rq, &rs, &eb), STRATUS_EAGAIN);
    stratus_http_req_free(&rq);
    /* 10. header injection is refused and poisons the request */
    stratus_http_req_init(&rq, "GET");
    stratus_http_req_url(&rq, "http://127.0.0.1:%d/k", s.port);
    CHECK_EQ(stratus_http_req_header(&rq, "If-Match", "x\r\nEvil: 1"), STRATUS_EINVAL);
    CHECK_EQ(stratus_http_do(h, &rq, &rs, &eb), STRATUS_EINVAL);
    stratus_http_req_free(&rq);
    /* 11. bad scheme */
    stratus_http_req_init(&rq, "GET");
    stratus_http_req_url(&rq, "ftp://127.0.0.1/k");
    CHECK_EQ(stratus_http_do(h, &rq, &rs, &eb), STRATUS_EINVAL);
    stratus_http_req_free(&rq);
    stratus_http_resp_free(&rs);
    stratus_http_free(h);
}

int main(void)
{
    test_hash();
    test_enc();
    test_time();
    test_xml();
    test_json();
    test_classify();
    test_http();
    TEST_REPORT();
}
