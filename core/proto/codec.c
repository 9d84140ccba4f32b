/* codec.c - Kafka wire primitives: struct kread / struct kwrite (formats in codec.h).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "proto/codec.h"

#include <stdlib.h>
#include <string.h>

/* ---- strings ------------------------------------------------------------------------ */

struct kstr kstr_from(const char *s)
{
    if (!s)
        return KSTR_NULL;
    size_t n = strlen(s);
    return (struct kstr){s, n > INT32_MAX ? INT32_MAX : (int32_t)n};
}

bool kstr_eq(struct kstr a, struct kstr b)
{
    if (a.len < 0 || b.len < 0)
        return a.len < 0 && b.len < 0;
    return a.len == b.len && (a.len == 0 || memcmp(a.s, b.s, (size_t)a.len) == 0);
}

bool kstr_eq_cstr(struct kstr a, const char *s)
{
    if (a.len < 0 || !s)
        return false;
    size_t n = strlen(s);
    return (size_t)a.len == n && (n == 0 || memcmp(a.s, s, n) == 0);
}

int kstr_copy(struct kstr a, char *dst, size_t dstlen)
{
    if (dstlen == 0)
        return STRATUS_ERANGE;
    size_t n = a.len > 0 ? (size_t)a.len : 0;
    int rc = 0;
    if (n >= dstlen) {
        n = dstlen - 1;
        rc = STRATUS_ERANGE;
    }
    if (n)
        memcpy(dst, a.s, n);
    dst[n] = '\0';
    return rc;
}

char *kstr_dup(struct kstr a)
{
    if (a.len < 0)
        return NULL;
    char *p = malloc((size_t)a.len + 1);
    if (!p)
        return NULL;
    if (a.len)
        memcpy(p, a.s, (size_t)a.len);
    p[a.len] = '\0';
    return p;
}

/* ---- reader ------------------------------------------------------------------------- */

void kr_init(struct kread *r, const void *buf, size_t len, struct stratus_arena *arena)
{
    static const uint8_t empty[1];
    r->p = buf ? buf : empty;
    r->end = buf ? r->p + len : r->p;
    r->err = 0;
    r->arena = arena;
}

void kr_fail(struct kread *r, int err)
{
    if (!r->err)
        r->err = err ? err : STRATUS_EPROTO;
    r->p = r->end;
}

