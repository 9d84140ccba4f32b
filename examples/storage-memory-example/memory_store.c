/* memory_store.c - an example Stratus storage plugin: objects kept in memory, in a sorted
 * array. Read this file top to bottom to see everything a storage backend must do; copy it to
 * start your own (replace the array with calls to your object store).
 *
 * What it shows:
 *  - the config map (one key, `max_bytes`), parsed and checked by the broker, not by us;
 *  - open/close with ownership rule 4 (a failed open leaves *inst NULL);
 *  - every op: put (with if_absent / if_match), ranged get, head, batch del, ordered list with
 *    start_after; and the error classification the broker's retries rely on;
 *  - thread safety: one mutex per instance, no globals (several instances may coexist);
 *  - the descriptor and STRATUS_PLUGIN_DECLARE, the only exported symbol.
 * Nothing survives close(): this is a teaching example and a test double, not a store.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stratus/stratus_storage.h>

/* ---- 1. Configuration: declare the keys, the broker fills this struct ------------------- */

struct mem_conf {
    uint64_t max_bytes; /* STRATUS_PARAM_SIZE writes a uint64_t */
};

static const struct stratus_param mem_params[] = {
    STRATUS_PARAM_SIZE("max_bytes", "1GiB", 0, struct mem_conf, max_bytes, 1,
                       (int64_t)(64 * STRATUS_GiB), "Refuse puts beyond this many stored bytes"),
    STRATUS_PARAM_END,
};

/* ---- 2. The instance: everything mutable lives here, behind one lock --------------------- */

struct mem_obj {
    char *key;
    unsigned char *data;
    size_t len;
    uint64_t version; /* bumped by every put; the etag is derived from it */
    int64_t mtime_ms;
};

struct mem_store {
    const struct stratus_host *host; /* borrowed: valid until close() (ownership rule 1) */
    uint64_t max_bytes;
    pthread_mutex_t lock; /* guards everything below */
    struct mem_obj *objs; /* sorted by key (strcmp): list() is then a walk */
    size_t n, cap;
    uint64_t bytes;
    uint64_t next_version;
};

static void mem_etag(const struct mem_obj *o, char *out)
{
    snprintf(out, 128, "v%" PRIu64, o->version);
}

