/* link: stratus_stream */
/* test_coldgate.c - the cold-read gate (coldgate.h): its limit follows the WAL's write latency.
 * Writes with no cold read in flight set the baseline; slower writes beside reads halve the
 * limit down to 1; writes beside reads as fast as the baseline raise it again; reads beyond
 * the limit wait until one leaves; no baseline, or the gate turned off, limits nothing.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "stream/coldgate.h"
#include "test.h"
#include "util/clock.h"

/* n writes of dt_us each, 10 ms apart from t (advanced), as the WAL would report them */
static void writes(struct stratus_coldgate *g, int64_t *t, int n, int64_t dt_us)
{
    for (int i = 0; i < n; i++) {
        *t += 10000;
        pthread_mutex_lock(&g->mu);
        stratus_coldgate_observe_locked(g, *t, *t - dt_us, dt_us);
        pthread_mutex_unlock(&g->mu);
    }
}

struct waiter {
    struct stratus_coldgate *g;
    atomic_int entered;
};

static void *enter_thread(void *arg)
{
    struct waiter *w = arg;
    stratus_coldgate_enter(w->g);
    atomic_store(&w->entered, 1);
    stratus_coldgate_leave(w->g);
    return NULL;
}

int main(void)
{
    struct stratus_coldgate g;
    int limit;
    uint64_t waits;
    int64_t t = stratus_mono_us();

    /* reads beside slow writes but no baseline yet: nothing is limited */
    stratus_coldgate_init(&g, 4, 1);
    g.inflight = 2;
    writes(&g, &t, 20, 3000);
    CHECK_EQ(g.limit, 4);

    /* a baseline of 300 us from writes with no read in flight (the last read ended before);
     * the loaded samples above are stale by then and decide nothing */
    g.inflight = 0;
    t += 100000;
    g.idle_since_us = t - 1;
    writes(&g, &t, 40, 300);
    CHECK(g.base_us > 280 && g.base_us < 320);
    CHECK_EQ(g.limit, 4);

    /* a write that began before the last read ended is not a baseline sample */
    g.idle_since_us = t + 9000; /* the write below runs from t + 7000 to t + 10000 */
    double base = g.base_us;
    writes(&g, &t, 1, 3000);
    CHECK(g.base_us == base);

    /* writes beside reads at 2.5 ms (> 2 x 300 + 200): the limit halves, 50 ms apart, to 1 */
    g.inflight = 1;
    writes(&g, &t, 30, 2500);
    CHECK_EQ(g.limit, 1);

    /* beside reads at 350 us (< 1.5 x 300 + 100): one more every 50 ms, up to the pool */
    g.load_us = 0;
    writes(&g, &t, 6, 350);
    CHECK(g.limit >= 2 && g.limit < 4);
    writes(&g, &t, 40, 350);
    CHECK_EQ(g.limit, 4);

    /* in between (1.5x..2x): the limit holds */
    g.limit = 2;
    g.load_us = 0;
    writes(&g, &t, 30, 580);
    CHECK_EQ(g.limit, 2);
    g.inflight = 0;

    /* a read beyond the limit waits until one leaves; the wait is counted */
    g.limit = 1;
    g.last_write_us = stratus_mono_us(); /* the WAL is writing: the limit stands */
    stratus_coldgate_enter(&g);
    struct waiter w = {.g = &g};
    atomic_init(&w.entered, 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, enter_thread, &w), 0);
    usleep(30000);
    CHECK_EQ(atomic_load(&w.entered), 0);
    pthread_mutex_lock(&g.mu);
    g.last_write_us = stratus_mono_us();
    pthread_mutex_unlock(&g.mu);
    stratus_coldgate_leave(&g);
    pthread_join(th, NULL);
    CHECK_EQ(atomic_load(&w.entered), 1);
    stratus_coldgate_stats(&g, &limit, &waits);
    CHECK_EQ(limit, 1);
    CHECK_EQ(waits, 1u);

    /* the WAL quiet for over 500 ms: the next read finds the full limit again */
    g.last_write_us = stratus_mono_us() - 600000;
    stratus_coldgate_enter(&g);
    CHECK_EQ(g.limit, 4);
    stratus_coldgate_leave(&g);
    stratus_coldgate_destroy(&g);

    /* turned off: slow writes beside reads change nothing that matters */
    stratus_coldgate_init(&g, 4, 0);
    t = stratus_mono_us();
    g.idle_since_us = t - 1;
    writes(&g, &t, 40, 300);
    g.inflight = 1;
    writes(&g, &t, 30, 3000);
    CHECK_EQ(g.limit, 4);
    g.inflight = 0;
    stratus_coldgate_destroy(&g);
    TEST_REPORT();
}
