/* sbuf.c - the growable string buffer of plugins/common (see sbuf.h).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "sbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void stratus_sbuf_free(struct stratus_sbuf *sb)
{
    free(sb->p);
    sb->p = NULL;
    sb->len = sb->cap = 0;
    sb->err = 0;
}

void stratus_sbuf_reset(struct stratus_sbuf *sb)
{
    sb->len = 0;
    sb->err = 0;
    if (sb->p)
        sb->p[0] = 0;
}

/* Makes room for n more bytes plus the NUL; 0 or -1 (err latched). */
static int sbuf_grow(struct stratus_sbuf *sb, size_t n)
{
    if (sb->err)
        return -1;
    if (n > ((size_t)-1 >> 2) - sb->len || (sb->max && sb->len + n > sb->max)) {
        sb->err = 1;
        return -1;
    }
    size_t need = sb->len + n + 1;
    if (need <= sb->cap)
        return 0;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(sb->p, cap);
    if (!p) {
        sb->err = 1;
        return -1;
    }
    sb->p = p;
    sb->cap = cap;
    return 0;
}

void stratus_sbuf_append(struct stratus_sbuf *sb, const void *data, size_t n)
{
    if (sbuf_grow(sb, n) < 0)
        return;
    if (n)
        memcpy(sb->p + sb->len, data, n);
    sb->len += n;
    sb->p[sb->len] = 0;
}

void stratus_sbuf_puts(struct stratus_sbuf *sb, const char *s)
{
    stratus_sbuf_append(sb, s, strlen(s));
}

void stratus_sbuf_putc(struct stratus_sbuf *sb, char c)
{
    stratus_sbuf_append(sb, &c, 1);
}

void stratus_sbuf_vprintf(struct stratus_sbuf *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        sb->err = 1;
        return;
    }
    if (sbuf_grow(sb, (size_t)n) < 0)
        return;
    vsnprintf(sb->p + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
}

void stratus_sbuf_printf(struct stratus_sbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    stratus_sbuf_vprintf(sb, fmt, ap);
    va_end(ap);
}

const char *stratus_sbuf_str(const struct stratus_sbuf *sb)
{
    return sb->p ? sb->p : "";
}
