/* link: stratus_plugin stratus_conf stratus_metrics stratus_util */
/* test_loader.c - the plugin loader refuses each broken ABI test plugin (tests/plugins/abi)
 * with a message naming the file and the reason; accepts the good ones; applies config maps
 * with file:line errors; reports a failing open(); the storage wrappers retry EAGAIN with
 * backoff, resume a list without repeating objects, count calls, and expose metrics; the
 * host table works from inside a plugin; describe prints the config map.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <unistd.h>

#include "conf/conf.h"
#include "metrics/metrics.h"
#include "plugin/plugin.h"
#include "test.h"

static char abi_dir[1024], plugin_dir[1024];

static const char *abi(const char *name)
{
    static char buf[4][1200];
    static int i;
    char *b = buf[i++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s.so", abi_dir, name);
    return b;
}

static int contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", hay, needle);
        return 0;
    }
    return 1;
}

/* Loading `name` must fail, naming the file and giving `reason`. */
static void expect_refused(const char *name, int want_kind, const char *reason)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_plugin *p = (struct stratus_plugin *)1;
    int rc = stratus_plugin_load(abi(name), want_kind, &p, &eb);
    CHECK(rc < 0);
    CHECK(p == NULL);
    CHECK(contains(eb.msg, abi(name)));
    CHECK(contains(eb.msg, reason));
    printf("refused %-20s %s\n", name, eb.msg);
}

static void test_refusals(void)
{
    expect_refused("bad_major", 0, "ABI major 2, this broker speaks 1");
    expect_refused("future_minor", 0, "built for ABI 1.99, newer than this broker's 1.2");
    expect_refused("bad_sig", 0, "not binary compatible: build signature \"ilp32,be\"");
    expect_refused("no_entry", 0, "no stratus_plugin_entry symbol: not a Stratus plugin");
    expect_refused("missing_op", 0, "required storage op 'put' is NULL");
    expect_refused("short_ops", 0, "storage ops table is 56 bytes, ABI 1.0 needs at least 64");
    expect_refused("bad_name", 0, "plugin name \"Bad Name!\" is not [a-z0-9_-]{1,64}");
    expect_refused("bad_param", 0, "config map: parameter 'outside' lies outside conf_size");
    expect_refused("good", STRATUS_PLUGIN_CACHE, "is a storage plugin, a cache plugin is needed");
    expect_refused("does_not_exist", 0, "no such plugin file");

    /* A file that is not a shared object at all. */
    char junk[1200];
    snprintf(junk, sizeof junk, "/tmp/test_loader_junk_%d.so", (int)getpid());
    FILE *f = fopen(junk, "w");
    fputs("not an ELF file\n", f);
    fclose(f);
    struct stratus_errbuf eb = {{0}};
    struct stratus_plugin *p;
    CHECK(stratus_plugin_load(junk, 0, &p, &eb) < 0);
    CHECK(contains(eb.msg, junk));
    CHECK(contains(eb.msg, "cannot load"));
    unlink(junk);
}

static void test_accepts(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_plugin *p = NULL, *p2 = NULL;

    CHECK_EQ(stratus_plugin_load(abi("good"), STRATUS_PLUGIN_STORAGE, &p, &eb), 0);
    if (!p)
        return;
    CHECK_STR(stratus_plugin_desc(p)->name, "abigood");
    CHECK_STR(stratus_plugin_path(p), abi("good"));
    /* Loading the same file again gives the same record (plugins stay loaded). */
    CHECK_EQ(stratus_plugin_load(abi("good"), 0, &p2, &eb), 0);
    CHECK(p == p2);

    /* A 1.0 plugin whose ops table ends at the last 1.0 slot loads. */
    p2 = NULL;
    CHECK_EQ(stratus_plugin_load(abi("old_minor_short_ops"), 0, &p2, &eb), 0);
    CHECK(p2 != NULL);

    /* Another file claiming a name already loaded is refused. */
    char copy[1200], cmd[2600];
    snprintf(copy, sizeof copy, "/tmp/test_loader_copy_%d.so", (int)getpid());
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", abi("good"), copy);
    CHECK_EQ(system(cmd), 0);
    CHECK(stratus_plugin_load(copy, 0, &p2, &eb) < 0);
    CHECK(contains(eb.msg, "a storage plugin named 'abigood' is already loaded from"));
    unlink(copy);

    /* describe */
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    stratus_plugin_describe(p, f);
    fclose(f);
    CHECK(contains(text, "plugin:      abigood"));
    CHECK(contains(text, "kind:        storage"));
    {
        char want[32];
        snprintf(want, sizeof want, "abi:         1.%d", STRATUS_ABI_MINOR);
        CHECK(contains(text, want));
    }
    CHECK(contains(text, "label"));
    CHECK(contains(text, "[0..9]"));
    fputs(text, stdout);
    free(text);
}

