/* coldgate.c - the limit on cold reads in flight that follows the WAL's write latency
 * (coldgate.h says why and how).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "coldgate.h"

#include <time.h>

#include "util/clock.h"

#define GATE_EVAL_US 50000     /* how often the limit may move */
#define GATE_IDLE_US 500000    /* no WAL write for this long: nothing to protect */
#define GATE_SLOW_SLACK_US 200 /* loaded > 2 x base + this: halve */
#define GATE_OK_SLACK_US 100   /* loaded < 1.5 x base + this: one more */

void stratus_coldgate_init(struct stratus_coldgate *g, int max, int enabled)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->enabled = enabled;
    g->max = g->limit = max > 0 ? max : 1;
    g->inflight = 0;
    g->idle_since_us = 0;
    g->last_write_us = g->last_eval_us = 0;
    g->base_us = g->load_us = 0;
    g->last_load_us = 0;
    g->waits = 0;
}

void stratus_coldgate_destroy(struct stratus_coldgate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

int stratus_coldgate_enter(struct stratus_coldgate *g)
{
    int limited;

    pthread_mutex_lock(&g->mu);
    int waited = 0;
    for (;;) {
        if (g->limit < g->max && stratus_mono_us() - g->last_write_us > GATE_IDLE_US) {
            g->limit = g->max; /* the WAL went quiet: reads at full speed */
            g->load_us = 0;
            pthread_cond_broadcast(&g->cv);
        }
        if (!g->enabled || g->inflight < g->limit)
            break;
        waited = 1;
        /* bounded, so that a WAL gone quiet is noticed without a write to signal it */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    }
    g->waits += (uint64_t)waited;
    g->inflight++;
    limited = g->enabled && g->limit < g->max;
    pthread_mutex_unlock(&g->mu);
    return limited;
}

void stratus_coldgate_leave(struct stratus_coldgate *g)
{
    pthread_mutex_lock(&g->mu);
    if (--g->inflight == 0)
        g->idle_since_us = stratus_mono_us();
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

void stratus_coldgate_observe_locked(struct stratus_coldgate *g, int64_t now_us,
                                     int64_t start_us, int64_t dt_us)
{
    g->last_write_us = now_us;
    if (g->inflight == 0 && g->idle_since_us <= start_us) /* no cold read during the write */
        g->base_us = g->base_us > 0 ? g->base_us + ((double)dt_us - g->base_us) / 16 : (double)dt_us;
    else {
        g->load_us = g->load_us > 0 ? g->load_us + ((double)dt_us - g->load_us) / 8 : (double)dt_us;
        g->last_load_us = now_us;
    }
    /* decide every GATE_EVAL_US, on a baseline and a loaded average that is not stale */
    if (!g->enabled || g->base_us <= 0 || g->load_us <= 0 ||
        now_us - g->last_eval_us < GATE_EVAL_US || now_us - g->last_load_us > GATE_EVAL_US)
        return;
    g->last_eval_us = now_us;
    if (g->load_us > 2 * g->base_us + GATE_SLOW_SLACK_US) {
        g->limit = g->limit > 1 ? g->limit / 2 : 1;
    } else if (g->load_us < 1.5 * g->base_us + GATE_OK_SLACK_US && g->limit < g->max) {
        g->limit++;
        pthread_cond_broadcast(&g->cv);
    }
}

void stratus_coldgate_wal_write(void *gate, int64_t start_us, int64_t dt_us)
{
    struct stratus_coldgate *g = gate;
    pthread_mutex_lock(&g->mu);
    stratus_coldgate_observe_locked(g, stratus_mono_us(), start_us, dt_us);
    pthread_mutex_unlock(&g->mu);
}

void stratus_coldgate_stats(struct stratus_coldgate *g, int *limit, uint64_t *waits)
{
    pthread_mutex_lock(&g->mu);
    *limit = g->limit;
    *waits = g->waits;
    pthread_mutex_unlock(&g->mu);
}
