/* alloc.c - aborting allocators and the always-on assert (see alloc.h).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "alloc.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "stratus: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void stratus_assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "stratus: assertion failed: %s (%s:%d)\n", what, file, line);
    abort();
}

/* The header before an rcbuf's bytes: 16 bytes, so the bytes keep malloc's alignment. */
struct rcbuf_hdr {
    atomic_uint refs;
    uint32_t pad;
    uint64_t len; /* the n it was created with */
};

static struct rcbuf_hdr *rcbuf_hdr(const void *buf)
{
    return (struct rcbuf_hdr *)(void *)((unsigned char *)(uintptr_t)buf - sizeof(struct rcbuf_hdr));
}

unsigned char *stratus_rcbuf_new(size_t n)
{
    if (n > SIZE_MAX - sizeof(struct rcbuf_hdr))
        return NULL;
    struct rcbuf_hdr *h = malloc(sizeof *h + n);
    if (!h)
        return NULL;
    atomic_init(&h->refs, 1);
    h->len = n;
    return (unsigned char *)(h + 1);
}

size_t stratus_rcbuf_len(const void *buf)
{
    return (size_t)rcbuf_hdr(buf)->len;
}

size_t stratus_rcbuf_footprint(const void *buf)
{
    return malloc_usable_size(rcbuf_hdr(buf));
}

void stratus_rcbuf_ref(const void *buf)
{
    atomic_fetch_add_explicit(&rcbuf_hdr(buf)->refs, 1, memory_order_relaxed);
}

void stratus_rcbuf_unref(const void *buf)
{
    if (!buf)
        return;
    struct rcbuf_hdr *h = rcbuf_hdr(buf);
    if (atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) == 1)
        free(h);
}