const uint8_t *kr_raw(struct kread *r, size_t n)
{
    if (r->err)
        return NULL;
    if ((size_t)(r->end - r->p) < n) {
        kr_fail(r, STRATUS_EPROTO);
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

void kr_skip(struct kread *r, size_t n)
{
    (void)kr_raw(r, n);
}

static uint64_t kr_be(struct kread *r, size_t n)
{
    const uint8_t *p = kr_raw(r, n);
    uint64_t v = 0;
    if (!p)
        return 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

int8_t kr_i8(struct kread *r) { return (int8_t)(uint8_t)kr_be(r, 1); }
int16_t kr_i16(struct kread *r) { return (int16_t)(uint16_t)kr_be(r, 2); }
uint16_t kr_u16(struct kread *r) { return (uint16_t)kr_be(r, 2); }
int32_t kr_i32(struct kread *r) { return (int32_t)(uint32_t)kr_be(r, 4); }
uint32_t kr_u32(struct kread *r) { return (uint32_t)kr_be(r, 4); }
int64_t kr_i64(struct kread *r) { return (int64_t)kr_be(r, 8); }

double kr_f64(struct kread *r)
{
    uint64_t u = kr_be(r, 8);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

int8_t kr_bool(struct kread *r) { return kr_i8(r) != 0; }

void kr_uuid(struct kread *r, uint8_t out[16])
{
    const uint8_t *p = kr_raw(r, 16);
    if (p)
        memcpy(out, p, 16);
    else
        memset(out, 0, 16);
}

uint64_t kr_uvarlong(struct kread *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        const uint8_t *p = kr_raw(r, 1);
        if (!p)
            return 0;
        if (shift == 63 && (*p & 0x7e)) /* more than 64 bits */
            break;
        v |= (uint64_t)(*p & 0x7f) << shift;
        if (!(*p & 0x80))
            return v;
    }
    kr_fail(r, STRATUS_EPROTO);
    return 0;
}

uint32_t kr_uvarint(struct kread *r)
{
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        const uint8_t *p = kr_raw(r, 1);
        if (!p)
            return 0;
        if (shift == 28 && (*p & 0x70)) /* more than 32 bits */
            break;
        v |= (uint32_t)(*p & 0x7f) << shift;
        if (!(*p & 0x80))
            return v;
    }
    kr_fail(r, STRATUS_EPROTO);
    return 0;
}

int32_t kr_varint(struct kread *r)
{
    uint32_t u = kr_uvarint(r);
    return (int32_t)((u >> 1) ^ (~(u & 1) + 1));
}

int64_t kr_varlong(struct kread *r)
{
    uint64_t u = kr_uvarlong(r);
    return (int64_t)((u >> 1) ^ (~(u & 1) + 1));
}

static struct kstr kr_string_n(struct kread *r, int64_t len)
{
    if (r->err)
        return KSTR_NULL;
    if (len < -1 || len > INT32_MAX) {
        kr_fail(r, STRATUS_EPROTO);
        return KSTR_NULL;
    }
    if (len == -1)
        return KSTR_NULL;
    const uint8_t *p = kr_raw(r, (size_t)len);
    if (!p)
        return KSTR_NULL;
    return (struct kstr){(const char *)p, (int32_t)len};
}

struct kstr kr_string(struct kread *r) { return kr_string_n(r, kr_i16(r)); }

struct kstr kr_compact_string(struct kread *r)
{
    return kr_string_n(r, (int64_t)kr_uvarint(r) - 1);
}

static struct kbytes kr_bytes_n(struct kread *r, int64_t len)
{
    struct kstr s = kr_string_n(r, len);
    return (struct kbytes){(const uint8_t *)s.s, s.len};
}

struct kbytes kr_bytes(struct kread *r) { return kr_bytes_n(r, kr_i32(r)); }

struct kbytes kr_compact_bytes(struct kread *r)
{
    return kr_bytes_n(r, (int64_t)kr_uvarint(r) - 1);
}

static int32_t kr_array_check(struct kread *r, int64_t n, size_t min_elem)
{
    if (r->err)
        return 0;
    if (n == -1)
        return -1;
    if (min_elem == 0)
        min_elem = 1;
    if (n < -1 || n > INT32_MAX || (uint64_t)n > kr_remaining(r) / min_elem) {
        kr_fail(r, STRATUS_EPROTO);
        return 0;
    }
    return (int32_t)n;
}

int32_t kr_array_len(struct kread *r, size_t min_elem)
{
    return kr_array_check(r, kr_i32(r), min_elem);
}

int32_t kr_compact_array_len(struct kread *r, size_t min_elem)
{
    return kr_array_check(r, (int64_t)kr_uvarint(r) - 1, min_elem);
}

void kr_skip_tags(struct kread *r)
{
    uint32_t n = kr_uvarint(r);
    if (n > kr_remaining(r) / 2) { /* every field needs at least a tag and a size byte */
        kr_fail(r, STRATUS_EPROTO);
        return;
    }
    for (uint32_t i = 0; i < n && !r->err; i++) {
        (void)kr_uvarint(r);
        kr_skip(r, kr_uvarint(r));
    }
}

/* ---- writer ------------------------------------------------------------------------- */

void kw_init(struct kwrite *w, size_t max)
{
    w->buf = NULL;
    w->len = w->cap = 0;
    w->max = max ? max : KW_DEFAULT_MAX;
    w->err = 0;
    w->splice_min = w->spliced = 0;
    w->splices = NULL;
    w->nsplices = w->splices_cap = 0;
}

void kw_free(struct kwrite *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
    free(w->splices);
    w->splices = NULL;
    w->nsplices = w->splices_cap = 0;
    w->spliced = 0;
}

uint8_t *kw_detach(struct kwrite *w, size_t *len)
{
    uint8_t *b = w->buf;
    if (len)
        *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return b;
}

uint8_t *kw_ensure(struct kwrite *w, size_t n)
{
    if (w->err)
        return NULL;
    if (n > w->max || w->len > w->max - n) {
        w->err = STRATUS_ENOMEM;
        return NULL;
    }
    if (w->cap - w->len < n) {
        size_t ncap = w->cap ? w->cap : 256;
        while (ncap - w->len < n)
            ncap = ncap > w->max / 2 ? w->max : ncap * 2;
        uint8_t *nb = realloc(w->buf, ncap);
        if (!nb) {
            w->err = STRATUS_ENOMEM;
            return NULL;
        }
        w->buf = nb;
        w->cap = ncap;
    }
    return w->buf + w->len;
}

/* The bytes of a BYTES / RECORDS value: spliced when the writer splices and n is large
 * enough (codec.h), copied otherwise. kw_raw always copies (the tagged-field encoder passes it
 * a temporary buffer). */
static void kw_bytes_body(struct kwrite *w, const void *p, size_t n)
{
    if (w->splice_min && n >= w->splice_min && !w->err) {
        if (w->len + w->spliced > w->max || n > w->max - w->len - w->spliced) {
            w->err = STRATUS_ENOMEM;
            return;
        }
        if (w->nsplices == w->splices_cap) {
            size_t ncap = w->splices_cap ? w->splices_cap * 2 : 16;
            struct kw_splice *ns = realloc(w->splices, ncap * sizeof *ns);
            if (!ns) {
                w->err = STRATUS_ENOMEM;
                return;
            }
            w->splices = ns;
            w->splices_cap = ncap;
        }
        w->splices[w->nsplices++] = (struct kw_splice){w->len, p, n};
        w->spliced += n;
        return;
    }
    kw_raw(w, p, n);
}

void kw_raw(struct kwrite *w, const void *p, size_t n)
{
    uint8_t *d = kw_ensure(w, n);
    if (!d)
        return;
    if (n)
        memcpy(d, p, n);
    w->len += n;
}

static void kw_be(struct kwrite *w, uint64_t v, size_t n)
{
    uint8_t *d = kw_ensure(w, n);
    if (!d)
        return;
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    w->len += n;
}

void kw_i8(struct kwrite *w, int8_t v) { kw_be(w, (uint8_t)v, 1); }
void kw_i16(struct kwrite *w, int16_t v) { kw_be(w, (uint16_t)v, 2); }
void kw_u16(struct kwrite *w, uint16_t v) { kw_be(w, v, 2); }
void kw_i32(struct kwrite *w, int32_t v) { kw_be(w, (uint32_t)v, 4); }
void kw_u32(struct kwrite *w, uint32_t v) { kw_be(w, v, 4); }
void kw_i64(struct kwrite *w, int64_t v) { kw_be(w, (uint64_t)v, 8); }

void kw_f64(struct kwrite *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    kw_be(w, u, 8);
}

void kw_bool(struct kwrite *w, bool v) { kw_be(w, v ? 1 : 0, 1); }
void kw_uuid(struct kwrite *w, const uint8_t v[16]) { kw_raw(w, v, 16); }

void kw_uvarlong(struct kwrite *w, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    kw_raw(w, tmp, n);
}

void kw_uvarint(struct kwrite *w, uint32_t v) { kw_uvarlong(w, v); }

size_t kw_uvarint_size(uint32_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

void kw_varint(struct kwrite *w, int32_t v)
{
    kw_uvarint(w, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

void kw_varlong(struct kwrite *w, int64_t v)
{
    kw_uvarlong(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void kw_string(struct kwrite *w, struct kstr s)
{
    if (s.len < 0) {
        kw_i16(w, -1);
        return;
    }
    if (s.len > INT16_MAX) {
        w->err = w->err ? w->err : STRATUS_ERANGE;
        return;
    }
    kw_i16(w, (int16_t)s.len);
    kw_raw(w, s.s, (size_t)s.len);
}

void kw_compact_string(struct kwrite *w, struct kstr s)
{
    if (s.len < 0) {
        kw_uvarint(w, 0);
        return;
    }
    kw_uvarint(w, (uint32_t)s.len + 1);
    kw_raw(w, s.s, (size_t)s.len);
}

void kw_bytes(struct kwrite *w, struct kbytes b)
{
    if (b.len < 0) {
        kw_i32(w, -1);
        return;
    }
    kw_i32(w, b.len);
    kw_bytes_body(w, b.p, (size_t)b.len);
}

void kw_compact_bytes(struct kwrite *w, struct kbytes b)
{
    if (b.len < 0) {
        kw_uvarint(w, 0);
        return;
    }
    kw_uvarint(w, (uint32_t)b.len + 1);
    kw_bytes_body(w, b.p, (size_t)b.len);
}

void kw_array_len(struct kwrite *w, int32_t count) { kw_i32(w, count < 0 ? -1 : count); }

void kw_compact_array_len(struct kwrite *w, int32_t count)
{
    kw_uvarint(w, count < 0 ? 0 : (uint32_t)count + 1);
}

void kw_empty_tags(struct kwrite *w) { kw_uvarint(w, 0); }

size_t kw_reserve_i32(struct kwrite *w)
{
    size_t pos = w->len;
    kw_i32(w, 0);
    return pos;
}

void kw_patch_i32(struct kwrite *w, size_t pos, int32_t v)
{
    if (w->err || pos > w->len || w->len - pos < 4)
        return;
    uint32_t u = (uint32_t)v;
    w->buf[pos] = (uint8_t)(u >> 24);
    w->buf[pos + 1] = (uint8_t)(u >> 16);
    w->buf[pos + 2] = (uint8_t)(u >> 8);
    w->buf[pos + 3] = (uint8_t)u;
}
