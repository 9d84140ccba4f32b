/* link: stratus_util */
/* test_loop.c - the event loop of util/loop.c: tasks posted from another thread run on the
 * loop in order, the end-of-iteration hook runs after them, and wakes deferred with
 * stratus_loop_defer_wakes() reach the loop only at stratus_loop_flush_wakes(); timers fire
 * once each in deadline order, a cancelled one never, cancelling a fired or cancelled id does
 * nothing (also once its slot is reused); an at_end call asked for twice in one iteration runs
 * once, after the iteration's tasks and before the hook, and what it posts runs before the
 * hook too (at_end outside a loop is refused); posts are refused once run() has returned.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "util/clock.h"
#include "util/loop.h"

static struct stratus_loop *L;
static atomic_int ran;          /* tasks run */
static atomic_int order_ok = 1; /* every task saw its predecessors run */
static atomic_int afters;       /* end-of-iteration hooks run */
static atomic_int ran_at_after; /* tasks run as of the last hook */

static void task(void *arg)
{
    int want = (int)(intptr_t)arg;
    if (atomic_load(&ran) != want)
        atomic_store(&order_ok, 0);
    atomic_fetch_add(&ran, 1);
}

static atomic_int at_end_runs, at_end_saw = -1, at_end_posted_ran, posted_at_after;
static atomic_int at_end_asks_ok = 1;

static void after(void *arg)
{
    (void)arg;
    atomic_fetch_add(&afters, 1);
    atomic_store(&ran_at_after, atomic_load(&ran));
    atomic_store(&posted_at_after, atomic_load(&at_end_posted_ran));
}

/* ---- at_end: a task asks twice; the call runs once, sees both tasks of its iteration run,
 * and posts one more, which runs before the hook ---- */
static void at_end_posted(void *arg)
{
    (void)arg;
    atomic_fetch_add(&at_end_posted_ran, 1);
}

static void at_end_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&at_end_runs, 1);
    atomic_store(&at_end_saw, atomic_load(&ran));
    if (stratus_loop_post(L, at_end_posted, NULL) != 0)
        atomic_store(&at_end_asks_ok, 0);
}

static void at_end_task(void *arg)
{
    task(arg);
    for (int i = 0; i < 2; i++)
        if (stratus_loop_at_end(at_end_fn, NULL) != 0)
            atomic_store(&at_end_asks_ok, 0);
}

static void stop_task(void *arg)
{
    (void)arg;
    stratus_loop_stop(L);
}

static void *loop_main(void *arg)
{
    (void)arg;
    stratus_loop_set_after(L, after, NULL);
    stratus_loop_run(L);
    return NULL;
}

/* ---- timers: 2,000 with deadlines spread over 60 ms, every third cancelled, set up and
 * checked on the loop thread ---- */
#define NT 2000
static uint64_t tid[NT];
static int64_t tdeadline[NT];
static int tfired[NT];
static int64_t last_deadline = -1;
static atomic_int tdone, torder_ok = 1, tcancel_ok = 1;
static uint64_t fired_id; /* one id that has fired, cancelled again later */

static void timer_fn(void *arg)
{
    int i = (int)(intptr_t)arg;
    tfired[i]++;
    if (tdeadline[i] < last_deadline)
        atomic_store(&torder_ok, 0);
    last_deadline = tdeadline[i];
    if (!fired_id)
        fired_id = tid[i];
    atomic_fetch_add(&tdone, 1);
}

static void timers_setup(void *arg)
{
    (void)arg;
    int64_t now = stratus_mono_ms();
    unsigned r = 12345;
    for (int i = 0; i < NT; i++) {
        r = r * 1103515245u + 12345u;
        tdeadline[i] = now + 20 + (int64_t)((r >> 16) % 60);
        tid[i] = stratus_loop_timer_at(L, tdeadline[i], timer_fn, (void *)(intptr_t)i);
        if (tid[i] == 0)
            atomic_store(&tcancel_ok, 0);
    }
    for (int i = 0; i < NT; i += 3)
        stratus_loop_timer_cancel(L, tid[i]);
    for (int i = 0; i < NT; i += 3) /* twice: a no-op */
        stratus_loop_timer_cancel(L, tid[i]);
}

/* After every timer fired: cancelling a fired id, and a cancelled one whose slot a new timer
 * took, must leave the new timer alone. */
static atomic_int reuse_fired;
static void reuse_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&reuse_fired, 1);
}
static void timers_reuse(void *arg)
{
    (void)arg;
    uint64_t a = stratus_loop_timer_at(L, stratus_mono_ms() + 10, reuse_fn, NULL);
    stratus_loop_timer_cancel(L, a);
    uint64_t b = stratus_loop_timer_at(L, stratus_mono_ms() + 10, reuse_fn, NULL); /* a's slot */
    if (b == a)
        atomic_store(&tcancel_ok, 0);
    stratus_loop_timer_cancel(L, a);
    stratus_loop_timer_cancel(L, fired_id);
    stratus_loop_timer_cancel(L, tid[0]);
}

