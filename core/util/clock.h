/* clock.h - the only place the core reads clocks: wall ms for timestamps, monotonic for
 * timeouts. SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_UTIL_CLOCK_H
#define STRATUS_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t stratus_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t stratus_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t stratus_mono_ms(void)
{
    return stratus_mono_us() / 1000;
}

#endif
