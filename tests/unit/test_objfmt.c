/* link: stratus_stream stratus_index stratus_util */
/* test_objfmt.c - stream-set object format: build, footer, index round trip, corruption checks,
 * the aligned reusable object buffer, object keys. SPDX-License-Identifier: Apache-2.0
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream/objfmt.h"
#include "util/crc32c.h"
#include "test.h"

int main(void)
{
    struct stratus_objfmt_builder b;
    struct stratus_errbuf eb;
    uint8_t batch[200], *obj = NULL;
    size_t len = 0, n = 0;
    uint64_t ipos;
    uint32_t ilen, icrc;
    struct stratus_objfmt_range *r = NULL;
    char key[64];

    for (size_t i = 0; i < sizeof batch; i++)
        batch[i] = (uint8_t)i;
    stratus_objfmt_init(&b);
    stratus_objfmt_begin_range(&b, 11);
    CHECK_EQ(stratus_objfmt_add_batch(&b, batch, 100, 0, 9, 1000), 0);
    CHECK_EQ(stratus_objfmt_add_batch(&b, batch + 100, 50, 10, 14, 900), 0);
    stratus_objfmt_end_range(&b);
    stratus_objfmt_begin_range(&b, 12); /* empty: dropped */
    stratus_objfmt_end_range(&b);
    stratus_objfmt_begin_range(&b, 13);
    CHECK_EQ(stratus_objfmt_add_batch(&b, batch, 200, 100, 100, 5), 0);
    CHECK_EQ(stratus_objfmt_finish(&b, &obj, &len), 0);
    CHECK_EQ(len, 350 + 4 + 2 * STRATUS_OBJFMT_RANGE_SIZE + STRATUS_OBJFMT_FOOTER_SIZE);
    CHECK(memcmp(obj, batch, 150) == 0);
    CHECK(memcmp(obj + 150, batch, 200) == 0);

    CHECK_EQ(stratus_objfmt_parse_footer(obj + len - STRATUS_OBJFMT_FOOTER_SIZE, len, &ipos, &ilen,
                                         &icrc, &eb), 0);
    CHECK_EQ(ipos, 350);
    CHECK_EQ(stratus_objfmt_parse_index(obj + ipos, ilen, icrc, ipos, &r, &n, &eb), 0);
    CHECK_EQ(n, 2);
    if (n == 2) {
        CHECK_EQ(r[0].stream_id, 11);
        CHECK_EQ(r[0].base_offset, 0);
        CHECK_EQ(r[0].last_offset, 14);
        CHECK_EQ(r[0].max_timestamp, 1000);
        CHECK_EQ(r[0].position, 0);
        CHECK_EQ(r[0].length, 150);
        CHECK_EQ(r[0].batches, 2);
        CHECK_EQ(r[1].stream_id, 13);
        CHECK_EQ(r[1].position, 150);
        CHECK_EQ(r[1].length, 200);
    }
    free(r);
    /* a flipped index byte fails the crc */
    obj[ipos + 5] ^= 1;
    CHECK_EQ(stratus_objfmt_parse_index(obj + ipos, ilen, icrc, ipos, &r, &n, &eb),
             STRATUS_ECORRUPT);
    obj[ipos + 5] ^= 1;
    /* bad magic, wrong size */
    obj[len - 8] ^= 0xff;
    CHECK_EQ(stratus_objfmt_parse_footer(obj + len - STRATUS_OBJFMT_FOOTER_SIZE, len, &ipos, &ilen,
                                         &icrc, &eb), STRATUS_ECORRUPT);
    obj[len - 8] ^= 0xff;
    CHECK_EQ(stratus_objfmt_parse_footer(obj + len - STRATUS_OBJFMT_FOOTER_SIZE, len + 1, &ipos,
                                         &ilen, &icrc, &eb), STRATUS_ECORRUPT);
    /* sums that wrap around 2^64 must not pass the bounds checks (fuzz_stored's invariants):
     * an index of the object's whole size at position 2^64 - 24 "ends" at the object's size
     * after the wrap, and so does a range at 2^64 - 10 of 20 bytes */
    {
        uint8_t f[STRATUS_OBJFMT_FOOTER_SIZE], idx[4 + STRATUS_OBJFMT_RANGE_SIZE];
        uint64_t wrap = UINT64_MAX - STRATUS_OBJFMT_FOOTER_SIZE + 1, at = UINT64_MAX - 9;
        memcpy(f, obj + len - STRATUS_OBJFMT_FOOTER_SIZE, sizeof f);
        for (int i = 0; i < 8; i++)
            f[i] = (uint8_t)(wrap >> (8 * i));
        for (int i = 0; i < 4; i++)
            f[8 + i] = (uint8_t)(len >> (8 * i));
        CHECK_EQ(stratus_objfmt_parse_footer(f, len, &ipos, &ilen, &icrc, &eb), STRATUS_ECORRUPT);
        memcpy(idx, obj + 350, sizeof idx); /* count 2 -> 1: the first range alone */
        idx[0] = 1;
        for (int i = 0; i < 8; i++)
            idx[4 + 32 + i] = (uint8_t)(at >> (8 * i));
        idx[4 + 40] = 20;
        idx[4 + 41] = idx[4 + 42] = idx[4 + 43] = 0;
        CHECK_EQ(stratus_objfmt_parse_index(idx, sizeof idx, stratus_crc32c(0, idx, sizeof idx),
                                            350, &r, &n, &eb), STRATUS_ECORRUPT);
    }
    free(obj);
    stratus_objfmt_free(&b);

    /* the buffer is 4 KiB-aligned (for O_DIRECT puts) and reusable: an object of a few MiB in
     * batches of odd sizes (the streaming-store copy's edges), then the next one built in the
     * previous buffer, byte for byte */
    {
        size_t big = 3u << 20, blen = 0, cap = 0;
        uint8_t *src = malloc(big + 64), *prev = NULL;
        int same = 1;
        for (size_t i = 0; i < big + 64; i++)
            src[i] = (uint8_t)(i * 131u + 7u);
        for (int round = 0; round < 2; round++) {
            size_t at = 0, sz = 1;
            if (round == 0)
                stratus_objfmt_init(&b);
            else
                stratus_objfmt_init_buf(&b, prev, cap);
            stratus_objfmt_begin_range(&b, 7);
            for (int64_t o = 0; at + sz <= big; o++) {
                CHECK_EQ(stratus_objfmt_add_batch(&b, src + at + (size_t)round, sz, o, o, o), 0);
                at += sz;
                sz = sz * 3 + 17 > 200000 ? 1 + sz % 977 : sz * 3 + 17;
            }
            CHECK_EQ(stratus_objfmt_finish(&b, &obj, &blen), 0);
            CHECK_EQ((uintptr_t)obj % 4096, 0);
            same &= memcmp(obj, src + round, at) == 0;
            if (round == 1)
                CHECK(obj == prev); /* built in the buffer it was given */
            prev = obj;
            cap = b.out_cap;
            CHECK(cap >= blen);
            stratus_objfmt_free(&b);
        }
        CHECK(same);
        free(prev);
        /* an unaligned buffer is refused (freed), not used */
        uint8_t *odd = malloc(100);
        int odd_aligned = (uintptr_t)odd % 4096 == 0;
        stratus_objfmt_init_buf(&b, odd, 100);
        CHECK(odd_aligned || b.buf == NULL);
        stratus_objfmt_free(&b);

        /* reserve: one allocation up front, no reallocation while adding up to it, and bytes
         * already added survive a reserve that has to move them */
        stratus_objfmt_init(&b);
        CHECK_EQ(stratus_objfmt_reserve(&b, big), 0);
        CHECK(b.cap >= big);
        CHECK_EQ((uintptr_t)b.buf % 4096, 0);
        uint8_t *held = b.buf;
        stratus_objfmt_begin_range(&b, 9);
        CHECK_EQ(stratus_objfmt_add_batch(&b, src, big - 4096, 0, 0, 0), 0);
        CHECK(b.buf == held);
        CHECK_EQ(stratus_objfmt_reserve(&b, 2 * big), 0);
        CHECK(b.cap >= 2 * big);
        CHECK(memcmp(b.buf, src, big - 4096) == 0);
        CHECK_EQ(stratus_objfmt_reserve(&b, 16), 0); /* smaller than held: nothing changes */
        CHECK(b.cap >= 2 * big);
        stratus_objfmt_end_range(&b);
        stratus_objfmt_free(&b);
        free(src);
    }

    /* gather mode: an object of pieces, copied batches and batches left in place mixed, in
     * several streams; joined, it parses, and every range holds exactly its batches */
    {
        const size_t A = STRATUS_IOV_ALIGN, big = 8u << 20;
        uint8_t *src = NULL, *joined = malloc(big), *want[3];
        size_t wlen[3] = {0}, jl = 0, niov = 0, inplace_bytes = 0;
        const struct stratus_iov *iov = NULL;
        uint64_t glen = 0;
        int aligned = 1, zeros = 1;
        CHECK_EQ(posix_memalign((void **)&src, 4096, big), 0);
        for (size_t i = 0; i < big; i++)
            src[i] = (uint8_t)(i * 2654435761u >> 13);
        stratus_objfmt_init(&b);
        stratus_objfmt_set_gather(&b);
        size_t at = 0;
        int64_t off[3] = {0};
        for (int s = 0; s < 3; s++) {
            want[s] = malloc(big);
            stratus_objfmt_begin_range(&b, 100 + (uint64_t)s);
            for (int k = 0; k < 12; k++) {
                /* sizes: small (copied), large in place at odd and aligned addresses, one
                 * exactly a block at an aligned address, one under two blocks unaligned */
                size_t sz = k % 3 == 0 ? 100 + (size_t)k * 37
                            : k == 4 ? A
                            : k == 7 ? A + 300
                            : 70000 + (size_t)k * 4099;
                size_t skew = k % 4 == 1 ? 0 : (size_t)(k * 61 % A);
                at = (at + A - 1) / A * A + skew;
                CHECK_EQ(stratus_objfmt_add_inplace(&b, src + at, sz, off[s], off[s] + 1,
                                                    (int64_t)k * (s + 1)), 0);
                memcpy(want[s] + wlen[s], src + at, sz);
                wlen[s] += sz;
                off[s] += 2;
                at += sz + 4096;
            }
            stratus_objfmt_end_range(&b);
        }
        CHECK_EQ(stratus_objfmt_finish_pieces(&b, &iov, &niov, &glen), 0);
        CHECK(niov > 3);
        for (size_t i = 0; i < niov; i++) {
            if (i + 1 < niov)
                aligned &= (uintptr_t)iov[i].base % A == 0 && iov[i].len % A == 0;
            if ((const uint8_t *)iov[i].base >= src && (const uint8_t *)iov[i].base < src + big)
                inplace_bytes += iov[i].len; /* referenced, not copied */
            memcpy(joined + jl, iov[i].base, iov[i].len);
            jl += iov[i].len;
        }
        CHECK(aligned);
        CHECK_EQ(jl, glen);
        CHECK(inplace_bytes > 3 * 60000); /* some stayed in place (others needed padding) */
        CHECK_EQ(stratus_objfmt_parse_footer(joined + jl - STRATUS_OBJFMT_FOOTER_SIZE, jl, &ipos,
                                             &ilen, &icrc, &eb), 0);
        CHECK_EQ(stratus_objfmt_parse_index(joined + ipos, ilen, icrc, ipos, &r, &n, &eb), 0);
        CHECK(n > 3); /* streams split where a batch did not line up */
        {
            size_t got[3] = {0}, prev_end = 0;
            int64_t next[3] = {0}, maxts[3] = {0};
            uint32_t nb[3] = {0};
            int ok = 1;
            for (size_t i = 0; i < n; i++) {
                int s = (int)(r[i].stream_id - 100);
                if (s < 0 || s > 2 || r[i].base_offset != next[s]) {
                    ok = 0;
                    break;
                }
                ok &= memcmp(joined + r[i].position, want[s] + got[s], r[i].length) == 0;
                for (size_t z = prev_end; z < r[i].position; z++) /* padding is zeros */
                    zeros &= joined[z] == 0;
                /* padding only before a batch at least 32 times its size (the range's first) */
                ok &= r[i].position - prev_end <= r[i].length / 32;
                prev_end = r[i].position + r[i].length;
                got[s] += r[i].length;
                next[s] = r[i].last_offset + 1;
                nb[s] += r[i].batches;
                if (r[i].max_timestamp > maxts[s])
                    maxts[s] = r[i].max_timestamp;
            }
            for (int s = 0; s < 3; s++)
                ok &= got[s] == wlen[s] && next[s] == 24 && nb[s] == 12 &&
                      maxts[s] == 11 * (s + 1);
            CHECK(ok);
            CHECK(zeros);
        }
        free(r);
        /* padding against copying: after 100 copied bytes, a 70000-byte batch that would need
         * 3996 bytes of padding (more than 1/32 of it) is copied, one that needs 20 goes in
         * place in a new range, and 300 KB batches at any address always go in place */
        stratus_objfmt_free(&b);
        stratus_objfmt_init(&b);
        stratus_objfmt_set_gather(&b);
        stratus_objfmt_begin_range(&b, 7);
        CHECK_EQ(stratus_objfmt_add_batch(&b, src, 100, 0, 0, 0), 0);
        CHECK_EQ(stratus_objfmt_add_inplace(&b, src + 10 * A, 70000, 1, 1, 0), 0);
        CHECK_EQ(b.nranges, 1);
        /* at 70100 in the object, 3608 bytes before its first whole page: 70100 + 3608 is 20
         * short of a page */
        CHECK_EQ(stratus_objfmt_add_inplace(&b, src + 40 * A + 488, 70000, 2, 2, 0), 0);
        CHECK_EQ(b.nranges, 2);
        for (int k = 0; k < 4; k++)
            CHECK_EQ(stratus_objfmt_add_inplace(&b, src + (100 + (size_t)k * 80) * A + 777 * k,
                                                300000, 3 + k, 3 + k, 0), 0);
        CHECK_EQ(stratus_objfmt_finish_pieces(&b, &iov, &niov, &glen), 0);
        {
            size_t in_first = 0, in_second = 0, in_big = 0;
            for (size_t i = 0; i < niov; i++) {
                const uint8_t *p = iov[i].base;
                in_first += p >= src + 10 * A && p < src + 10 * A + 70000 ? iov[i].len : 0;
                in_second += p >= src + 41 * A && p < src + 41 * A + 70000 ? iov[i].len : 0;
                in_big += p >= src + 100 * A && p < src + 420 * A ? iov[i].len : 0;
            }
            CHECK_EQ(in_first, 0);                     /* copied */
            CHECK_EQ(in_second, 16 * A); /* its whole pages: 41 * A to 57 * A */
            CHECK(in_big >= 4 * (300000 - 2 * A));
        }
        /* finish is for the other mode, add_inplace without gather copies */
        CHECK_EQ(stratus_objfmt_finish(&b, &obj, &len), STRATUS_EINVAL);
        stratus_objfmt_free(&b);
        stratus_objfmt_init(&b);
        stratus_objfmt_begin_range(&b, 1);
        CHECK_EQ(stratus_objfmt_add_inplace(&b, src + 3, 100000, 0, 0, 0), 0);
        CHECK_EQ(stratus_objfmt_finish(&b, &obj, &len), 0);
        CHECK(memcmp(obj, src + 3, 100000) == 0);
        free(obj);
        stratus_objfmt_free(&b);
        for (int s = 0; s < 3; s++)
            free(want[s]);
        free(joined);
        free(src);
    }

    stratus_objfmt_key(0x1234, key, sizeof key);
    CHECK(strncmp(key, "data/", 5) == 0);
    CHECK_EQ(strlen(key), 5 + 3 + 16 + 4);
    CHECK_STR(key + 8, "0000000000001234.sso");
    TEST_REPORT();
}
