/* link: stratus_conf stratus_util */
/* test_conf.c - the INI loader and the stratus_param engine: file:line in every error, unknown
 * keys with the known list, bad values, bounds, defaults, required and secret keys,
 * ${env:NAME}, duplicate keys (last wins), --set overrides, size and duration units.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <unistd.h>

#include "conf/conf.h"
#include "test.h"

struct demo_conf {
    char *path;
    int64_t retries;
    int fsync;
    uint64_t part;
    int64_t timeout;
    char *secret;
};

static const struct stratus_param demo_params[] = {
    STRATUS_PARAM_STR("path", NULL, STRATUS_P_REQUIRED, struct demo_conf, path, "Where"),
    STRATUS_PARAM_INT("retries", "3", 0, struct demo_conf, retries, 1, 10, "Attempts"),
    STRATUS_PARAM_BOOL("fsync", "true", 0, struct demo_conf, fsync, "Sync"),
    STRATUS_PARAM_SIZE("part", "8MiB", 0, struct demo_conf, part, 1024, 64 * STRATUS_MiB, "Part"),
    STRATUS_PARAM_MS("timeout", "5s", 0, struct demo_conf, timeout, 0, 0, "Timeout"),
    STRATUS_PARAM_STR("secret", NULL, STRATUS_P_SECRET, struct demo_conf, secret, "Key"),
    STRATUS_PARAM_END,
};

static char tmp_path[64];

static const char *write_ini(const char *text)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/test_conf_%d.ini", (int)getpid());
    FILE *f = fopen(tmp_path, "w");
    fputs(text, f);
    fclose(f);
    return tmp_path;
}

/* Loads text and applies [s] with demo_params; returns the rc, message in eb. */
static int load_apply(const char *text, struct demo_conf *dc, struct stratus_errbuf *eb)
{
    struct stratus_conf *c = NULL;
    int rc = stratus_conf_load(write_ini(text), &c, eb);
    if (rc < 0)
        return rc;
    memset(dc, 0, sizeof *dc);
    rc = stratus_conf_apply(c, "s", demo_params, NULL, dc, eb);
    stratus_conf_free(c);
    return rc;
}

static int contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", hay, needle);
        return 0;
    }
    return 1;
}

static void test_units(void)
{
    uint64_t u;
    int64_t ms;
    CHECK_EQ(stratus_conf_parse_size("4096", &u), 0);
    CHECK_EQ(u, 4096);
    CHECK_EQ(stratus_conf_parse_size("64MiB", &u), 0);
    CHECK_EQ(u, 64ULL << 20);
    CHECK_EQ(stratus_conf_parse_size("1GB", &u), 0);
    CHECK_EQ(u, 1000000000ULL);
    CHECK_EQ(stratus_conf_parse_size("10k", &u), 0);
    CHECK_EQ(u, 10240);
    CHECK_EQ(stratus_conf_parse_size("2 gib", &u), 0);
    CHECK_EQ(u, 2ULL << 30);
    CHECK_EQ(stratus_conf_parse_size("12QB", &u), STRATUS_EINVAL);
    CHECK_EQ(stratus_conf_parse_size("-1", &u), STRATUS_EINVAL);
    CHECK_EQ(stratus_conf_parse_size("", &u), STRATUS_EINVAL);
    CHECK_EQ(stratus_conf_parse_size("99999999999TiB", &u), STRATUS_EINVAL);
    CHECK_EQ(stratus_conf_parse_ms("250ms", &ms), 0);
    CHECK_EQ(ms, 250);
    CHECK_EQ(stratus_conf_parse_ms("5s", &ms), 0);
    CHECK_EQ(ms, 5000);
    CHECK_EQ(stratus_conf_parse_ms("2m", &ms), 0);
    CHECK_EQ(ms, 120000);
    CHECK_EQ(stratus_conf_parse_ms("1h", &ms), 0);
    CHECK_EQ(ms, 3600000);
    CHECK_EQ(stratus_conf_parse_ms("7d", &ms), 0);
    CHECK_EQ(ms, 7LL * 86400000);
    CHECK_EQ(stratus_conf_parse_ms("100", &ms), 0);
    CHECK_EQ(ms, 100);
    CHECK_EQ(stratus_conf_parse_ms("-1", &ms), 0);
    CHECK_EQ(ms, -1);
    CHECK_EQ(stratus_conf_parse_ms("5 fortnights", &ms), STRATUS_EINVAL);
}

