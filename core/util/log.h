/* log.h - the broker's log: one line per event, "time level subsystem message key=value".
 *
 * Lines go to stderr. The level is checked before the arguments are evaluated. Secrets are
 * never passed here. Thread-safe: each line is written with one write(2).
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_UTIL_LOG_H
#define STRATUS_UTIL_LOG_H

#include <stdarg.h>

#include "stratus/stratus_plugin.h" /* enum stratus_log_level */

/* current level; lines above it are dropped. Atomic: POST /loglevel changes it while every
 * thread reads it (plain loads on x86). */
extern _Atomic int stratus_log_level;

#define stratus_log(level, subsys, ...)                  \
    do {                                                 \
        if ((level) <= stratus_log_level)                \
            stratus_log_write(level, subsys, __VA_ARGS__); \
    } while (0)

#define LOG_ERROR(subsys, ...) stratus_log(STRATUS_LOG_ERROR, subsys, __VA_ARGS__)
#define LOG_WARN(subsys, ...)  stratus_log(STRATUS_LOG_WARN, subsys, __VA_ARGS__)
#define LOG_INFO(subsys, ...)  stratus_log(STRATUS_LOG_INFO, subsys, __VA_ARGS__)
#define LOG_DEBUG(subsys, ...) stratus_log(STRATUS_LOG_DEBUG, subsys, __VA_ARGS__)
#define LOG_TRACE(subsys, ...) stratus_log(STRATUS_LOG_TRACE, subsys, __VA_ARGS__)

void stratus_log_write(int level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void stratus_log_vwrite(int level, const char *subsys, const char *fmt, va_list ap);

/* Parses "error|warn|info|debug|trace"; returns the level or -1. */
int stratus_log_parse_level(const char *s);

#endif
