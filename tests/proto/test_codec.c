/* link: stratus_proto stratus_util */
/* test_codec.c - the Kafka wire primitives of core/proto/codec.c and the arena: varint limits,
 * big-endian integers, null and compact strings/bytes/arrays, array count bounds, tagged-section
 * skipping, truncated input at every length, and the writer's ceiling and patching.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>

#include "proto/arena.h"
#include "proto/codec.h"
#include "test.h"

static void test_varints(void)
{
    static const uint32_t u32[] = {0, 1, 127, 128, 255, 300, 16383, 16384, 0x0fffffff,
                                   0x10000000, 0x7fffffff, 0xffffffffu};
    static const int32_t i32[] = {0, 1, -1, 63, -64, 64, -65, INT32_MAX, INT32_MIN, 12345, -12345};
    static const int64_t i64[] = {0, 1, -1, INT64_MAX, INT64_MIN, 1LL << 40, -(1LL << 40)};
    struct kwrite w;
    struct kread r;
    kw_init(&w, 0);
    for (size_t i = 0; i < sizeof u32 / sizeof u32[0]; i++)
        kw_uvarint(&w, u32[i]);
    for (size_t i = 0; i < sizeof i32 / sizeof i32[0]; i++)
        kw_varint(&w, i32[i]);
    for (size_t i = 0; i < sizeof i64 / sizeof i64[0]; i++)
        kw_varlong(&w, i64[i]);
    CHECK_EQ(w.err, 0);
    kr_init(&r, w.buf, w.len, NULL);
    for (size_t i = 0; i < sizeof u32 / sizeof u32[0]; i++)
        CHECK_EQ(kr_uvarint(&r), u32[i]);
    for (size_t i = 0; i < sizeof i32 / sizeof i32[0]; i++)
        CHECK_EQ(kr_varint(&r), i32[i]);
    for (size_t i = 0; i < sizeof i64 / sizeof i64[0]; i++)
        CHECK(kr_varlong(&r) == i64[i]);
    CHECK_EQ(r.err, 0);
    CHECK_EQ(kr_remaining(&r), 0);
    kw_free(&w);

    /* known encodings */
    uint8_t b300[] = {0xac, 0x02};
    kr_init(&r, b300, 2, NULL);
    CHECK_EQ(kr_uvarint(&r), 300);
    uint8_t zz[] = {0x01}; /* zigzag 1 = -1 */
    kr_init(&r, zz, 1, NULL);
    CHECK_EQ(kr_varint(&r), -1);
    CHECK_EQ(kw_uvarint_size(127), 1);
    CHECK_EQ(kw_uvarint_size(128), 2);
    CHECK_EQ(kw_uvarint_size(0xffffffffu), 5);

    /* too long: 6 continuation bytes; 5th byte with bits above 32 */
    uint8_t bad1[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    kr_init(&r, bad1, sizeof bad1, NULL);
    CHECK_EQ(kr_uvarint(&r), 0);
    CHECK_EQ(r.err, STRATUS_EPROTO);
    uint8_t bad2[] = {0xff, 0xff, 0xff, 0xff, 0x1f};
    kr_init(&r, bad2, sizeof bad2, NULL);
    (void)kr_uvarint(&r);
    CHECK_EQ(r.err, STRATUS_EPROTO);
    uint8_t max32[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    kr_init(&r, max32, sizeof max32, NULL);
    CHECK_EQ(kr_uvarint(&r), 0xffffffffu);
    CHECK_EQ(r.err, 0);
    uint8_t bad64[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    kr_init(&r, bad64, sizeof bad64, NULL);
    (void)kr_varlong(&r);
    CHECK_EQ(r.err, STRATUS_EPROTO);
    uint8_t trunc[] = {0x80, 0x80};
    kr_init(&r, trunc, sizeof trunc, NULL);
    (void)kr_uvarint(&r);
    CHECK_EQ(r.err, STRATUS_EPROTO);
}

static void test_ints(void)
{
    struct kwrite w;
    kw_init(&w, 0);
    kw_i8(&w, -2);
    kw_i16(&w, -300);
    kw_u16(&w, 65535);
    kw_i32(&w, INT32_MIN);
    kw_u32(&w, 0xdeadbeef);
    kw_i64(&w, INT64_MIN + 5);
    kw_f64(&w, 3.25);
    kw_bool(&w, true);
    uint8_t u[16];
    for (int i = 0; i < 16; i++)
        u[i] = (uint8_t)i;
    kw_uuid(&w, u);
    CHECK_EQ(w.len, 1 + 2 + 2 + 4 + 4 + 8 + 8 + 1 + 16);
    CHECK_EQ(w.buf[1], 0xfe); /* big-endian -300 = fe d4 */
    CHECK_EQ(w.buf[2], 0xd4);
    struct kread r;
    kr_init(&r, w.buf, w.len, NULL);
    CHECK_EQ(kr_i8(&r), -2);
    CHECK_EQ(kr_i16(&r), -300);
    CHECK_EQ(kr_u16(&r), 65535);
    CHECK_EQ(kr_i32(&r), INT32_MIN);
    CHECK_EQ(kr_u32(&r), 0xdeadbeef);
    CHECK(kr_i64(&r) == INT64_MIN + 5);
    CHECK(kr_f64(&r) == 3.25);
    CHECK_EQ(kr_bool(&r), 1);
    uint8_t u2[16];
    kr_uuid(&r, u2);
    CHECK(memcmp(u, u2, 16) == 0);
    CHECK_EQ(r.err, 0);
    /* reading past the end: zero values and a sticky error */
    CHECK_EQ(kr_i32(&r), 0);
    CHECK_EQ(r.err, STRATUS_EPROTO);
    CHECK_EQ(kr_i8(&r), 0);
    CHECK_EQ(r.err, STRATUS_EPROTO);
    kw_free(&w);
}

static void test_strings(void)
{
    struct kwrite w;
    kw_init(&w, 0);
    kw_string(&w, KSTR_NULL);
    kw_string(&w, KSTR_LIT("abc"));
    kw_compact_string(&w, KSTR_NULL);
    kw_compact_string(&w, KSTR_LIT(""));
    kw_compact_string(&w, KSTR_LIT("hello"));
    kw_bytes(&w, (struct kbytes){NULL, -1});
    kw_compact_bytes(&w, (struct kbytes){(const uint8_t *)"xy", 2});
    kw_array_len(&w, -1);
    kw_compact_array_len(&w, -1);
    kw_compact_array_len(&w, 2);
    kw_i16(&w, 1);
    kw_i16(&w, 2);
    CHECK_EQ(w.err, 0);
    static const uint8_t want[] = {0xff, 0xff, 0, 3, 'a', 'b', 'c', 0, 1, 6, 'h', 'e', 'l', 'l',
                                   'o', 0xff, 0xff, 0xff, 0xff, 3, 'x', 'y', 0xff, 0xff, 0xff,
                                   0xff, 0, 3, 0, 1, 0, 2};
    CHECK_EQ(w.len, sizeof want);
    CHECK(w.len == sizeof want && memcmp(w.buf, want, sizeof want) == 0);

    struct kread r;
    kr_init(&r, w.buf, w.len, NULL);
    struct kstr s = kr_string(&r);
    CHECK_EQ(s.len, -1);
    CHECK(s.s == NULL);
    s = kr_string(&r);
    CHECK(kstr_eq_cstr(s, "abc"));
    CHECK(kstr_eq(kr_compact_string(&r), KSTR_NULL));
    s = kr_compact_string(&r);
    CHECK(s.len == 0 && kstr_eq_cstr(s, ""));
    s = kr_compact_string(&r);
    CHECK(kstr_eq(s, KSTR_LIT("hello")));
    CHECK(!kstr_eq(s, KSTR_LIT("hell")));
    CHECK(!kstr_eq(s, KSTR_NULL));
    char buf[4];
    CHECK_EQ(kstr_copy(s, buf, sizeof buf), STRATUS_ERANGE);
    CHECK_STR(buf, "hel");
    char big[16];
    CHECK_EQ(kstr_copy(s, big, sizeof big), 0);
    CHECK_STR(big, "hello");
    char *d = kstr_dup(s);
    CHECK_STR(d, "hello");
    free(d);
    CHECK(kstr_dup(KSTR_NULL) == NULL);
    CHECK_EQ(kr_bytes(&r).len, -1);
    struct kbytes b = kr_compact_bytes(&r);
    CHECK(b.len == 2 && memcmp(b.p, "xy", 2) == 0);
    CHECK_EQ(kr_array_len(&r, 1), -1);
    CHECK_EQ(kr_compact_array_len(&r, 1), -1);
    CHECK_EQ(kr_compact_array_len(&r, 2), 2);
    CHECK_EQ(kr_i16(&r), 1);
    CHECK_EQ(kr_i16(&r), 2);
    CHECK_EQ(r.err, 0);
    CHECK_EQ(kr_remaining(&r), 0);

    /* every truncation of the buffer fails cleanly and never reads past it */
    for (size_t n = 0; n < w.len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, w.buf, n);
        kr_init(&r, copy, n, NULL);
        (void)kr_string(&r);
        (void)kr_string(&r);
        (void)kr_compact_string(&r);
        (void)kr_compact_string(&r);
        (void)kr_compact_string(&r);
        (void)kr_bytes(&r);
        (void)kr_compact_bytes(&r);
        (void)kr_array_len(&r, 1);
        (void)kr_compact_array_len(&r, 1);
        (void)kr_compact_array_len(&r, 2);
        (void)kr_i16(&r);
        (void)kr_i16(&r);
        CHECK_EQ(r.err, STRATUS_EPROTO);
        free(copy);
    }
    kw_free(&w);

    /* nonsense lengths */
    uint8_t neg[] = {0xff, 0xfe, 'a'};
    kr_init(&r, neg, sizeof neg, NULL);
    (void)kr_string(&r);
    CHECK_EQ(r.err, STRATUS_EPROTO);
    uint8_t longer[] = {0, 5, 'a', 'b'};
    kr_init(&r, longer, sizeof longer, NULL);
    CHECK_EQ(kr_string(&r).len, -1);
    CHECK_EQ(r.err, STRATUS_EPROTO);
    /* an array count larger than the bytes that could hold it */
    uint8_t arr[] = {0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8};
    kr_init(&r, arr, sizeof arr, NULL);
    CHECK_EQ(kr_array_len(&r, 4), 0);
    CHECK_EQ(r.err, STRATUS_EPROTO);
    kr_init(&r, arr, sizeof arr, NULL);
    CHECK_EQ(kr_array_len(&r, 2), 3);
    CHECK_EQ(r.err, 0);
    uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff};
    kr_init(&r, huge, sizeof huge, NULL);
    (void)kr_array_len(&r, 1);
    CHECK_EQ(r.err, STRATUS_EPROTO);
    uint8_t negarr[] = {0xff, 0xff, 0xff, 0xfe};
    kr_init(&r, negarr, sizeof negarr, NULL);
    (void)kr_array_len(&r, 1);
    CHECK_EQ(r.err, STRATUS_EPROTO);
}

