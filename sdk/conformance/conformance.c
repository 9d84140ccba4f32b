/* conformance.c - stratus-conformance: runs the contract of every storage op against a storage
 * plugin, through the broker's own loader, config engine and call wrappers.
 *
 *   stratus-conformance PLUGIN.so [--set key=value ...] [--prefix P] [--quick]
 *
 * --set gives the plugin's config keys ([storage] section: --set path=/tmp/x). Every object
 * the kit writes lives under a fresh prefix ("conformance-<pid>-<ms>/", or P) and is deleted at
 * the end, so the kit is safe to run against a real bucket. --quick skips the 64 MiB object.
 * Prints one line per case ("ok name" or "FAIL name: why") and "N passed, N failed"; the exit
 * code is 0 only when every case passed.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "plugin/plugin.h"
#include "util/clock.h"

static struct stratus_storage *st;
static char prefix[256];
static int n_passed, n_failed;
static char why[4096]; /* reason of the current case's first failure */

/* Records a failure of the running case (the first reason is kept). */
#define EXPECT(cond, ...)                                                   \
    do {                                                                    \
        if (!(cond) && !why[0])                                             \
            snprintf(why, sizeof why, __VA_ARGS__);                         \
    } while (0)

#define EXPECT_RC(rc, want, what, eb)                                                       \
    EXPECT((rc) == (want), "%s: got %s (%s), want %s", what, stratus_err_name(rc), (eb).msg, \
           stratus_err_name(want))

