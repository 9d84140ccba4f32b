/* loop.c - the epoll event loop (see loop.h).
 *
 * Owns: the epoll fd, an eventfd that wakes the loop for posted tasks, a table of fd
 * registrations indexed by fd, a min-heap of timers, and the queue of posted tasks (the only
 * state shared with other threads, under post_lock). Registrations carry a generation so that
 * an fd closed and reused within one epoll_wait batch never reaches the old callback.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"

struct fd_reg {
    stratus_fd_fn *cb; /* NULL when the slot is free */
    void *arg;
    uint32_t gen;
};

struct timer {
    int64_t deadline_ms;
    uint32_t slot; /* its entry in slots: where cancel finds it */
    stratus_task_fn *fn;
    void *arg;
};

/* A timer id is (gen << 32 | slot). A live slot holds its timer's heap index; a free one the
 * next free slot. gen changes when the slot is freed, so a fired or cancelled id never
 * matches again (until 2^32 reuses of that one slot). */
struct timer_slot {
    uint32_t idx;
    uint32_t gen;
};

struct task {
    stratus_task_fn *fn;
    void *arg;
    struct task *next;
};

#define LOOP_AT_END_MAX 8

struct stratus_loop {
    char name[32];
    int epfd;
    int wakefd;
    atomic_int stopping; /* set by stop() from any thread */
    struct fd_reg *regs; /* indexed by fd; loop thread only */
    int nregs;
    struct timer *timers; /* min-heap by deadline; loop thread only */
    size_t ntimers, timers_cap;
    struct timer_slot *slots; /* ids -> heap index; loop thread only */
    uint32_t nslots, slots_cap, free_slot; /* free_slot: head of the free list, or UINT32_MAX */
    pthread_mutex_t post_lock; /* guards head/tail/closed */
    struct task *head, *tail;
    int closed;
    stratus_task_fn *after_fn; /* loop thread only */
    void *after_arg;
    struct task at_end[LOOP_AT_END_MAX]; /* stratus_loop_at_end() calls; loop thread only */
    int nat_end;
};

static _Thread_local struct stratus_loop *current_loop;
static void run_posted(struct stratus_loop *loop);
#define LOOP_DEFER_MAX 16
static _Thread_local int defer_depth;      /* stratus_loop_defer_wakes() nesting */
static _Thread_local int ndeferred;
static _Thread_local struct stratus_loop *deferred[LOOP_DEFER_MAX]; /* loops owed a wake */

struct stratus_loop *stratus_loop_new(const char *name, struct stratus_errbuf *eb)
{
    struct stratus_loop *loop = xcalloc(1, sizeof *loop);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};

    snprintf(loop->name, sizeof loop->name, "%s", name);
    pthread_mutex_init(&loop->post_lock, NULL);
    loop->free_slot = UINT32_MAX;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        stratus_errf(eb, STRATUS_EIO, "epoll_create1: %s", strerror(errno));
        goto out_free;
    }
    loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wakefd < 0) {
        stratus_errf(eb, STRATUS_EIO, "eventfd: %s", strerror(errno));
        goto out_close_ep;
    }
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0) {
        stratus_errf(eb, STRATUS_EIO, "epoll_ctl: %s", strerror(errno));
        goto out_close_wake;
    }
    return loop;

out_close_wake:
    close(loop->wakefd);
out_close_ep:
    close(loop->epfd);
out_free:
    pthread_mutex_destroy(&loop->post_lock);
    free(loop);
    return NULL;
}

void stratus_loop_free(struct stratus_loop *loop)
{
    struct task *t, *next;

    if (!loop)
        return;
    pthread_mutex_lock(&loop->post_lock);
    loop->closed = 1;
    t = loop->head;
    loop->head = loop->tail = NULL;
    pthread_mutex_unlock(&loop->post_lock);
    for (; t; t = next) {
        next = t->next;
        free(t);
    }
    close(loop->wakefd);
    close(loop->epfd);
    pthread_mutex_destroy(&loop->post_lock);
    free(loop->regs);
    free(loop->timers);
    free(loop->slots);
    free(loop);
}

struct stratus_loop *stratus_loop_current(void)
{
    return current_loop;
}

const char *stratus_loop_name(const struct stratus_loop *loop)
{
    return loop->name;
}

static struct fd_reg *reg_slot(struct stratus_loop *loop, int fd)
{
    if (fd >= loop->nregs) {
        int n = loop->nregs ? loop->nregs : 64;
        while (n <= fd)
            n *= 2;
        loop->regs = xrealloc(loop->regs, (size_t)n * sizeof *loop->regs);
        memset(loop->regs + loop->nregs, 0, (size_t)(n - loop->nregs) * sizeof *loop->regs);
        loop->nregs = n;
    }
    return &loop->regs[fd];
}

static int ctl_fd(struct stratus_loop *loop, int op, int fd, uint32_t events, stratus_fd_fn *cb,
                  void *arg)
{
    struct fd_reg *r = reg_slot(loop, fd);
    struct epoll_event ev;

    if (op == EPOLL_CTL_ADD)
        r->gen++;
    ev.events = events;
    ev.data.u64 = ((uint64_t)r->gen << 32) | (uint32_t)fd;
    if (epoll_ctl(loop->epfd, op, fd, &ev) < 0)
        return STRATUS_EIO;
    r->cb = cb;
    r->arg = arg;
    return 0;
}

