/* abi_common.h - a minimal, valid storage plugin that each ABI test plugin (tests/plugins/abi)
 * includes and then breaks in exactly one way, chosen by macros set before the include:
 *   ABI_NAME        plugin name (default "abitest")
 *   ABI_MAJOR/MINOR the ABI version it claims
 *   ABI_SIG         the build signature
 *   ABI_OPS_SIZE    the ops_size it declares
 *   ABI_PUT         the put slot (NULL to leave it out)
 *   ABI_OPEN_FAILS  open() fails with STRATUS_EAUTH and a message
 *   ABI_NO_ENTRY    do not export stratus_plugin_entry at all
 *   ABI_BAD_PARAM   a config key whose field lies outside conf_size
 * The storage itself is a single in-memory object slot: enough to be called.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "stratus/stratus_storage.h"

#ifndef ABI_NAME
#define ABI_NAME "abitest"
#endif
#ifndef ABI_MAJOR
#define ABI_MAJOR STRATUS_ABI_MAJOR
#endif
#ifndef ABI_MINOR
#define ABI_MINOR STRATUS_ABI_MINOR
#endif
#ifndef ABI_SIG
#define ABI_SIG STRATUS_BUILD_SIG
#endif
#ifndef ABI_OPS_SIZE
#define ABI_OPS_SIZE sizeof(struct stratus_storage_ops)
#endif
#ifndef ABI_PUT
#define ABI_PUT abi_put
#endif

struct abi_conf {
    char *label;
    int64_t level;
};

static const struct stratus_param abi_params[] = {
    STRATUS_PARAM_STR("label", "none", 0, struct abi_conf, label, "A label"),
    STRATUS_PARAM_INT("level", "1", 0, struct abi_conf, level, 0, 9, "A level"),
#ifdef ABI_BAD_PARAM
    {"outside", STRATUS_PARAM_T_INT, NULL, 0, sizeof(struct abi_conf), 0, 0, "Past the end"},
#endif
    STRATUS_PARAM_END,
};

static int abi_open(const struct stratus_host *host, const void *conf, void **inst,
                    struct stratus_errbuf *eb)
{
    (void)host;
    (void)conf;
    *inst = NULL;
#ifdef ABI_OPEN_FAILS
    return stratus_errf(eb, STRATUS_EAUTH, "credentials refused by the test backend");
#else
    (void)eb;
    *inst = calloc(1, 1);
    return *inst ? 0 : STRATUS_ENOMEM;
#endif
}

static void abi_close(void *inst)
{
    free(inst);
}

__attribute__((unused)) static int abi_put(void *inst, const char *key, const void *data,
                                           size_t len, const struct stratus_put_opts *opts,
                                           char *etag_out, struct stratus_errbuf *eb)
{
    (void)inst, (void)key, (void)data, (void)len, (void)opts, (void)etag_out, (void)eb;
    return 0;
}

static int abi_get(void *inst, const char *key, uint64_t off, size_t len, void *dst,
                   size_t *got, struct stratus_errbuf *eb)
{
    (void)inst, (void)key, (void)off, (void)len, (void)dst;
    *got = 0;
    return stratus_errf(eb, STRATUS_ENOTFOUND, "no objects here");
}

static int abi_head(void *inst, const char *key, struct stratus_object_info *info,
                    struct stratus_errbuf *eb)
{
    (void)inst, (void)key, (void)info;
    return stratus_errf(eb, STRATUS_ENOTFOUND, "no objects here");
}

static int abi_del(void *inst, const char *const *keys, size_t nkeys, struct stratus_errbuf *eb)
{
    (void)inst, (void)keys, (void)nkeys, (void)eb;
    return 0;
}

static int abi_list(void *inst, const char *prefix, const char *start_after, stratus_list_fn *cb,
                    void *arg, struct stratus_errbuf *eb)
{
    (void)inst, (void)prefix, (void)start_after, (void)cb, (void)arg, (void)eb;
    return 0;
}

static const struct stratus_storage_ops abi_ops = {
    .ops_size = ABI_OPS_SIZE,
    .open = abi_open,
    .close = abi_close,
    .put = ABI_PUT,
    .get = abi_get,
    .head = abi_head,
    .del = abi_del,
    .list = abi_list,
};

static const struct stratus_plugin_desc abi_desc = {
    .desc_size = sizeof(struct stratus_plugin_desc),
    .abi_major = ABI_MAJOR,
    .abi_minor = ABI_MINOR,
    .build_sig = ABI_SIG,
    .kind = STRATUS_PLUGIN_STORAGE,
    .name = ABI_NAME,
    .version = "test",
    .description = "ABI test plugin",
    .params = abi_params,
    .conf_size = sizeof(struct abi_conf),
    .ops = &abi_ops,
};

#ifndef ABI_NO_ENTRY
STRATUS_PLUGIN_DECLARE(abi_desc)
#else
/* Exported, but under the wrong name: the loader must not find the entry. */
STRATUS_PLUGIN_EXPORT const struct stratus_plugin_desc *stratus_plugin_entry_v0(void);
const struct stratus_plugin_desc *stratus_plugin_entry_v0(void)
{
    return &abi_desc;
}
#endif
