/* cache.c - opening the block cache of a config section, and the wrappers that are the only
 * callers of a cache plugin's ops.
 *
 * `[cache] plugin = none`, or no [cache] section at all, gives a cache that always misses (the
 * read path then needs no special case). A cache is an optimisation: its wrappers never fail
 * the caller; lookup returns 0 on a hit and STRATUS_ENOTFOUND otherwise. Core key of the
 * section: plugin.
 * Readers fill block buffers from stratus_cache_buf_alloc and hand them over with
 * stratus_cache_insert_take: a plugin with the ABI 1.1 insert_take keeps the buffer itself,
 * one without gets insert()'s copy.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "plugin/plugin_int.h"
#include "util/alloc.h"
#include "util/log.h"

struct stratus_cache {
    struct stratus_plugin *plugin; /* NULL for the always-miss cache */
    const struct stratus_cache_ops *ops;
    void *inst;
    void *plugconf;
    struct stratus_plugin_hctx *hctx;
    _Atomic uint64_t misses; /* the always-miss cache's only counter */
};

static const char *const cache_core_keys[] = {"plugin", NULL};

/* Loads the plugin of [section] and parses its keys into c; c->plugin stays NULL for the
 * always-miss cache. Does not call open(). */
static int cache_prepare(const struct stratus_conf *conf, const char *section,
                         const char *plugin_dir, struct stratus_cache *c,
                         struct stratus_errbuf *eb)
{
    const char *pname;
    int rc;

    if (!stratus_conf_has_section(conf, section))
        return 0;
    pname = stratus_conf_get(conf, section, "plugin");
    if (!pname)
        return stratus_errf(eb, STRATUS_EINVAL,
                            "%s: [%s] missing required key 'plugin' (plugin = none for no cache)",
                            stratus_conf_path(conf), section);
    if (strcmp(pname, "none") == 0)
        return 0;
    rc = stratus_plugin_open_section(conf, section, plugin_dir, STRATUS_PLUGIN_CACHE, pname,
                                     cache_core_keys, &c->plugin, &c->plugconf, eb);
    if (rc < 0)
        return rc;
    c->ops = &c->plugin->ops.cache;
    return 0;
}

int stratus_cache_check(const struct stratus_conf *conf, const char *section,
                        const char *plugin_dir, struct stratus_errbuf *eb)
{
    struct stratus_cache c;
    memset(&c, 0, sizeof c);
    int rc = cache_prepare(conf, section, plugin_dir, &c, eb);
    if (rc == 0 && c.plugin)
        stratus_plugin_conf_free(c.plugin, c.plugconf);
    return rc;
}

int stratus_cache_open(const struct stratus_conf *conf, const char *section,
                       const char *plugin_dir, struct stratus_cache **out,
                       struct stratus_errbuf *eb)
{
    struct stratus_cache *c = xcalloc(1, sizeof *c);
    struct stratus_errbuf oeb = {{0}};
    int rc;

    *out = NULL;
    rc = cache_prepare(conf, section, plugin_dir, c, eb);
    if (rc < 0)
        goto out_free_c;
    if (!c->plugin) {
        LOG_INFO("cache", "[%s] no cache plugin: every lookup misses", section);
        *out = c;
        return 0;
    }
    c->hctx = stratus_plugin_hctx_new(c->plugin->desc.name, conf);
    rc = c->ops->open(&c->hctx->host, c->plugconf, &c->inst, &oeb);
    if (rc < 0 || !c->inst) {
        if (rc >= 0)
            rc = STRATUS_EINVAL;
        rc = stratus_errf(eb, rc, "%s: [%s] open failed (%s): %s", c->plugin->path, section,
                          stratus_err_name(rc), oeb.msg[0] ? oeb.msg : stratus_strerror(rc));
        goto out_free_hctx;
    }
    LOG_INFO("cache", "opened [%s] with plugin '%s'", section, c->plugin->desc.name);
    *out = c;
    return 0;

out_free_hctx:
    stratus_plugin_hctx_free(c->hctx);
    stratus_plugin_conf_free(c->plugin, c->plugconf);
out_free_c:
    free(c);
    return rc;
}

void stratus_cache_close(struct stratus_cache *c)
{
    if (!c)
        return;
    if (c->plugin) {
        c->ops->close(c->inst);
        stratus_plugin_hctx_free(c->hctx);
        stratus_plugin_conf_free(c->plugin, c->plugconf);
    }
    free(c);
}

int stratus_cache_lookup(struct stratus_cache *c, const char *key, void *dst, size_t cap,
                         size_t *len)
{
    *len = 0;
    if (!c->plugin) {
        atomic_fetch_add(&c->misses, 1);
        return STRATUS_ENOTFOUND;
    }
    int rc = c->ops->lookup(c->inst, key, dst, cap, len);
    return rc == 0 ? 0 : STRATUS_ENOTFOUND;
}

void stratus_cache_insert(struct stratus_cache *c, const char *key, const void *data, size_t len)
{
    if (c->plugin)
        (void)c->ops->insert(c->inst, key, data, len);
}

void *stratus_cache_buf_alloc(size_t n)
{
    return stratus_host_buf_alloc(n);
}

void stratus_cache_buf_free(void *buf)
{
    stratus_host_buf_free(buf);
}

int stratus_cache_takes(const struct stratus_cache *c)
{
    return c->plugin &&
           c->plugin->plugin_ops_size >=
               offsetof(struct stratus_cache_ops, insert_take) + sizeof c->ops->insert_take &&
           c->ops->insert_take != NULL;
}

void stratus_cache_insert_take(struct stratus_cache *c, const char *key, void *buf, size_t len)
{
    if (!buf)
        return;
    if (!stratus_cache_takes(c)) {
        stratus_cache_insert(c, key, buf, len);
        stratus_host_buf_free(buf);
        return;
    }
    /* from here the instance holds it: its host->free gives it back */
    stratus_plugin_hctx_account(c->hctx, (int64_t)stratus_host_buf_size(buf));
    (void)c->ops->insert_take(c->inst, key, buf, len);
}

void stratus_cache_invalidate(struct stratus_cache *c, const char *prefix)
{
    if (c->plugin)
        c->ops->invalidate(c->inst, prefix ? prefix : "");
}

void stratus_cache_get_stats(struct stratus_cache *c, struct stratus_cache_stats *out)
{
    memset(out, 0, sizeof *out);
    out->size = sizeof *out;
    if (!c->plugin) {
        out->misses = atomic_load(&c->misses);
        return;
    }
    c->ops->stats(c->inst, out);
}