static void test_resolve(void)
{
    struct stratus_errbuf eb = {{0}};
    char out[256];
    CHECK_EQ(stratus_plugin_resolve("/opt/p", "storage", "local", out, sizeof out, &eb), 0);
    CHECK_STR(out, "/opt/p/stratus-storage-local.so");
    CHECK_EQ(stratus_plugin_resolve("/opt/p", "cache", "x/y.so", out, sizeof out, &eb), 0);
    CHECK_STR(out, "x/y.so");
    CHECK_EQ(stratus_plugin_resolve("/opt/p", "cache", "mine.so", out, sizeof out, &eb), 0);
    CHECK_STR(out, "mine.so");
    CHECK_EQ(stratus_plugin_resolve("/opt/p", "storage", "Bad!", out, sizeof out, &eb),
             STRATUS_EINVAL);
    CHECK_EQ(stratus_plugin_resolve("/opt/p", "storage", "local", out, 10, &eb), STRATUS_EINVAL);
}

static const char *write_ini(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/test_loader_%d.ini", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

/* Opens [storage] from an INI text; returns rc, message in eb. */
static int open_from(const char *ini, struct stratus_storage **st, struct stratus_conf **c,
                     struct stratus_errbuf *eb)
{
    *st = NULL;
    *c = NULL;
    int rc = stratus_conf_load(write_ini(ini), c, eb);
    if (rc < 0)
        return rc;
    return stratus_storage_open(*c, "storage", plugin_dir, st, eb);
}

static void test_storage_config(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_storage *st;
    struct stratus_conf *c;
    char ini[2048];

    /* Unknown key: file:line, section, key and the plugin's known keys. */
    snprintf(ini, sizeof ini, "[storage]\nplugin = %s\nlabel = x\nbogus = 1\n", abi("good"));
    CHECK_EQ(open_from(ini, &st, &c, &eb), STRATUS_EINVAL);
    CHECK(contains(eb.msg, ":4: [storage] unknown key 'bogus' (known: label, level)"));
    stratus_conf_free(c);

    /* A plugin key out of bounds, and a core key out of bounds. */
    snprintf(ini, sizeof ini, "[storage]\nplugin = %s\nlevel = 12\n", abi("good"));
    CHECK_EQ(open_from(ini, &st, &c, &eb), STRATUS_EINVAL);
    CHECK(contains(eb.msg, ":3: [storage] level: 12 is out of range [0, 9]"));
    stratus_conf_free(c);
    snprintf(ini, sizeof ini, "[storage]\nplugin = %s\nretry_max_attempts = 0\n", abi("good"));
    CHECK_EQ(open_from(ini, &st, &c, &eb), STRATUS_EINVAL);
    CHECK(contains(eb.msg, ":3: [storage] retry_max_attempts: 0 is out of range [1, 100]"));
    stratus_conf_free(c);

    /* No plugin key at all. */
    CHECK_EQ(open_from("[storage]\nlevel = 1\n", &st, &c, &eb), STRATUS_EINVAL);
    CHECK(contains(eb.msg, "[storage] missing required key 'plugin'"));
    stratus_conf_free(c);

    /* A plugin that is refused by the loader: the loader's message comes through. */
    snprintf(ini, sizeof ini, "[storage]\nplugin = %s\n", abi("bad_major"));
    CHECK(open_from(ini, &st, &c, &eb) < 0);
    CHECK(contains(eb.msg, "ABI major 2"));
    stratus_conf_free(c);

    /* A plugin name resolved in plugin_dir that does not exist. */
    CHECK_EQ(open_from("[storage]\nplugin = nosuch\n", &st, &c, &eb), STRATUS_ENOTFOUND);
    CHECK(contains(eb.msg, "stratus-storage-nosuch.so: no such plugin file"));
    stratus_conf_free(c);

    /* open() fails: the plugin's code and message, and the file. */
    snprintf(ini, sizeof ini, "[storage]\nplugin = %s\n", abi("fail_open"));
    CHECK_EQ(open_from(ini, &st, &c, &eb), STRATUS_EAUTH);
    CHECK(contains(eb.msg, abi("fail_open")));
    CHECK(contains(eb.msg, "open failed (STRATUS_EAUTH): credentials refused by the test backend"));
    stratus_conf_free(c);

    /* check validates without opening: fail_open's open() is never called. */
    snprintf(ini, sizeof ini, "[storage]\nplugin = %s\n[cache]\nplugin = none\n",
             abi("fail_open"));
    CHECK_EQ(stratus_conf_load(write_ini(ini), &c, &eb), 0);
    CHECK_EQ(stratus_storage_check(c, "storage", plugin_dir, &eb), 0);
    CHECK_EQ(stratus_cache_check(c, "cache", plugin_dir, &eb), 0);
    stratus_conf_free(c);
    snprintf(ini, sizeof ini, "[storage]\nplugin = %s\nbogus = 1\n[cache]\nplugin = memory\n"
             "capacity = 12QB\n", abi("good"));
    CHECK_EQ(stratus_conf_load(write_ini(ini), &c, &eb), 0);
    CHECK_EQ(stratus_storage_check(c, "storage", plugin_dir, &eb), STRATUS_EINVAL);
    CHECK(contains(eb.msg, ":3: [storage] unknown key 'bogus'"));
    CHECK_EQ(stratus_cache_check(c, "cache", plugin_dir, &eb), STRATUS_EINVAL);
    CHECK(contains(eb.msg, ":6: [cache] capacity: bad size '12QB'"));
    stratus_conf_free(c);

    /* The good plugin opens, by path; the first-party local plugin opens by name. */
    snprintf(ini, sizeof ini, "[storage]\nplugin = %s\nlabel = blue\n", abi("good"));
    CHECK_EQ(open_from(ini, &st, &c, &eb), 0);
    if (st)
        CHECK_STR(stratus_storage_name(st), "abigood");
    stratus_storage_close(st);
    stratus_conf_free(c);
    snprintf(ini, sizeof ini, "[storage]\nplugin = local\npath = /tmp/test_loader_local_%d\n",
             (int)getpid());
    CHECK_EQ(open_from(ini, &st, &c, &eb), 0);
    if (st)
        CHECK_STR(stratus_storage_name(st), "local");
    stratus_storage_close(st);
    stratus_conf_free(c);
    snprintf(ini, sizeof ini, "rm -rf /tmp/test_loader_local_%d", (int)getpid());
    CHECK_EQ(system(ini), 0);
}

struct keys {
    char k[8][1100];
    int n;
};

static int keys_cb(void *arg, const struct stratus_object_info *info)
{
    struct keys *ks = arg;
    if (ks->n < 8)
        snprintf(ks->k[ks->n], sizeof ks->k[0], "%s", info->key);
    ks->n++;
    return 0;
}

static void test_retries(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_storage *st;
    struct stratus_conf *c;
    struct stratus_storage_opstats s[STRATUS_SOP__COUNT];
    char ini[2048], buf[64];
    size_t got = 0;

    /* Two transient failures, then success: one call, two retries, no failure. */
    snprintf(ini, sizeof ini,
             "[broker]\nname = b-7\n[storage]\nplugin = %s\nfail_times = 2\n"
             "retry_base_delay = 1ms\nretry_max_delay = 4ms\n",
             abi("flaky"));
    CHECK_EQ(open_from(ini, &st, &c, &eb), 0);
    if (!st)
        return;
    CHECK_EQ(stratus_storage_get(st, "x", 0, sizeof buf, buf, &got, &eb), 0);
    CHECK_EQ(got, 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    stratus_storage_stats(st, s);
    CHECK_EQ(s[STRATUS_SOP_GET].calls, 1);
    CHECK_EQ(s[STRATUS_SOP_GET].retries, 2);
    CHECK_EQ(s[STRATUS_SOP_GET].failures, 0);
    CHECK_EQ(s[STRATUS_SOP_GET].bytes, 5);

    /* The host table seen from the plugin: config_get reads the broker's config. */
    CHECK_EQ(stratus_storage_get(st, "broker-name", 0, sizeof buf, buf, &got, &eb), 0);
    CHECK(got == 3 && memcmp(buf, "b-7", 3) == 0);

    /* A list that fails after the first object resumes after it: no object twice. */
    struct keys ks = {0};
    CHECK_EQ(stratus_storage_list(st, "", NULL, keys_cb, &ks, &eb), 0);
    CHECK_EQ(ks.n, 3);
    CHECK_STR(ks.k[0], "k1");
    CHECK_STR(ks.k[1], "k2");
    CHECK_STR(ks.k[2], "k3");
    stratus_storage_stats(st, s);
    CHECK_EQ(s[STRATUS_SOP_LIST].retries, 1);

    /* Not-found is an answer, not a failure, and never retried. */
    struct stratus_object_info info;
    CHECK_EQ(stratus_storage_head(st, "nope", &info, &eb), STRATUS_ENOTFOUND);
    CHECK(contains(eb.msg, "head nope: none"));
    stratus_storage_stats(st, s);
    CHECK_EQ(s[STRATUS_SOP_HEAD].retries, 0);
    CHECK_EQ(s[STRATUS_SOP_HEAD].failures, 0);

    /* Metrics: the wrappers' and the plugin's own. */
    char *text = NULL;
    stratus_metrics_render(&text);
    CHECK(contains(text, "stratus_storage_calls_total{section=\"storage\",op=\"get\"} 2"));
    CHECK(contains(text, "stratus_storage_retries_total{section=\"storage\",op=\"get\"} 2"));
    CHECK(contains(text, "# TYPE stratus_storage_calls_total counter"));
    CHECK(contains(text, "stratus_flaky_gets_total 4"));
    CHECK(contains(text, "stratus_plugin_alloc_bytes{plugin=\"flaky\"}"));
    free(text);
    stratus_storage_close(st);
    stratus_conf_free(c);

    /* More transient failures than attempts: EAGAIN comes back with the plugin's message. */
    snprintf(ini, sizeof ini,
             "[storage]\nplugin = %s\nfail_times = 10\nretry_max_attempts = 3\n"
             "retry_base_delay = 1ms\n",
             abi("flaky"));
    CHECK_EQ(open_from(ini, &st, &c, &eb), 0);
    if (!st)
        return;
    CHECK_EQ(stratus_storage_get(st, "x", 0, sizeof buf, buf, &got, &eb), STRATUS_EAGAIN);
    CHECK(contains(eb.msg, "throttled (test)"));
    stratus_storage_stats(st, s);
    CHECK_EQ(s[STRATUS_SOP_GET].calls, 1);
    CHECK_EQ(s[STRATUS_SOP_GET].retries, 2);
    CHECK_EQ(s[STRATUS_SOP_GET].failures, 1);
    stratus_storage_close(st);
    stratus_conf_free(c);
}

int main(void)
{
    const char *bd = getenv("STRATUS_BUILD_DIR"), *pd = getenv("STRATUS_PLUGIN_DIR");
    if (!bd || !pd) {
        fprintf(stderr, "test_loader: run under ctest (STRATUS_BUILD_DIR, STRATUS_PLUGIN_DIR)\n");
        return 1;
    }
    snprintf(abi_dir, sizeof abi_dir, "%s/tests/plugins/abi", bd);
    snprintf(plugin_dir, sizeof plugin_dir, "%s", pd);
    test_refusals();
    test_accepts();
    test_resolve();
    test_storage_config();
    test_retries();
    unlink(write_ini(""));
    TEST_REPORT();
}
