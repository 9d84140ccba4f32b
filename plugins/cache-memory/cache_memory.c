/* cache_memory.c - stratus-cache-memory.so: an in-memory block cache, least-recently-used
 * eviction within a byte budget.
 *
 * One hash table (chained, power-of-two buckets, grows at load factor 1) finds blocks; one
 * doubly linked list orders them from most to least recently used; one mutex guards both and
 * the counters. Each block is one allocation from host->alloc (so the broker accounts it):
 * the entry header, the data, then the key. A block is charged header + data + key bytes
 * against `capacity`; inserting evicts from the cold end until the new block fits. Lookups copy
 * the block out under the lock (blocks are object-store read units, so this is a memcpy of at
 * most a few MiB). invalidate(prefix) walks the whole list: it is rare (object deletion).
 * Evicted blocks of 64 KiB or more are kept (up to CM_SPARES, outside the budget) and reused
 * by the next inserts: a full cache turning over 1 MiB blocks otherwise got a fresh mmap'd
 * allocation per insert and a page fault per 4 KiB of it, most of a catch-up reader's CPU.
 * insert_take (ABI 1.1) keeps the caller's buffer instead: the entry is then a small header
 * and key pointing at it, and eviction gives the buffer back with host->free (the broker keeps
 * a few such buffers for its next reads).
 * SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "stratus/stratus_cache.h"

struct cm_conf {
    uint64_t capacity;
};

static const struct stratus_param cm_params[] = {
    STRATUS_PARAM_SIZE("capacity", "256MiB", 0, struct cm_conf, capacity, 0,
                       (int64_t)(1024 * STRATUS_GiB), "Byte budget of the cache (0 disables it)"),
    STRATUS_PARAM_END,
};

#define CM_SPARES 4
#define CM_SPARE_MIN (64u * 1024)

struct cm_ent {
    struct cm_ent *hnext;      /* hash chain */
    struct cm_ent *prev, *next; /* LRU list: head = most recent */
    uint64_t hash;
    size_t len;    /* data bytes */
    size_t charge; /* bytes counted against the budget */
    size_t alloc;  /* bytes allocated for the entry (>= charge when a spare was reused) */
    char *key;     /* points into the same allocation */
    unsigned char *data; /* body, or the buffer insert_take took (ext) */
    int ext;
    unsigned char body[];
};

struct cm {
    const struct stratus_host *host;
    pthread_mutex_t lock;
    struct cm_ent **buckets; /* nbuckets, a power of two */
    size_t nbuckets, count;
    struct cm_ent *head, *tail;
    uint64_t used, budget;
    uint64_t hits, misses, inserts, evictions;
    struct stratus_metric *m_hits, *m_misses, *m_evictions;
    struct cm_ent *spare[CM_SPARES]; /* evicted allocations kept for reuse [lock] */
    int nspare;
};

static uint64_t cm_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

static void *cm_alloc(struct cm *c, size_t n)
{
    if (c->host && c->host->alloc)
        return c->host->alloc(c->host->hctx, n);
    return malloc(n);
}

static void cm_free(struct cm *c, void *p)
{
    if (c->host && c->host->free)
        c->host->free(c->host->hctx, p);
    else
        free(p);
}

static void cm_metric(struct cm *c, struct stratus_metric *m)
{
    if (m && c->host && c->host->metric_add)
        c->host->metric_add(m, 1);
}

/* ---- list and table primitives (caller holds the lock) ----------------------------------- */

