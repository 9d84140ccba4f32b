/* test.h - the tiny assertion kit the C tests share: CHECK(cond) and CHECK_EQ(a, b) record a
 * failure with file:line and go on; TEST_MAIN() ends with "N passed, N failed" and the exit
 * code. SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_TEST_H
#define STRATUS_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int test_passed, test_failed;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (cond) {                                                                 \
            test_passed++;                                                          \
        } else {                                                                    \
            test_failed++;                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

#define CHECK_EQ(a, b)                                                                        \
    do {                                                                                      \
        long long _a = (long long)(a), _b = (long long)(b);                                   \
        if (_a == _b) {                                                                       \
            test_passed++;                                                                    \
        } else {                                                                              \
            test_failed++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", __FILE__,    \
                    __LINE__, #a, #b, _a, _b);                                                \
        }                                                                                     \
    } while (0)

#define CHECK_STR(a, b)                                                                       \
    do {                                                                                      \
        const char *_a = (a), *_b = (b);                                                      \
        if (_a && _b && strcmp(_a, _b) == 0) {                                                \
            test_passed++;                                                                    \
        } else {                                                                              \
            test_failed++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s == %s (\"%s\" != \"%s\")\n",         \
                    __FILE__, __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)");      \
        }                                                                                     \
    } while (0)

#define TEST_REPORT()                                                          \
    do {                                                                       \
        printf("%d passed, %d failed\n", test_passed, test_failed);            \
        return test_failed ? 1 : 0;                                            \
    } while (0)

#endif
