/* sbuf.h - a growable NUL-terminated string buffer for building URLs, canonical requests and
 * XML/JSON bodies in the cloud storage plugins (plugins/common).
 *
 * A failed allocation (or growing past `max`, when set) latches `err` and turns every later
 * append into a no-op, so a builder checks once at the end: `if (sb.err) return ENOMEM`.
 * The buffer is owned by the sbuf; stratus_sbuf_free() releases it (a zeroed sbuf is valid
 * and empty, and freeing it twice is harmless). Not thread-safe: one owner at a time.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_COMMON_SBUF_H
#define STRATUS_COMMON_SBUF_H

#include <stdarg.h>
#include <stddef.h>

struct stratus_sbuf {
    char *p;    /* NUL-terminated when len > 0 or after any append; may be NULL when empty */
    size_t len; /* bytes, without the NUL */
    size_t cap;
    size_t max; /* 0 = unbounded; otherwise appends beyond max bytes set err */
    int err;    /* latched: allocation failed or max exceeded */
};

void stratus_sbuf_free(struct stratus_sbuf *sb);
/* Empties the buffer, keeping its memory (and clears err). */
void stratus_sbuf_reset(struct stratus_sbuf *sb);
void stratus_sbuf_append(struct stratus_sbuf *sb, const void *data, size_t n);
void stratus_sbuf_puts(struct stratus_sbuf *sb, const char *s);
void stratus_sbuf_putc(struct stratus_sbuf *sb, char c);
void stratus_sbuf_printf(struct stratus_sbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void stratus_sbuf_vprintf(struct stratus_sbuf *sb, const char *fmt, va_list ap);
/* The contents as a C string ("" when empty; never NULL). */
const char *stratus_sbuf_str(const struct stratus_sbuf *sb);

#endif
