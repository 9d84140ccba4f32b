/* hugeframes.c - the huge-page arena for kept and large request frames (hugeframes.h).
 *
 * Why: on a VM with nested paging every TLB miss walks the guest's and the host's page
 * tables, and the first touch of a page also faults in the host. Workload 1 spent a third of
 * the CPU with the heap in 2 MiB pages that it spent in 4 KiB ones (docs/benchmarks.md, round
 * 23), but putting the whole heap in huge pages made the produce tail wait for 2 MiB first
 * touches on the request path. Here only the frames get huge pages, and a thread populates
 * them before they are handed out. Small Produce frames come here too: the log cache keeps
 * them, so until it is full each one is fresh memory, a page fault on the network thread for
 * every few (round 25).
 *
 * How: a jemalloc arena whose extent hooks bump-allocate from one reserved region
 * (MAP_NORESERVE, 2 MiB aligned, MADV_HUGEPAGE). jemalloc keeps what it is given (dalloc and
 * the purges opt out; the broker runs with decay off anyway), so the region is used front to
 * back, and a toucher thread (SCHED_IDLE: only when a CPU is idle) populates the next bytes
 * past the used end (as many as are in use, at least 2 MiB, at most `ahead`) with
 * MADV_POPULATE_WRITE, which maps pages without writing them
 * (no race with a frame being written). When the region is used up, allocations fall back to
 * malloc. jemalloc's functions are looked up at run time (dlsym), so the core libraries do
 * not link it and the tests' builds keep working without it.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "hugeframes.h"

#include "util/log.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__has_include)
#if __has_include(<jemalloc/jemalloc.h>)
#include <jemalloc/jemalloc.h>
#define HF_HAVE_JEMALLOC_H 1
#endif
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define HF_HUGE ((size_t)2 << 20)

#ifdef HF_HAVE_JEMALLOC_H
typedef int(mallctl_fn)(const char *, void *, size_t *, void *, size_t);
typedef void *(mallocx_fn)(size_t, int);

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    uint8_t *base;
    size_t reserve, ahead;
    size_t used;      /* bytes handed to jemalloc, from base */
    size_t populated; /* bytes the toucher has populated, from base */
    int stop, started;
    unsigned arena;
    mallocx_fn *mallocx;
    pthread_t thread;
    atomic_ullong fallbacks;
} hf = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *hf_alloc(extent_hooks_t *h,
                      void *new_addr,
                      size_t size,
                      size_t alignment,
                      bool *zero,
                      bool *commit,
                      unsigned arena_ind)
{
    void *p = NULL;
    (void)h;
    (void)arena_ind;
    if (new_addr) /* growing in place: not here */
        return NULL;
    if (alignment < 4096)
        alignment = 4096;
    pthread_mutex_lock(&hf.mu);
    size_t at = (hf.used + alignment - 1) & ~(alignment - 1);
    if (at <= hf.reserve && size <= hf.reserve - at) {
        p = hf.base + at;
        hf.used = at + size;
        pthread_cond_signal(&hf.cond);
    }
    pthread_mutex_unlock(&hf.mu);
    if (p) {
        *zero = true; /* never handed out before: still the kernel's zeros */
        *commit = true;
    }
    return p;
}

/* true = "not done": jemalloc keeps the memory (retained) and may hand it out again */
static bool hf_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned a)
{
    (void)h, (void)addr, (void)size, (void)committed, (void)a;
    return true;
}

static void hf_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned a)
{
    (void)h, (void)addr, (void)size, (void)committed, (void)a;
}

static bool
hf_commit(extent_hooks_t *h, void *addr, size_t size, size_t off, size_t len, unsigned a)
{
    (void)h, (void)addr, (void)size, (void)off, (void)len, (void)a;
    return false; /* always committed */
}

