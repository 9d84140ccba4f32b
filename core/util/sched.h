/* sched.h - the scheduler time slice of the threads on the produce path (network threads and
 * WAL writers).
 *
 * On a machine whose cores the broker shares (with its clients, other services or a noisy
 * host), a network thread that woke to a backlog can run for the kernel's whole slice (several
 * ms) while the threads it competes with wait. Since Linux 6.12 (EEVDF custom slices) a thread
 * can ask for a shorter slice with sched_setattr(sched_runtime): it is then preempted sooner
 * when others wait, and scheduled sooner when it wakes. Older kernels ignore the request.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_UTIL_SCHED_H
#define STRATUS_UTIL_SCHED_H

#include <stdint.h>

#define STRATUS_SCHED_SLICE_MIN_US 100u    /* the kernel's bounds for a custom slice */
#define STRATUS_SCHED_SLICE_MAX_US 100000u

/* @locality startup, before the threads start. The slice latency-path threads ask for, in
 * microseconds; 0 (the default) leaves the kernel's. */
void stratus_sched_set_latency_slice(uint32_t us);
uint32_t stratus_sched_latency_slice(void);

/* Called by a latency-path thread as it starts: applies the slice set above to the calling
 * thread (its policy and nice value unchanged). Returns 0 when the kernel took it or none is
 * set, STRATUS_ENOTSUP when the kernel keeps its own (before 6.12, or not Linux), another
 * STRATUS_E* code when the call failed. Never fatal; the first refusal is logged (once). */
int stratus_sched_latency_thread(void);

#endif
