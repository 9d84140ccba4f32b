/* link: stratus_plugin stratus_conf stratus_metrics stratus_util */
/* test_storage_local.c - what the local storage plugin promises beyond the conformance kit:
 * key validation, relative paths, temp files invisible to list, empty directories removed on
 * delete (and puts that race those deletes in the same directories still succeed), the
 * key/directory conflict reported as EINVAL, etags that change on every put, and large aligned
 * reads made with O_DIRECT (the bytes right up to the object's unaligned end, the page cache
 * left empty) while unaligned ones still read right; direct writes go write_chunk bytes per
 * call, or bulk_write_chunk for puts marked bulk, and every such put reads back intact
 * (aligned, through the bounce buffer with a chunk larger than it, and as pieces).
 * SPDX-License-Identifier: Apache-2.0
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "plugin/plugin.h"
#include "test.h"

static struct stratus_storage *st;
static char root[512];

static int count_cb(void *arg, const struct stratus_object_info *info)
{
    (void)info;
    (*(int *)arg)++;
    return 0;
}

static int put(const char *k, const char *v, char *etag)
{
    struct stratus_errbuf eb = {{0}};
    return stratus_storage_put(st, k, v, strlen(v), NULL, etag, &eb);
}

static int exists(const char *rel)
{
    char p[1024];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", root, rel);
    return stat(p, &sb) == 0;
}

/* One of two threads that put and delete their own key, again and again, in the same
 * three-level directory: each delete removes the directories it leaves empty, under the
 * other thread's put (as the object WAL's trims do under its next PUT). */
struct racer {
    const char *key;
    int rounds, failures;
    char msg[256];
};

static void *race_put_del(void *arg)
{
    struct racer *r = arg;
    struct stratus_errbuf eb = {{0}};
    for (int i = 0; i < r->rounds; i++) {
        if (stratus_storage_put(st, r->key, "x", 1, NULL, NULL, &eb) < 0 && !r->failures++)
            snprintf(r->msg, sizeof r->msg, "put: %s", eb.msg);
        if (stratus_storage_del(st, &r->key, 1, &eb) < 0 && !r->failures++)
            snprintf(r->msg, sizeof r->msg, "del: %s", eb.msg);
    }
    return NULL;
}

/* Pages of the first len bytes of the store's file rel that sit in the page cache. */
static size_t resident_pages(const char *rel, size_t len)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    int fd = open(p, O_RDONLY);
    CHECK(fd >= 0);
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    size_t pages = (len + 4095) / 4096, n = 0;
    unsigned char *vec = malloc(pages);
    CHECK_EQ(mincore(m, len, vec), 0);
    for (size_t i = 0; i < pages; i++)
        n += vec[i] & 1;
    free(vec);
    munmap(m, len);
    close(fd);
    return n;
}

/* Large aligned gets take the O_DIRECT path; everything else the buffered one. */
static void check_direct_reads(void)
{
    struct stratus_errbuf eb = {{0}};
    const size_t size = 3 * (1u << 20) + 1234, blk = 1u << 20;
    unsigned char *obj = malloc(size), *buf = NULL;
    size_t got = 0;
    for (size_t i = 0; i < size; i++)
        obj[i] = (unsigned char)(i * 131 + i / 4096);
    CHECK_EQ(stratus_storage_put(st, "big/obj", obj, size, NULL, NULL, &eb), 0);
    CHECK_EQ(posix_memalign((void **)&buf, 4096, blk + 4096), 0);

    /* drop what the put's buffered tail left in the page cache */
    char p[1024];
    snprintf(p, sizeof p, "%s/big/obj", root);
    int fd = open(p, O_RDONLY | O_DIRECT);
    int direct_ok = fd >= 0;
    if (fd >= 0)
        close(fd);
    fd = open(p, O_RDONLY);
    CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(fd);

    for (size_t off = 0; off < size; off += blk) {
        CHECK_EQ(stratus_storage_get(st, "big/obj", off, blk, buf, &got, &eb), 0);
        size_t want = size - off < blk ? size - off : blk;
        CHECK_EQ(got, want);
        CHECK(memcmp(buf, obj + off, want) == 0);
    }
    if (direct_ok) /* read with O_DIRECT: nothing came through the page cache */
        CHECK_EQ(resident_pages("big/obj", size - 1234), 0u);
    else
        printf("storage-local: this filesystem refuses O_DIRECT; buffered reads checked only\n");

    /* unaligned buffer, offset or length: the buffered read, the same bytes */
    CHECK_EQ(stratus_storage_get(st, "big/obj", 0, blk, buf + 16, &got, &eb), 0);
    CHECK_EQ(got, blk);
    CHECK(memcmp(buf + 16, obj, blk) == 0);
    CHECK_EQ(stratus_storage_get(st, "big/obj", 100, 65536, buf, &got, &eb), 0);
    CHECK_EQ(got, 65536u);
    CHECK(memcmp(buf, obj + 100, 65536) == 0);
    CHECK_EQ(stratus_storage_get(st, "big/obj", 3 * blk, 65536 + 4096, buf, &got, &eb), 0);
    CHECK_EQ(got, 1234u);
    CHECK(memcmp(buf, obj + 3 * blk, 1234) == 0);
    CHECK_EQ(stratus_storage_get(st, "big/obj", size, blk, buf, &got, &eb), 0);
    CHECK_EQ(got, 0u);
    free(buf);
    free(obj);
}