static void cm_lru_unlink(struct cm *c, struct cm_ent *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void cm_lru_push_front(struct cm *c, struct cm_ent *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static struct cm_ent **cm_slot(struct cm *c, const char *key, uint64_t h)
{
    struct cm_ent **pp = &c->buckets[h & (c->nbuckets - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->hnext;
    return pp;
}

/* Unlinks e from table and list and frees it. */
static void cm_remove(struct cm *c, struct cm_ent *e)
{
    struct cm_ent **pp = cm_slot(c, e->key, e->hash);
    *pp = e->hnext;
    cm_lru_unlink(c, e);
    c->used -= e->charge;
    c->count--;
    if (e->ext) {
        cm_free(c, e->data);
        cm_free(c, e);
    } else if (e->alloc >= CM_SPARE_MIN && c->nspare < CM_SPARES)
        c->spare[c->nspare++] = e;
    else
        cm_free(c, e);
}

/* A kept allocation of at least n bytes, or NULL. Caller holds the lock. */
static struct cm_ent *cm_spare_take(struct cm *c, size_t n)
{
    for (int i = 0; i < c->nspare; i++) {
        struct cm_ent *e = c->spare[i];
        if (e->alloc >= n && e->alloc / 2 <= n) {
            c->spare[i] = c->spare[--c->nspare];
            return e;
        }
    }
    return NULL;
}

static void cm_grow(struct cm *c)
{
    size_t nb = c->nbuckets * 2;
    struct cm_ent **nt = calloc(nb, sizeof *nt);
    if (!nt)
        return; /* keep the longer chains */
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct cm_ent *e = c->buckets[i];
        while (e) {
            struct cm_ent *next = e->hnext;
            e->hnext = nt[e->hash & (nb - 1)];
            nt[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = nt;
    c->nbuckets = nb;
}

static void cm_link(struct cm *c, struct cm_ent *e);

/* ---- ops ----------------------------------------------------------------------------------- */

static void cm_close(void *inst)
{
    struct cm *c = inst;
    if (!c)
        return;
    while (c->head)
        cm_remove(c, c->head);
    for (int i = 0; i < c->nspare; i++)
        cm_free(c, c->spare[i]);
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static int cm_open(const struct stratus_host *host, const void *confp, void **inst,
                   struct stratus_errbuf *eb)
{
    const struct cm_conf *conf = confp;
    struct cm *c;

    *inst = NULL;
    c = calloc(1, sizeof *c);
    if (!c)
        return stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
    c->host = host;
    c->budget = conf->capacity;
    c->nbuckets = 1024;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (!c->buckets) {
        free(c);
        return stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&c->lock, NULL);
    if (host && host->metric) {
        c->m_hits = host->metric(host->hctx, STRATUS_METRIC_COUNTER, "hits_total", "Cache hits");
        c->m_misses =
            host->metric(host->hctx, STRATUS_METRIC_COUNTER, "misses_total", "Cache misses");
        c->m_evictions = host->metric(host->hctx, STRATUS_METRIC_COUNTER, "evictions_total",
                                      "Blocks evicted to stay within capacity");
    }
    if (host && host->log)
        host->log(host->hctx, STRATUS_LOG_INFO, "memory cache, capacity %llu bytes",
                  (unsigned long long)c->budget);
    *inst = c;
    return 0;
}

static int cm_lookup(void *inst, const char *key, void *dst, size_t cap, size_t *len)
{
    struct cm *c = inst;
    uint64_t h = cm_hash(key);
    struct cm_ent *e;

    *len = 0;
    pthread_mutex_lock(&c->lock);
    e = *cm_slot(c, key, h);
    if (!e) {
        c->misses++;
        pthread_mutex_unlock(&c->lock);
        cm_metric(c, c->m_misses);
        return STRATUS_ENOTFOUND;
    }
    c->hits++;
    cm_lru_unlink(c, e);
    cm_lru_push_front(c, e);
    *len = e->len;
    if (e->len <= cap)
        memcpy(dst, e->data, e->len);
    pthread_mutex_unlock(&c->lock);
    cm_metric(c, c->m_hits);
    return 0;
}

static int cm_insert(void *inst, const char *key, const void *data, size_t len)
{
    struct cm *c = inst;
    size_t kl = strlen(key) + 1;
    size_t charge = sizeof(struct cm_ent) + len + kl;
    uint64_t h = cm_hash(key);
    struct cm_ent *e;

    if (len > SIZE_MAX - sizeof(struct cm_ent) - kl || charge > c->budget)
        return STRATUS_ENOMEM;
    /* Build the block outside the lock: the copy is the slow part. */
    e = NULL;
    if (charge >= CM_SPARE_MIN / 2) {
        pthread_mutex_lock(&c->lock);
        e = cm_spare_take(c, charge);
        pthread_mutex_unlock(&c->lock);
    }
    if (!e) {
        e = cm_alloc(c, charge);
        if (!e)
            return STRATUS_ENOMEM;
        e->alloc = charge;
    }
    e->hash = h;
    e->len = len;
    e->charge = charge;
    e->data = e->body;
    e->ext = 0;
    e->key = (char *)e->body + len;
    memcpy(e->data, data, len);
    memcpy(e->key, key, kl);
    cm_link(c, e);
    return 0;
}

/* Takes data (from host->alloc): the entry is a small header + key pointing at it. */
static int cm_insert_take(void *inst, const char *key, void *data, size_t len)
{
    struct cm *c = inst;
    size_t kl = strlen(key) + 1;
    size_t charge = sizeof(struct cm_ent) + len + kl;
    struct cm_ent *e;

    if (len > SIZE_MAX - sizeof(struct cm_ent) - kl || charge > c->budget) {
        cm_free(c, data);
        return STRATUS_ENOMEM;
    }
    e = cm_alloc(c, sizeof(struct cm_ent) + kl);
    if (!e) {
        cm_free(c, data);
        return STRATUS_ENOMEM;
    }
    e->alloc = sizeof(struct cm_ent) + kl;
    e->hash = cm_hash(key);
    e->len = len;
    e->charge = charge;
    e->data = data;
    e->ext = 1;
    e->key = (char *)e->body;
    memcpy(e->key, key, kl);
    cm_link(c, e);
    return 0;
}

/* Puts a built entry in the table and at the front of the list, replacing an older block of
 * the key and evicting from the cold end until it fits. */
static void cm_link(struct cm *c, struct cm_ent *e)
{
    struct cm_ent **pp;
    uint64_t evicted = 0, h = e->hash;
    size_t charge = e->charge;

    e->hnext = e->prev = e->next = NULL;
    pthread_mutex_lock(&c->lock);
    pp = cm_slot(c, e->key, h);
    if (*pp)
        cm_remove(c, *pp);
    while (c->used + charge > c->budget && c->tail) {
        cm_remove(c, c->tail);
        c->evictions++;
        evicted++;
    }
    pp = &c->buckets[h & (c->nbuckets - 1)];
    e->hnext = *pp;
    *pp = e;
    cm_lru_push_front(c, e);
    c->used += charge;
    c->count++;
    c->inserts++;
    if (c->count > c->nbuckets)
        cm_grow(c);
    pthread_mutex_unlock(&c->lock);
    if (evicted && c->m_evictions && c->host && c->host->metric_add)
        c->host->metric_add(c->m_evictions, (int64_t)evicted);
}

static void cm_invalidate(void *inst, const char *prefix)
{
    struct cm *c = inst;
    size_t pl = strlen(prefix);

    pthread_mutex_lock(&c->lock);
    for (struct cm_ent *e = c->head, *next; e; e = next) {
        next = e->next;
        if (strncmp(e->key, prefix, pl) == 0)
            cm_remove(c, e);
    }
    pthread_mutex_unlock(&c->lock);
}

static void cm_stats(void *inst, struct stratus_cache_stats *stats)
{
    struct cm *c = inst;
    struct stratus_cache_stats s = {0};

    pthread_mutex_lock(&c->lock);
    s.hits = c->hits;
    s.misses = c->misses;
    s.inserts = c->inserts;
    s.evictions = c->evictions;
    s.bytes_used = c->used;
    s.bytes_budget = c->budget;
    pthread_mutex_unlock(&c->lock);
    /* Write only as much as the caller said it has room for. */
    size_t n = stats->size < sizeof s ? stats->size : sizeof s;
    s.size = stats->size;
    memcpy(stats, &s, n);
}

static const struct stratus_cache_ops cm_ops = {
    .ops_size = sizeof(struct stratus_cache_ops),
    .open = cm_open,
    .close = cm_close,
    .lookup = cm_lookup,
    .insert = cm_insert,
    .invalidate = cm_invalidate,
    .stats = cm_stats,
    .insert_take = cm_insert_take,
};

static const struct stratus_plugin_desc cm_desc = {
    .desc_size = sizeof(struct stratus_plugin_desc),
    .abi_major = STRATUS_ABI_MAJOR,
    .abi_minor = STRATUS_ABI_MINOR,
    .build_sig = STRATUS_BUILD_SIG,
    .kind = STRATUS_PLUGIN_CACHE,
    .name = "memory",
    .version = "0.1.0",
    .description = "In-memory LRU block cache with a byte budget",
    .params = cm_params,
    .conf_size = sizeof(struct cm_conf),
    .ops = &cm_ops,
};

STRATUS_PLUGIN_DECLARE(cm_desc)
