/* plugin_int.h - what the files of core/plugin share and nothing else sees: the loaded plugin
 * record, the per-instance host context, and the 1.0 minimum sizes of the ABI structs.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_PLUGIN_PLUGIN_INT_H
#define STRATUS_PLUGIN_PLUGIN_INT_H

#include "metrics/metrics.h"
#include "plugin/plugin.h"

/* The smallest struct a plugin built against ABI 1.0 may hand us: the end of the last 1.0
 * slot. A later minor appends slots after it; a 1.0 plugin's table is then shorter than the
 * host's and the missing slots read as NULL from the zero-filled host copy. */
#define STRATUS_DESC_SIZE_1_0 \
    (offsetof(struct stratus_plugin_desc, ops) + sizeof(((struct stratus_plugin_desc *)0)->ops))
#define STRATUS_STORAGE_OPS_SIZE_1_0                  \
    (offsetof(struct stratus_storage_ops, list) + \
     sizeof(((struct stratus_storage_ops *)0)->list))
#define STRATUS_CACHE_OPS_SIZE_1_0                  \
    (offsetof(struct stratus_cache_ops, stats) + \
     sizeof(((struct stratus_cache_ops *)0)->stats))

/* A loaded, checked shared object. Lives until exit (never dlclose'd once accepted). */
struct stratus_plugin {
    char *path;                      /* as given to stratus_plugin_load */
    char *realpath;                  /* canonical, to recognise a second load */
    void *dl;                        /* dlopen handle */
    struct stratus_plugin_desc desc; /* host-sized, zero-filled copy of the descriptor */
    union {
        struct stratus_storage_ops storage;
        struct stratus_cache_ops cache;
    } ops;                           /* host-sized, zero-filled copy of the ops table */
    uint32_t plugin_ops_size;        /* ops_size the plugin declared */
    struct stratus_plugin *next;     /* registry list, guarded by the loader's lock */
};

/* The host table of one instance, plus what its slots need. */
struct stratus_plugin_hctx {
    struct stratus_host host;        /* handed to open(); host.hctx points back here */
    char instance[64];               /* log tag and metric prefix, e.g. "storage" */
    const struct stratus_conf *conf; /* for config_get; borrowed, outlives the instance */
    struct stratus_metric *alloc_bytes;
};

/* host.c: builds the host table of an instance. */
struct stratus_plugin_hctx *stratus_plugin_hctx_new(const char *instance,
                                                    const struct stratus_conf *conf);
void stratus_plugin_hctx_free(struct stratus_plugin_hctx *h);
/* host.c: allocations with host->alloc's header (size), accounted to no instance; freed ones
 * of 256 KiB or more are kept for reuse (a few). host->free of an instance accepts them once
 * stratus_plugin_hctx_account moved them onto its gauge. */
void *stratus_host_buf_alloc(size_t n);
void stratus_host_buf_free(void *buf);
size_t stratus_host_buf_size(const void *buf);
/* Adds bytes (may be negative) to the instance's stratus_plugin_alloc_bytes gauge: memory the
 * core handed over to it (or took back). */
void stratus_plugin_hctx_account(struct stratus_plugin_hctx *h, int64_t bytes);

/* loader.c: loads the plugin named by [section] plugin = ..., then fills a zeroed
 * desc->conf_size struct from the section (the keys in core_keys belong to the core and are
 * skipped). *plugconf is malloc'd; free with stratus_plugin_conf_free. */
int stratus_plugin_open_section(const struct stratus_conf *conf, const char *section,
                                const char *plugin_dir, int kind, const char *plugin_name,
                                const char *const *core_keys, struct stratus_plugin **p_out,
                                void **plugconf, struct stratus_errbuf *eb);
void stratus_plugin_conf_free(const struct stratus_plugin *p, void *plugconf);

/* loader.c: the names of the plugin's config keys as a NULL-terminated malloc'd array (the
 * strings are borrowed from the descriptor), to ignore them when parsing the core's keys. */
const char **stratus_plugin_param_names(const struct stratus_plugin *p);

const char *stratus_plugin_kind_name(int kind);

#endif