static void test_good_file(void)
{
    struct stratus_errbuf eb = {{0}};
    struct demo_conf dc;
    setenv("TEST_CONF_SECRET", "hunter2", 1);
    int rc = load_apply("; comment\n[s]\npath = /data\nretries = 5\nfsync = off\n"
                        "part = 1MiB\ntimeout = 250ms\nsecret = ${env:TEST_CONF_SECRET}\n"
                        "retries = 7   ; duplicate: last wins\n",
                        &dc, &eb);
    CHECK_EQ(rc, 0);
    CHECK_STR(dc.path, "/data");
    CHECK_EQ(dc.retries, 7);
    CHECK_EQ(dc.fsync, 0);
    CHECK_EQ(dc.part, 1ULL << 20);
    CHECK_EQ(dc.timeout, 250);
    CHECK_STR(dc.secret, "hunter2");
    stratus_conf_free_struct(demo_params, &dc);
    CHECK(dc.path == NULL && dc.secret == NULL);

    /* Defaults. */
    rc = load_apply("[s]\npath=x\n", &dc, &eb);
    CHECK_EQ(rc, 0);
    CHECK_EQ(dc.retries, 3);
    CHECK_EQ(dc.fsync, 1);
    CHECK_EQ(dc.part, 8ULL << 20);
    CHECK_EQ(dc.timeout, 5000);
    CHECK(dc.secret == NULL);
    stratus_conf_free_struct(demo_params, &dc);
}

static void test_errors(void)
{
    struct stratus_errbuf eb = {{0}};
    struct demo_conf dc;
    char expect[128];

    int rc = load_apply("[s]\npath = x\n\nbogus = 1\n", &dc, &eb);
    CHECK_EQ(rc, STRATUS_EINVAL);
    snprintf(expect, sizeof expect, "%s:4: [s] unknown key 'bogus'", tmp_path);
    CHECK(contains(eb.msg, expect));
    CHECK(contains(eb.msg, "(known: path, retries, fsync, part, timeout, secret)"));

    rc = load_apply("[s]\npath = x\npart = 12QB\n", &dc, &eb);
    CHECK_EQ(rc, STRATUS_EINVAL);
    snprintf(expect, sizeof expect, "%s:3: [s] part: bad size '12QB'", tmp_path);
    CHECK(contains(eb.msg, expect));

    rc = load_apply("[s]\npath = x\nretries = 11\n", &dc, &eb);
    CHECK_EQ(rc, STRATUS_EINVAL);
    CHECK(contains(eb.msg, ":3: [s] retries: 11 is out of range [1, 10]"));

    rc = load_apply("[s]\npath = x\npart = 1000\n", &dc, &eb);
    CHECK_EQ(rc, STRATUS_EINVAL);
    CHECK(contains(eb.msg, "part: 1000 is out of range [1024, 67108864]"));

    rc = load_apply("[s]\npath = x\nfsync = maybe\n", &dc, &eb);
    CHECK(contains(eb.msg, "fsync: bad bool 'maybe'"));

    rc = load_apply("[s]\npath = x\nretries = 3x\n", &dc, &eb);
    CHECK(contains(eb.msg, "retries: bad integer '3x'"));

    rc = load_apply("[s]\npath = x\ntimeout = soon\n", &dc, &eb);
    CHECK(contains(eb.msg, "timeout: bad duration 'soon'"));

    rc = load_apply("[s]\nretries = 2\n", &dc, &eb);
    CHECK_EQ(rc, STRATUS_EINVAL);
    CHECK(contains(eb.msg, "[s] missing required key 'path'"));

    /* A secret's bad value is never echoed. */
    static const struct stratus_param secret_int[] = {
        STRATUS_PARAM_INT("pin", NULL, STRATUS_P_SECRET, struct demo_conf, retries, 0, 0, "PIN"),
        STRATUS_PARAM_END,
    };
    struct stratus_conf *c = NULL;
    CHECK_EQ(stratus_conf_load(write_ini("[s]\npin = letmein\n"), &c, &eb), 0);
    memset(&dc, 0, sizeof dc);
    CHECK_EQ(stratus_conf_apply(c, "s", secret_int, NULL, &dc, &eb), STRATUS_EINVAL);
    CHECK(contains(eb.msg, "pin: bad integer '****'"));
    CHECK(strstr(eb.msg, "letmein") == NULL);
    stratus_conf_free(c);

    /* Syntax errors, keys outside sections, missing env vars, long lines: all with file:line. */
    c = NULL;
    CHECK_EQ(stratus_conf_load(write_ini("[s]\npath = x\nthis is not ini\n"), &c, &eb),
             STRATUS_EINVAL);
    CHECK(contains(eb.msg, ":3: syntax error"));
    CHECK(c == NULL);
    CHECK_EQ(stratus_conf_load(write_ini("top = 1\n[s]\n"), &c, &eb), STRATUS_EINVAL);
    CHECK(contains(eb.msg, ":1: key 'top' outside any [section]"));
    unsetenv("TEST_CONF_NOPE");
    CHECK_EQ(stratus_conf_load(write_ini("[s]\n\nk = ${env:TEST_CONF_NOPE}\n"), &c, &eb),
             STRATUS_EINVAL);
    CHECK(contains(eb.msg, ":3: [s] k: environment variable TEST_CONF_NOPE is not set"));
    char longline[400];
    memset(longline, 'v', sizeof longline);
    memcpy(longline, "[s]\nk = ", 8);
    memcpy(longline + sizeof longline - 6, "\nx=1\n", 6);
    CHECK_EQ(stratus_conf_load(write_ini(longline), &c, &eb), STRATUS_EINVAL);
    CHECK(contains(eb.msg, ":2: line longer than"));
    CHECK_EQ(stratus_conf_load("/nonexistent/stratus.ini", &c, &eb), STRATUS_EIO);
    CHECK(contains(eb.msg, "/nonexistent/stratus.ini: cannot open"));
}

