/* xml.c - the span-based XML element extractor (see xml.h).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "xml.h"

#include "sbuf.h"

#include <stdint.h>
#include <string.h>

/* Whether the tag name at p[0..n) (possibly "prefix:local") has local name `name`. */
static int xml_name_is(const char *p, size_t n, const char *name)
{
    const char *colon = memchr(p, ':', n);
    if (colon) {
        n -= (size_t)(colon + 1 - p);
        p = colon + 1;
    }
    return strlen(name) == n && memcmp(p, name, n) == 0;
}

static int xml_is_name_end(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '>' || c == '/';
}

/* Finds the next start tag of `name` at or after p (inside [p, end)); sets *content to after
 * its '>' and *selfclose. Returns the tag start or NULL. */
static const char *xml_find_start(
    const char *p, const char *end, const char *name, const char **content, int *selfclose)
{
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt || lt + 1 >= end)
            return NULL;
        const char *q = lt + 1;
        if (*q == '/' || *q == '?' || *q == '!') {
            /* end tag, PI, comment or CDATA: skip to its '>' (comments may hold '>', rare) */
            if (end - q >= 3 && memcmp(q, "!--", 3) == 0) {
                const char *e = q + 3;
                while (e + 2 < end && memcmp(e, "-->", 3) != 0)
                    e++;
                p = e + 3;
            } else {
                p = q + 1;
            }
            continue;
        }
        const char *ne = q;
        while (ne < end && !xml_is_name_end(*ne))
            ne++;
        if (ne >= end) /* (also tells the compiler the length below is not negative) */
            return NULL;
        const char *gt = memchr(ne, '>', (size_t)(end - ne));
        if (!gt)
            return NULL;
        if (xml_name_is(q, (size_t)(ne - q), name)) {
            *selfclose = gt > ne && gt[-1] == '/';
            *content = gt + 1;
            return lt;
        }
        p = gt + 1;
    }
    return NULL;
}

/* Finds the matching end tag of `name` from p, counting nested same-name elements. */
static const char *
xml_find_end(const char *p, const char *end, const char *name, const char **after)
{
    int depth = 0;
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt || lt + 1 >= end)
            return NULL;
        const char *q = lt + 1;
        int closing = *q == '/';
        if (closing)
            q++;
        const char *ne = q;
        while (ne < end && !xml_is_name_end(*ne))
            ne++;
        if (ne >= end) /* (also tells the compiler the length below is not negative) */
            return NULL;
        const char *gt = memchr(ne, '>', (size_t)(end - ne));
        if (!gt)
            return NULL;
        if (xml_name_is(q, (size_t)(ne - q), name)) {
            if (closing) {
                if (depth == 0) {
                    *after = gt + 1;
                    return lt;
                }
                depth--;
            } else if (gt[-1] != '/') {
                depth++;
            }
        }
        p = gt + 1;
    }
    return NULL;
}

static int xml_element(struct stratus_xml_span in,
                       const char *from,
                       const char *name,
                       const char **next,
                       struct stratus_xml_span *out)
{
    const char *end = in.p + in.len, *content;
    int selfclose = 0;
    if (!in.p || from < in.p || from > end)
        return -1;
    if (!xml_find_start(from, end, name, &content, &selfclose))
        return -1;
    if (selfclose) {
        out->p = content;
        out->len = 0;
        *next = content;
        return 0;
    }
    const char *after;
    const char *close = xml_find_end(content, end, name, &after);
    if (!close)
        return -1;
    out->p = content;
    out->len = (size_t)(close - content);
    *next = after;
    return 0;
}

int stratus_xml_find(struct stratus_xml_span in, const char *name, struct stratus_xml_span *out)
{
    const char *next;
    return xml_element(in, in.p, name, &next, out);
}

int stratus_xml_next(struct stratus_xml_span in,
                     const char *name,
                     const char **cursor,
                     struct stratus_xml_span *out)
{
    const char *next;
    if (xml_element(in, *cursor ? *cursor : in.p, name, &next, out) < 0)
        return -1;
    *cursor = next;
    return 0;
}

/* Appends the UTF-8 of code point cp into out at *o; -1 when it does not fit. */
static int xml_utf8(uint32_t cp, char *out, size_t cap, size_t *o)
{
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
    if (*o + n >= cap)
        return -1;
    memcpy(out + *o, b, n);
    *o += n;
    return 0;
}

long stratus_xml_text(struct stratus_xml_span s, char *out, size_t cap)
{
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
    size_t o = 0;
    if (!cap)
        return -1;
    const char *p = s.p, *end = s.p + s.len;
    /* CDATA: copy verbatim */
    if (s.len >= 12 && memcmp(p, "<![CDATA[", 9) == 0 && memcmp(end - 3, "]]>", 3) == 0) {
        p += 9;
        end -= 3;
        size_t n = (size_t)(end - p);
        if (n >= cap) {
            memcpy(out, p, cap - 1);
            out[cap - 1] = 0;
            return -1;
        }
        memcpy(out, p, n);
        out[n] = 0;
        return (long)n;
    }
    while (p < end) {
        if (*p == '&') {
            const char *semi = memchr(p, ';', (size_t)(end - p));
            int done = 0;
            if (semi && p[1] == '#') {
                uint32_t cp = 0;
                const char *d = p + 2;
                int hex = d < semi && (*d == 'x' || *d == 'X');
                if (hex)
                    d++;
                for (; d < semi && cp < 0x110000; d++) {
                    int v = -1;
                    if (*d >= '0' && *d <= '9')
                        v = *d - '0';
                    else if (hex && *d >= 'a' && *d <= 'f')
                        v = *d - 'a' + 10;
                    else if (hex && *d >= 'A' && *d <= 'F')
                        v = *d - 'A' + 10;
                    if (v < 0)
                        break;
                    cp = cp * (hex ? 16 : 10) + (uint32_t)v;
                }
                if (d == semi && cp < 0x110000) {
                    if (xml_utf8(cp, out, cap, &o) < 0)
                        goto full;
                    p = semi + 1;
                    done = 1;
                }
            } else if (semi) {
                for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
                    size_t n = strlen(ents[i].ent);
                    if ((size_t)(end - p - 1) >= n && memcmp(p + 1, ents[i].ent, n) == 0) {
                        if (o + 1 >= cap)
                            goto full;
                        out[o++] = ents[i].c;
                        p += 1 + n;
                        done = 1;
                        break;
                    }
                }
            }
            if (done)
                continue;
        }
        if (o + 1 >= cap)
            goto full;
        out[o++] = *p++;
    }
    out[o] = 0;
    return (long)o;
full:
    out[o] = 0;
    return -1;
}

int stratus_xml_get(struct stratus_xml_span in, const char *name, char *out, size_t cap)
{
    struct stratus_xml_span s;
    if (stratus_xml_find(in, name, &s) < 0)
        return -1;
    return stratus_xml_text(s, out, cap) < 0 ? -1 : 0;
}

void stratus_xml_escape(struct stratus_sbuf *sb, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        switch (s[i]) {
        case '&':
            stratus_sbuf_puts(sb, "&amp;");
            break;
        case '<':
            stratus_sbuf_puts(sb, "&lt;");
            break;
        case '>':
            stratus_sbuf_puts(sb, "&gt;");
            break;
        case '"':
            stratus_sbuf_puts(sb, "&quot;");
            break;
        case '\'':
            stratus_sbuf_puts(sb, "&apos;");
            break;
        case '\r':
            stratus_sbuf_puts(sb, "&#13;");
            break;
        default:
            stratus_sbuf_putc(sb, s[i]);
        }
    }
}
