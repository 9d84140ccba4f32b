/* storage_dead.c - test plugin (stratus-storage-dead.so): a storage backend that is down.
 * Every op fails with STRATUS_EAGAIN ("connection refused"), as a store behind a dead port
 * would, so the core's retries, the uploader's failures and the WAL filling up can be seen in
 * metrics, logs and /readyz (tests/integration/test_metrics.py). No config keys.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "stratus/stratus_storage.h"

#include <stddef.h>

struct dead_conf {
    int unused;
};

static int dead_down(struct stratus_errbuf *eb)
{
    return stratus_errf(eb, STRATUS_EAGAIN,
                        "connect 127.0.0.1:1: connection refused (test plugin)");
}

static int
dead_open(const struct stratus_host *host, const void *conf, void **inst, struct stratus_errbuf *eb)
{
    static int token;
    (void)host;
    (void)conf;
    (void)eb;
    *inst = &token;
    return 0;
}

static void dead_close(void *inst)
{
    (void)inst;
}

static int dead_put(void *inst,
                    const char *key,
                    const void *data,
                    size_t len,
                    const struct stratus_put_opts *opts,
                    char *etag_out,
                    struct stratus_errbuf *eb)
{
    (void)inst, (void)key, (void)data, (void)len, (void)opts, (void)etag_out;
    return dead_down(eb);
}

static int dead_get(void *inst,
                    const char *key,
                    uint64_t off,
                    size_t len,
                    void *dst,
                    size_t *got,
                    struct stratus_errbuf *eb)
{
    (void)inst, (void)key, (void)off, (void)len, (void)dst;
    *got = 0;
    return dead_down(eb);
}

static int
dead_head(void *inst, const char *key, struct stratus_object_info *info, struct stratus_errbuf *eb)
{
    (void)inst, (void)key, (void)info;
    return dead_down(eb);
}

static int dead_del(void *inst, const char *const *keys, size_t nkeys, struct stratus_errbuf *eb)
{
    (void)inst, (void)keys, (void)nkeys;
    return dead_down(eb);
}

static int dead_list(void *inst,
                     const char *prefix,
                     const char *start_after,
                     stratus_list_fn *cb,
                     void *arg,
                     struct stratus_errbuf *eb)
{
    (void)inst, (void)prefix, (void)start_after, (void)cb, (void)arg;
    return dead_down(eb);
}

static const struct stratus_param dead_params[] = {STRATUS_PARAM_END};

static const struct stratus_storage_ops dead_ops = {
    .ops_size = sizeof(struct stratus_storage_ops),
    .open = dead_open,
    .close = dead_close,
    .put = dead_put,
    .get = dead_get,
    .head = dead_head,
    .del = dead_del,
    .list = dead_list,
};

static const struct stratus_plugin_desc dead_desc = {
    .desc_size = sizeof(struct stratus_plugin_desc),
    .abi_major = STRATUS_ABI_MAJOR,
    .abi_minor = STRATUS_ABI_MINOR,
    .build_sig = STRATUS_BUILD_SIG,
    .kind = STRATUS_PLUGIN_STORAGE,
    .name = "dead",
    .version = "0.1.0",
    .description = "Test plugin: a storage backend that is down (every call: EAGAIN)",
    .params = dead_params,
    .conf_size = sizeof(struct dead_conf),
    .ops = &dead_ops,
};

STRATUS_PLUGIN_DECLARE(dead_desc)
