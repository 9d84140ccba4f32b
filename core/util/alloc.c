/* alloc.c - aborting allocators and the always-on assert (see alloc.h).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "alloc.h"
#include "hugeframes.h"

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

/* The header before an rcbuf's bytes: 16 bytes, so the bytes keep malloc's alignment. An
 * aligned rcbuf's bytes start align bytes into its allocation, the header just before them. */
struct rcbuf_hdr {
    atomic_uint refs;
    uint32_t align; /* 0: plain (the allocation starts at the header); else the bytes' alignment */
    uint64_t len;   /* the n it was created with */
};

static struct rcbuf_hdr *rcbuf_hdr(const void *buf)
{
    return (struct rcbuf_hdr *)(void *)((unsigned char *)(uintptr_t)buf - sizeof(struct rcbuf_hdr));
}

/* The start of buf's allocation. */
static void *rcbuf_base(const void *buf)
{
    struct rcbuf_hdr *h = rcbuf_hdr(buf);
    return h->align ? (void *)((unsigned char *)(uintptr_t)buf - h->align) : (void *)h;
}

unsigned char *stratus_rcbuf_new(size_t n)
{
    if (n > SIZE_MAX - sizeof(struct rcbuf_hdr))
        return NULL;
    struct rcbuf_hdr *h = malloc(sizeof *h + n);
    if (!h)
        return NULL;
    atomic_init(&h->refs, 1);
    h->align = 0;
    h->len = n;
    return (unsigned char *)(h + 1);
}

unsigned char *stratus_rcbuf_new_kept(size_t n)
{
    if (n > SIZE_MAX - sizeof(struct rcbuf_hdr))
        return NULL;
    struct rcbuf_hdr *h = stratus_hugeframes_alloc(sizeof *h + n, 16);
    if (!h)
        return stratus_rcbuf_new(n);
    atomic_init(&h->refs, 1);
    h->align = 0;
    h->len = n;
    return (unsigned char *)(h + 1);
}

unsigned char *stratus_rcbuf_new_aligned(size_t n, size_t align)
{
    void *base = NULL;
    if (align < sizeof(struct rcbuf_hdr) || (align & (align - 1)) || align > UINT32_MAX ||
        n > SIZE_MAX - 2 * align)
        return NULL;
    size_t room = (n + align - 1) / align * align;
    base = n >= STRATUS_HUGEFRAMES_MIN ? stratus_hugeframes_alloc(align + room, align) : NULL;
    if (!base && posix_memalign(&base, align, align + room) != 0)
        return NULL;
    unsigned char *buf = (unsigned char *)base + align;
    struct rcbuf_hdr *h = rcbuf_hdr(buf);
    atomic_init(&h->refs, 1);
    h->align = (uint32_t)align;
    h->len = n;
    memset(buf + n, 0, room - n); /* whole aligned blocks may be written out (the WAL) */
    return buf;
}

size_t stratus_rcbuf_len(const void *buf)
{
    return (size_t)rcbuf_hdr(buf)->len;
}

size_t stratus_rcbuf_align(const void *buf)
{
    return rcbuf_hdr(buf)->align;
}

size_t stratus_rcbuf_footprint(const void *buf)
{
    return malloc_usable_size(rcbuf_base(buf));
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
        free(rcbuf_base(buf));
}
