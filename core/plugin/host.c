/* host.c - the host table (struct stratus_host) each plugin instance receives: logging tagged
 * [plugin=<instance>], accounted allocation, the wall clock, broker config lookup, metrics.
 *
 * One struct stratus_plugin_hctx per instance, owned by the storage/cache handle that opened
 * it and freed after the plugin's close(). Every slot is thread-safe.
 * Allocation accounting: each block carries a header holding its size; the live total is the
 * gauge stratus_plugin_alloc_bytes{plugin="<instance>"}. The core allocates buffers it hands
 * over to a plugin (a cache's insert_take) with the same header (stratus_host_buf_alloc), and
 * moves them onto the instance's gauge when it does.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
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

/* Freed allocations of HOST_SPARE_MIN bytes or more, kept for the next one of the same size:
 * a cache plugin evicting a 1 MiB block as the core allocates the next (stratus_host_buf_alloc)
 * then costs no fresh mapping and no page fault per 4 KiB of it. */
#define HOST_SPARES 8
#define HOST_SPARE_MIN (256u * 1024)
#define HOST_BIG_ALIGN 4096u
static pthread_mutex_t spare_mu = PTHREAD_MUTEX_INITIALIZER;
static char *spares[HOST_SPARES]; /* block starts (HOST_BIG_ALIGN before the pointer) */
static int nspares;

/* Where an allocation's block starts: HOST_ALLOC_HDR bytes before it, or a page before it for
 * sizes of HOST_SPARE_MIN and more, which are page-aligned so that a storage plugin can read
 * into them with O_DIRECT (storage-local does for the cold reads' 1 MiB blocks). The size is
 * always stored in the HOST_ALLOC_HDR bytes just before the pointer. */
static size_t host_hdr(size_t n)
{
    return n >= HOST_SPARE_MIN ? HOST_BIG_ALIGN : HOST_ALLOC_HDR;
}

void *stratus_host_buf_alloc(size_t n)
{
    char *p = NULL;
    if (n > SIZE_MAX - HOST_BIG_ALIGN)
        return NULL;
    if (n >= HOST_SPARE_MIN) {
        pthread_mutex_lock(&spare_mu);
        for (int i = 0; i < nspares; i++) {
            size_t have;
            memcpy(&have, spares[i] + HOST_BIG_ALIGN - HOST_ALLOC_HDR, sizeof have);
            if (have == n) {
                p = spares[i];
                spares[i] = spares[--nspares];
                break;
            }
        }
        pthread_mutex_unlock(&spare_mu);
        if (!p && posix_memalign((void **)&p, HOST_BIG_ALIGN, n + HOST_BIG_ALIGN) != 0)
            p = NULL;
    } else {
        p = malloc(n + HOST_ALLOC_HDR);
    }
    if (!p)
        return NULL;
    p += host_hdr(n);
    memcpy(p - HOST_ALLOC_HDR, &n, sizeof n);
    return p;
}

size_t stratus_host_buf_size(const void *ptr)
{
    size_t n;
    memcpy(&n, (const char *)ptr - HOST_ALLOC_HDR, sizeof n);
    return n;
}

void stratus_host_buf_free(void *ptr)
{
    char *p;
    size_t n;
    if (!ptr)
        return;
    memcpy(&n, (char *)ptr - HOST_ALLOC_HDR, sizeof n);
    p = (char *)ptr - host_hdr(n);
    if (n >= HOST_SPARE_MIN) {
        pthread_mutex_lock(&spare_mu);
        if (nspares < HOST_SPARES) {
            spares[nspares++] = p;
            p = NULL;
        }
        pthread_mutex_unlock(&spare_mu);
    }
    free(p);
}

void stratus_plugin_hctx_account(struct stratus_plugin_hctx *h, int64_t bytes)
{
    stratus_metric_gauge_add(h->alloc_bytes, bytes);
}

static void *host_alloc(void *hctx, size_t n)
{
    struct stratus_plugin_hctx *h = hctx;
    void *p = stratus_host_buf_alloc(n);
    if (p)
        stratus_metric_gauge_add(h->alloc_bytes, (int64_t)n);
    return p;
}

static void host_free(void *hctx, void *ptr)
{
    struct stratus_plugin_hctx *h = hctx;
    if (!ptr)
        return;
    stratus_metric_gauge_add(h->alloc_bytes, -(int64_t)stratus_host_buf_size(ptr));
    stratus_host_buf_free(ptr);
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
