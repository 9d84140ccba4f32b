/* link: stratus_util */
/* test_hugeframes.c - the huge-page frame arena. Linked with jemalloc (builds without
 * sanitizers): frames come from the region, aligned as asked, hold what was written while the
 * toucher populates around them, the toucher keeps a margin populated past the used end (2 MiB
 * while the arena is empty, up to `ahead` as it grows), a used-up region falls back (NULL,
 * counted) and freed frames are handed out again; rcbuf frames of 64 KiB and more come from it,
 * and kept ones (Produce frames) of any size.
 * Without jemalloc: start says ENOTSUP and alloc returns NULL, so frames come from malloc.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "test.h"
#include "util/alloc.h"
#include "util/hugeframes.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define MIB ((size_t)1 << 20)

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i += 509)
        p[i] = (unsigned char)(seed * 31 + i);
    p[n - 1] = (unsigned char)seed;
}

static int intact(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i += 509)
        if (p[i] != (unsigned char)(seed * 31 + i))
            return 0;
    return p[n - 1] == (unsigned char)seed;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_hugeframes_stats st;
    enum { N = 40 };
    unsigned char *f[N];
    size_t len[N];
    int rc = stratus_hugeframes_start(32 * MIB, 4 * MIB, &eb);

    if (rc == STRATUS_ENOTSUP) {
        fprintf(stderr, "no jemalloc in this process (%s): the fallback only\n", eb.msg);
        CHECK(stratus_hugeframes_alloc(MIB, 512) == NULL);
        unsigned char *b = stratus_rcbuf_new_aligned(200000, 512);
        CHECK(b != NULL);
        stratus_rcbuf_unref(b);
        b = stratus_rcbuf_new_kept(3000); /* from malloc */
        CHECK(b != NULL);
        CHECK_EQ(stratus_hugeframes_owns(b), 0);
        stratus_rcbuf_unref(b);
        TEST_REPORT();
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(stratus_hugeframes_start(32 * MIB, 4 * MIB, &eb), 0); /* once per process */

    /* the toucher populates one huge page ahead of an empty arena, not all of `ahead` */
    for (int i = 0; i < 200; i++) {
        stratus_hugeframes_stats(&st);
        if (st.populated >= st.used + 2 * MIB)
            break;
        sleep_ms(10);
    }
    CHECK_EQ(st.reserved, 32 * MIB);
    CHECK(st.used <= 2 * MIB); /* jemalloc's own metadata for the arena, no frame yet */
    CHECK(st.populated >= st.used + 2 * MIB);
    sleep_ms(50);
    stratus_hugeframes_stats(&st);
    CHECK(st.populated < st.used + 4 * MIB);

    /* frames of mixed sizes and alignments, written as they come while it populates */
    size_t used0 = st.used;
    for (int i = 0; i < N; i++) {
        size_t align = i % 2 ? 512 : 4096;
        len[i] = 65536 + (size_t)i * 13000;
        f[i] = stratus_hugeframes_alloc(len[i], align);
        CHECK(f[i] != NULL);
        if (!f[i])
            continue;
        CHECK_EQ((uintptr_t)f[i] % align, 0);
        fill(f[i], len[i], (unsigned)i);
    }
    stratus_hugeframes_stats(&st);
    CHECK(st.used > used0 + 4 * MIB);
    /* with more than `ahead` in use, the margin is all of `ahead` */
    for (int i = 0; i < 200; i++) {
        stratus_hugeframes_stats(&st);
        if (st.populated >= st.used + 4 * MIB)
            break;
        sleep_ms(10);
    }
    CHECK(st.populated >= st.used + 4 * MIB);
    CHECK(st.populated <= st.used + 4 * MIB + 2 * MIB); /* rounded up to a huge page */
    sleep_ms(100);
    int ok = 0;
    for (int i = 0; i < N; i++)
        ok += f[i] && intact(f[i], len[i], (unsigned)i);
    CHECK_EQ(ok, N);

    /* a used-up region: NULL and counted, then freed frames come back */
    unsigned char *big[64];
    int nbig = 0;
    uint64_t fb0 = st.fallbacks;
    while (nbig < 64 && (big[nbig] = stratus_hugeframes_alloc(2 * MIB, 512)) != NULL)
        nbig++;
    CHECK(nbig < 64);
    stratus_hugeframes_stats(&st);
    CHECK_EQ(st.fallbacks, fb0 + 1);
    CHECK(st.used <= st.reserved);
    for (int i = 0; i < nbig; i++)
        free(big[i]);
    unsigned char *again = stratus_hugeframes_alloc(2 * MIB, 512);
    CHECK(again != NULL);
    free(again);

    /* rcbuf frames of 64 KiB and more come from the arena once freed room is there */
    for (int i = 0; i < N; i++)
        free(f[i]);
    stratus_hugeframes_stats(&st);
    uint64_t fb1 = st.fallbacks;
    unsigned char *b = stratus_rcbuf_new_aligned(300000, 512);
    CHECK(b != NULL);
    if (b) {
        fill(b, 300000, 7);
        CHECK(intact(b, 300000, 7));
        CHECK_EQ(stratus_rcbuf_align(b), 512);
        stratus_rcbuf_unref(b);
    }
    stratus_hugeframes_stats(&st);
    CHECK_EQ(st.fallbacks, fb1);

    /* kept frames of any size come from it too (a Produce frame of a few KiB); others not */
    unsigned char *kept = stratus_rcbuf_new_kept(3000), *plain = stratus_rcbuf_new(3000);
    CHECK(kept != NULL && plain != NULL);
    if (kept && plain) {
        CHECK_EQ(stratus_hugeframes_owns(kept), 1);
        CHECK_EQ(stratus_hugeframes_owns(plain), 0);
        fill(kept, 3000, 9);
        CHECK(intact(kept, 3000, 9));
        CHECK_EQ(stratus_rcbuf_align(kept), 0);
        stratus_rcbuf_ref(kept);
        stratus_rcbuf_unref(kept);
        CHECK(intact(kept, 3000, 9)); /* still held once */
    }
    stratus_rcbuf_unref(kept);
    stratus_rcbuf_unref(plain);
    stratus_hugeframes_stop();
    stratus_hugeframes_stop(); /* twice: nothing */
    TEST_REPORT();
}
