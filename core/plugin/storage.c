/* storage.c - opening the storage plugin of a config section, and the call wrappers that are
 * the only callers of its ops.
 *
 * Owns one struct stratus_storage per open instance: the plugin's instance, its parsed config
 * struct and host table, the retry policy, and per-op counters. The wrappers retry
 * STRATUS_EAGAIN with exponential backoff and full jitter (delay uniform in
 * [0, min(max_delay, base_delay * 2^attempt)]), up to retry_max_attempts attempts in all; any
 * other error returns at once. They count calls, failures, retries, bytes and microseconds per
 * op, both in the handle (stratus_storage_stats) and in the metrics registry as
 * stratus_storage_<what>_total{section="...",op="..."} (calls, failures, retries, bytes) and
 * the histogram stratus_storage_call_duration_seconds{section="...",op="..."} (retries and
 * backoff included).
 * Core keys of the section: plugin, retry_max_attempts, retry_base_delay, retry_max_delay.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "plugin/plugin_int.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

struct storage_core_conf {
    char *plugin;
    int64_t retry_max_attempts;
    int64_t retry_base_delay;
    int64_t retry_max_delay;
};

static const struct stratus_param storage_core_params[] = {
    STRATUS_PARAM_STR("plugin", NULL, STRATUS_P_REQUIRED, struct storage_core_conf, plugin,
                      "Storage plugin: a name (local, s3, ...) found in plugin_dir, or a path"),
    STRATUS_PARAM_INT("retry_max_attempts", "8", 0, struct storage_core_conf, retry_max_attempts,
                      1, 100, "Attempts per call when the plugin reports a transient failure"),
    STRATUS_PARAM_MS("retry_base_delay", "50ms", 0, struct storage_core_conf, retry_base_delay,
                     1, 60000, "First backoff ceiling; doubles per retry (full jitter)"),
    STRATUS_PARAM_MS("retry_max_delay", "5s", 0, struct storage_core_conf, retry_max_delay, 1,
                     3600000, "Largest backoff between two attempts"),
    STRATUS_PARAM_END,
};

const struct stratus_param *stratus_storage_core_params(void)
{
    return storage_core_params;
}

static const char *const storage_core_keys[] = {"plugin", "retry_max_attempts",
                                                "retry_base_delay", "retry_max_delay", NULL};

static const char *const storage_op_names[STRATUS_SOP__COUNT] = {"put", "get", "head", "del",
                                                                  "list"};

struct storage_counters {
    _Atomic uint64_t calls, failures, retries, bytes, usec;
    struct stratus_metric *m_calls, *m_failures, *m_retries, *m_bytes, *m_usec;
};

struct stratus_storage {
    struct stratus_plugin *plugin;
    const struct stratus_storage_ops *ops; /* &plugin->ops.storage */
    void *inst;
    void *plugconf;
    struct stratus_plugin_hctx *hctx;
    char *section;
    struct stratus_retry_policy retry;
    struct storage_counters ctr[STRATUS_SOP__COUNT];
};

static struct stratus_metric *storage_metric(const char *section, const char *what,
                                             const char *op, const char *help)
{
    char name[200];
    snprintf(name, sizeof name, "stratus_storage_%s_total{section=\"%s\",op=\"%s\"}", what,
             section, op);
    return stratus_metrics_counter(name, help);
}

static struct stratus_metric *storage_histogram(const char *section, const char *op)
{
    char name[200];
    snprintf(name, sizeof name,
             "stratus_storage_call_duration_seconds{section=\"%s\",op=\"%s\"}", section, op);
    return stratus_metrics_histogram(name, "Time spent in storage calls, retries included");
}

/* Loads the plugin of [section] and parses the section (plugin keys and core keys) into st.
 * Does not call open(). On failure st holds nothing. */
static int storage_prepare(const struct stratus_conf *conf, const char *section,
                           const char *plugin_dir, struct stratus_storage *st,
                           struct stratus_errbuf *eb)
{
    struct storage_core_conf cc = {0};
    const char **pnames;
    int rc;

