/* flaky.c - test plugin: a storage whose get and list fail transiently, to test the core's
 * retry wrappers, and which exercises the host table (alloc, config_get, metric, log).
 *   fail_times   get and list return STRATUS_EAGAIN this many times per instance first
 * get("broker-name") returns the broker config value broker.name (via host->config_get);
 * any other get returns "hello". list delivers "k1", "k2", "k3", failing once after "k1".
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdatomic.h>
#include <string.h>

#include "stratus/stratus_storage.h"

struct flaky_conf {
    int64_t fail_times;
};

static const struct stratus_param flaky_params[] = {
    STRATUS_PARAM_INT("fail_times", "0", 0, struct flaky_conf, fail_times, 0, 1000,
                      "Transient failures before success"),
    STRATUS_PARAM_END,
};

struct flaky {
    const struct stratus_host *host;
    int64_t fail_times;
    _Atomic int64_t get_calls;
    _Atomic int list_failed;
    struct stratus_metric *gets;
};

static int flaky_open(const struct stratus_host *host, const void *confp, void **inst,
                      struct stratus_errbuf *eb)
{
    const struct flaky_conf *conf = confp;
    struct flaky *f = host->alloc(host->hctx, sizeof *f);
    *inst = NULL;
    if (!f)
        return stratus_errf(eb, STRATUS_ENOMEM, "alloc failed");
    memset(f, 0, sizeof *f);
    f->host = host;
    f->fail_times = conf->fail_times;
    f->gets = host->metric(host->hctx, STRATUS_METRIC_COUNTER, "gets_total", "get calls");
    host->log(host->hctx, STRATUS_LOG_INFO, "flaky storage, fail_times=%lld",
              (long long)f->fail_times);
    *inst = f;
    return 0;
}

static void flaky_close(void *inst)
{
    struct flaky *f = inst;
    if (f)
        f->host->free(f->host->hctx, f);
}

static int flaky_put(void *inst, const char *key, const void *data, size_t len,
                     const struct stratus_put_opts *opts, char *etag_out,
                     struct stratus_errbuf *eb)
{
    (void)inst, (void)key, (void)data, (void)len, (void)opts, (void)etag_out, (void)eb;
    return 0;
}

static int flaky_get(void *inst, const char *key, uint64_t off, size_t len, void *dst,
                     size_t *got, struct stratus_errbuf *eb)
{
    struct flaky *f = inst;
    const char *v = "hello";
    f->host->metric_add(f->gets, 1);
    if (atomic_fetch_add(&f->get_calls, 1) < f->fail_times)
        return stratus_errf(eb, STRATUS_EAGAIN, "get %s: throttled (test)", key);
    if (strcmp(key, "broker-name") == 0) {
        v = f->host->config_get(f->host->hctx, "broker.name");
        if (!v)
            return stratus_errf(eb, STRATUS_ENOTFOUND, "broker.name not set");
    }
    size_t n = strlen(v);
    *got = 0;
    if (off >= n)
        return 0;
    *got = n - off < len ? n - off : len;
    memcpy(dst, v + off, *got);
    return 0;
}

static int flaky_head(void *inst, const char *key, struct stratus_object_info *info,
                      struct stratus_errbuf *eb)
{
    (void)inst, (void)info;
    return stratus_errf(eb, STRATUS_ENOTFOUND, "head %s: none", key);
}

static int flaky_del(void *inst, const char *const *keys, size_t nkeys, struct stratus_errbuf *eb)
{
    (void)inst, (void)keys, (void)nkeys, (void)eb;
    return 0;
}

static int flaky_list(void *inst, const char *prefix, const char *start_after, stratus_list_fn *cb,
                      void *arg, struct stratus_errbuf *eb)
{
    struct flaky *f = inst;
    static const char *const keys[] = {"k1", "k2", "k3"};
    (void)prefix;
    for (int i = 0; i < 3; i++) {
        struct stratus_object_info info = {0};
        if (start_after && strcmp(keys[i], start_after) <= 0)
            continue;
        if (i == 1 && !atomic_exchange(&f->list_failed, 1))
            return stratus_errf(eb, STRATUS_EAGAIN, "list: connection reset (test)");
        strcpy(info.key, keys[i]);
        info.size = 1;
        int r = cb(arg, &info);
        if (r)
            return r;
    }
    return 0;
}

static const struct stratus_storage_ops flaky_ops = {
    .ops_size = sizeof(struct stratus_storage_ops),
    .open = flaky_open,
    .close = flaky_close,
    .put = flaky_put,
    .get = flaky_get,
    .head = flaky_head,
    .del = flaky_del,
    .list = flaky_list,
};

static const struct stratus_plugin_desc flaky_desc = {
    .desc_size = sizeof(struct stratus_plugin_desc),
    .abi_major = STRATUS_ABI_MAJOR,
    .abi_minor = STRATUS_ABI_MINOR,
    .build_sig = STRATUS_BUILD_SIG,
    .kind = STRATUS_PLUGIN_STORAGE,
    .name = "flaky",
    .version = "test",
    .description = "Transient failures on demand",
    .params = flaky_params,
    .conf_size = sizeof(struct flaky_conf),
    .ops = &flaky_ops,
};

STRATUS_PLUGIN_DECLARE(flaky_desc)