static void test_tags(void)
{
    /* two tagged fields (tag 0: 2 bytes, tag 5: 1 byte), then an int16 */
    uint8_t t[] = {2, 0, 2, 0xaa, 0xbb, 5, 1, 0xcc, 0x12, 0x34};
    struct kread r;
    kr_init(&r, t, sizeof t, NULL);
    kr_skip_tags(&r);
    CHECK_EQ(kr_i16(&r), 0x1234);
    CHECK_EQ(r.err, 0);
    uint8_t bad[] = {1, 0, 9, 0xaa};
    kr_init(&r, bad, sizeof bad, NULL);
    kr_skip_tags(&r);
    CHECK_EQ(r.err, STRATUS_EPROTO);
    uint8_t many[] = {0x7f, 0, 0};
    kr_init(&r, many, sizeof many, NULL);
    kr_skip_tags(&r);
    CHECK_EQ(r.err, STRATUS_EPROTO);
}

static void test_writer(void)
{
    struct kwrite w;
    kw_init(&w, 10);
    size_t pos = kw_reserve_i32(&w);
    kw_i32(&w, 7);
    kw_patch_i32(&w, pos, 0x01020304);
    CHECK_EQ(w.len, 8);
    CHECK_EQ(w.buf[0], 1);
    CHECK_EQ(w.buf[3], 4);
    kw_i16(&w, 1);
    CHECK_EQ(w.err, 0);
    kw_i16(&w, 1); /* 12 > 10 */
    CHECK_EQ(w.err, STRATUS_ENOMEM);
    CHECK_EQ(w.len, 10);
    size_t len = 0;
    uint8_t *b = kw_detach(&w, &len);
    CHECK_EQ(len, 10);
    CHECK(w.buf == NULL && w.len == 0);
    free(b);
    kw_free(&w);

    kw_init(&w, 0);
    kw_string(&w, (struct kstr){"x", 40000}); /* longer than an int16 length can say */
    CHECK_EQ(w.err, STRATUS_ERANGE);
    kw_free(&w);
    kw_init(&w, 0);
    for (int i = 0; i < 100000; i++)
        kw_i32(&w, i);
    CHECK_EQ(w.len, 400000);
    CHECK_EQ(w.err, 0);
    CHECK_EQ(w.buf[399999], (99999 & 0xff));
    kw_free(&w);
}

static void test_arena(void)
{
    struct stratus_arena a;
    arena_init(&a, 1 << 20);
    uint8_t *p = arena_alloc(&a, 10);
    uint8_t *q = arena_alloc(&a, 0);
    CHECK(p && q && p != q);
    CHECK(((uintptr_t)p & 15) == 0);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(p[i], 0);
    uint8_t *big = arena_alloc(&a, 100000);
    CHECK(big != NULL);
    big[99999] = 1;
    uint8_t *after = arena_alloc(&a, 32); /* still served from the small chunk */
    CHECK(after != NULL);
    CHECK(arena_alloc(&a, 2 << 20) == NULL); /* over the ceiling */
    CHECK(arena_calloc(&a, SIZE_MAX / 2, 4) == NULL);
    int n = 0;
    while (arena_alloc(&a, 4096))
        n++;
    CHECK(n > 100 && n < 300);
    arena_free_all(&a);
    CHECK(a.used == 0 && a.head == NULL);
    CHECK(arena_alloc(&a, 64) != NULL);
    arena_free_all(&a);
}

int main(void)
{
    test_varints();
    test_ints();
    test_strings();
    test_tags();
    test_writer();
    test_arena();
    TEST_REPORT();
}