    /* The plugin key first: it says which config map the rest of the section follows. */
    const char *pname = stratus_conf_get(conf, section, "plugin");
    if (!pname)
        return stratus_errf(eb, STRATUS_EINVAL, "%s: [%s] missing required key 'plugin'",
                            stratus_conf_path(conf), section);
    rc = stratus_plugin_open_section(conf, section, plugin_dir, STRATUS_PLUGIN_STORAGE, pname,
                                     storage_core_keys, &st->plugin, &st->plugconf, eb);
    if (rc < 0)
        return rc;
    pnames = stratus_plugin_param_names(st->plugin);
    rc = stratus_conf_apply(conf, section, storage_core_params, pnames, &cc, eb);
    free(pnames);
    if (rc < 0) {
        stratus_plugin_conf_free(st->plugin, st->plugconf);
        st->plugconf = NULL;
        return rc;
    }
    st->retry.max_attempts = (int)cc.retry_max_attempts;
    st->retry.base_delay_ms = cc.retry_base_delay;
    st->retry.max_delay_ms = cc.retry_max_delay;
    stratus_conf_free_struct(storage_core_params, &cc);
    st->ops = &st->plugin->ops.storage;
    return 0;
}

int stratus_storage_check(const struct stratus_conf *conf, const char *section,
                          const char *plugin_dir, struct stratus_errbuf *eb)
{
    struct stratus_storage st;
    memset(&st, 0, sizeof st);
    int rc = storage_prepare(conf, section, plugin_dir, &st, eb);
    if (rc == 0)
        stratus_plugin_conf_free(st.plugin, st.plugconf);
    return rc;
}

int stratus_storage_open(const struct stratus_conf *conf, const char *section,
                         const char *plugin_dir, struct stratus_storage **out,
                         struct stratus_errbuf *eb)
{
    struct stratus_storage *st;
    struct stratus_errbuf oeb = {{0}};
    int rc;

    *out = NULL;
    st = xcalloc(1, sizeof *st);
    st->section = xstrdup(section);
    rc = storage_prepare(conf, section, plugin_dir, st, eb);
    if (rc < 0)
        goto out_free_st;
    for (int i = 0; i < STRATUS_SOP__COUNT; i++) {
        struct storage_counters *c = &st->ctr[i];
        const char *op = storage_op_names[i];
        c->m_calls = storage_metric(section, "calls", op, "Storage calls made by the core");
        c->m_failures = storage_metric(section, "failures", op, "Storage calls that failed");
        c->m_retries = storage_metric(section, "retries", op, "Attempts retried after EAGAIN");
        c->m_bytes = storage_metric(section, "bytes", op, "Bytes written by put, read by get");
        c->m_usec = storage_histogram(section, op);
    }
    st->hctx = stratus_plugin_hctx_new(st->plugin->desc.name, conf);
    rc = st->ops->open(&st->hctx->host, st->plugconf, &st->inst, &oeb);
    if (rc < 0 || !st->inst) {
        if (rc >= 0)
            rc = STRATUS_EINVAL;
        rc = stratus_errf(eb, rc, "%s: [%s] open failed (%s): %s", st->plugin->path, section,
                          stratus_err_name(rc), oeb.msg[0] ? oeb.msg : stratus_strerror(rc));
        goto out_free_hctx;
    }
    LOG_INFO("storage", "opened [%s] with plugin '%s' retry_max_attempts=%d", section,
             st->plugin->desc.name, st->retry.max_attempts);
    *out = st;
    return 0;

out_free_hctx:
    stratus_plugin_hctx_free(st->hctx);
    stratus_plugin_conf_free(st->plugin, st->plugconf);
out_free_st:
    free(st->section);
    free(st);
    return rc;
}

