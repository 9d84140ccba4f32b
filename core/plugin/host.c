/* host.c - the host table (struct stratus_host) each plugin instance receives: logging tagged
 * [plugin=<instance>], accounted allocation, the wall clock, broker config lookup, metrics.
 *
 * One struct stratus_plugin_hctx per instance, owned by the storage/cache handle that opened
 * it and freed after the plugin's close(). Every slot is thread-safe.
 * Allocation accounting: each block carries a header holding its size; the live total is the
 * gauge stratus_plugin_alloc_bytes{plugin="<instance>"}.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "plugin/plugin_int.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

#define HOST_ALLOC_HDR (alignof(max_align_t) > sizeof(size_t) ? alignof(max_align_t) : sizeof(size_t))

static void host_log(void *hctx, int level, const char *fmt, ...) STRATUS_PRINTF(3, 4);
static void host_log(void *hctx, int level, const char *fmt, ...)
{
    struct stratus_plugin_hctx *h = hctx;
    char msg[1024];
    va_list ap;

    if (level > stratus_log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    stratus_log_write(level, "plugin", "[plugin=%s] %s", h->instance, msg);
}

static void *host_alloc(void *hctx, size_t n)
{
    struct stratus_plugin_hctx *h = hctx;
    if (n > SIZE_MAX - HOST_ALLOC_HDR)
        return NULL;
    char *p = malloc(n + HOST_ALLOC_HDR);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    stratus_metric_gauge_add(h->alloc_bytes, (int64_t)n);
    return p + HOST_ALLOC_HDR;
}

static void host_free(void *hctx, void *ptr)
{
    struct stratus_plugin_hctx *h = hctx;
    size_t n;
    if (!ptr)
        return;
    char *p = (char *)ptr - HOST_ALLOC_HDR;
    memcpy(&n, p, sizeof n);
    stratus_metric_gauge_add(h->alloc_bytes, -(int64_t)n);
    free(p);
}

static int64_t host_now_ms(void *hctx)
{
    (void)hctx;
    return stratus_wall_ms();
}

static const char *host_config_get(void *hctx, const char *section_dot_key)
{
    struct stratus_plugin_hctx *h = hctx;
    char buf[256];
    const char *dot = strrchr(section_dot_key, '.');
    size_t sl;

    if (!dot || !h->conf)
        return NULL;
    sl = (size_t)(dot - section_dot_key);
    if (sl >= sizeof buf)
        return NULL;
    memcpy(buf, section_dot_key, sl);
    buf[sl] = '\0';
    return stratus_conf_get(h->conf, buf, dot + 1);
}

/* Metric names: stratus_<instance>_<name>, anything outside [a-zA-Z0-9_] becomes '_'. */
static struct stratus_metric *host_metric(void *hctx, int type, const char *name,
                                          const char *help)
{
    struct stratus_plugin_hctx *h = hctx;
    char full[200];
    int n = snprintf(full, sizeof full, "stratus_%s_%s", h->instance, name ? name : "");
    if (!name || !name[0] || n < 0 || (size_t)n >= sizeof full)
        return NULL;
    for (char *c = full; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '_'))
            *c = '_';
    return stratus_metrics_register(type, full, help);
}

static void host_metric_add(struct stratus_metric *m, int64_t v)
{
    stratus_metric_add(m, v);
}

struct stratus_plugin_hctx *stratus_plugin_hctx_new(const char *instance,
                                                    const struct stratus_conf *conf)
{
    struct stratus_plugin_hctx *h = xcalloc(1, sizeof *h);
    char gname[160];

    snprintf(h->instance, sizeof h->instance, "%s", instance);
    h->conf = conf;
    snprintf(gname, sizeof gname, "stratus_plugin_alloc_bytes{plugin=\"%s\"}", h->instance);
    h->alloc_bytes = stratus_metrics_gauge(gname, "Bytes a plugin holds from host->alloc");
    h->host.host_size = sizeof h->host;
    h->host.abi_minor = STRATUS_ABI_MINOR;
    h->host.hctx = h;
    h->host.log = host_log;
    h->host.alloc = host_alloc;
    h->host.free = host_free;
    h->host.now_ms = host_now_ms;
    h->host.config_get = host_config_get;
    h->host.metric = host_metric;
    h->host.metric_add = host_metric_add;
    return h;
}

void stratus_plugin_hctx_free(struct stratus_plugin_hctx *h)
{
    free(h);
}