int stratus_loop_add_fd(struct stratus_loop *loop, int fd, uint32_t events, stratus_fd_fn *cb,
                        void *arg)
{
    return ctl_fd(loop, EPOLL_CTL_ADD, fd, events, cb, arg);
}

int stratus_loop_mod_fd(struct stratus_loop *loop, int fd, uint32_t events, stratus_fd_fn *cb,
                        void *arg)
{
    return ctl_fd(loop, EPOLL_CTL_MOD, fd, events, cb, arg);
}

void stratus_loop_del_fd(struct stratus_loop *loop, int fd)
{
    if (fd < 0 || fd >= loop->nregs)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    loop->regs[fd].cb = NULL;
    loop->regs[fd].arg = NULL;
    loop->regs[fd].gen++;
}

int stratus_loop_post(struct stratus_loop *loop, stratus_task_fn *fn, void *arg)
{
    struct task *t = xmalloc(sizeof *t);
    uint64_t one = 1;
    int was_empty;

    t->fn = fn;
    t->arg = arg;
    t->next = NULL;
    pthread_mutex_lock(&loop->post_lock);
    if (loop->closed) {
        pthread_mutex_unlock(&loop->post_lock);
        free(t);
        return STRATUS_ECLOSED;
    }
    was_empty = loop->head == NULL;
    if (loop->tail)
        loop->tail->next = t;
    else
        loop->head = t;
    loop->tail = t;
    pthread_mutex_unlock(&loop->post_lock);
    if (was_empty && defer_depth > 0 && loop != current_loop) {
        for (int i = 0; i < ndeferred; i++)
            if (deferred[i] == loop)
                return 0;
        if (ndeferred < LOOP_DEFER_MAX) {
            deferred[ndeferred++] = loop;
            return 0;
        }
    }
    if (was_empty) {
        ssize_t w = write(loop->wakefd, &one, sizeof one);
        (void)w; /* EAGAIN means the counter is already non-zero: the loop wakes anyway */
    }
    return 0;
}

void stratus_loop_defer_wakes(void)
{
    defer_depth++;
}

void stratus_loop_flush_wakes(void)
{
    uint64_t one = 1;

    if (defer_depth == 0 || --defer_depth > 0)
        return;
    for (int i = 0; i < ndeferred; i++) {
        ssize_t w = write(deferred[i]->wakefd, &one, sizeof one);
        (void)w;
    }
    ndeferred = 0;
}

int stratus_loop_at_end(stratus_task_fn *fn, void *arg)
{
    struct stratus_loop *loop = current_loop;

    if (!loop)
        return STRATUS_EINVAL;
    for (int i = 0; i < loop->nat_end; i++)
        if (loop->at_end[i].fn == fn && loop->at_end[i].arg == arg)
            return 0;
    if (loop->nat_end == LOOP_AT_END_MAX)
        return STRATUS_ENOMEM;
    loop->at_end[loop->nat_end++] = (struct task){fn, arg, NULL};
    return 0;
}

/* Runs the iteration's at_end calls, and (with posted) the tasks they post here, until none
 * is asked for again (at most a few rounds: what is left runs after the next, non-blocking,
 * epoll_wait). */
static void run_at_end(struct stratus_loop *loop, int posted)
{
    struct task calls[LOOP_AT_END_MAX];

    for (int round = 0; round < 4 && loop->nat_end > 0; round++) {
        int n = loop->nat_end;
        memcpy(calls, loop->at_end, (size_t)n * sizeof calls[0]);
        loop->nat_end = 0;
        for (int i = 0; i < n; i++)
            calls[i].fn(calls[i].arg);
        pthread_mutex_lock(&loop->post_lock);
        int any = loop->head != NULL;
        pthread_mutex_unlock(&loop->post_lock);
        if (posted && any)
            run_posted(loop);
    }
}

void stratus_loop_set_after(struct stratus_loop *loop, stratus_task_fn *fn, void *arg)
{
    loop->after_fn = fn;
    loop->after_arg = arg;
}

static void run_posted(struct stratus_loop *loop)
{
    uint64_t v;
    struct task *t, *next;
    ssize_t r = read(loop->wakefd, &v, sizeof v);

    (void)r;
    pthread_mutex_lock(&loop->post_lock);
    t = loop->head;
    loop->head = loop->tail = NULL;
    pthread_mutex_unlock(&loop->post_lock);
    for (; t; t = next) {
        next = t->next;
        t->fn(t->arg);
        free(t);
    }
}

/* ---- timers: a binary min-heap on deadline_ms, with slots for O(log n) cancel ---- */

static void heap_set(struct stratus_loop *loop, size_t i, const struct timer *t)
{
    loop->timers[i] = *t;
    loop->slots[t->slot].idx = (uint32_t)i;
}