void stratus_storage_close(struct stratus_storage *st)
{
    if (!st)
        return;
    st->ops->close(st->inst);
    stratus_plugin_hctx_free(st->hctx);
    stratus_plugin_conf_free(st->plugin, st->plugconf);
    free(st->section);
    free(st);
}

const char *stratus_storage_name(const struct stratus_storage *st)
{
    return st->plugin->desc.name;
}

void stratus_storage_stats(const struct stratus_storage *st,
                           struct stratus_storage_opstats out[STRATUS_SOP__COUNT])
{
    for (int i = 0; i < STRATUS_SOP__COUNT; i++) {
        struct storage_counters *c = (struct storage_counters *)&st->ctr[i];
        out[i].calls = atomic_load(&c->calls);
        out[i].failures = atomic_load(&c->failures);
        out[i].retries = atomic_load(&c->retries);
        out[i].bytes = atomic_load(&c->bytes);
        out[i].usec = atomic_load(&c->usec);
    }
}

/* A per-thread xorshift64* generator for jitter: no locks, no shared state. */
static uint64_t storage_rand(void)
{
    static _Thread_local uint64_t s;
    if (!s)
        s = (uint64_t)stratus_mono_us() ^ (uint64_t)(uintptr_t)&s ^ 0x9E3779B97F4A7C15ULL;
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
}