static void test_set_and_sections(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_conf *c = NULL;
    CHECK_EQ(stratus_conf_load(write_ini("[broker]\nid = 1\n[plugin.s3-main]\nbucket = a\n"), &c,
                               &eb),
             0);
    if (!c)
        return;
    CHECK_STR(stratus_conf_get(c, "broker", "id"), "1");
    char where[80];
    snprintf(where, sizeof where, "%s:2", tmp_path);
    CHECK_STR(stratus_conf_where(c, "broker", "id"), where);
    CHECK_EQ(stratus_conf_set(c, "broker.id = 2", &eb), 0);
    CHECK_STR(stratus_conf_get(c, "broker", "id"), "2");
    CHECK_STR(stratus_conf_where(c, "broker", "id"), "--set");
    CHECK_EQ(stratus_conf_set(c, "plugin.s3-main.bucket=b", &eb), 0);
    CHECK_STR(stratus_conf_get(c, "plugin.s3-main", "bucket"), "b");
    CHECK_EQ(stratus_conf_set(c, "nodot=1", &eb), STRATUS_EINVAL);
    CHECK(contains(eb.msg, "expected section.key=value"));
    CHECK_EQ(stratus_conf_set(c, "broker.id", &eb), STRATUS_EINVAL);
    CHECK(stratus_conf_get(c, "broker", "nope") == NULL);
    CHECK(stratus_conf_where(c, "broker", "nope") == NULL);
    CHECK_EQ(stratus_conf_has_section(c, "broker"), 1);
    CHECK_EQ(stratus_conf_has_section(c, "cache"), 0);

    static const char *const known[] = {"broker", "plugin.s3-main", NULL};
    static const char *const fewer[] = {"broker", NULL};
    CHECK_EQ(stratus_conf_check_sections(c, known, &eb), 0);
    CHECK_EQ(stratus_conf_check_sections(c, fewer, &eb), STRATUS_EINVAL);
    CHECK(contains(eb.msg, ":4: unknown section [plugin.s3-main]"));

    /* ignore list: keys the caller reads itself are not "unknown". */
    struct demo_conf dc = {0};
    CHECK_EQ(stratus_conf_set(c, "s.path=p", &eb), 0);
    CHECK_EQ(stratus_conf_set(c, "s.plugin=local", &eb), 0);
    static const char *const ign[] = {"plugin", NULL};
    CHECK_EQ(stratus_conf_apply(c, "s", demo_params, ign, &dc, &eb), 0);
    CHECK_STR(dc.path, "p");
    stratus_conf_free_struct(demo_params, &dc);
    CHECK_EQ(stratus_conf_apply(c, "s", demo_params, NULL, &dc, &eb), STRATUS_EINVAL);
    CHECK(contains(eb.msg, "--set: [s] unknown key 'plugin'"));
    stratus_conf_free(c);

    /* An empty conf: every key takes its default, and a required one is missing. */
    c = stratus_conf_new();
    CHECK_EQ(stratus_conf_apply(c, "s", demo_params, NULL, &dc, &eb), STRATUS_EINVAL);
    CHECK(contains(eb.msg, "(no file): [s] missing required key 'path'"));
    stratus_conf_free(c);
}

static void test_check_param_and_describe(void)
{
    char err[160];
    struct stratus_param bad = STRATUS_PARAM_INT("Bad-Name", NULL, 0, struct demo_conf, retries,
                                                 0, 0, "x");
    CHECK_EQ(stratus_conf_check_param(&bad, sizeof(struct demo_conf), err, sizeof err),
             STRATUS_EINVAL);
    CHECK(contains(err, "not [a-z0-9_]+"));
    struct stratus_param outside = STRATUS_PARAM_INT("x", NULL, 0, struct demo_conf, timeout, 0,
                                                     0, "x");
    CHECK_EQ(stratus_conf_check_param(&outside, 8, err, sizeof err), STRATUS_EINVAL);
    CHECK(contains(err, "outside conf_size"));
    struct stratus_param baddef = STRATUS_PARAM_SIZE("x", "lots", 0, struct demo_conf, part, 0, 0,
                                                     "x");
    CHECK_EQ(stratus_conf_check_param(&baddef, sizeof(struct demo_conf), err, sizeof err),
             STRATUS_EINVAL);
    CHECK(contains(err, "default: bad size 'lots'"));
    for (const struct stratus_param *p = demo_params; p->name; p++)
        CHECK_EQ(stratus_conf_check_param(p, sizeof(struct demo_conf), err, sizeof err), 0);

    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    stratus_conf_describe(demo_params, f);
    fclose(f);
    CHECK(contains(text, "path"));
    CHECK(contains(text, "required"));
    CHECK(contains(text, "[1024..67108864]"));
    CHECK(contains(text, "secret"));
    CHECK(contains(text, "default=8MiB"));
    free(text);
}

int main(void)
{
    test_units();
    test_good_file();
    test_errors();
    test_set_and_sections();
    test_check_param_and_describe();
    unlink(tmp_path);
    TEST_REPORT();
}
