/* stratus_err.h - the error codes shared by the Stratus core and its plugins.
 *
 * Every function of the SDK and of the core returns 0 on success or a negative STRATUS_E* code.
 * Detail goes into a caller-provided struct stratus_errbuf. Kafka wire error codes are a
 * different type (int16_t, core/proto) and never mix with these.
 *
 * Only STRATUS_EAGAIN is retryable: the core owns retries, backoff and their metrics.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_ERR_H
#define STRATUS_ERR_H

#include <stdarg.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* XX(name, value, description) */
#define STRATUS_ERR_MAP(XX)                                                        \
    XX(OK, 0, "success")                                                           \
    XX(EAGAIN, -1, "transient failure, retry with backoff")                        \
    XX(ENOTFOUND, -2, "not found")                                                 \
    XX(EEXIST, -3, "precondition failed (exists, or does not match)")              \
    XX(EAUTH, -4, "authentication or authorization failed")                        \
    XX(EINVAL, -5, "invalid argument or configuration")                            \
    XX(ENOMEM, -6, "out of memory or over a configured limit")                     \
    XX(EIO, -7, "I/O error")                                                       \
    XX(ENOTSUP, -8, "operation not supported")                                     \
    XX(EPROTO, -9, "malformed input")                                              \
    XX(ECLOSED, -10, "closed or shutting down")                                    \
    XX(ECORRUPT, -11, "data failed an integrity check")                            \
    XX(ERANGE, -12, "out of range")

enum stratus_err {
#define STRATUS_ERR_ENUM(name, val, desc) STRATUS_##name = (val),
    STRATUS_ERR_MAP(STRATUS_ERR_ENUM)
#undef STRATUS_ERR_ENUM
};

/* A message buffer for the detail of an error; the callee writes a NUL-terminated string. */
struct stratus_errbuf {
    char msg[256];
};

/* Writes a formatted message into eb (NULL allowed) and returns code, so that
 * `return stratus_errf(eb, STRATUS_EIO, "open %s: %s", path, strerror(errno));` reads well. */
static inline int stratus_errf(struct stratus_errbuf *eb, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int stratus_errf(struct stratus_errbuf *eb, int code, const char *fmt, ...)
{
    if (eb) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(eb->msg, sizeof eb->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* The symbolic name ("STRATUS_EAGAIN") and description of a code. */
static inline const char *stratus_err_name(int code)
{
    switch (code) {
#define STRATUS_ERR_NAME(name, val, desc) \
    case val:                             \
        return "STRATUS_" #name;
        STRATUS_ERR_MAP(STRATUS_ERR_NAME)
#undef STRATUS_ERR_NAME
    }
    return "STRATUS_E?";
}

static inline const char *stratus_strerror(int code)
{
    switch (code) {
#define STRATUS_ERR_DESC(name, val, desc) \
    case val:                             \
        return desc;
        STRATUS_ERR_MAP(STRATUS_ERR_DESC)
#undef STRATUS_ERR_DESC
    }
    return "unknown error";
}

#ifdef __cplusplus
}
#endif
#endif
