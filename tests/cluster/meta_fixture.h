/* meta_fixture.h - what the metastore and controller tests (test_meta, test_controller) share
 * on top of etcd_harness.h, one copy instead of one per test: the one etcd member each runs
 * (mx_etcd_start), polling a condition (WAIT_FOR) and looking for a prepared object
 * (mx_prepared_exists). Header-only (static functions) because each test is one executable;
 * the prefix mx_ stands for this file. Include after test.h.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_TEST_META_FIXTURE_H
#define STRATUS_TEST_META_FIXTURE_H

#include "cluster/meta.h"
#include "etcd_harness.h"
#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>

/* Polls cond (an expression) every 20 ms for up to ms. */
#define WAIT_FOR(cond, ms)                                                                         \
    do {                                                                                           \
        int64_t _dl = stratus_mono_ms() + (ms);                                                    \
        while (!(cond) && stratus_mono_ms() < _dl)                                                 \
            harness_sleep_ms(20);                                                                  \
    } while (0)

/* Starts m, a one-member etcd cluster whose data dir is named after name, and waits until it
 * answers (exits 77 when etcd is not installed): 0, or -1 (said on stderr) with nothing left
 * running. */
static inline int mx_etcd_start(struct etcd_member *m, const char *name)
{
    etcd_require_binary();
    if (etcd_cluster_start(m, 1, name) < 0 || etcd_wait_ready(m->url, 15000) < 0) {
        etcd_cluster_destroy(m, 1);
        fprintf(stderr, "cannot start etcd\n");
        return -1;
    }
    return 0;
}

/* 1 when the metastore lists prepared object id, 0 when not, -1 when listing failed. */
static inline int mx_prepared_exists(struct stratus_meta *m, uint64_t id)
{
    struct stratus_meta_prepared *ps;
    size_t n;
    struct stratus_errbuf eb;
    int found = 0;
    if (stratus_meta_list_prepared(m, &ps, &n, &eb) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (ps[i].object_id == id)
            found = 1;
    free(ps);
    return found;
}

#endif
