/* sigv4.c - AWS Signature Version 4 (see sigv4.h for the canonicalization rules followed).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "sigv4.h"

#include "enc.h"
#include "hash.h"
#include "timefmt.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int stratus_sigv4_url_parts(const char *url,
                            struct stratus_sbuf *host,
                            struct stratus_sbuf *path,
                            struct stratus_sbuf *query)
{
    const char *p = strstr(url, "://");
    if (!p)
        return -1;
    size_t slen = (size_t)(p - url);
    int https = slen == 5 && strncasecmp(url, "https", 5) == 0;
    int http = slen == 4 && strncasecmp(url, "http", 4) == 0;
    p += 3;
    size_t alen = strcspn(p, "/?#");
    const char *auth = p, *aend = p + alen;
    const char *at = NULL;
    for (const char *q = auth; q < aend; q++)
        if (*q == '@')
            at = q;
    if (at)
        auth = at + 1;
    if (auth == aend)
        return -1;
    /* host[:port], host may be [v6] */
    const char *colon = NULL;
    if (*auth == '[') {
        const char *rb = memchr(auth, ']', (size_t)(aend - auth));
        if (!rb)
            return -1;
        if (rb + 1 < aend && rb[1] == ':')
            colon = rb + 1;
    } else {
        colon = memchr(auth, ':', (size_t)(aend - auth));
    }
    size_t hlen = (size_t)((colon ? colon : aend) - auth);
    for (size_t i = 0; i < hlen; i++)
        stratus_sbuf_putc(host, (char)tolower((unsigned char)auth[i]));
    if (colon && colon + 1 < aend) {
        long port = strtol(colon + 1, NULL, 10);
        if (!((https && port == 443) || (http && port == 80)))
            stratus_sbuf_append(host, colon, (size_t)(aend - colon));
    }
    p = aend;
    size_t plen = strcspn(p, "?#");
    if (plen)
        stratus_sbuf_append(path, p, plen);
    else
        stratus_sbuf_putc(path, '/');
    p += plen;
    stratus_sbuf_append(query, "", 0);
    if (*p == '?') {
        p++;
        stratus_sbuf_append(query, p, strcspn(p, "#"));
    }
    return host->err || path->err || query->err ? -1 : 0;
}

struct sigv4_pair {
    const char *k, *v;
    size_t kl, vl;
};

static int sigv4_pair_cmp(const void *a, const void *b)
{
    const struct sigv4_pair *x = a, *y = b;
    size_t n = x->kl < y->kl ? x->kl : y->kl;
    int c = memcmp(x->k, y->k, n);
    if (c || x->kl != y->kl)
        return c ? c : (x->kl < y->kl ? -1 : 1);
    n = x->vl < y->vl ? x->vl : y->vl;
    c = memcmp(x->v, y->v, n);
    if (c || x->vl != y->vl)
        return c ? c : (x->vl < y->vl ? -1 : 1);
    return 0;
}

/* Appends the canonical query string of q (as encoded in the URL) to sb. */
static int sigv4_canon_query(struct stratus_sbuf *sb, const char *q)
{
    if (!*q)
        return 0;
    size_t n = 1;
    for (const char *p = q; *p; p++)
        n += *p == '&';
    struct sigv4_pair *pv = calloc(n, sizeof *pv);
    if (!pv)
        return -1;
    size_t i = 0;
    const char *p = q;
    for (;;) {
        size_t l = strcspn(p, "&");
        const char *eq = memchr(p, '=', l);
        pv[i].k = p;
        pv[i].kl = eq ? (size_t)(eq - p) : l;
        pv[i].v = eq ? eq + 1 : "";
        pv[i].vl = eq ? l - pv[i].kl - 1 : 0;
        i++;
        if (!p[l])
            break;
        p += l + 1;
    }
    qsort(pv, i, sizeof *pv, sigv4_pair_cmp);
    for (size_t j = 0; j < i; j++) {
        if (j)
            stratus_sbuf_putc(sb, '&');
        stratus_sbuf_append(sb, pv[j].k, pv[j].kl);
        stratus_sbuf_putc(sb, '=');
        stratus_sbuf_append(sb, pv[j].v, pv[j].vl);
    }
    free(pv);
    return 0;
}

struct sigv4_hdr {
    char name[128];
    const char *value;
};

static int sigv4_hdr_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sigv4_hdr *)a)->name, ((const struct sigv4_hdr *)b)->name);
}

static int sigv4_skip_header(const char *lname)
{
    /* botocore's SIGNED_HEADERS_BLACKLIST, plus authorization itself */
    static const char *const skip[] = {"authorization",
                                       "connection",
                                       "expect",
                                       "keep-alive",
                                       "proxy-authenticate",
                                       "proxy-authorization",
                                       "te",
                                       "trailer",
                                       "transfer-encoding",
                                       "upgrade",
                                       "user-agent",
                                       "x-amzn-trace-id"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (strcmp(lname, skip[i]) == 0)
            return 1;
    return 0;
}

/* Appends value trimmed, with runs of whitespace collapsed to one space. */
static void sigv4_canon_value(struct stratus_sbuf *sb, const char *v)
{
    int pending = 0, any = 0;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r' || *v == '\f' || *v == '\v') {
            pending = 1;
            continue;
        }
        if (pending && any)
            stratus_sbuf_putc(sb, ' ');
        pending = 0;
        any = 1;
        stratus_sbuf_putc(sb, *v);
    }
}

