/* stratus_cache.h - the cache plugin kind: a block cache in front of the storage plugin.
 *
 * The core reads objects in blocks and keeps them in the cache under a key it chooses (object
 * key plus block offset). The cache keeps what fits in its byte budget and evicts as it likes;
 * a lookup that misses is never an error. Calls come from the core's I/O threads, several at
 * once: every op must be thread-safe. An op may block only briefly (a disk cache reads a file).
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_CACHE_H
#define STRATUS_CACHE_H

#include "stratus_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

struct stratus_cache_stats {
    uint32_t size;       /* sizeof(struct stratus_cache_stats), set by the caller */
    uint64_t hits, misses, inserts, evictions;
    uint64_t bytes_used, bytes_budget;
};

struct stratus_cache_ops {
    uint32_t ops_size; /* sizeof(struct stratus_cache_ops) */
    /* ---- ABI 1.0, required ---- */
    int (*open)(const struct stratus_host *host, const void *conf, void **inst /* OUT */,
                struct stratus_errbuf *eb);
    void (*close)(void *inst);
    /* Copies at most cap bytes of the block stored under key into dst and sets *len to the
     * block's full length. Returns 0 on a hit, STRATUS_ENOTFOUND on a miss. A hit with
     * *len > cap copies nothing. */
    int (*lookup)(void *inst, const char *key, void *dst, size_t cap, size_t *len /* OUT */);
    /* Stores a copy of len bytes under key, replacing any older block. A block larger than
     * the budget is not stored (returns STRATUS_ENOMEM); that is not an error for the core. */
    int (*insert)(void *inst, const char *key, const void *data, size_t len);
    /* Drops every block whose key starts with prefix ("" drops all). */
    void (*invalidate)(void *inst, const char *prefix);
    /* Fills stats (stats->size says how much the caller has room for). */
    void (*stats)(void *inst, struct stratus_cache_stats *stats);
    /* ---- ABI 1.1 and later: append below, never reorder ---- */
    /* Optional (NULL: the core copies through insert). As insert, but the cache keeps data
     * itself instead of a copy. TAKES data, also when it fails: data was allocated with this
     * instance's host->alloc (the core allocates it so and the bytes count as the instance's),
     * and the cache releases it with host->free when it drops the block or refuses it. The
     * core no longer touches data after the call. Saves a copy of every block read from
     * storage. */
    int (*insert_take)(void *inst, const char *key, void *data, size_t len);
};

#ifdef __cplusplus
}
#endif
#endif
