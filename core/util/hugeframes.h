/* hugeframes.h - the arena kept and large request frames come from: one region of transparent huge
 * pages, touched ahead of use by a background thread, so that the network thread neither
 * waits for a page fault nor walks 4 KiB page tables through the hypervisor for the frames
 * it reads into (and the log cache keeps). It needs jemalloc in the process (stratusd links
 * it; tests and sanitizer builds do not): without it start() says so and frames come from
 * malloc as before.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_UTIL_HUGEFRAMES_H
#define STRATUS_UTIL_HUGEFRAMES_H

#include "stratus/stratus_err.h"

#include <stddef.h>
#include <stdint.h>

/* Reserves `reserve` bytes of address space (nothing is resident until used) and starts the
 * toucher, which keeps the bytes past the arena's end in use populated: as many as are in
 * use, at least 2 MiB and at most `ahead`. Once per process
 * (later calls return 0 and change nothing). STRATUS_ENOTSUP when the process does not run on
 * jemalloc 5 (the caller logs it and goes on without). */
int stratus_hugeframes_start(size_t reserve, size_t ahead, struct stratus_errbuf *eb);
/* Stops the toucher (the region stays: frames may still live in it). */
void stratus_hugeframes_stop(void);
/* Frames from this size up come from the arena (stratus_rcbuf_new_aligned): the large ones a
 * produce request is read into. Smaller frames come from it only when they will be kept
 * (stratus_rcbuf_new_kept: Produce frames, which the log cache holds); the rest stay in
 * malloc's thread caches. */
#define STRATUS_HUGEFRAMES_MIN ((size_t)64 << 10)

/* size bytes aligned to align (a power of two) from the arena; NULL when it is not started
 * or its region is used up (the caller falls back to malloc). free() releases it. Any thread. */
void *stratus_hugeframes_alloc(size_t size, size_t align);
/* 1 when p lies in the arena's region, else 0. */
int stratus_hugeframes_owns(const void *p);

struct stratus_hugeframes_stats {
    uint64_t reserved, used, populated; /* bytes of the region */
    uint64_t fallbacks;                 /* allocations the region could not take */
};
void stratus_hugeframes_stats(struct stratus_hugeframes_stats *st);

#endif
