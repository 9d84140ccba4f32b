/* json.c - the allocation-free JSON member reader (see json.h). Values are located by a
 * skipping scanner that checks structure as it goes; nesting is bounded (64 levels).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "json.h"

#include "sbuf.h"

#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

static const char *json_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* Skips a string starting at its opening quote; returns the char after the closing quote. */
static const char *json_skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
            continue;
        }
        if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* Skips one value at p (after whitespace); sets its type. NULL when malformed. */
static const char *json_skip_value(const char *p, const char *end, int *type, int depth)
{
    p = json_ws(p, end);
    if (p >= end || depth > JSON_MAX_DEPTH)
        return NULL;
    switch (*p) {
    case '"':
        *type = STRATUS_JSON_STRING;
        return json_skip_string(p, end);
    case '{':
    case '[': {
        char close = *p == '{' ? '}' : ']';
        int obj = *p == '{';
        int t;
        *type = obj ? STRATUS_JSON_OBJECT : STRATUS_JSON_ARRAY;
        p = json_ws(p + 1, end);
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                p = json_ws(p, end);
                if (p >= end || *p != '"' || !(p = json_skip_string(p, end)))
                    return NULL;
                p = json_ws(p, end);
                if (p >= end || *p++ != ':')
                    return NULL;
            }
            if (!(p = json_skip_value(p, end, &t, depth + 1)))
                return NULL;
            p = json_ws(p, end);
            if (p >= end)
                return NULL;
            if (*p == close)
                return p + 1;
            if (*p++ != ',')
                return NULL;
        }
    }
    case 't':
        *type = STRATUS_JSON_TRUE;
        return end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        *type = STRATUS_JSON_FALSE;
        return end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        *type = STRATUS_JSON_NULL;
        return end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        if (*p == '-' || (*p >= '0' && *p <= '9')) {
            *type = STRATUS_JSON_NUMBER;
            const char *s = p;
            while (p < end && (strchr("+-.eE", *p) || (*p >= '0' && *p <= '9')))
                p++;
            return p > s ? p : NULL;
        }
        return NULL;
    }
}

/* Compares a JSON string literal (with quotes, p..q) to name, honouring simple escapes. */
static int json_key_is(const char *p, const char *q, const char *name)
{
    size_t n = strlen(name);
    p++;
    q--; /* now [p, q) is the raw content */
    if (memchr(p, '\\', (size_t)(q - p)) == NULL)
        return (size_t)(q - p) == n && memcmp(p, name, n) == 0;
    char tmp[256];
    struct stratus_json_val v = {p - 1, (size_t)(q - p) + 2, STRATUS_JSON_STRING};
    long l = stratus_json_str(&v, tmp, sizeof tmp);
    return l >= 0 && (size_t)l == n && memcmp(tmp, name, n) == 0;
}

static int json_member(
    const char *doc, size_t len, const char *name, size_t nlen, struct stratus_json_val *out)
{
    const char *p = json_ws(doc, doc + len), *end = doc + len;
    char nm[256];
    if (nlen >= sizeof nm || p >= end || *p != '{')
        return -1;
    memcpy(nm, name, nlen);
    nm[nlen] = 0;
    p = json_ws(p + 1, end);
    if (p < end && *p == '}')
        return -1;
    for (;;) {
        p = json_ws(p, end);
        if (p >= end || *p != '"')
            return -1;
        const char *ks = p;
        if (!(p = json_skip_string(p, end)))
            return -1;
        int match = json_key_is(ks, p, nm);
        p = json_ws(p, end);
        if (p >= end || *p++ != ':')
            return -1;
        p = json_ws(p, end);
        const char *vs = p;
        int type = 0;
        if (!(p = json_skip_value(p, end, &type, 1)))
            return -1;
        if (match) {
            out->p = vs;
            out->len = (size_t)(p - vs);
            out->type = type;
            return 0;
        }
        p = json_ws(p, end);
        if (p >= end || *p++ != ',')
            return -1;
    }
}

int stratus_json_get(const char *doc, size_t len, const char *name, struct stratus_json_val *out)
{
    return json_member(doc, len, name, strlen(name), out);
}

int stratus_json_at(const char *doc, size_t len, const char *path, struct stratus_json_val *out)
{
    struct stratus_json_val v = {doc, len, STRATUS_JSON_OBJECT};
    for (;;) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (json_member(v.p, v.len, path, n, &v) < 0)
            return -1;
        if (!dot) {
            *out = v;
            return 0;
        }
        path = dot + 1;
    }
}

