/* plugin.h - loading plugins and calling them: the only place the core touches a plugin.
 *
 * stratus_plugin_load() dlopens a shared object (RTLD_NOW|RTLD_LOCAL), finds
 * stratus_plugin_entry, and checks the descriptor: ABI major equal, minor not newer, sizes,
 * build signature, kind, name, required ops present. It refuses with a message naming the file
 * and the reason. Plugins stay loaded until exit (rule 5 of stratus_plugin.h).
 *
 * A storage or cache instance is opened from a config section: `[storage] plugin = local`
 * loads PLUGIN_DIR/stratus-storage-local.so (a value containing '/' or ending in .so is a path),
 * the other keys of the section are checked against the plugin's config map, and open() runs.
 * The call wrappers below are the only callers of plugin ops: they own retries with
 * exponential backoff and jitter on STRATUS_EAGAIN, timing, and the per-op metrics.
 * @locality every wrapper may block: call them from I/O threads, never a network thread.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_PLUGIN_PLUGIN_H
#define STRATUS_PLUGIN_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "stratus/stratus_cache.h"
#include "stratus/stratus_storage.h"

struct stratus_conf;
struct stratus_plugin; /* a loaded shared object and its checked descriptor */

/* Loads and checks path. If want_kind is non-zero, the plugin must be of that kind. */
int stratus_plugin_load(const char *path, int want_kind, struct stratus_plugin **out,
                        struct stratus_errbuf *eb);
const struct stratus_plugin_desc *stratus_plugin_desc(const struct stratus_plugin *p);
const char *stratus_plugin_path(const struct stratus_plugin *p);

/* Prints name, kind, version, description and config keys (stratusd --describe-plugin). */
void stratus_plugin_describe(const struct stratus_plugin *p, FILE *f);

/* Resolves "local" to "<plugin_dir>/stratus-<kind>-local.so"; a name with '/' or ending in
 * ".so" is returned as is. Writes into out (cap bytes). */
int stratus_plugin_resolve(const char *plugin_dir, const char *kind_name, const char *name,
                           char *out, size_t cap, struct stratus_errbuf *eb);

/* Retry policy of the storage wrappers (from [storage] retry_* keys, see plugin.c). */
struct stratus_retry_policy {
    int max_attempts;      /* default 8 */
    int64_t base_delay_ms; /* default 50 */
    int64_t max_delay_ms;  /* default 5000 */
};

/* ---- storage ---- */
struct stratus_storage; /* one open instance: plugin + inst + conf struct + counters */

/* Opens the storage of [section] (normally "storage"). Keys the core itself reads in that
 * section: plugin, retry_max_attempts, retry_base_delay, retry_max_delay. */
int stratus_storage_open(const struct stratus_conf *conf, const char *section,
                         const char *plugin_dir, struct stratus_storage **out,
                         struct stratus_errbuf *eb);
void stratus_storage_close(struct stratus_storage *st);
/* Validates [section] as stratus_storage_open() would (loads the plugin, checks its keys) but
 * does not open it (stratusd --check-config). */
int stratus_storage_check(const struct stratus_conf *conf, const char *section,
                          const char *plugin_dir, struct stratus_errbuf *eb);
const char *stratus_storage_name(const struct stratus_storage *st);
/* The keys of a storage section the core itself reads (plugin, retry_*), for `stratus config`. */
const struct stratus_param *stratus_storage_core_params(void);

int stratus_storage_put(struct stratus_storage *st, const char *key, const void *data, size_t len,
                        const struct stratus_put_opts *opts, char *etag_out /* 128 or NULL */,
                        struct stratus_errbuf *eb);
/* Puts the concatenation of n pieces as one object. A plugin with putv (ABI 1.2) gets the
 * pieces as they are; for any other the pieces are joined into one buffer for its put.
 * Counted as a put. */
int stratus_storage_putv(struct stratus_storage *st, const char *key,
                         const struct stratus_iov *iov, size_t n,
                         const struct stratus_put_opts *opts, char *etag_out /* 128 or NULL */,
                         struct stratus_errbuf *eb);
/* 1 when the plugin takes pieces itself (putv), so that a caller gains by not joining them. */
int stratus_storage_has_putv(const struct stratus_storage *st);
int stratus_storage_get(struct stratus_storage *st, const char *key, uint64_t off, size_t len,
                        void *dst, size_t *got, struct stratus_errbuf *eb);
int stratus_storage_head(struct stratus_storage *st, const char *key,
                         struct stratus_object_info *info, struct stratus_errbuf *eb);
int stratus_storage_del(struct stratus_storage *st, const char *const *keys, size_t nkeys,
                        struct stratus_errbuf *eb);
int stratus_storage_list(struct stratus_storage *st, const char *prefix, const char *start_after,
                         stratus_list_fn *cb, void *arg, struct stratus_errbuf *eb);

/* Counters since open, per op (put, get, head, del, list): calls, failures, retries, bytes,
 * and total microseconds spent. */
enum stratus_storage_op { STRATUS_SOP_PUT, STRATUS_SOP_GET, STRATUS_SOP_HEAD, STRATUS_SOP_DEL,
                          STRATUS_SOP_LIST, STRATUS_SOP__COUNT };
struct stratus_storage_opstats {
    uint64_t calls, failures, retries, bytes, usec;
};
void stratus_storage_stats(const struct stratus_storage *st,
                           struct stratus_storage_opstats out[STRATUS_SOP__COUNT]);

/* ---- cache ---- */
struct stratus_cache; /* one open cache instance; `plugin = none` gives one that always misses */

int stratus_cache_open(const struct stratus_conf *conf, const char *section,
                       const char *plugin_dir, struct stratus_cache **out,
                       struct stratus_errbuf *eb);
void stratus_cache_close(struct stratus_cache *c);
int stratus_cache_check(const struct stratus_conf *conf, const char *section,
                        const char *plugin_dir, struct stratus_errbuf *eb);
int stratus_cache_lookup(struct stratus_cache *c, const char *key, void *dst, size_t cap,
                         size_t *len);
void stratus_cache_insert(struct stratus_cache *c, const char *key, const void *data, size_t len);
/* Block buffers a reader fills and may then hand to the cache without a copy: allocated with
 * stratus_cache_buf_alloc (NULL on OOM), owned by the caller until stratus_cache_insert_take,
 * which takes buf whatever happens (a plugin without the ABI 1.1 insert_take gets a copy and
 * buf is freed). They outlive any cache instance. */
void *stratus_cache_buf_alloc(size_t n);
void stratus_cache_buf_free(void *buf);
/* 1 when insert_take hands the buffer over (no copy); a reader then inserts a block when it
 * is done with it rather than at once. */
int stratus_cache_takes(const struct stratus_cache *c);
void stratus_cache_insert_take(struct stratus_cache *c, const char *key, void *buf, size_t len);
void stratus_cache_invalidate(struct stratus_cache *c, const char *prefix);
void stratus_cache_get_stats(struct stratus_cache *c, struct stratus_cache_stats *out);

#endif