static void heap_up(struct stratus_loop *loop, size_t i)
{
    struct timer t = loop->timers[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (loop->timers[p].deadline_ms <= t.deadline_ms)
            break;
        heap_set(loop, i, &loop->timers[p]);
        i = p;
    }
    heap_set(loop, i, &t);
}

static void heap_down(struct stratus_loop *loop, size_t i)
{
    struct timer t = loop->timers[i];
    size_t n = loop->ntimers;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = l;
        if (l >= n)
            break;
        if (r < n && loop->timers[r].deadline_ms < loop->timers[l].deadline_ms)
            m = r;
        if (loop->timers[m].deadline_ms >= t.deadline_ms)
            break;
        heap_set(loop, i, &loop->timers[m]);
        i = m;
    }
    heap_set(loop, i, &t);
}

/* Removes heap entry i and frees its slot. */
static void heap_remove(struct stratus_loop *loop, size_t i)
{
    uint32_t slot = loop->timers[i].slot;
    struct timer_slot *sl = &loop->slots[slot];

    sl->gen = sl->gen + 1 ? sl->gen + 1 : 1;
    sl->idx = loop->free_slot;
    loop->free_slot = slot;
    loop->ntimers--;
    if (i == loop->ntimers)
        return;
    heap_set(loop, i, &loop->timers[loop->ntimers]);
    heap_down(loop, i);
    heap_up(loop, i);
}

uint64_t stratus_loop_timer_at(struct stratus_loop *loop, int64_t deadline_ms, stratus_task_fn *fn,
                               void *arg)
{
    uint32_t slot;

    if (loop->ntimers == loop->timers_cap) {
        loop->timers_cap = loop->timers_cap ? loop->timers_cap * 2 : 64;
        loop->timers = xrealloc(loop->timers, loop->timers_cap * sizeof *loop->timers);
    }
    if (loop->free_slot != UINT32_MAX) {
        slot = loop->free_slot;
        loop->free_slot = loop->slots[slot].idx;
    } else {
        if (loop->nslots == loop->slots_cap) {
            loop->slots_cap = loop->slots_cap ? loop->slots_cap * 2 : 64;
            loop->slots = xrealloc(loop->slots, loop->slots_cap * sizeof *loop->slots);
        }
        slot = loop->nslots++;
        loop->slots[slot].gen = 1;
    }
    struct timer t = {.deadline_ms = deadline_ms, .slot = slot, .fn = fn, .arg = arg};
    heap_set(loop, loop->ntimers++, &t);
    heap_up(loop, loop->ntimers - 1);
    return (uint64_t)loop->slots[slot].gen << 32 | slot;
}

void stratus_loop_timer_cancel(struct stratus_loop *loop, uint64_t id)
{
    uint32_t slot = (uint32_t)id, gen = (uint32_t)(id >> 32);

    if (slot >= loop->nslots || loop->slots[slot].gen != gen)
        return; /* fired or cancelled already */
    heap_remove(loop, loop->slots[slot].idx);
}

static void run_timers(struct stratus_loop *loop)
{
    int64_t now = stratus_mono_ms();

    while (loop->ntimers && loop->timers[0].deadline_ms <= now) {
        struct timer t = loop->timers[0];
        heap_remove(loop, 0);
        t.fn(t.arg);
    }
}

void stratus_loop_stop(struct stratus_loop *loop)
{
    uint64_t one = 1;
    ssize_t w;

    atomic_store(&loop->stopping, 1);
    w = write(loop->wakefd, &one, sizeof one);
    (void)w;
}

void stratus_loop_run(struct stratus_loop *loop)
{
    struct epoll_event evs[128];

    current_loop = loop;
    while (!atomic_load(&loop->stopping)) {
        int timeout = -1;
        if (loop->nat_end > 0)
            timeout = 0; /* at_end calls left over from the last iteration */
        else if (loop->ntimers) {
            int64_t d = loop->timers[0].deadline_ms - stratus_mono_ms();
            timeout = d < 0 ? 0 : d > 1000 ? 1000 : (int)d;
        }
        int n = epoll_wait(loop->epfd, evs, 128, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            LOG_ERROR("loop", "epoll_wait failed loop=%s err=%s", loop->name, strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            uint64_t u = evs[i].data.u64;
            if (u == UINT64_MAX) {
                run_posted(loop);
                continue;
            }
            int fd = (int)(uint32_t)u;
            uint32_t gen = (uint32_t)(u >> 32);
            if (fd >= loop->nregs)
                continue;
            struct fd_reg *r = &loop->regs[fd];
            if (r->cb && r->gen == gen)
                r->cb(r->arg, evs[i].events);
        }
        run_timers(loop);
        run_at_end(loop, 1);
        if (loop->after_fn)
            loop->after_fn(loop->after_arg);
    }
    run_at_end(loop, 0); /* asked for by the last iteration's tasks: the calls still run */
    /* Nothing posted from now on would run: refuse it, so that the poster keeps (and frees)
     * what it meant to hand over. */
    pthread_mutex_lock(&loop->post_lock);
    loop->closed = 1;
    pthread_mutex_unlock(&loop->post_lock);
    current_loop = NULL;
}
