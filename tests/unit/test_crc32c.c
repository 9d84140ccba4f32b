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
    CHECK_EQ(stratus_crc32c_by(STRATUS_CRC32C_SSE42, 0, buf, len), want);
}

/* Every path agrees with the software one: lengths 0..600 at 9 alignments, then long lengths
 * around the folding and 3-stream block sizes, with a nonzero starting CRC. */
static int path_mismatches(int path, const unsigned char *huge, size_t n)
{
    static const size_t lens[] = {255,   256,   257,   271,   511,   512,   513,    1023,
                                  4096,  12287, 12288, 12289, 24583, 65536, 100003, 200000};
    int bad = 0;
    for (size_t off = 0; off < 9; off++) {
        for (size_t len = 0; len <= 600 && off + len <= n; len++)
            if (stratus_crc32c_by(path, 0, huge + off, len) != stratus_crc32c_sw(0, huge + off, len))
                bad++;
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
            if (off + lens[i] <= n && stratus_crc32c_by(path, 0xDEADBEEFu, huge + off, lens[i]) !=
                                          stratus_crc32c_sw(0xDEADBEEFu, huge + off, lens[i]))
                bad++;
    }
    return bad;
}

int main(void)
{
    unsigned char b[48];

    static const char *names[] = {"software", "sse4.2", "avx512-vpclmulqdq"};
    printf("crc32c: path in use %s\n", names[stratus_crc32c_path()]);
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

    /* long inputs take the 3-stream path (3 x 4 KiB blocks joined by shift tables): lengths
     * around its block boundaries, misaligned starts, and incremental calls */
    size_t bn = 200000 + 16;
    unsigned char *huge = malloc(bn);
    CHECK(huge != NULL);
    if (!huge)
        TEST_REPORT();
    for (size_t i = 0; i < bn; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        huge[i] = (unsigned char)x;
    }
    static const size_t lens[] = {12287, 12288, 12289, 12295, 24575, 24576, 24583, 65536,
                                  100003, 200000};
    mismatches = 0;
    for (size_t off = 0; off < 9; off++)
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
            if (stratus_crc32c(7, huge + off, lens[i]) != stratus_crc32c_sw(7, huge + off, lens[i]))
                mismatches++;
    CHECK_EQ(mismatches, 0);
    uint32_t one = stratus_crc32c(0, huge, 200000);
    uint32_t inc = stratus_crc32c(0, huge, 12289);
    inc = stratus_crc32c(inc, huge + 12289, 200000 - 12289);
    CHECK_EQ(inc, one);
    /* combine == incremental, for lengths of B from 0 up */
    mismatches = 0;
    static const size_t blens[] = {0, 1, 7, 8, 21, 1000, 12288, 65536, 187711};
    for (size_t i = 0; i < sizeof blens / sizeof blens[0]; i++) {
        uint32_t a = stratus_crc32c(0x1234u, huge, 12289);
        uint32_t cb = stratus_crc32c(0, huge + 12289, blens[i]);
        if (stratus_crc32c_combine(a, cb, blens[i]) != stratus_crc32c(a, huge + 12289, blens[i]))
            mismatches++;
    }
    CHECK_EQ(mismatches, 0);
    /* each path this CPU has (a missing one falls back, so this still checks something) */
    CHECK_EQ(path_mismatches(STRATUS_CRC32C_SSE42, huge, bn), 0);
    CHECK_EQ(path_mismatches(STRATUS_CRC32C_VPCLMUL, huge, bn), 0);
    /* incremental across the folding threshold */
    uint32_t a1 = stratus_crc32c(0, huge + 3, 300);
    CHECK_EQ(stratus_crc32c(a1, huge + 303, 5000), stratus_crc32c(0, huge + 3, 5300));
    free(huge);
    TEST_REPORT();
}