/* write() calls this process has made so far (/proc/self/io), or -1 where not accounted */
static long long write_calls(void)
{
    char line[128];
    long long v = -1;
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "syscw: %lld", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* A store with write_chunk 64 KiB and bulk_write_chunk 3 MiB (larger than the 1 MiB bounce
 * buffer an unaligned caller's put goes through). */
static void check_write_chunks(const char *pd)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_conf *c = stratus_conf_new();
    struct stratus_storage *cs = NULL;
    const size_t size = 6 * (1u << 20) + 3000;
    unsigned char *obj = NULL, *back = malloc(size + 1);
    size_t got = 0;

    stratus_conf_set(c, "storage.plugin=local", &eb);
    stratus_conf_set(c, "storage.path=rel/chunks", &eb);
    stratus_conf_set(c, "storage.fsync=false", &eb);
    stratus_conf_set(c, "storage.write_chunk=64KiB", &eb);
    stratus_conf_set(c, "storage.bulk_write_chunk=3MiB", &eb);
    CHECK_EQ(stratus_storage_open(c, "storage", pd, &cs, &eb), 0);
    CHECK_EQ(posix_memalign((void **)&obj, 4096, size + 4096), 0);
    for (size_t i = 0; i < size + 4096; i++)
        obj[i] = (unsigned char)(i * 7 + i / 5000);
    if (!cs) {
        fprintf(stderr, "%s\n", eb.msg);
        free(obj);
        free(back);
        stratus_conf_free(c);
        return;
    }
    struct stratus_put_opts bulk = {.size = sizeof bulk, .bulk = 1};
    /* aligned: straight from the buffer, chunk by chunk */
    long long w0 = write_calls();
    CHECK_EQ(stratus_storage_put(cs, "plain", obj, size, NULL, NULL, &eb), 0);
    long long w1 = write_calls();
    CHECK_EQ(stratus_storage_put(cs, "bulk", obj, size, &bulk, NULL, &eb), 0);
    long long w2 = write_calls();
    char p[1024];
    snprintf(p, sizeof p, "%s/../chunks/plain", root);
    int fd = open(p, O_RDONLY | O_DIRECT);
    if (fd >= 0 && w0 >= 0) {
        close(fd);
        /* 96 direct calls of 64 KiB (plus the buffered tail) against 2 of 3 MiB */
        CHECK(w1 - w0 >= 96);
        CHECK(w2 - w1 <= 6);
    } else {
        if (fd >= 0)
            close(fd);
        printf("storage-local: no O_DIRECT or no write accounting here; contents checked only\n");
    }
    /* unaligned, bulk: through the 1 MiB bounce buffer, never more than it per call */
    CHECK_EQ(stratus_storage_put(cs, "bounce", obj + 1, size, &bulk, NULL, &eb), 0);
    /* pieces, bulk: a 3 MiB call spans several of them */
    struct stratus_iov iov[4] = {{obj, 1u << 20}, {obj + (1u << 20), 2u << 20},
                                 {obj + (3u << 20), 3u << 20}, {obj + (6u << 20), 3000}};
    CHECK_EQ(stratus_storage_putv(cs, "pieces", iov, 4, &bulk, NULL, &eb), 0);
    static const char *const keys[] = {"plain", "bulk", "bounce", "pieces"};
    for (size_t k = 0; k < 4; k++) {
        memset(back, 0, size + 1);
        CHECK_EQ(stratus_storage_get(cs, keys[k], 0, size + 1, back, &got, &eb), 0);
        CHECK_EQ(got, size);
        CHECK(memcmp(back, obj + (k == 2), size) == 0);
    }
    stratus_storage_close(cs);
    stratus_conf_free(c);
    free(obj);
    free(back);
}

int main(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_conf *c = stratus_conf_new();
    const char *pd = getenv("STRATUS_PLUGIN_DIR");
    char cwd[128], set[1024];

    if (!pd) {
        fprintf(stderr, "run under ctest (STRATUS_PLUGIN_DIR)\n");
        return 1;
    }
    /* A relative path resolves against the working directory. */
    snprintf(cwd, sizeof cwd, "/tmp/test_storage_local_%d", (int)getpid());
    mkdir(cwd, 0755);
    CHECK_EQ(chdir(cwd), 0);
    snprintf(root, sizeof root, "%s/rel/store", cwd);
    stratus_conf_set(c, "storage.plugin=local", &eb);
    stratus_conf_set(c, "storage.path=rel/store", &eb);
    stratus_conf_set(c, "storage.fsync=false", &eb);
    CHECK_EQ(stratus_storage_open(c, "storage", pd, &st, &eb), 0);
    if (!st) {
        fprintf(stderr, "%s\n", eb.msg);
        TEST_REPORT();
    }
    CHECK_EQ(put("a/b/c", "x", NULL), 0);
    CHECK(exists("a/b/c"));

    /* Invalid keys. */
    static const char *const bad[] = {"", "/abs", "a//b", "a/../b", "./a", "a/.", "a/",
                                      "a/.stratus-tmp-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(put(bad[i], "x", NULL), STRATUS_EINVAL);
        struct stratus_object_info info;
        CHECK_EQ(stratus_storage_head(st, bad[i], &info, &eb), STRATUS_EINVAL);
    }
    char longkey[1100];
    memset(longkey, 'k', sizeof longkey);
    longkey[sizeof longkey - 1] = '\0';
    CHECK_EQ(put(longkey, "x", NULL), STRATUS_EINVAL);

    /* "a/b" is a directory: it cannot also be an object, and vice versa. */
    CHECK_EQ(put("a/b", "x", NULL), STRATUS_EINVAL);
    CHECK_EQ(put("a/b/c/d", "x", NULL), STRATUS_EINVAL);
    struct stratus_object_info info;
    CHECK_EQ(stratus_storage_head(st, "a/b", &info, &eb), STRATUS_ENOTFOUND);

    /* A leftover temp file (a crash mid-put) is not an object. */
    snprintf(set, sizeof set, "%s/a/b/.stratus-tmp-deadbeef", root);
    FILE *f = fopen(set, "w");
    fputs("partial", f);
    fclose(f);
    int n = 0;
    CHECK_EQ(stratus_storage_list(st, "", NULL, count_cb, &n, &eb), 0);
    CHECK_EQ(n, 1);
    unlink(set);

    /* etags change on every put, even with the same bytes. */
    char e1[128], e2[128];
    CHECK_EQ(put("e", "same", e1), 0);
    CHECK_EQ(put("e", "same", e2), 0);
    CHECK(strcmp(e1, e2) != 0);
    CHECK_EQ(stratus_storage_head(st, "e", &info, &eb), 0);
    CHECK_STR(info.etag, e2);

    /* Deleting the last key of a directory removes the empty directories. */
    const char *k[] = {"a/b/c"};
    CHECK_EQ(stratus_storage_del(st, k, 1, &eb), 0);
    CHECK(!exists("a/b"));
    CHECK(!exists("a"));
    CHECK(exists("e"));
    /* Puts racing deletes that empty (and so remove) the same directories all succeed. */
    struct racer ra = {.key = "w/2/inc/a", .rounds = 3000}, rb = {.key = "w/2/inc/b",
                                                                   .rounds = 3000};
    pthread_t ta, tb;
    CHECK_EQ(pthread_create(&ta, NULL, race_put_del, &ra), 0);
    CHECK_EQ(pthread_create(&tb, NULL, race_put_del, &rb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    if (ra.failures || rb.failures)
        fprintf(stderr, "racing put/delete: %d + %d failures (%s%s)\n", ra.failures,
                rb.failures, ra.msg, rb.msg);
    CHECK_EQ(ra.failures + rb.failures, 0);
    CHECK(!exists("w"));
    check_direct_reads();
    check_write_chunks(pd);
    /* Deleting a "directory" name is a no-op, not an error. */
    CHECK_EQ(put("d/x", "1", NULL), 0);
    const char *dk[] = {"d"};
    CHECK_EQ(stratus_storage_del(st, dk, 1, &eb), 0);
    CHECK(exists("d/x"));

    stratus_storage_close(st);
    stratus_conf_free(c);

    /* Open errors: a path that is a file. */
    c = stratus_conf_new();
    stratus_conf_set(c, "storage.plugin=local", &eb);
    stratus_conf_set(c, "storage.path=rel/store/e/sub", &eb);
    CHECK(stratus_storage_open(c, "storage", pd, &st, &eb) < 0);
    CHECK(strstr(eb.msg, "rel/store/e") != NULL);
    stratus_conf_free(c);

    snprintf(set, sizeof set, "rm -rf %s", cwd);
    CHECK_EQ(system(set), 0);
    TEST_REPORT();
}
