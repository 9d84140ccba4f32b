/* link: stratus_util */
/* test_sched.c - the latency-path threads' scheduler slice: clamping to the kernel's bounds,
 * the slice really held by the thread on a kernel that keeps custom slices (Linux >= 6.12; an
 * older one must answer STRATUS_ENOTSUP), its nice value kept, and an idle-policy thread left
 * alone.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "test.h"
#include "stratus/stratus_err.h"
#include "util/sched.h"

struct attr { /* the kernel's struct sched_attr, read independently of sched.c */
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t prio;
    uint64_t runtime, deadline, period;
    uint32_t umin, umax;
};

/* No CHECK in here: it runs on the test's second thread, and the counters are the main one's. */
static int self_attr(struct attr *a)
{
    memset(a, 0, sizeof *a);
    return (int)syscall(SYS_sched_getattr, 0, a, sizeof *a, 0);
}

static int kernel_keeps_slices(void)
{
    struct utsname u;
    int major = 0, minor = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
        return 0;
    return major > 6 || (major == 6 && minor >= 12);
}

struct result {
    int nice_rc, rc, get_rc;
    struct attr a;
    int idle_set_rc, idle_rc, idle_get_rc;
    struct attr idle_before, idle;
};

/* The thread the slice is applied to; main checks what it recorded after joining it. */
static void *latency_thread(void *arg)
{
    struct result *r = arg;
    r->nice_rc = setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 5);
    r->rc = stratus_sched_latency_thread();
    r->get_rc = self_attr(&r->a);

    struct sched_param sp = {0};
    r->idle_set_rc = pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    self_attr(&r->idle_before);
    r->idle_rc = stratus_sched_latency_thread();
    r->idle_get_rc = self_attr(&r->idle);
    return NULL;
}

int main(void)
{
    /* clamping */
    stratus_sched_set_latency_slice(0);
    CHECK_EQ(stratus_sched_latency_slice(), 0u);
    CHECK_EQ(stratus_sched_latency_thread(), 0); /* none set: nothing asked */
    stratus_sched_set_latency_slice(30);
    CHECK_EQ(stratus_sched_latency_slice(), STRATUS_SCHED_SLICE_MIN_US);
    stratus_sched_set_latency_slice(5000000);
    CHECK_EQ(stratus_sched_latency_slice(), STRATUS_SCHED_SLICE_MAX_US);

    /* a thread asks for 300 us */
    stratus_sched_set_latency_slice(300);
    struct result r;
    memset(&r, 0, sizeof r);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, latency_thread, &r), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    printf("sched: kernel keeps custom slices: %s; rc %d, slice %llu ns, nice %d\n",
           kernel_keeps_slices() ? "yes" : "no", r.rc, (unsigned long long)r.a.runtime, r.a.nice);
    if (kernel_keeps_slices()) {
        CHECK_EQ(r.rc, 0);
        CHECK_EQ(r.a.runtime, 300000u);
    } else {
        CHECK_EQ(r.rc, STRATUS_ENOTSUP);
    }
    CHECK_EQ(r.nice_rc, 0);
    CHECK_EQ(r.get_rc, 0);
    CHECK_EQ(r.a.policy, (uint32_t)SCHED_OTHER);
    CHECK_EQ(r.a.nice, 5); /* the thread's nice value survives */
    CHECK_EQ(r.idle_set_rc, 0);
    CHECK_EQ(r.idle_get_rc, 0);
    CHECK_EQ(r.idle_rc, 0);
    CHECK_EQ(r.idle.policy, (uint32_t)SCHED_IDLE);
    CHECK_EQ(r.idle.runtime, r.idle_before.runtime); /* left alone */
    TEST_REPORT();
}