int stratus_sigv4_sign(struct stratus_http_req *rq,
                       const struct stratus_sigv4_creds *creds,
                       const char *region,
                       const char *service,
                       int64_t now_ms,
                       const char *payload_hash,
                       int flags,
                       struct stratus_sbuf *canon,
                       struct stratus_errbuf *eb)
{
    struct stratus_sbuf host = {0}, path = {0}, query = {0}, cr = {0}, sts = {0}, sh = {0},
                        key = {0};
    struct sigv4_hdr *hv = NULL;
    int rc = 0;
    char amzdate[STRATUS_TIMEFMT_ISO_BASIC_LEN], date[9], phash[65], crhash[65], sig[65];
    uint8_t dig[STRATUS_SHA256_LEN], k[STRATUS_SHA256_LEN];

    if (!creds || !creds->access_key_id || !*creds->access_key_id || !creds->secret_access_key)
        return stratus_errf(eb, STRATUS_EINVAL, "sigv4: no credentials");
    if (!rq->url || stratus_sigv4_url_parts(rq->url, &host, &path, &query) < 0) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "sigv4: cannot parse the URL");
        goto out;
    }
    stratus_timefmt_iso8601_basic(now_ms, amzdate);
    memcpy(date, amzdate, 8);
    date[8] = 0;
    if (payload_hash) {
        snprintf(phash, sizeof phash, "%s", payload_hash);
    } else {
        stratus_hash_sha256(rq->body, rq->body ? rq->body_len : 0, dig);
        stratus_enc_hex(dig, sizeof dig, phash);
    }
    stratus_http_req_header(rq, "Authorization", NULL);
    stratus_http_req_header(rq, "Host", "%s", stratus_sbuf_str(&host));
    stratus_http_req_header(rq, "X-Amz-Date", "%s", amzdate);
    if (creds->session_token && *creds->session_token)
        stratus_http_req_header(rq, "X-Amz-Security-Token", "%s", creds->session_token);
    if (flags & STRATUS_SIGV4_CONTENT_SHA256_HEADER)
        stratus_http_req_header(rq, "X-Amz-Content-SHA256", "%s", phash);
    if (rq->err) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "sigv4: cannot add headers");
        goto out;
    }

    /* canonical headers */
    size_t nh = 0;
    hv = calloc(rq->nhdr ? rq->nhdr : 1, sizeof *hv);
    if (!hv)
        goto nomem;
    for (size_t i = 0; i < rq->nhdr; i++) {
        size_t l = strlen(rq->hdr[i].name);
        if (l >= sizeof hv[0].name)
            continue;
        for (size_t j = 0; j <= l; j++)
            hv[nh].name[j] = (char)tolower((unsigned char)rq->hdr[i].name[j]);
        if (sigv4_skip_header(hv[nh].name))
            continue;
        hv[nh].value = rq->hdr[i].value;
        nh++;
    }
    qsort(hv, nh, sizeof *hv, sigv4_hdr_cmp);

    stratus_sbuf_puts(&cr, rq->method);
    stratus_sbuf_putc(&cr, '\n');
    stratus_sbuf_puts(&cr, stratus_sbuf_str(&path));
    stratus_sbuf_putc(&cr, '\n');
    if (sigv4_canon_query(&cr, stratus_sbuf_str(&query)) < 0)
        goto nomem;
    stratus_sbuf_putc(&cr, '\n');
    for (size_t i = 0; i < nh; i++) {
        stratus_sbuf_puts(&cr, hv[i].name);
        stratus_sbuf_putc(&cr, ':');
        sigv4_canon_value(&cr, hv[i].value);
        stratus_sbuf_putc(&cr, '\n');
        if (i)
            stratus_sbuf_putc(&sh, ';');
        stratus_sbuf_puts(&sh, hv[i].name);
    }
    stratus_sbuf_putc(&cr, '\n');
    stratus_sbuf_puts(&cr, stratus_sbuf_str(&sh));
    stratus_sbuf_putc(&cr, '\n');
    stratus_sbuf_puts(&cr, phash);
    if (cr.err || sh.err)
        goto nomem;

    stratus_hash_sha256(cr.p, cr.len, dig);
    stratus_enc_hex(dig, sizeof dig, crhash);
    stratus_sbuf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amzdate, date,
                        region, service, crhash);
    stratus_sbuf_printf(&key, "AWS4%s", creds->secret_access_key);
    if (sts.err || key.err)
        goto nomem;
    stratus_hash_hmac_sha256(key.p, key.len, date, strlen(date), k);
    stratus_hash_hmac_sha256(k, sizeof k, region, strlen(region), k);
    stratus_hash_hmac_sha256(k, sizeof k, service, strlen(service), k);
    stratus_hash_hmac_sha256(k, sizeof k, "aws4_request", 12, k);
    stratus_hash_hmac_sha256(k, sizeof k, sts.p, sts.len, dig);
    stratus_enc_hex(dig, sizeof dig, sig);
    memset(k, 0, sizeof k);
    if (key.p)
        memset(key.p, 0, key.len);

    if (stratus_http_req_header(rq, "Authorization",
                                "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
                                "SignedHeaders=%s, Signature=%s",
                                creds->access_key_id, date, region, service, stratus_sbuf_str(&sh),
                                sig) < 0)
        goto nomem;
    if (canon) {
        stratus_sbuf_append(canon, cr.p, cr.len);
        stratus_sbuf_puts(canon, "\n----\n");
        stratus_sbuf_append(canon, sts.p, sts.len);
    }
    goto out;
nomem:
    rc = stratus_errf(eb, STRATUS_ENOMEM, "sigv4: out of memory");
out:
    free(hv);
    stratus_sbuf_free(&host);
    stratus_sbuf_free(&path);
    stratus_sbuf_free(&query);
    stratus_sbuf_free(&cr);
    stratus_sbuf_free(&sts);
    stratus_sbuf_free(&sh);
    stratus_sbuf_free(&key);
    return rc;
}