static const char *key(const char *rel)
{
    static _Thread_local char buf[4][1100];
    static _Thread_local int i;
    char *b = buf[i++ & 3];
    snprintf(b, sizeof buf[0], "%s%s", prefix, rel);
    return b;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

static int put(const char *k, const void *d, size_t n, const struct stratus_put_opts *o,
               char *etag, struct stratus_errbuf *eb)
{
    return stratus_storage_put(st, k, d, n, o, etag, eb);
}

/* Reads the whole object (up to cap bytes) into buf. */
static int get_all(const char *k, void *buf, size_t cap, size_t *got, struct stratus_errbuf *eb)
{
    return stratus_storage_get(st, k, 0, cap, buf, got, eb);
}

static void case_put_get(void)
{
    struct stratus_errbuf eb = {{0}};
    unsigned char in[1000], out[2000];
    size_t got = 0;
    fill(in, sizeof in, 1);
    int rc = put(key("pg/obj"), in, sizeof in, NULL, NULL, &eb);
    EXPECT_RC(rc, 0, "put", eb);
    rc = get_all(key("pg/obj"), out, sizeof out, &got, &eb);
    EXPECT_RC(rc, 0, "get whole", eb);
    EXPECT(got == sizeof in, "get whole: got %zu bytes, want %zu", got, sizeof in);
    EXPECT(memcmp(in, out, sizeof in) == 0, "get whole: content differs");
    rc = stratus_storage_get(st, key("pg/obj"), 0, sizeof in, out, &got, &eb);
    EXPECT(rc == 0 && got == sizeof in, "get exact length: rc %d got %zu", rc, got);
}

static void case_ranges(void)
{
    struct stratus_errbuf eb = {{0}};
    unsigned char in[1000], out[100];
    size_t got = 99;
    fill(in, sizeof in, 2);
    put(key("rg/obj"), in, sizeof in, NULL, NULL, &eb);
    int rc = stratus_storage_get(st, key("rg/obj"), 100, 50, out, &got, &eb);
    EXPECT_RC(rc, 0, "get [100,150)", eb);
    EXPECT(got == 50 && memcmp(out, in + 100, 50) == 0, "get [100,150): got %zu / differs", got);
    rc = stratus_storage_get(st, key("rg/obj"), 990, 50, out, &got, &eb);
    EXPECT(rc == 0 && got == 10 && memcmp(out, in + 990, 10) == 0,
           "get across the end: rc %d got %zu, want 10 bytes", rc, got);
    rc = stratus_storage_get(st, key("rg/obj"), 1000, 10, out, &got, &eb);
    EXPECT(rc == 0 && got == 0, "get at the end: rc %d got %zu, want 0 and 0", rc, got);
    rc = stratus_storage_get(st, key("rg/obj"), 5000, 10, out, &got, &eb);
    EXPECT(rc == 0 && got == 0, "get past the end: rc %d got %zu, want 0 and 0", rc, got);
    rc = stratus_storage_get(st, key("rg/obj"), 0, 1, out, &got, &eb);
    EXPECT(rc == 0 && got == 1 && out[0] == in[0], "get 1 byte: rc %d got %zu", rc, got);
}

static void case_empty_object(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_object_info info;
    unsigned char out[8];
    size_t got = 5;
    int rc = put(key("empty"), "", 0, NULL, NULL, &eb);
    EXPECT_RC(rc, 0, "put 0 bytes", eb);
    rc = get_all(key("empty"), out, sizeof out, &got, &eb);
    EXPECT(rc == 0 && got == 0, "get of empty object: rc %d got %zu", rc, got);
    rc = stratus_storage_head(st, key("empty"), &info, &eb);
    EXPECT(rc == 0 && info.size == 0, "head of empty object: rc %d size %llu", rc,
           (unsigned long long)info.size);
}

static void case_head(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_object_info info;
    unsigned char in[777];
    char etag[128] = "";
    fill(in, sizeof in, 3);
    int64_t before = stratus_wall_ms();
    int rc = put(key("hd/obj"), in, sizeof in, NULL, etag, &eb);
    EXPECT_RC(rc, 0, "put", eb);
    rc = stratus_storage_head(st, key("hd/obj"), &info, &eb);
    EXPECT_RC(rc, 0, "head", eb);
    EXPECT(info.size == sizeof in, "head size %llu, want %zu", (unsigned long long)info.size,
           sizeof in);
    EXPECT(strcmp(info.key, key("hd/obj")) == 0, "head key '%s'", info.key);
    EXPECT(info.etag[0], "head gives no etag (needed for if_match)");
    EXPECT(!etag[0] || strcmp(etag, info.etag) == 0, "put etag '%s' != head etag '%s'", etag,
           info.etag);
    EXPECT(info.mtime_ms == 0 || (info.mtime_ms > before - 120000 &&
                                  info.mtime_ms < stratus_wall_ms() + 120000),
           "head mtime_ms %lld is not near now", (long long)info.mtime_ms);
}

static void case_not_found(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_object_info info;
    unsigned char out[10];
    size_t got;
    int rc = stratus_storage_get(st, key("nf/missing"), 0, sizeof out, out, &got, &eb);
    EXPECT_RC(rc, STRATUS_ENOTFOUND, "get missing", eb);
    rc = stratus_storage_head(st, key("nf/missing"), &info, &eb);
    EXPECT_RC(rc, STRATUS_ENOTFOUND, "head missing", eb);
    rc = stratus_storage_get(st, key("no-such-dir/x/y"), 0, sizeof out, out, &got, &eb);
    EXPECT_RC(rc, STRATUS_ENOTFOUND, "get missing under a missing prefix", eb);
}

static void case_overwrite(void)
{
    struct stratus_errbuf eb = {{0}};
    unsigned char a[300], b[200], out[400];
    char e1[128] = "", e2[128] = "";
    size_t got;
    fill(a, sizeof a, 4);
    fill(b, sizeof b, 5);
    put(key("ow/obj"), a, sizeof a, NULL, e1, &eb);
    int rc = put(key("ow/obj"), b, sizeof b, NULL, e2, &eb);
    EXPECT_RC(rc, 0, "overwrite", eb);
    rc = get_all(key("ow/obj"), out, sizeof out, &got, &eb);
    EXPECT(rc == 0 && got == sizeof b && memcmp(out, b, sizeof b) == 0,
           "after overwrite: rc %d got %zu (want the new 200 bytes)", rc, got);
    EXPECT(!e1[0] || !e2[0] || strcmp(e1, e2) != 0, "etag did not change on overwrite (%s)", e1);
}

static void case_if_absent(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_put_opts o = {.size = sizeof o, .if_absent = 1};
    unsigned char out[16];
    size_t got;
    int rc = put(key("ia/obj"), "first", 5, &o, NULL, &eb);
    EXPECT_RC(rc, 0, "if_absent on a new key", eb);
    rc = put(key("ia/obj"), "second", 6, &o, NULL, &eb);
    EXPECT_RC(rc, STRATUS_EEXIST, "if_absent on an existing key", eb);
    rc = get_all(key("ia/obj"), out, sizeof out, &got, &eb);
    EXPECT(rc == 0 && got == 5 && memcmp(out, "first", 5) == 0,
           "a refused if_absent put changed the object");
}

static void case_if_match(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_object_info info;
    char etag[128] = "";
    unsigned char out[16];
    size_t got;
    put(key("im/obj"), "v1", 2, NULL, NULL, &eb);
    int rc = stratus_storage_head(st, key("im/obj"), &info, &eb);
    EXPECT_RC(rc, 0, "head", eb);
    struct stratus_put_opts wrong = {.size = sizeof wrong, .if_match = "not-the-etag"};
    rc = put(key("im/obj"), "v2", 2, &wrong, NULL, &eb);
    EXPECT_RC(rc, STRATUS_EEXIST, "if_match with a wrong etag", eb);
    struct stratus_put_opts right = {.size = sizeof right, .if_match = info.etag};
    rc = put(key("im/obj"), "v3", 2, &right, etag, &eb);
    EXPECT_RC(rc, 0, "if_match with the current etag", eb);
    rc = get_all(key("im/obj"), out, sizeof out, &got, &eb);
    EXPECT(rc == 0 && got == 2 && memcmp(out, "v3", 2) == 0, "if_match put did not land");
    /* The old etag is stale now. */
    rc = put(key("im/obj"), "v4", 2, &right, NULL, &eb);
    EXPECT_RC(rc, STRATUS_EEXIST, "if_match with a stale etag", eb);
    rc = put(key("im/missing"), "v", 1, &right, NULL, &eb);
    EXPECT_RC(rc, STRATUS_EEXIST, "if_match on a missing key", eb);
}

#define RACERS 8
#define RACE_ROUNDS 25

struct racer {
    pthread_t tid;
    pthread_barrier_t *go;
    const char *k;
    int id, rc;
    char msg[256];
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    struct stratus_errbuf eb = {{0}};
    struct stratus_put_opts o = {.size = sizeof o, .if_absent = 1};
    char body[32];
    int n = snprintf(body, sizeof body, "racer-%d", r->id);
    pthread_barrier_wait(r->go);
    r->rc = stratus_storage_put(st, r->k, body, (size_t)n, &o, NULL, &eb);
    snprintf(r->msg, sizeof r->msg, "%s", eb.msg);
    return NULL;
}

static void case_if_absent_race(void)
{
    for (int round = 0; round < RACE_ROUNDS && !why[0]; round++) {
        struct racer rs[RACERS];
        pthread_barrier_t go;
        char k[1100];
        int winners = 0, winner = -1;
        snprintf(k, sizeof k, "%srace/obj-%d", prefix, round);
        pthread_barrier_init(&go, NULL, RACERS);
        for (int i = 0; i < RACERS; i++) {
            rs[i] = (struct racer){.go = &go, .k = k, .id = i};
            pthread_create(&rs[i].tid, NULL, racer_main, &rs[i]);
        }
        for (int i = 0; i < RACERS; i++)
            pthread_join(rs[i].tid, NULL);
        pthread_barrier_destroy(&go);
        for (int i = 0; i < RACERS; i++) {
            if (rs[i].rc == 0) {
                winners++;
                winner = i;
            } else {
                EXPECT(rs[i].rc == STRATUS_EEXIST, "round %d: a loser got %s (%s), want EEXIST",
                       round, stratus_err_name(rs[i].rc), rs[i].msg);
            }
        }
        EXPECT(winners == 1, "round %d: %d of %d racing if_absent puts won, want exactly 1",
               round, winners, RACERS);
        if (winners == 1) {
            struct stratus_errbuf eb = {{0}};
            char out[32], want[32];
            size_t got = 0;
            int n = snprintf(want, sizeof want, "racer-%d", winner);
            get_all(k, out, sizeof out, &got, &eb);
            EXPECT(got == (size_t)n && memcmp(out, want, (size_t)n) == 0,
                   "round %d: the object is not the winner's", round);
        }
    }
}

static void case_del(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_object_info info;
    put(key("del/a"), "a", 1, NULL, NULL, &eb);
    put(key("del/b"), "b", 1, NULL, NULL, &eb);
    const char *one[] = {key("del/a")};
    int rc = stratus_storage_del(st, one, 1, &eb);
    EXPECT_RC(rc, 0, "del", eb);
    rc = stratus_storage_head(st, key("del/a"), &info, &eb);
    EXPECT_RC(rc, STRATUS_ENOTFOUND, "head after del", eb);
    rc = stratus_storage_del(st, one, 1, &eb);
    EXPECT_RC(rc, 0, "del of a missing key", eb);
    const char *batch[] = {key("del/b"), key("del/never"), key("del/a")};
    rc = stratus_storage_del(st, batch, 3, &eb);
    EXPECT_RC(rc, 0, "batch del with missing keys", eb);
    rc = stratus_storage_head(st, key("del/b"), &info, &eb);
    EXPECT_RC(rc, STRATUS_ENOTFOUND, "head after batch del", eb);
}

struct collect {
    char keys[64][1100];
    uint64_t sizes[64];
    int n;
    int stop_after; /* 0 = never stop */
};

static int collect_cb(void *arg, const struct stratus_object_info *info)
{
    struct collect *c = arg;
    if (c->n < 64) {
        snprintf(c->keys[c->n], sizeof c->keys[0], "%s", info->key);
        c->sizes[c->n] = info->size;
    }
    c->n++;
    if (c->stop_after && c->n >= c->stop_after)
        return 42;
    return 0;
}

static void case_list(void)
{
    /* Names chosen so that byte order differs from a naive directory walk:
     * '-' (0x2d) < '.' (0x2e) < '/' (0x2f) < '0'. */
    static const char *const names[] = {"ls/b/2", "ls/a", "ls/b.x", "ls/b-y", "ls/b/1",
                                        "ls/c/d/e", "ls/b0", "ls/bb"};
    static const char *const sorted[] = {"ls/a", "ls/b-y", "ls/b.x", "ls/b/1", "ls/b/2",
                                         "ls/b0", "ls/bb", "ls/c/d/e"};
    const size_t n = sizeof names / sizeof names[0];
    struct stratus_errbuf eb = {{0}};
    struct collect *c = calloc(1, sizeof *c);

    for (size_t i = 0; i < n; i++)
        put(key(names[i]), names[i], strlen(names[i]), NULL, NULL, &eb);
    put(key("lsx"), "x", 1, NULL, NULL, &eb); /* outside the prefix "ls/" */

    int rc = stratus_storage_list(st, key("ls/"), NULL, collect_cb, c, &eb);
    EXPECT_RC(rc, 0, "list", eb);
    EXPECT(c->n == (int)n, "list gave %d objects, want %zu", c->n, n);
    for (size_t i = 0; i < n && (int)i < c->n; i++) {
        EXPECT(strcmp(c->keys[i], key(sorted[i])) == 0, "list[%zu] = '%s', want '%s'", i,
               c->keys[i], key(sorted[i]));
        EXPECT(c->sizes[i] == strlen(sorted[i]), "list[%zu] size %llu, want %zu", i,
               (unsigned long long)c->sizes[i], strlen(sorted[i]));
    }
    /* A prefix that ends inside a segment. */
    memset(c, 0, sizeof *c);
    rc = stratus_storage_list(st, key("ls/b"), NULL, collect_cb, c, &eb);
    EXPECT(rc == 0 && c->n == 6, "list 'ls/b' gave %d objects, want 6", c->n);
    EXPECT(c->n < 1 || strcmp(c->keys[0], key("ls/b-y")) == 0, "list 'ls/b' starts at '%s'",
           c->keys[0]);
    /* Paging: stop after 3 (the callback's value comes back), then resume after the last. */
    memset(c, 0, sizeof *c);
    c->stop_after = 3;
    rc = stratus_storage_list(st, key("ls/"), NULL, collect_cb, c, &eb);
    EXPECT(rc == 42, "list did not return the callback's stop value (got %d)", rc);
    EXPECT(c->n == 3, "list went on after the callback stopped it (%d)", c->n);
    struct collect *d = calloc(1, sizeof *d);
    rc = stratus_storage_list(st, key("ls/"), c->keys[2], collect_cb, d, &eb);
    EXPECT_RC(rc, 0, "list with start_after", eb);
    EXPECT(d->n == (int)n - 3, "start_after page gave %d objects, want %zu", d->n, n - 3);
    for (int i = 0; i < d->n && i + 3 < (int)n; i++)
        EXPECT(strcmp(d->keys[i], key(sorted[i + 3])) == 0, "page 2 [%d] = '%s', want '%s'", i,
               d->keys[i], key(sorted[i + 3]));
    /* start_after that is not itself a key. */
    memset(d, 0, sizeof *d);
    rc = stratus_storage_list(st, key("ls/"), key("ls/b/"), collect_cb, d, &eb);
    EXPECT(rc == 0 && d->n == 5, "start_after 'ls/b/' gave %d objects, want 5", d->n);
    /* An empty prefix result. */
    memset(d, 0, sizeof *d);
    rc = stratus_storage_list(st, key("nothing-here/"), NULL, collect_cb, d, &eb);
    EXPECT(rc == 0 && d->n == 0, "list of an empty prefix: rc %d, %d objects", rc, d->n);
    free(c);
    free(d);
}

static void case_deep_keys(void)
{
    struct stratus_errbuf eb = {{0}};
    const char *k = key("deep/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/obj");
    unsigned char out[16];
    size_t got;
    int rc = put(k, "deep", 4, NULL, NULL, &eb);
    EXPECT_RC(rc, 0, "put deep key", eb);
    rc = get_all(k, out, sizeof out, &got, &eb);
    EXPECT(rc == 0 && got == 4 && memcmp(out, "deep", 4) == 0, "get deep key: rc %d", rc);
    struct collect *c = calloc(1, sizeof *c);
    rc = stratus_storage_list(st, key("deep/"), NULL, collect_cb, c, &eb);
    EXPECT(rc == 0 && c->n == 1 && strcmp(c->keys[0], k) == 0, "list deep: %d objects", c->n);
    free(c);
    const char *ks[] = {k};
    rc = stratus_storage_del(st, ks, 1, &eb);
    EXPECT_RC(rc, 0, "del deep key", eb);
}

static void case_large(void)
{
    const size_t n = 64 * 1024 * 1024;
    struct stratus_errbuf eb = {{0}};
    struct stratus_object_info info;
    unsigned char *in = malloc(n), *out = malloc(n + 16);
    size_t got = 0;
    if (!in || !out) {
        EXPECT(0, "out of memory for 64 MiB buffers");
        goto out_free;
    }
    fill(in, n, 7);
    int rc = put(key("large/obj"), in, n, NULL, NULL, &eb);
    EXPECT_RC(rc, 0, "put 64 MiB", eb);
    rc = stratus_storage_head(st, key("large/obj"), &info, &eb);
    EXPECT(rc == 0 && info.size == n, "head 64 MiB: rc %d size %llu", rc,
           (unsigned long long)info.size);
    rc = get_all(key("large/obj"), out, n + 16, &got, &eb);
    EXPECT(rc == 0 && got == n && memcmp(in, out, n) == 0, "get 64 MiB: rc %d got %zu", rc, got);
    rc = stratus_storage_get(st, key("large/obj"), n / 2 + 3, 1 << 20, out, &got, &eb);
    EXPECT(rc == 0 && got == 1 << 20 && memcmp(in + n / 2 + 3, out, 1 << 20) == 0,
           "ranged get in a 64 MiB object: rc %d got %zu", rc, got);
out_free:
    free(in);
    free(out);
}

/* putv (ABI 1.2, or the broker joining the pieces for put): pieces as the uploader gives them
 * (bases and lengths on STRATUS_IOV_ALIGN but the last length, over 512 KiB and more than 64
 * pieces), then unaligned ones, an empty one, a small object and if_absent. */
static void case_putv(void)
{
    const size_t A = STRATUS_IOV_ALIGN, cap = 8u << 20;
    struct stratus_errbuf eb = {{0}};
    struct stratus_iov iov[200];
    struct stratus_put_opts o = {.size = sizeof o, .if_absent = 1};
    unsigned char *src = NULL, *want = malloc(cap), *out = malloc(cap + 16);
    size_t n = 0, len = 0, got = 0, at = 0;
    int rc;
    if (posix_memalign((void **)&src, 4096, cap) != 0 || !want || !out) {
        EXPECT(0, "out of memory for putv buffers");
        goto out_free;
    }
    fill(src, cap, 9);
    for (unsigned i = 0; i < 150; i++) { /* aligned pieces of 1..10 blocks, out of order */
        size_t l = A * (1 + i * 7 % 10), off = (size_t)(i * 2654435761u % (cap / A - 11)) * A;
        iov[n++] = (struct stratus_iov){src + off, l};
    }
    iov[n++] = (struct stratus_iov){src + 3, 0};           /* empty */
    iov[n++] = (struct stratus_iov){src + 1001, 77777};    /* unaligned */
    iov[n++] = (struct stratus_iov){src + 4096, 3 * A};    /* aligned again */
    iov[n++] = (struct stratus_iov){src + 5, 1234};        /* the tail */
    for (size_t i = 0; i < n; i++) {
        memcpy(want + len, iov[i].base, iov[i].len);
        len += iov[i].len;
    }
    rc = stratus_storage_putv(st, key("putv/big"), iov, n, NULL, NULL, &eb);
    EXPECT_RC(rc, 0, "putv", eb);
    rc = get_all(key("putv/big"), out, cap + 16, &got, &eb);
    EXPECT(rc == 0 && got == len, "get after putv: rc %d got %zu, want %zu", rc, got, len);
    for (at = 0; at < len && at < got && out[at] == want[at]; at++)
        ;
    EXPECT(at == len, "get after putv: content differs at byte %zu of %zu", at, len);
    /* a small object of two pieces, and if_absent */
    iov[0] = (struct stratus_iov){src, A};
    iov[1] = (struct stratus_iov){src + 7 * A, 100};
    rc = stratus_storage_putv(st, key("putv/small"), iov, 2, &o, NULL, &eb);
    EXPECT_RC(rc, 0, "putv small, if_absent", eb);
    rc = get_all(key("putv/small"), out, cap, &got, &eb);
    EXPECT(rc == 0 && got == A + 100 && memcmp(out, src, A) == 0 &&
               memcmp(out + A, src + 7 * A, 100) == 0,
           "get after small putv: rc %d got %zu", rc, got);
    rc = stratus_storage_putv(st, key("putv/small"), iov, 2, &o, NULL, &eb);
    EXPECT_RC(rc, STRATUS_EEXIST, "putv if_absent on an existing key", eb);
out_free:
    free(src);
    free(want);
    free(out);
}

/* Deletes everything under the run's prefix; the store must then list nothing there. */
static int cleanup_cb(void *arg, const struct stratus_object_info *info)
{
    struct collect *c = arg;
    if (c->n < 64)
        snprintf(c->keys[c->n], sizeof c->keys[0], "%s", info->key);
    c->n++;
    return c->n >= 64 ? 1 : 0;
}

static void case_cleanup(void)
{
    struct stratus_errbuf eb = {{0}};
    struct collect *c = calloc(1, sizeof *c);
    for (int guard = 0; guard < 1000; guard++) {
        memset(c, 0, sizeof *c);
        int rc = stratus_storage_list(st, prefix, NULL, cleanup_cb, c, &eb);
        EXPECT(rc >= 0, "cleanup list: %s", eb.msg);
        if (c->n == 0 || rc < 0)
            break;
        const char *ks[64];
        int m = c->n < 64 ? c->n : 64;
        for (int i = 0; i < m; i++)
            ks[i] = c->keys[i];
        rc = stratus_storage_del(st, ks, (size_t)m, &eb);
        EXPECT_RC(rc, 0, "cleanup del", eb);
        if (rc < 0)
            break;
    }
    memset(c, 0, sizeof *c);
    stratus_storage_list(st, prefix, NULL, collect_cb, c, &eb);
    EXPECT(c->n == 0, "%d objects left under %s after deleting all", c->n, prefix);
    free(c);
}

static void run(const char *name, void (*fn)(void))
{
    why[0] = '\0';
    int64_t t0 = stratus_mono_ms();
    fn();
    if (why[0]) {
        n_failed++;
        printf("FAIL %s: %s\n", name, why);
    } else {
        n_passed++;
        printf("ok   %s (%lld ms)\n", name, (long long)(stratus_mono_ms() - t0));
    }
    fflush(stdout);
}

static void usage(void)
{
    fprintf(stderr, "usage: stratus-conformance PLUGIN.so [--set key=value ...] [--prefix P] "
                    "[--quick]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_conf *conf = stratus_conf_new();
    char assign[4096];
    int quick = 0;

    if (argc < 2 || argv[1][0] == '-')
        usage();
    snprintf(assign, sizeof assign, "storage.plugin=%s", argv[1]);
    if (strchr(argv[1], '/') == NULL) /* a bare file name means ./file */
        snprintf(assign, sizeof assign, "storage.plugin=./%s", argv[1]);
    stratus_conf_set(conf, assign, &eb);
    snprintf(prefix, sizeof prefix, "conformance-%d-%lld/", (int)getpid(),
             (long long)stratus_wall_ms());
    /* Few quick retries by default, so a failing store fails fast; --set may change them. */
    stratus_conf_set(conf, "storage.retry_max_attempts=3", &eb);
    stratus_conf_set(conf, "storage.retry_base_delay=10ms", &eb);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            snprintf(assign, sizeof assign, "storage.%s", argv[++i]);
            if (stratus_conf_set(conf, assign, &eb) < 0) {
                fprintf(stderr, "stratus-conformance: %s\n", eb.msg);
                return 2;
            }
        } else if (strcmp(argv[i], "--prefix") == 0 && i + 1 < argc) {
            snprintf(prefix, sizeof prefix, "%s", argv[++i]);
        } else if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else {
            usage();
        }
    }
    if (stratus_storage_open(conf, "storage", NULL, &st, &eb) < 0) {
        fprintf(stderr, "stratus-conformance: %s\n", eb.msg);
        printf("0 passed, 1 failed\n");
        stratus_conf_free(conf);
        return 1;
    }
    printf("# storage plugin '%s', objects under '%s'\n", stratus_storage_name(st), prefix);
    run("put_get", case_put_get);
    run("get_ranges", case_ranges);
    run("empty_object", case_empty_object);
    run("head", case_head);
    run("not_found", case_not_found);
    run("overwrite", case_overwrite);
    run("if_absent", case_if_absent);
    run("if_match", case_if_match);
    run("if_absent_race_8_threads", case_if_absent_race);
    run("del", case_del);
    run("list_order_and_paging", case_list);
    run("deep_keys", case_deep_keys);
    run("putv", case_putv);
    if (!quick)
        run("large_object_64MiB", case_large);
    run("cleanup", case_cleanup);
    stratus_storage_close(st);
    stratus_conf_free(conf);
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
