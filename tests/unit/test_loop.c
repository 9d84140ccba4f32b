/* link: stratus_util */
/* test_loop.c - the event loop of util/loop.c: tasks posted from another thread run on the
 * loop in order, the end-of-iteration hook runs after them, and wakes deferred with
 * stratus_loop_defer_wakes() reach the loop only at stratus_loop_flush_wakes().
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

static void after(void *arg)
{
    (void)arg;
    atomic_fetch_add(&afters, 1);
    atomic_store(&ran_at_after, atomic_load(&ran));
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

    CHECK_EQ(stratus_loop_post(L, stop_task, NULL), 0);
    pthread_join(th, NULL);
    stratus_loop_free(L);
    TEST_REPORT();
}