static bool
hf_optout(extent_hooks_t *h, void *addr, size_t size, size_t off, size_t len, unsigned a)
{
    (void)h, (void)addr, (void)size, (void)off, (void)len, (void)a;
    return true; /* decommit and purges: keep the pages */
}

static bool hf_split(extent_hooks_t *h,
                     void *addr,
                     size_t size,
                     size_t size_a,
                     size_t size_b,
                     bool committed,
                     unsigned a)
{
    (void)h, (void)addr, (void)size, (void)size_a, (void)size_b, (void)committed, (void)a;
    return false; /* one mapping: any split is fine */
}

static bool hf_merge(extent_hooks_t *h,
                     void *addr_a,
                     size_t size_a,
                     void *addr_b,
                     size_t size_b,
                     bool committed,
                     unsigned a)
{
    (void)h, (void)size_b, (void)committed, (void)a;
    return (uint8_t *)addr_a + size_a != (uint8_t *)addr_b; /* adjacent in the region: fine */
}

static extent_hooks_t hf_hooks = {hf_alloc,  hf_dalloc, hf_destroy, hf_commit, hf_optout,
                                  hf_optout, hf_optout, hf_split,   hf_merge};

static void *toucher_main(void *arg)
{
    struct sched_param sp = {.sched_priority = 0};
    (void)arg;
    pthread_setname_np(pthread_self(), "frame-toucher"); /* top -H, perf, gdb */
    (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    pthread_mutex_lock(&hf.mu);
    while (!hf.stop) {
        /* the margin grows with the arena: a broker that never reads large frames keeps
         * one huge page populated, not `ahead` */
        size_t margin = hf.used > HF_HUGE ? hf.used : HF_HUGE;
        size_t want = hf.used + (margin < hf.ahead ? margin : hf.ahead);
        if (want > hf.reserve)
            want = hf.reserve;
        if (hf.populated < hf.used) /* handed out before we got there: its users touch it */
            hf.populated = (hf.used + HF_HUGE - 1) & ~(HF_HUGE - 1);
        if (hf.populated >= want) {
            pthread_cond_wait(&hf.cond, &hf.mu);
            continue;
        }
        size_t at = hf.populated, len = want - at < HF_HUGE ? want - at : HF_HUGE;
        pthread_mutex_unlock(&hf.mu);
        if (madvise(hf.base + at, len, MADV_POPULATE_WRITE) != 0) {
            /* before Linux 5.14: an atomic add of 0 maps each page without changing it */
            for (size_t o = 0; o < len; o += 4096)
                __atomic_fetch_add(hf.base + at + o, 0, __ATOMIC_RELAXED);
        }
        pthread_mutex_lock(&hf.mu);
        if (hf.populated == at)
            hf.populated = at + len;
    }
    pthread_mutex_unlock(&hf.mu);
    return NULL;
}

int stratus_hugeframes_start(size_t reserve, size_t ahead, struct stratus_errbuf *eb)
{
    mallctl_fn *mallctl_p = (mallctl_fn *)dlsym(RTLD_DEFAULT, "mallctl");
    mallocx_fn *mallocx_p = (mallocx_fn *)dlsym(RTLD_DEFAULT, "mallocx");
    const char *ver = NULL;
    size_t vlen = sizeof ver, sz;
    unsigned ind;
    extent_hooks_t *hp = &hf_hooks;
    char name[64];
    ssize_t never = -1;
    uint8_t *m;

    if (hf.started)
        return 0; /* once per process: a second broker in it shares the arena */
    if (!mallctl_p || !mallocx_p || mallctl_p("version", &ver, &vlen, NULL, 0) != 0 || !ver ||
        ver[0] != '5')
        return stratus_errf(eb, STRATUS_ENOTSUP,
                            "huge frames: the process does not run on "
                            "jemalloc 5");
    reserve = (reserve + HF_HUGE - 1) & ~(HF_HUGE - 1);
    m = mmap(NULL, reserve + HF_HUGE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return stratus_errf(eb, STRATUS_ENOMEM, "huge frames: reserving %zu bytes: %s", reserve,
                            strerror(errno));
    {
        /* 2 MiB aligned: trim the ends */
        uint8_t *b = (uint8_t *)(((uintptr_t)m + HF_HUGE - 1) & ~(uintptr_t)(HF_HUGE - 1));
        if (b > m)
            munmap(m, (size_t)(b - m));
        if (b + reserve < m + reserve + HF_HUGE)
            munmap(b + reserve, (size_t)(m + reserve + HF_HUGE - (b + reserve)));
        m = b;
    }
    (void)madvise(m, reserve, MADV_HUGEPAGE);
    pthread_mutex_lock(&hf.mu);
    hf.base = m;
    hf.reserve = reserve;
    hf.ahead = ahead;
    hf.used = hf.populated = 0;
    hf.stop = 0;
    pthread_mutex_unlock(&hf.mu);
    sz = sizeof ind;
    if (mallctl_p("arenas.create", &ind, &sz, &hp, sizeof hp) != 0) {
        munmap(m, reserve);
        hf.base = NULL;
        return stratus_errf(eb, STRATUS_EIO, "huge frames: jemalloc refused a new arena");
    }
    snprintf(name, sizeof name, "arena.%u.dirty_decay_ms", ind);
    (void)mallctl_p(name, NULL, NULL, &never, sizeof never);
    snprintf(name, sizeof name, "arena.%u.muzzy_decay_ms", ind);
    (void)mallctl_p(name, NULL, NULL, &never, sizeof never);
    hf.arena = ind;
    hf.mallocx = mallocx_p;
    if (pthread_create(&hf.thread, NULL, toucher_main, NULL) != 0)
        return stratus_errf(eb, STRATUS_ENOMEM, "huge frames: toucher thread: %s", strerror(errno));
    hf.started = 1;
    return 0;
}

void stratus_hugeframes_stop(void)
{
    if (!hf.started)
        return;
    pthread_mutex_lock(&hf.mu);
    hf.stop = 1;
    pthread_cond_signal(&hf.cond);
    pthread_mutex_unlock(&hf.mu);
    pthread_join(hf.thread, NULL);
    hf.started = 0;
    hf.mallocx = NULL;
}

void *stratus_hugeframes_alloc(size_t size, size_t align)
{
    mallocx_fn *fn = hf.mallocx;
    void *p;
    if (!fn)
        return NULL;
    p = fn(size, MALLOCX_ARENA(hf.arena) | MALLOCX_TCACHE_NONE | MALLOCX_ALIGN(align));
    if (!p)
        atomic_fetch_add(&hf.fallbacks, 1);
    return p;
}

int stratus_hugeframes_owns(const void *p)
{
    const unsigned char *b = hf.base;
    return b && (const unsigned char *)p >= b && (const unsigned char *)p < b + hf.reserve;
}

void stratus_hugeframes_stats(struct stratus_hugeframes_stats *st)
{
    pthread_mutex_lock(&hf.mu);
    st->reserved = hf.base ? hf.reserve : 0;
    st->used = hf.used;
    st->populated = hf.populated > hf.used ? hf.populated : hf.used;
    pthread_mutex_unlock(&hf.mu);
    st->fallbacks = atomic_load(&hf.fallbacks);
}
#else /* no jemalloc headers at build time */
int stratus_hugeframes_start(size_t reserve, size_t ahead, struct stratus_errbuf *eb)
{
    (void)reserve, (void)ahead;
    return stratus_errf(eb, STRATUS_ENOTSUP, "huge frames: built without jemalloc's header");
}
void stratus_hugeframes_stop(void)
{
}
void *stratus_hugeframes_alloc(size_t size, size_t align)
{
    (void)size, (void)align;
    return NULL;
}
void stratus_hugeframes_stats(struct stratus_hugeframes_stats *st)
{
    memset(st, 0, sizeof *st);
}
#endif
