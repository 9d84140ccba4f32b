/* log.c - implementation of the one-line log (see log.h).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

_Atomic int stratus_log_level = STRATUS_LOG_INFO;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

void stratus_log_vwrite(int level, const char *subsys, const char *fmt, va_list ap)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int k;

    if (level < 0)
        level = 0;
    if (level > STRATUS_LOG_TRACE)
        level = STRATUS_LOG_TRACE;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    k = snprintf(line + n, sizeof line - n, ".%03dZ %-5s %s ", (int)(tv.tv_usec / 1000),
                 level_names[level], subsys ? subsys : "-");
    if (k > 0)
        n += (size_t)k < sizeof line - n ? (size_t)k : sizeof line - n - 1;
    k = vsnprintf(line + n, sizeof line - n, fmt, ap);
    if (k > 0)
        n += (size_t)k < sizeof line - n ? (size_t)k : sizeof line - n - 1;
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void stratus_log_write(int level, const char *subsys, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    stratus_log_vwrite(level, subsys, fmt, ap);
    va_end(ap);
}

int stratus_log_parse_level(const char *s)
{
    for (int i = 0; i <= STRATUS_LOG_TRACE; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return STRATUS_LOG_WARN;
    return -1;
}
