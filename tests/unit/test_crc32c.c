/* link: stratus_util */
/* test_crc32c.c - CRC-32C known answers ("123456789", RFC 3720 B.4 vectors), incremental use,
 * and the hardware and software paths agreeing on every length and alignment.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>

#include "test.h"
#include "util/crc32c.h"

static void check_both(const void *buf, size_t len, uint32_t want)
{
    CHECK_EQ(stratus_crc32c(0, buf, len), want);
    CHECK_EQ(stratus_crc32c_sw(0, buf, len), want);
}

int main(void)
{
    unsigned char b[48];

    printf("crc32c: hardware path %s\n", stratus_crc32c_hw_available() ? "yes" : "no");
    check_both("123456789", 9, 0xE3069283u);
    check_both("", 0, 0);

    /* RFC 3720, appendix B.4 */
    memset(b, 0, 32);
    check_both(b, 32, 0x8A9136AAu);
    memset(b, 0xff, 32);
    check_both(b, 32, 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)i;
    check_both(b, 32, 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)(31 - i);
    check_both(b, 32, 0x113FDB5Cu);
    static const unsigned char iscsi_read[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    check_both(iscsi_read, 48, 0xD9963A56u);

    /* incremental == one shot; hw == sw for every length and misalignment */
    size_t n = 4096 + 64;
    unsigned char *big = malloc(n);
    CHECK(big != NULL);
    if (!big)
        TEST_REPORT();
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        big[i] = (unsigned char)x;
    }
    uint32_t whole = stratus_crc32c(0, big, 4096);
    uint32_t parts = stratus_crc32c(0, big, 1000);
    parts = stratus_crc32c(parts, big + 1000, 3);
    parts = stratus_crc32c(parts, big + 1003, 4096 - 1003);
    CHECK_EQ(parts, whole);
    CHECK_EQ(stratus_crc32c_sw(0, big, 4096), whole);
    int mismatches = 0;
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len < 300; len++)
            if (stratus_crc32c(0, big + off, len) != stratus_crc32c_sw(0, big + off, len))
                mismatches++;
    CHECK_EQ(mismatches, 0);
    free(big);
    TEST_REPORT();
}