/* Sleeps before retry number `attempt` (1-based). */
static void storage_backoff(const struct stratus_retry_policy *rp, int attempt)
{
    int64_t cap = rp->base_delay_ms;
    for (int i = 1; i < attempt && cap < rp->max_delay_ms; i++)
        cap *= 2;
    if (cap > rp->max_delay_ms)
        cap = rp->max_delay_ms;
    int64_t us = (int64_t)(storage_rand() % (uint64_t)(cap * 1000 + 1));
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void storage_account(struct storage_counters *c, int rc, int64_t usec)
{
    atomic_fetch_add(&c->calls, 1);
    stratus_metric_add(c->m_calls, 1);
    atomic_fetch_add(&c->usec, (uint64_t)usec);
    stratus_metric_observe_us(c->m_usec, usec);
    /* "Not found" and "precondition failed" are answers, not failures of the store. */
    if (rc < 0 && rc != STRATUS_ENOTFOUND && rc != STRATUS_EEXIST) {
        atomic_fetch_add(&c->failures, 1);
        stratus_metric_add(c->m_failures, 1);
    }
}

static void storage_add_bytes(struct stratus_storage *st, int op, uint64_t n)
{
    atomic_fetch_add(&st->ctr[op].bytes, n);
    stratus_metric_add(st->ctr[op].m_bytes, (int64_t)n);
}

/* One attempt of an op: the wrappers below give storage_run a thunk and its arguments. */
typedef int storage_thunk(struct stratus_storage *st, void *args, struct stratus_errbuf *eb);

/* Runs thunk with the retry policy and accounts the call. */
static int storage_run(struct stratus_storage *st, int op, storage_thunk *thunk, void *args,
                       struct stratus_errbuf *eb)
{
    struct storage_counters *c = &st->ctr[op];
    int64_t t0 = stratus_mono_us();
    int rc;

    for (int attempt = 1;; attempt++) {
        if (eb)
            eb->msg[0] = '\0';
        rc = thunk(st, args, eb);
        if (rc != STRATUS_EAGAIN || attempt >= st->retry.max_attempts)
            break;
        atomic_fetch_add(&c->retries, 1);
        stratus_metric_add(c->m_retries, 1);
        LOG_DEBUG("storage", "[%s] %s: transient failure, retry %d: %s", st->section,
                  storage_op_names[op], attempt, eb ? eb->msg : "");
        storage_backoff(&st->retry, attempt);
    }
    storage_account(c, rc, stratus_mono_us() - t0);
    if (rc == STRATUS_EAGAIN && st->retry.max_attempts > 1)
        LOG_WARN("storage", "[%s] %s: giving up after %d attempts: %s", st->section,
                 storage_op_names[op], st->retry.max_attempts, eb ? eb->msg : "");
    if (rc < 0 && eb && !eb->msg[0])
        stratus_errf(eb, rc, "%s", stratus_strerror(rc));
    return rc;
}

struct storage_put_args {
    const char *key;
    const void *data;
    size_t len;
    const struct stratus_put_opts *opts;
    char *etag_out;
};

static int storage_put_thunk(struct stratus_storage *st, void *args, struct stratus_errbuf *eb)
{
    struct storage_put_args *a = args;
    return st->ops->put(st->inst, a->key, a->data, a->len, a->opts, a->etag_out, eb);
}

/* opts, or (a caller that zeroed the struct and set a field) a copy in *tmp with the size set,
 * so that the plugin reads the fields. */
static const struct stratus_put_opts *put_opts_sized(const struct stratus_put_opts *opts,
                                                     struct stratus_put_opts *tmp)
{
    if (!opts || opts->size != 0)
        return opts;
    *tmp = *opts;
    tmp->size = sizeof *tmp;
    return tmp;
}

int stratus_storage_put(struct stratus_storage *st, const char *key, const void *data, size_t len,
                        const struct stratus_put_opts *opts, char *etag_out,
                        struct stratus_errbuf *eb)
{
    struct stratus_put_opts sized;
    opts = put_opts_sized(opts, &sized);
    struct storage_put_args a = {key, data, len, opts, etag_out};
    int rc = storage_run(st, STRATUS_SOP_PUT, storage_put_thunk, &a, eb);
    if (rc == 0)
        storage_add_bytes(st, STRATUS_SOP_PUT, len);
    return rc;
}

int stratus_storage_has_putv(const struct stratus_storage *st)
{
    return st->plugin &&
           st->plugin->plugin_ops_size >=
               offsetof(struct stratus_storage_ops, putv) + sizeof st->ops->putv &&
           st->ops->putv != NULL;
}

struct storage_putv_args {
    const char *key;
    const struct stratus_iov *iov;
    size_t n;
    const struct stratus_put_opts *opts;
    char *etag_out;
};

static int storage_putv_thunk(struct stratus_storage *st, void *args, struct stratus_errbuf *eb)
{
    struct storage_putv_args *a = args;
    return st->ops->putv(st->inst, a->key, a->iov, a->n, a->opts, a->etag_out, eb);
}

int stratus_storage_putv(struct stratus_storage *st, const char *key,
                         const struct stratus_iov *iov, size_t n,
                         const struct stratus_put_opts *opts, char *etag_out,
                         struct stratus_errbuf *eb)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += iov[i].len;
    if (!stratus_storage_has_putv(st)) { /* join them for put */
        unsigned char *buf = malloc(len ? len : 1), *w = buf;
        if (!buf)
            return stratus_errf(eb, STRATUS_ENOMEM, "put %s: out of memory joining %zu bytes",
                                key, len);
        for (size_t i = 0; i < n; i++) {
            if (iov[i].len)
                memcpy(w, iov[i].base, iov[i].len);
            w += iov[i].len;
        }
        int rc = stratus_storage_put(st, key, buf, len, opts, etag_out, eb);
        free(buf);
        return rc;
    }
    struct stratus_put_opts sized;
    opts = put_opts_sized(opts, &sized);
    struct storage_putv_args a = {key, iov, n, opts, etag_out};
    int rc = storage_run(st, STRATUS_SOP_PUT, storage_putv_thunk, &a, eb);
    if (rc == 0)
        storage_add_bytes(st, STRATUS_SOP_PUT, len);
    return rc;
}

struct storage_get_args {
    const char *key;
    uint64_t off;
    size_t len;
    void *dst;
    size_t *got;
};

static int storage_get_thunk(struct stratus_storage *st, void *args, struct stratus_errbuf *eb)
{
    struct storage_get_args *a = args;
    *a->got = 0;
    return st->ops->get(st->inst, a->key, a->off, a->len, a->dst, a->got, eb);
}

