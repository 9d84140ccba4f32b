/* sched.c - latency-path threads' scheduler slice (see sched.h).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "sched.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

#include "stratus/stratus_err.h"
#include "util/log.h"

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

static uint32_t latency_slice_us; /* atomic: a second broker in one process may set it */
static int told; /* the kernel's refusal is logged once, by the first thread that meets it */

static int refused(int rc)
{
    if (!__atomic_exchange_n(&told, 1, __ATOMIC_RELAXED))
        LOG_INFO("sched", "slice of %u us not applied (%s): custom slices need Linux 6.12+; "
                 "the kernel's default is kept", stratus_sched_latency_slice(),
                 rc == STRATUS_ENOTSUP ? "not supported" : "sched_setattr failed");
    return rc;
}

void stratus_sched_set_latency_slice(uint32_t us)
{
    if (us && us < STRATUS_SCHED_SLICE_MIN_US)
        us = STRATUS_SCHED_SLICE_MIN_US;
    if (us > STRATUS_SCHED_SLICE_MAX_US)
        us = STRATUS_SCHED_SLICE_MAX_US;
    __atomic_store_n(&latency_slice_us, us, __ATOMIC_RELAXED);
}

uint32_t stratus_sched_latency_slice(void)
{
    return __atomic_load_n(&latency_slice_us, __ATOMIC_RELAXED);
}

#if defined(__linux__) && defined(SYS_sched_setattr) && defined(SYS_sched_getattr)
/* The kernel's struct sched_attr (SCHED_ATTR_SIZE_VER1); glibc before 2.41 does not define it. */
struct sched_attr_v1 {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime; /* for SCHED_OTHER/SCHED_BATCH since 6.12: the slice, in ns */
    uint64_t sched_deadline;
    uint64_t sched_period;
    uint32_t sched_util_min;
    uint32_t sched_util_max;
};

int stratus_sched_latency_thread(void)
{
    struct sched_attr_v1 a;
    uint64_t want = (uint64_t)stratus_sched_latency_slice() * 1000;

    if (!want)
        return 0;
    memset(&a, 0, sizeof a);
    if (syscall(SYS_sched_getattr, 0, &a, sizeof a, 0) != 0)
        return refused(errno == ENOSYS ? STRATUS_ENOTSUP : STRATUS_EIO);
    if (a.sched_policy != SCHED_OTHER && a.sched_policy != SCHED_BATCH)
        return 0; /* an operator chose real-time or idle scheduling: leave it */
    a.size = sizeof a;
    a.sched_flags = 0;
    a.sched_runtime = want;
    a.sched_deadline = a.sched_period = 0;
    if (syscall(SYS_sched_setattr, 0, &a, 0) != 0)
        return refused(errno == EINVAL || errno == E2BIG ? STRATUS_ENOTSUP : STRATUS_EIO);
    memset(&a, 0, sizeof a);
    if (syscall(SYS_sched_getattr, 0, &a, sizeof a, 0) != 0 || a.sched_runtime != want)
        return refused(STRATUS_ENOTSUP); /* accepted but not kept: a kernel before 6.12 */
    return 0;
}
#else
int stratus_sched_latency_thread(void)
{
    return stratus_sched_latency_slice() ? refused(STRATUS_ENOTSUP) : 0;
}
#endif