/* Waits up to ms for ran to reach n; returns whether it did. */
static int wait_ran(int n, int ms)
{
    int64_t until = stratus_mono_ms() + ms;
    while (atomic_load(&ran) < n && stratus_mono_ms() < until)
        usleep(1000);
    return atomic_load(&ran) >= n;
}

int main(void)
{
    struct stratus_errbuf eb = {{0}};
    pthread_t th;

    L = stratus_loop_new("test", &eb);
    CHECK(L != NULL);
    if (!L)
        TEST_REPORT();
    CHECK_EQ(pthread_create(&th, NULL, loop_main, NULL), 0);

    /* plain posts: run promptly, in order, and the hook runs after them */
    for (int i = 0; i < 3; i++)
        CHECK_EQ(stratus_loop_post(L, task, (void *)(intptr_t)i), 0);
    CHECK(wait_ran(3, 5000));
    for (int i = 0; i < 500 && atomic_load(&ran_at_after) < 3; i++)
        usleep(1000);
    CHECK_EQ(atomic_load(&ran_at_after), 3);
    CHECK(atomic_load(&afters) >= 1);

    /* deferred wakes (nested): nothing runs before the outermost flush, all runs after it */
    stratus_loop_defer_wakes();
    stratus_loop_defer_wakes();
    for (int i = 3; i < 6; i++)
        CHECK_EQ(stratus_loop_post(L, task, (void *)(intptr_t)i), 0);
    usleep(100 * 1000);
    CHECK_EQ(atomic_load(&ran), 3);
    stratus_loop_flush_wakes(); /* inner: still deferred */
    usleep(100 * 1000);
    CHECK_EQ(atomic_load(&ran), 3);
    stratus_loop_flush_wakes();
    CHECK(wait_ran(6, 5000));
    CHECK_EQ(atomic_load(&ran), 6);

    /* an unmatched flush is harmless, and posts wake at once again */
    stratus_loop_flush_wakes();
    CHECK_EQ(stratus_loop_post(L, task, (void *)(intptr_t)6), 0);
    CHECK(wait_ran(7, 5000));
    CHECK(atomic_load(&order_ok));

    /* at_end: two tasks in one iteration (their wakes deferred so that they arrive together)
     * each ask twice: one call, after both, and its post runs before the hook */
    CHECK_EQ(stratus_loop_at_end(at_end_fn, NULL), STRATUS_EINVAL); /* not a loop thread */
    stratus_loop_defer_wakes();
    CHECK_EQ(stratus_loop_post(L, at_end_task, (void *)(intptr_t)7), 0);
    CHECK_EQ(stratus_loop_post(L, at_end_task, (void *)(intptr_t)8), 0);
    stratus_loop_flush_wakes();
    CHECK(wait_ran(9, 5000));
    for (int i = 0; i < 500 && atomic_load(&posted_at_after) < 1; i++)
        usleep(1000);
    CHECK_EQ(atomic_load(&at_end_runs), 1);
    CHECK_EQ(atomic_load(&at_end_saw), 9);
    CHECK_EQ(atomic_load(&at_end_posted_ran), 1);
    CHECK_EQ(atomic_load(&posted_at_after), 1);
    CHECK(atomic_load(&at_end_asks_ok));
    CHECK(atomic_load(&order_ok));

    /* timers */
    int want = NT - (NT + 2) / 3;
    CHECK_EQ(stratus_loop_post(L, timers_setup, NULL), 0);
    for (int i = 0; i < 5000 && atomic_load(&tdone) < want; i++)
        usleep(1000);
    usleep(100 * 1000); /* a cancelled timer that fired anyway would show by now */
    CHECK_EQ(atomic_load(&tdone), want);
    CHECK(atomic_load(&torder_ok));
    CHECK(atomic_load(&tcancel_ok));
    int once = 1;
    for (int i = 0; i < NT; i++)
        if (tfired[i] != (i % 3 ? 1 : 0))
            once = 0;
    CHECK(once);
    CHECK_EQ(stratus_loop_post(L, timers_reuse, NULL), 0);
    for (int i = 0; i < 2000 && atomic_load(&reuse_fired) < 1; i++)
        usleep(1000);
    usleep(50 * 1000);
    CHECK_EQ(atomic_load(&reuse_fired), 1);
    CHECK(atomic_load(&tcancel_ok));

    CHECK_EQ(stratus_loop_post(L, stop_task, NULL), 0);
    pthread_join(th, NULL);
    /* run() has returned: posts are refused (the poster keeps what it meant to hand over) */
    CHECK(stratus_loop_post(L, task, NULL) != 0);
    stratus_loop_free(L);
    TEST_REPORT();
}