/* Index of the first object whose key is >= key (binary search). Caller holds the lock. */
static size_t mem_lower_bound(const struct mem_store *s, const char *key)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(s->objs[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct mem_obj *mem_find(struct mem_store *s, const char *key)
{
    size_t i = mem_lower_bound(s, key);
    return i < s->n && strcmp(s->objs[i].key, key) == 0 ? &s->objs[i] : NULL;
}

/* ---- 3. open / close ---------------------------------------------------------------------- */

static int mem_open(const struct stratus_host *host, const void *confp, void **inst,
                    struct stratus_errbuf *eb)
{
    const struct mem_conf *conf = confp; /* borrowed until close(); copy what you keep */
    struct mem_store *s;

    *inst = NULL; /* rule 4: NULL unless we succeed */
    s = calloc(1, sizeof *s);
    if (!s)
        return stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
    s->host = host;
    s->max_bytes = conf->max_bytes;
    pthread_mutex_init(&s->lock, NULL);
    host->log(host->hctx, STRATUS_LOG_INFO, "in-memory example store, max %" PRIu64 " bytes",
              s->max_bytes);
    *inst = s;
    return 0;
}

static void mem_close(void *inst)
{
    struct mem_store *s = inst;
    if (!s) /* rule 4: close() accepts NULL / half-built instances */
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->objs[i].key);
        free(s->objs[i].data);
    }
    free(s->objs);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ---- 4. put: atomic replace, with the two preconditions ----------------------------------- */

static int mem_put(void *inst, const char *key, const void *data, size_t len,
                   const struct stratus_put_opts *opts, char *etag_out,
                   struct stratus_errbuf *eb)
{
    struct mem_store *s = inst;
    unsigned char *copy;
    char *kcopy = NULL;
    int if_absent = 0;
    const char *if_match = NULL;

    /* Read only the option fields the caller's struct has (it carries its size). */
    stratus_put_opts_read(opts, &if_absent, &if_match);
    if (!key[0] || strlen(key) > 1024)
        return stratus_errf(eb, STRATUS_EINVAL, "bad key length");
    /* The data is borrowed for the call only (rule 1): copy it, outside the lock. */
    copy = malloc(len ? len : 1);
    if (!copy)
        return stratus_errf(eb, STRATUS_ENOMEM, "put %s: out of memory", key);
    memcpy(copy, data, len);

    pthread_mutex_lock(&s->lock);
    struct mem_obj *o = mem_find(s, key);
    /* Preconditions fail with STRATUS_EEXIST: an answer, which the broker never retries. */
    if (if_absent && o) {
        pthread_mutex_unlock(&s->lock);
        free(copy);
        return stratus_errf(eb, STRATUS_EEXIST, "put %s: exists", key);
    }
    if (if_match) {
        char cur[128];
        if (o)
            mem_etag(o, cur);
        if (!o || strcmp(cur, if_match) != 0) {
            pthread_mutex_unlock(&s->lock);
            free(copy);
            return stratus_errf(eb, STRATUS_EEXIST, "put %s: etag mismatch", key);
        }
    }
    uint64_t after = s->bytes - (o ? o->len : 0) + len;
    if (after > s->max_bytes) {
        pthread_mutex_unlock(&s->lock);
        free(copy);
        /* Over a configured limit: fatal for this call (ENOMEM), not transient. */
        return stratus_errf(eb, STRATUS_ENOMEM, "put %s: store full (max_bytes)", key);
    }
    if (!o) {
        if (s->n == s->cap) {
            size_t nc = s->cap ? s->cap * 2 : 16;
            struct mem_obj *no = realloc(s->objs, nc * sizeof *no);
            if (!no)
                goto out_nomem;
            s->objs = no;
            s->cap = nc;
        }
        kcopy = strdup(key);
        if (!kcopy)
            goto out_nomem;
        size_t i = mem_lower_bound(s, key);
        memmove(&s->objs[i + 1], &s->objs[i], (s->n - i) * sizeof *s->objs);
        s->n++;
        o = &s->objs[i];
        o->key = kcopy;
        o->data = NULL;
        o->len = 0;
    }
    free(o->data);
    o->data = copy;
    s->bytes = after;
    o->len = len;
    o->version = ++s->next_version;
    o->mtime_ms = s->host->now_ms(s->host->hctx);
    if (etag_out)
        mem_etag(o, etag_out);
    pthread_mutex_unlock(&s->lock);
    return 0;

out_nomem:
    pthread_mutex_unlock(&s->lock);
    free(copy);
    return stratus_errf(eb, STRATUS_ENOMEM, "put %s: out of memory", key);
}

/* ---- 5. get: a range into the caller's buffer ---------------------------------------------- */

static int mem_get(void *inst, const char *key, uint64_t off, size_t len, void *dst,
                   size_t *got, struct stratus_errbuf *eb)
{
    struct mem_store *s = inst;
    *got = 0;
    pthread_mutex_lock(&s->lock);
    struct mem_obj *o = mem_find(s, key);
    if (!o) {
        pthread_mutex_unlock(&s->lock);
        return stratus_errf(eb, STRATUS_ENOTFOUND, "get %s: no such object", key);
    }
    /* Reading at or past the end is not an error: *got = 0. */
    if (off < o->len) {
        size_t n = o->len - (size_t)off < len ? o->len - (size_t)off : len;
        memcpy(dst, o->data + off, n);
        *got = n;
    }
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* ---- 6. head ------------------------------------------------------------------------------- */

static void mem_fill_info(const struct mem_obj *o, struct stratus_object_info *info)
{
    snprintf(info->key, sizeof info->key, "%s", o->key);
    info->size = o->len;
    info->mtime_ms = o->mtime_ms;
    mem_etag(o, info->etag);
}

static int mem_head(void *inst, const char *key, struct stratus_object_info *info,
                    struct stratus_errbuf *eb)
{
    struct mem_store *s = inst;
    pthread_mutex_lock(&s->lock);
    struct mem_obj *o = mem_find(s, key);
    if (o)
        mem_fill_info(o, info);
    pthread_mutex_unlock(&s->lock);
    return o ? 0 : stratus_errf(eb, STRATUS_ENOTFOUND, "head %s: no such object", key);
}

/* ---- 7. del: a batch; missing keys count as deleted ---------------------------------------- */

static int mem_del(void *inst, const char *const *keys, size_t nkeys, struct stratus_errbuf *eb)
{
    struct mem_store *s = inst;
    (void)eb;
    pthread_mutex_lock(&s->lock);
    for (size_t k = 0; k < nkeys; k++) {
        size_t i = mem_lower_bound(s, keys[k]);
        if (i >= s->n || strcmp(s->objs[i].key, keys[k]) != 0)
            continue;
        s->bytes -= s->objs[i].len;
        free(s->objs[i].key);
        free(s->objs[i].data);
        memmove(&s->objs[i], &s->objs[i + 1], (s->n - i - 1) * sizeof *s->objs);
        s->n--;
    }
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* ---- 8. list: prefix, start_after, key order; never call back while holding the lock ------ */

static int mem_list(void *inst, const char *prefix, const char *start_after, stratus_list_fn *cb,
                    void *arg, struct stratus_errbuf *eb)
{
    struct mem_store *s = inst;
    size_t pl = strlen(prefix);
    char after[1025];
    int rc = 0;

    /* Page through in batches: copy up to 64 entries under the lock, call back without it
     * (the callback may well call into this store), resume after the last one. */
    snprintf(after, sizeof after, "%s", start_after ? start_after : "");
    for (;;) {
        struct stratus_object_info *batch = malloc(64 * sizeof *batch);
        size_t nb = 0;
        if (!batch)
            return stratus_errf(eb, STRATUS_ENOMEM, "list: out of memory");
        pthread_mutex_lock(&s->lock);
        size_t i = mem_lower_bound(s, strcmp(after, prefix) > 0 ? after : prefix);
        for (; i < s->n && nb < 64; i++) {
            if (strncmp(s->objs[i].key, prefix, pl) != 0)
                break; /* sorted: no later key has the prefix */
            if (after[0] && strcmp(s->objs[i].key, after) <= 0)
                continue;
            mem_fill_info(&s->objs[i], &batch[nb++]);
        }
        pthread_mutex_unlock(&s->lock);
        for (size_t j = 0; j < nb && rc == 0; j++)
            rc = cb(arg, &batch[j]); /* non-zero stops the listing; we return it */
        if (nb)
            snprintf(after, sizeof after, "%s", batch[nb - 1].key);
        free(batch);
        if (rc || nb < 64)
            return rc;
    }
}

/* ---- 9. The ops table and the descriptor --------------------------------------------------- */

static const struct stratus_storage_ops mem_ops = {
    .ops_size = sizeof(struct stratus_storage_ops),
    .open = mem_open,
    .close = mem_close,
    .put = mem_put,
    .get = mem_get,
    .head = mem_head,
    .del = mem_del,
    .list = mem_list,
};

static const struct stratus_plugin_desc mem_desc = {
    .desc_size = sizeof(struct stratus_plugin_desc),
    .abi_major = STRATUS_ABI_MAJOR,
    .abi_minor = STRATUS_ABI_MINOR,
    .build_sig = STRATUS_BUILD_SIG,
    .kind = STRATUS_PLUGIN_STORAGE,
    .name = "example",
    .version = "1.0.0",
    .description = "Example out-of-tree plugin: objects in memory (lost at close)",
    .params = mem_params,
    .conf_size = sizeof(struct mem_conf),
    .ops = &mem_ops,
};

STRATUS_PLUGIN_DECLARE(mem_desc)