int stratus_json_next(const struct stratus_json_val *arr,
                      const char **cursor,
                      struct stratus_json_val *out)
{
    const char *end = arr->p + arr->len, *p;
    if (arr->type != STRATUS_JSON_ARRAY)
        return -1;
    if (!*cursor) {
        p = json_ws(arr->p, end);
        if (p >= end || *p != '[')
            return -1;
        p++;
    } else {
        p = json_ws(*cursor, end);
        if (p >= end || *p != ',')
            return -1;
        p++;
    }
    p = json_ws(p, end);
    if (p >= end || *p == ']')
        return -1;
    const char *vs = p;
    int type = 0;
    if (!(p = json_skip_value(p, end, &type, 1)))
        return -1;
    out->p = vs;
    out->len = (size_t)(p - vs);
    out->type = type;
    *cursor = p;
    return 0;
}

static int json_hex4(const char *p, const char *end, uint32_t *v)
{
    if (end - p < 4)
        return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

long stratus_json_str(const struct stratus_json_val *v, char *out, size_t cap)
{
    if (!cap)
        return -1;
    out[0] = 0;
    if (v->type == STRATUS_JSON_NUMBER) {
        if (v->len >= cap)
            return -1;
        memcpy(out, v->p, v->len);
        out[v->len] = 0;
        return (long)v->len;
    }
    if (v->type != STRATUS_JSON_STRING || v->len < 2)
        return -1;
    const char *p = v->p + 1, *end = v->p + v->len - 1;
    size_t o = 0;
    while (p < end) {
        uint32_t cp;
        if (*p != '\\') {
            cp = (unsigned char)*p++;
            if (o + 1 >= cap)
                return -1;
            out[o++] = (char)cp;
            continue;
        }
        p++;
        if (p >= end)
            return -1;
        char e = *p++;
        switch (e) {
        case '"':
            cp = '"';
            break;
        case '\\':
            cp = '\\';
            break;
        case '/':
            cp = '/';
            break;
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u':
            if (json_hex4(p, end, &cp) < 0)
                return -1;
            p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                uint32_t lo;
                if (json_hex4(p + 2, end, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
            }
            break;
        default:
            return -1;
        }
        char b[4];
        size_t n;
        if (cp < 0x80) {
            b[0] = (char)cp;
            n = 1;
        } else if (cp < 0x800) {
            b[0] = (char)(0xc0 | cp >> 6);
            b[1] = (char)(0x80 | (cp & 0x3f));
            n = 2;
        } else if (cp < 0x10000) {
            b[0] = (char)(0xe0 | cp >> 12);
            b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
            b[2] = (char)(0x80 | (cp & 0x3f));
            n = 3;
        } else {
            b[0] = (char)(0xf0 | cp >> 18);
            b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
            b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
            b[3] = (char)(0x80 | (cp & 0x3f));
            n = 4;
        }
        if (o + n >= cap)
            return -1;
        memcpy(out + o, b, n);
        o += n;
    }
    out[o] = 0;
    return (long)o;
}

int stratus_json_int(const struct stratus_json_val *v, int64_t *out)
{
    char tmp[32];
    if (v->type != STRATUS_JSON_NUMBER && v->type != STRATUS_JSON_STRING)
        return -1;
    if (stratus_json_str(v, tmp, sizeof tmp) <= 0)
        return -1;
    char *e;
    long long x = strtoll(tmp, &e, 10);
    if (*e)
        return -1;
    *out = x;
    return 0;
}

int stratus_json_get_str(const char *doc, size_t len, const char *path, char *out, size_t cap)
{
    struct stratus_json_val v;
    if (stratus_json_at(doc, len, path, &v) < 0)
        return -1;
    return stratus_json_str(&v, out, cap) < 0 ? -1 : 0;
}

int stratus_json_get_int(const char *doc, size_t len, const char *path, int64_t *out)
{
    struct stratus_json_val v;
    if (stratus_json_at(doc, len, path, &v) < 0)
        return -1;
    return stratus_json_int(&v, out);
}

void stratus_json_quote(struct stratus_sbuf *sb, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    stratus_sbuf_putc(sb, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            stratus_sbuf_putc(sb, '\\');
            stratus_sbuf_putc(sb, (char)c);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            stratus_sbuf_append(sb, e, 6);
        } else {
            stratus_sbuf_putc(sb, (char)c);
        }
    }
    stratus_sbuf_putc(sb, '"');
}
