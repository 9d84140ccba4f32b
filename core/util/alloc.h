/* alloc.h - allocation helpers. Fixed-size internal allocations abort on OOM (xmalloc and
 * friends); sizes a peer or the config controls use plain malloc and handle NULL.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_UTIL_ALLOC_H
#define STRATUS_UTIL_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Reference-counted byte buffers (request frames whose batches the log cache keeps instead of
 * copying them). The pointer returned is the bytes; a hidden header before them holds the
 * count, 1 when created. stratus_rcbuf_new returns NULL when out of memory (sizes a peer
 * controls); unref of NULL does nothing; the last unref frees. Any thread. */
unsigned char *stratus_rcbuf_new(size_t n);
/* The same for bytes that will be kept long (a Produce frame, whose batches the log cache
 * holds): from the huge-frame arena when it runs (util/hugeframes.h), whose pages are
 * populated ahead, so the thread filling it takes no page fault on fresh memory. */
unsigned char *stratus_rcbuf_new_kept(size_t n);
void stratus_rcbuf_ref(const void *buf);
void stratus_rcbuf_unref(const void *buf);
/* The n the buffer was created with, and the bytes of memory its allocation takes (the
 * allocator's size class, header included): what holding it costs a cache's budget. */
size_t stratus_rcbuf_len(const void *buf);
size_t stratus_rcbuf_footprint(const void *buf);
/* An rcbuf whose bytes start on an align boundary (a power of two >= 16) and are followed by
 * zeros up to the next one, all inside the allocation: whole aligned blocks around any bytes
 * of it can be handed to an O_DIRECT write (the WAL's reference records). align() returns
 * the alignment it was created with, 0 for stratus_rcbuf_new's. */
unsigned char *stratus_rcbuf_new_aligned(size_t n, size_t align);
/* The alignment of large request frames (net.c): the 512-byte block of O_DIRECT writes. */
#define STRATUS_FRAME_ALIGN 512
size_t stratus_rcbuf_align(const void *buf);

#define stratus_assert(cond)                                            \
    do {                                                                \
        if (!(cond))                                                    \
            stratus_assert_fail(#cond, __FILE__, __LINE__);             \
    } while (0)
void stratus_assert_fail(const char *what, const char *file, int line) __attribute__((noreturn));

#endif