int stratus_storage_get(struct stratus_storage *st, const char *key, uint64_t off, size_t len,
                        void *dst, size_t *got, struct stratus_errbuf *eb)
{
    struct storage_get_args a = {key, off, len, dst, got};
    int rc = storage_run(st, STRATUS_SOP_GET, storage_get_thunk, &a, eb);
    if (rc == 0 && *got > len) {
        /* Post-condition: a plugin that claims more than it was given room for is broken. */
        LOG_ERROR("storage", "[%s] plugin '%s' get returned %zu bytes for a %zu-byte buffer",
                  st->section, st->plugin->desc.name, *got, len);
        *got = 0;
        return stratus_errf(eb, STRATUS_EIO, "get %s: plugin broke the get contract", key);
    }
    if (rc == 0)
        storage_add_bytes(st, STRATUS_SOP_GET, *got);
    return rc;
}

struct storage_head_args {
    const char *key;
    struct stratus_object_info *info;
};

static int storage_head_thunk(struct stratus_storage *st, void *args, struct stratus_errbuf *eb)
{
    struct storage_head_args *a = args;
    memset(a->info, 0, sizeof *a->info);
    return st->ops->head(st->inst, a->key, a->info, eb);
}

int stratus_storage_head(struct stratus_storage *st, const char *key,
                         struct stratus_object_info *info, struct stratus_errbuf *eb)
{
    struct storage_head_args a = {key, info};
    return storage_run(st, STRATUS_SOP_HEAD, storage_head_thunk, &a, eb);
}

struct storage_del_args {
    const char *const *keys;
    size_t nkeys;
};

static int storage_del_thunk(struct stratus_storage *st, void *args, struct stratus_errbuf *eb)
{
    struct storage_del_args *a = args;
    return st->ops->del(st->inst, a->keys, a->nkeys, eb);
}

int stratus_storage_del(struct stratus_storage *st, const char *const *keys, size_t nkeys,
                        struct stratus_errbuf *eb)
{
    if (nkeys == 0)
        return 0;
    struct storage_del_args a = {keys, nkeys};
    return storage_run(st, STRATUS_SOP_DEL, storage_del_thunk, &a, eb);
}

/* list() delivers objects through a callback. A retry after a partial listing must not give
 * the caller the same objects twice, so it resumes after the last key delivered; and a
 * non-zero value from the caller's callback ends the call at once, never retried. */
struct storage_list_args {
    const char *prefix;
    const char *start_after;
    stratus_list_fn *cb;
    void *arg;
    char last[1025]; /* last key delivered, "" before the first */
    int stopped;     /* the caller's callback returned stopval */
    int stopval;
};

static int storage_list_cb(void *arg, const struct stratus_object_info *info)
{
    struct storage_list_args *a = arg;
    int r = a->cb(a->arg, info);
    snprintf(a->last, sizeof a->last, "%s", info->key);
    if (r) {
        a->stopped = 1;
        a->stopval = r;
    }
    return r;
}

static int storage_list_thunk(struct stratus_storage *st, void *args, struct stratus_errbuf *eb)
{
    struct storage_list_args *a = args;
    const char *from = a->last[0] ? a->last : a->start_after;
    int rc = st->ops->list(st->inst, a->prefix, from, storage_list_cb, a, eb);
    return a->stopped ? 0 : rc;
}

int stratus_storage_list(struct stratus_storage *st, const char *prefix, const char *start_after,
                         stratus_list_fn *cb, void *arg, struct stratus_errbuf *eb)
{
    struct storage_list_args *a = xcalloc(1, sizeof *a);
    a->prefix = prefix ? prefix : "";
    a->start_after = start_after;
    a->cb = cb;
    a->arg = arg;
    int rc = storage_run(st, STRATUS_SOP_LIST, storage_list_thunk, a, eb);
    if (a->stopped)
        rc = a->stopval;
    free(a);
    return rc;
}
