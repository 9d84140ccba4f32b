/* link: stratus_util */
/* test_copy.c - stratus_copy_nt copies exactly n bytes for every length and both alignments
 * around its streaming path (1 KiB up, 16-byte destination alignment, 64-byte steps), and
 * touches nothing beyond them.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>

#include "test.h"
#include "util/copy.h"

int main(void)
{
    size_t cap = 8192 + 64;
    unsigned char *src = malloc(cap), *dst = malloc(cap + 64), *want = malloc(cap + 64);
    CHECK(src && dst && want);
    if (!src || !dst || !want)
        TEST_REPORT();
    for (size_t i = 0; i < cap; i++)
        src[i] = (unsigned char)(i * 131 + 7);
    int bad = 0;
    static const size_t lens[] = {0, 1, 15, 63, 64, 1023, 1024, 1025, 1087, 1088, 4096, 8191};
    for (size_t so = 0; so < 17; so++)
        for (size_t doff = 0; doff < 17; doff++)
            for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
                size_t n = lens[i];
                memset(dst, 0xA5, cap + 64);
                memset(want, 0xA5, cap + 64);
                memcpy(want + doff, src + so, n);
                stratus_copy_nt(dst + doff, src + so, n);
                if (memcmp(dst, want, cap + 64) != 0)
                    bad++;
            }
    CHECK_EQ(bad, 0);
    free(src);
    free(dst);
    free(want);
    TEST_REPORT();
}
