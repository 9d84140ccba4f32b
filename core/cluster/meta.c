/* meta.c - the cluster metastore (see meta.h and docs/cluster-design.md for the key schema).
 *
 * Owns: the etcd client, this broker's registration (lease, incarnation, a keepalive thread that
 * records the send time of every successful keepalive for the ack deadline), and the watched
 * copy (hash maps per key kind, rebuilt from ranges pinned at one revision and then updated by
 * one watch on the whole prefix; a compaction or cancellation reloads it and starts a new watch).
 *
 * Values (JSON unless noted; u64 as decimal strings):
 *   brokers/<id>            {"id":1,"host":"h","port":9092,"rack":"","inc":"<u64>"}
 *   controller              {"id":1}
 *   ids/<name>              decimal text: the next free id
 *   topics/<name>           {"id":"<32 hex>","partitions":N,"streams":["<u64>",..],"configs":{}}
 *   assign/<topic>/<p>      {"owner":2,"target":-1}
 *   parts/<stream>          {"epoch":7,"owner":2,"inc":"<u64>","state":"open"|"released"}
 *                           (a deleted topic's stream: owner -1, inc "0", state "deleted")
 *   ranges/<stream>/<last>  {"obj":"<u64>","pos":0,"len":1,"base":0,"last":9,"maxts":1,"batches":1}
 *   logstart/<stream>       decimal text
 *   pstate/<stream>         binary (stratus_pstate_encode)
 *   objects/<id>            {"key":"..","size":N,"ranges":k,"node":2,"ms":<wall>}
 *   prepared/<id>           {"key":"..","node":2,"ms":<wall>}
 *   deadrange/<id>/<stream>/<last>  "" (a trimmed range of object <id>)
 *   deltopic/<create rev>   a deleted topic's topics/<name> value (its streams, to drop)
 *   reassign/<topic>/<p>    {"target":3}
 *   drain/<id>              "1"
 *   groups/<group>          binary
 * Numbers in keys (ids, streams, partitions, offsets) are zero-padded to 20 digits.
 *
 * Locks: reg_mu guards the registration fields (keepalive thread vs callers); mu guards the
 * copy; watch_mu guards the current watch pointer and the list of ended watches. Callbacks
 * (lost, change) run without any of them held.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cluster/meta.h"

#include "cluster/election.h"
#include "index/index.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define META_KEY_MAX      600
#define META_ETCD_MAX_OPS 128 /* etcd's default --max-txn-ops */

/* ---- a string-keyed hash map (chained) ---------------------------------------------------- */

struct map_ent {
    struct map_ent *next;
    uint32_t hash;
    void *val;
    char key[];
};

struct map {
    struct map_ent **b;
    size_t nb, n;
    void (*free_val)(void *);
};

static uint32_t map_hash(const char *k)
{
    uint32_t h = 2166136261u;
    for (; *k; k++)
        h = (h ^ (uint8_t)*k) * 16777619u;
    return h;
}

static void map_init(struct map *mp, void (*free_val)(void *))
{
    mp->nb = 64;
    mp->n = 0;
    mp->b = xcalloc(mp->nb, sizeof *mp->b);
    mp->free_val = free_val;
}

static struct map_ent **map_slot(const struct map *mp, const char *k, uint32_t h)
{
    struct map_ent **pp = &mp->b[h & (mp->nb - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, k) != 0))
        pp = &(*pp)->next;
    return pp;
}

static void *map_get(const struct map *mp, const char *k)
{
    struct map_ent *e = *map_slot(mp, k, map_hash(k));
    return e ? e->val : NULL;
}

static void map_grow(struct map *mp)
{
    size_t nb = mp->nb * 2;
    struct map_ent **b = xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < mp->nb; i++) {
        struct map_ent *e = mp->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    }
    free(mp->b);
    mp->b = b;
    mp->nb = nb;
}

/* Takes val (frees the value it replaces). */
static void map_put(struct map *mp, const char *k, void *val)
{
    uint32_t h = map_hash(k);
    struct map_ent **pp = map_slot(mp, k, h), *e;
    size_t kl;
    if (*pp) {
        mp->free_val((*pp)->val);
        (*pp)->val = val;
        return;
    }
    kl = strlen(k);
    e = xmalloc(sizeof *e + kl + 1);
    memcpy(e->key, k, kl + 1);
    e->hash = h;
    e->val = val;
    e->next = NULL;
    *pp = e;
    if (++mp->n > mp->nb)
        map_grow(mp);
}

static void map_del(struct map *mp, const char *k)
{
    struct map_ent **pp = map_slot(mp, k, map_hash(k)), *e = *pp;
    if (!e)
        return;
    *pp = e->next;
    mp->free_val(e->val);
    free(e);
    mp->n--;
}

static void map_destroy(struct map *mp)
{
    for (size_t i = 0; mp->b && i < mp->nb; i++) {
        struct map_ent *e = mp->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            mp->free_val(e->val);
            free(e);
        }
    }
    free(mp->b);
    memset(mp, 0, sizeof *mp);
}

/* Iterates over every entry (ent: struct map_ent *); `break` leaves only the inner loop. */
#define MAP_EACH(mp, ent)                                                                          \
    for (size_t ent##_i = 0; ent##_i < (mp)->nb; ent##_i++)                                        \
        for (struct map_ent *ent = (mp)->b[ent##_i]; ent; ent = ent->next)

/* ---- the copy ----------------------------------------------------------------------------- */

struct meta_assign_ent {
    int32_t owner, target; /* reassign entries: target only */
    int64_t mod_revision;
};

struct meta_copy {
    struct map brokers;  /* "<id 20>" -> struct stratus_meta_broker */
    struct map topics;   /* "<name>" -> struct stratus_meta_topic */
    struct map assign;   /* "<topic>/<p 20>" -> struct meta_assign_ent */
    struct map parts;    /* "<stream 20>" -> struct stratus_meta_part */
    struct map reassign; /* "<topic>/<p 20>" -> struct meta_assign_ent */
    struct map drain;    /* "<id 20>" -> (malloc'd int) */
    int32_t controller;
    int64_t controller_rev; /* create_revision of the controller key (the term) */
    int64_t rev;            /* the store revision the copy has applied everything up to */
};

static void topic_free_void(void *p)
{
    stratus_meta_topic_free(p);
    free(p);
}

static void copy_init(struct meta_copy *cp)
{
    map_init(&cp->brokers, free);
    map_init(&cp->topics, topic_free_void);
    map_init(&cp->assign, free);
    map_init(&cp->parts, free);
    map_init(&cp->reassign, free);
    map_init(&cp->drain, free);
    cp->controller = -1;
    cp->controller_rev = 0;
    cp->rev = 0;
}

static void copy_destroy(struct meta_copy *cp)
{
    map_destroy(&cp->brokers);
    map_destroy(&cp->topics);
    map_destroy(&cp->assign);
    map_destroy(&cp->parts);
    map_destroy(&cp->reassign);
    map_destroy(&cp->drain);
}

/* ---- the handle --------------------------------------------------------------------------- */

struct dead_watch {
    struct stratus_etcd_watch *w;
    struct dead_watch *next;
};

struct stratus_meta {
    struct stratus_etcd *etcd;
    int32_t node_id;
    char *host, *rack;
    int32_t port;
    int64_t session_ttl_s;

    /* registration (reg_mu) */
    pthread_mutex_t reg_mu;
    pthread_cond_t reg_cond;
    int64_t lease;        /* 0 = not registered */
    int64_t prev_lease;   /* the lease of the last registration, revoked by the next one */
    int64_t ttl_ms;       /* granted */
    int64_t last_ok_send; /* mono ms: send time of the last successful keepalive or grant */
    int64_t next_ka;      /* mono ms: next keepalive */
    uint64_t inc;      /* while registered: proc_inc; 0 otherwise */
    uint64_t proc_inc; /* chosen at the first register, kept for the life of m */
    uint64_t gen; /* bumped on every register / unregister / loss */
    int64_t reg_rev; /* store revision of the registration (its put of brokers/<id>) */
    stratus_meta_lost_fn *lost;
    void *lost_arg;
    int ka_started, ka_stop;
    pthread_t ka_thread;

    /* the copy (mu) */
    pthread_mutex_t mu;
    struct meta_copy copy;

    /* the watch (watch_mu) */
    pthread_mutex_t watch_mu;
    struct stratus_etcd_watch *watch;
    struct dead_watch *dead;
    int closing;
    stratus_meta_change_fn *change;
    void *change_arg;
};

/* ---- keys and values ---------------------------------------------------------------------- */

static size_t key_broker(char *b, int32_t id)
{
    return (size_t)snprintf(b, META_KEY_MAX, "brokers/%020" PRId32, id);
}
static size_t key_u64(char *b, const char *kind, uint64_t v)
{
    return (size_t)snprintf(b, META_KEY_MAX, "%s/%020" PRIu64, kind, v);
}
static size_t key_tp(char *b, const char *kind, const char *topic, int32_t p)
{
    return (size_t)snprintf(b, META_KEY_MAX, "%s/%s/%020" PRId32, kind, topic, p);
}
static size_t key_range(char *b, uint64_t stream, int64_t last)
{
    return (size_t)snprintf(b, META_KEY_MAX, "ranges/%020" PRIu64 "/%020" PRId64, stream, last);
}

static size_t key_deadrange(char *b, uint64_t object, uint64_t stream, int64_t last)
{
    return (size_t)snprintf(b, META_KEY_MAX, "deadrange/%020" PRIu64 "/%020" PRIu64 "/%020" PRId64,
                            object, stream, last);
}

/* json_dumps of o (taken), compact, in insertion order; *len set. */
static char *json_take_dump(json_t *o, size_t *len)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) {
        fprintf(stderr, "stratus: json_dumps failed\n");
        abort();
    }
    *len = strlen(s);
    return s;
}

static json_t *json_u64str(uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%" PRIu64, v);
    return json_string(b);
}

/* An integer field, stored as a JSON integer or a decimal string. -1 when absent or bad. */
static int json_get_i64(const json_t *o, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(o, name);
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        char *end;
        errno = 0;
        long long x = strtoll(json_string_value(v), &end, 10);
        if (errno || *end || end == json_string_value(v))
            return -1;
        *out = x;
        return 0;
    }
    return -1;
}

static int json_get_u64(const json_t *o, const char *name, uint64_t *out)
{
    const json_t *v = json_object_get(o, name);
    if (json_is_integer(v)) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(json_string_value(v), &end, 10);
        if (errno || *end || end == json_string_value(v))
            return -1;
        *out = x;
        return 0;
    }
    return -1;
}

static json_t *json_parse(const char *v, size_t len)
{
    json_t *o = json_loadb(v, len, 0, NULL);
    if (o && !json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int parse_dec_i64(const char *v, size_t len, int64_t *out)
{
    char b[32], *end;
    if (len == 0 || len >= sizeof b)
        return -1;
    memcpy(b, v, len);
    b[len] = 0;
    errno = 0;
    long long x = strtoll(b, &end, 10);
    if (errno || *end)
        return -1;
    *out = x;
    return 0;
}

static char *encode_part(const struct stratus_meta_part *p, size_t *len)
{
    json_t *o = json_object();
    json_object_set_new(o, "epoch", json_integer(p->epoch));
    json_object_set_new(o, "owner", json_integer(p->owner));
    json_object_set_new(o, "inc", json_u64str(p->inc));
    json_object_set_new(o, "state", json_string(p->released ? "released" : "open"));
    return json_take_dump(o, len);
}

static int decode_part(const char *v, size_t len, struct stratus_meta_part *p)
{
    json_t *o = json_parse(v, len);
    int64_t e, ow;
    const char *st;
    memset(p, 0, sizeof *p);
    if (!o)
        return -1;
    if (json_get_i64(o, "epoch", &e) < 0 || json_get_i64(o, "owner", &ow) < 0 ||
        json_get_u64(o, "inc", &p->inc) < 0) {
        json_decref(o);
        return -1;
    }
    p->epoch = (int32_t)e;
    p->owner = (int32_t)ow;
    st = json_string_value(json_object_get(o, "state"));
    p->released = st && (strcmp(st, "released") == 0 || strcmp(st, "deleted") == 0);
    json_decref(o);
    return 0;
}

static char *encode_assign(int32_t owner, int32_t target, size_t *len)
{
    json_t *o = json_object();
    json_object_set_new(o, "owner", json_integer(owner));
    json_object_set_new(o, "target", json_integer(target));
    return json_take_dump(o, len);
}

static int decode_broker(const char *v, size_t len, struct stratus_meta_broker *b)
{
    json_t *o = json_parse(v, len);
    int64_t id, port;
    const char *s;
    memset(b, 0, sizeof *b);
    if (!o)
        return -1;
    if (json_get_i64(o, "id", &id) < 0) {
        json_decref(o);
        return -1;
    }
    b->id = (int32_t)id;
    if (json_get_i64(o, "port", &port) == 0)
        b->port = (int32_t)port;
    if ((s = json_string_value(json_object_get(o, "host"))))
        snprintf(b->host, sizeof b->host, "%s", s);
    if ((s = json_string_value(json_object_get(o, "rack"))))
        snprintf(b->rack, sizeof b->rack, "%s", s);
    if (json_get_u64(o, "inc", &b->inc) < 0)
        b->inc = 0;
    json_decref(o);
    return 0;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static char *encode_topic(const struct stratus_meta_topic *t, size_t *len)
{
    json_t *o = json_object(), *streams = json_array(), *cfg = json_object();
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", t->id[i]);
    json_object_set_new(o, "id", json_string(hex));
    json_object_set_new(o, "partitions", json_integer(t->partitions));
    for (int32_t i = 0; i < t->partitions; i++)
        json_array_append_new(streams, json_u64str(t->streams[i]));
    json_object_set_new(o, "streams", streams);
    for (size_t i = 0; i < t->ncfg; i++)
        json_object_set_new(cfg, t->cfg_names[i], json_string(t->cfg_values[i]));
    json_object_set_new(o, "configs", cfg);
    return json_take_dump(o, len);
}

static int decode_topic(
    const char *name, const char *v, size_t len, int64_t mod_rev, struct stratus_meta_topic *t)
{
    json_t *o = json_parse(v, len), *streams, *cfg, *val;
    const char *hex, *k;
    int64_t parts;
    size_t i;

    memset(t, 0, sizeof *t);
    if (!o)
        return -1;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->mod_revision = mod_rev;
    hex = json_string_value(json_object_get(o, "id"));
    if (hex && strlen(hex) == 32) {
        for (int j = 0; j < 16; j++) {
            int hi = hexval(hex[2 * j]), lo = hexval(hex[2 * j + 1]);
            if (hi < 0 || lo < 0)
                goto bad;
            t->id[j] = (uint8_t)(hi << 4 | lo);
        }
    }
    streams = json_object_get(o, "streams");
    if (json_get_i64(o, "partitions", &parts) < 0 || parts < 0 || parts > 1000000 ||
        !json_is_array(streams) || json_array_size(streams) < (size_t)parts)
        goto bad;
    t->partitions = (int32_t)parts;
    t->streams = xcalloc((size_t)parts ? (size_t)parts : 1, sizeof *t->streams);
    for (i = 0; i < (size_t)parts; i++) {
        json_t *s = json_array_get(streams, i);
        const char *sv = json_string_value(s);
        if (json_is_integer(s))
            t->streams[i] = (uint64_t)json_integer_value(s);
        else if (sv)
            t->streams[i] = strtoull(sv, NULL, 10);
        else
            goto bad;
    }
    cfg = json_object_get(o, "configs");
    if (json_is_object(cfg) && json_object_size(cfg) > 0) {
        size_t n = json_object_size(cfg);
        t->cfg_names = xcalloc(n, sizeof *t->cfg_names);
        t->cfg_values = xcalloc(n, sizeof *t->cfg_values);
        json_object_foreach(cfg, k, val)
        {
            const char *sv = json_string_value(val);
            if (!sv)
                continue;
            t->cfg_names[t->ncfg] = xstrdup(k);
            t->cfg_values[t->ncfg] = xstrdup(sv);
            t->ncfg++;
        }
    }
    json_decref(o);
    return 0;
bad:
    json_decref(o);
    stratus_meta_topic_free(t);
    return -1;
}

static void topic_copy(struct stratus_meta_topic *dst, const struct stratus_meta_topic *src)
{
    *dst = *src;
    dst->streams = xmalloc((src->partitions ? (size_t)src->partitions : 1) * sizeof *dst->streams);
    if (src->partitions)
        memcpy(dst->streams, src->streams, (size_t)src->partitions * sizeof *dst->streams);
    dst->cfg_names = dst->cfg_values = NULL;
    if (src->ncfg) {
        dst->cfg_names = xcalloc(src->ncfg, sizeof *dst->cfg_names);
        dst->cfg_values = xcalloc(src->ncfg, sizeof *dst->cfg_values);
        for (size_t i = 0; i < src->ncfg; i++) {
            dst->cfg_names[i] = xstrdup(src->cfg_names[i]);
            dst->cfg_values[i] = xstrdup(src->cfg_values[i]);
        }
    }
}

void stratus_meta_topic_free(struct stratus_meta_topic *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncfg; i++) {
        free(t->cfg_names[i]);
        free(t->cfg_values[i]);
    }
    free(t->cfg_names);
    free(t->cfg_values);
    free(t->streams);
    t->cfg_names = t->cfg_values = NULL;
    t->streams = NULL;
    t->ncfg = 0;
}

void stratus_meta_topics_free(struct stratus_meta_topic *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        stratus_meta_topic_free(&v[i]);
    free(v);
}

static char *encode_range(const struct stratus_index_range *r, size_t *len)
{
    json_t *o = json_object();
    json_object_set_new(o, "obj", json_u64str(r->object_id));
    json_object_set_new(o, "pos", json_integer((json_int_t)r->position));
    json_object_set_new(o, "len", json_integer(r->length));
    json_object_set_new(o, "base", json_integer(r->base_offset));
    json_object_set_new(o, "last", json_integer(r->last_offset));
    json_object_set_new(o, "maxts", json_integer(r->max_timestamp));
    json_object_set_new(o, "batches", json_integer(r->batches));
    return json_take_dump(o, len);
}

static int decode_range(uint64_t stream, const char *v, size_t len, struct stratus_index_range *r)
{
    json_t *o = json_parse(v, len);
    int64_t pos, l, b, last, ts, batches;
    memset(r, 0, sizeof *r);
    if (!o)
        return -1;
    if (json_get_u64(o, "obj", &r->object_id) < 0 || json_get_i64(o, "pos", &pos) < 0 ||
        json_get_i64(o, "len", &l) < 0 || json_get_i64(o, "base", &b) < 0 ||
        json_get_i64(o, "last", &last) < 0) {
        json_decref(o);
        return -1;
    }
    if (json_get_i64(o, "maxts", &ts) < 0)
        ts = -1;
    if (json_get_i64(o, "batches", &batches) < 0)
        batches = 0;
    r->stream_id = stream;
    r->position = (uint64_t)pos;
    r->length = (uint32_t)l;
    r->base_offset = b;
    r->last_offset = last;
    r->max_timestamp = ts;
    r->batches = (uint32_t)batches;
    json_decref(o);
    return 0;
}

/* ---- applying one key to the copy --------------------------------------------------------- */

static int starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* Applies a put (val != NULL) or delete of key. Returns 1 (and *kind) when the key is one the
 * copy follows. */
static int copy_apply(struct meta_copy *cp,
                      const char *key,
                      const char *val,
                      size_t vlen,
                      int64_t create_rev,
                      int64_t mod_rev,
                      enum stratus_meta_kind *kind)
{
    const char *sfx;
    if (strcmp(key, "controller") == 0) {
        *kind = STRATUS_META_CONTROLLER;
        cp->controller = -1;
        cp->controller_rev = 0;
        if (val) {
            json_t *o = json_parse(val, vlen);
            int64_t id;
            if (o && json_get_i64(o, "id", &id) == 0) {
                cp->controller = (int32_t)id;
                cp->controller_rev = create_rev;
            }
            json_decref(o);
        }
        return 1;
    }
    if (starts(key, "brokers/")) {
        struct stratus_meta_broker *b;
        *kind = STRATUS_META_BROKERS;
        sfx = key + 8;
        if (!val) {
            map_del(&cp->brokers, sfx);
            return 1;
        }
        b = xmalloc(sizeof *b);
        if (decode_broker(val, vlen, b) < 0) {
            LOG_WARN("meta", "bad value of %s", key);
            free(b);
            map_del(&cp->brokers, sfx);
            return 1;
        }
        map_put(&cp->brokers, sfx, b);
        return 1;
    }
    if (starts(key, "topics/")) {
        struct stratus_meta_topic *t;
        *kind = STRATUS_META_TOPICS;
        sfx = key + 7;
        if (!val) {
            map_del(&cp->topics, sfx);
            return 1;
        }
        t = xmalloc(sizeof *t);
        if (decode_topic(sfx, val, vlen, mod_rev, t) < 0) {
            LOG_WARN("meta", "bad value of %s", key);
            free(t);
            map_del(&cp->topics, sfx);
            return 1;
        }
        map_put(&cp->topics, sfx, t);
        return 1;
    }
    if (starts(key, "assign/") || starts(key, "reassign/")) {
        int re = key[0] == 'r';
        struct map *mp = re ? &cp->reassign : &cp->assign;
        struct meta_assign_ent *a;
        json_t *o;
        int64_t x;
        *kind = re ? STRATUS_META_REASSIGN : STRATUS_META_ASSIGN;
        sfx = key + (re ? 9 : 7);
        if (!val) {
            map_del(mp, sfx);
            return 1;
        }
        a = xcalloc(1, sizeof *a);
        a->owner = a->target = -1;
        a->mod_revision = mod_rev;
        if (!(o = json_parse(val, vlen))) {
            LOG_WARN("meta", "bad value of %s", key);
            free(a);
            map_del(mp, sfx);
            return 1;
        }
        if (json_get_i64(o, "owner", &x) == 0)
            a->owner = (int32_t)x;
        if (json_get_i64(o, "target", &x) == 0)
            a->target = (int32_t)x;
        json_decref(o);
        map_put(mp, sfx, a);
        return 1;
    }
    if (starts(key, "parts/")) {
        struct stratus_meta_part *p;
        *kind = STRATUS_META_PARTS;
        sfx = key + 6;
        if (!val) {
            map_del(&cp->parts, sfx);
            return 1;
        }
        p = xmalloc(sizeof *p);
        if (decode_part(val, vlen, p) < 0) {
            LOG_WARN("meta", "bad value of %s", key);
            free(p);
            map_del(&cp->parts, sfx);
            return 1;
        }
        map_put(&cp->parts, sfx, p);
        return 1;
    }
    if (starts(key, "drain/")) {
        *kind = STRATUS_META_DRAIN;
        sfx = key + 6;
        if (!val)
            map_del(&cp->drain, sfx);
        else
            map_put(&cp->drain, sfx, xcalloc(1, sizeof(int)));
        return 1;
    }
    return 0;
}

/* Loads a fresh copy with one range per followed prefix, all at one revision (*rev). */
static int meta_load_copy(struct stratus_meta *m,
                          struct meta_copy *cp,
                          int64_t *rev,
                          struct stratus_errbuf *eb)
{
    static const char *const prefixes[] = {"controller", "brokers/",  "topics/", "assign/",
                                           "parts/",     "reassign/", "drain/"};
    int64_t at = 0;
    copy_init(cp);
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        struct stratus_etcd_op op = {.type = STRATUS_ETCD_OP_RANGE,
                                     .key = prefixes[i],
                                     .key_len = strlen(prefixes[i]),
                                     .flags = i ? STRATUS_ETCD_PREFIX : 0,
                                     .revision = at};
        struct stratus_etcd_resp r;
        int rc = stratus_etcd_range(m->etcd, &op, &r, eb);
        if (rc < 0) {
            copy_destroy(cp);
            return rc;
        }
        if (!at)
            at = r.revision;
        for (size_t j = 0; j < r.n_kvs; j++) {
            enum stratus_meta_kind k;
            copy_apply(cp, r.kvs[j].key, r.kvs[j].value, r.kvs[j].value_len,
                       r.kvs[j].create_revision, r.kvs[j].mod_revision, &k);
        }
        stratus_etcd_resp_free(&r);
    }
    cp->rev = at;
    *rev = at;
    return 0;
}

/* ---- open / close ------------------------------------------------------------------------- */

int stratus_meta_open(const struct stratus_meta_conf *conf,
                      struct stratus_meta **out,
                      struct stratus_errbuf *eb)
{
    struct stratus_meta *m;
    struct stratus_etcd_config ec = conf->etcd;
    pthread_condattr_t ca;
    int rc;

    *out = NULL;
    if (!ec.endpoints || !*ec.endpoints)
        return stratus_errf(eb, STRATUS_EINVAL, "meta: no etcd endpoints");
    if (!ec.prefix)
        ec.prefix = "/stratus/";
    m = xcalloc(1, sizeof *m);
    if ((rc = stratus_etcd_open(&ec, &m->etcd, eb)) < 0) {
        free(m);
        return rc;
    }
    m->node_id = conf->node_id;
    m->host = xstrdup(conf->host ? conf->host : "");
    m->rack = xstrdup(conf->rack ? conf->rack : "");
    m->port = conf->port;
    m->session_ttl_s = conf->session_ttl_s > 0 ? conf->session_ttl_s : 6;
    pthread_mutex_init(&m->reg_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->reg_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->watch_mu, NULL);
    copy_init(&m->copy);
    *out = m;
    return 0;
}

void stratus_meta_close(struct stratus_meta *m)
{
    struct dead_watch *d;
    if (!m)
        return;
    pthread_mutex_lock(&m->watch_mu);
    m->closing = 1;
    pthread_mutex_unlock(&m->watch_mu);
    /* No new watch starts once closing is set (the resync checks it under watch_mu). */
    stratus_etcd_watch_stop(m->watch);
    m->watch = NULL;
    while ((d = m->dead)) {
        m->dead = d->next;
        stratus_etcd_watch_stop(d->w);
        free(d);
    }
    pthread_mutex_lock(&m->reg_mu);
    m->ka_stop = 1;
    pthread_cond_broadcast(&m->reg_cond);
    pthread_mutex_unlock(&m->reg_mu);
    if (m->ka_started)
        pthread_join(m->ka_thread, NULL);
    stratus_etcd_close(m->etcd);
    copy_destroy(&m->copy);
    pthread_cond_destroy(&m->reg_cond);
    pthread_mutex_destroy(&m->reg_mu);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->watch_mu);
    free(m->host);
    free(m->rack);
    free(m);
}

struct stratus_etcd *stratus_meta_etcd(struct stratus_meta *m)
{
    return m->etcd;
}

int32_t stratus_meta_node_id(const struct stratus_meta *m)
{
    return m->node_id;
}

/* ---- registration ------------------------------------------------------------------------- */

static void reg_timedwait(struct stratus_meta *m, int64_t until_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t d = until_ms - now;
    if (d <= 0)
        return;
    ts.tv_sec += d / 1000;
    ts.tv_nsec += (d % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&m->reg_cond, &m->reg_mu, &ts);
}

/* The keepalive thread: every TTL/3 one keepalive, recording its send time; on ENOTFOUND or when
 * no keepalive succeeded before the ack deadline, the registration is lost (lost() runs here). */
static void *meta_keepalive_main(void *arg)
{
    struct stratus_meta *m = arg;
    pthread_setname_np(pthread_self(), "meta-keepalive"); /* top -H, perf, gdb */
    pthread_mutex_lock(&m->reg_mu);
    while (!m->ka_stop) {
        int64_t now = stratus_mono_ms(), lease, sent, ttl;
        uint64_t gen;
        struct stratus_errbuf eb;
        int rc;

        if (!m->lease) {
            pthread_cond_wait(&m->reg_cond, &m->reg_mu);
            continue;
        }
        if (now < m->next_ka) {
            reg_timedwait(m, m->next_ka);
            continue;
        }
        lease = m->lease;
        gen = m->gen;
        pthread_mutex_unlock(&m->reg_mu);
        sent = stratus_mono_ms();
        rc = stratus_etcd_lease_keepalive_once(m->etcd, lease, &ttl, &eb);
        pthread_mutex_lock(&m->reg_mu);
        if (m->gen != gen || m->ka_stop)
            continue; /* unregistered or re-registered meanwhile */
        now = stratus_mono_ms();
        if (rc == 0) {
            if (ttl > 0)
                m->ttl_ms = ttl * 1000;
            m->last_ok_send = sent;
            m->next_ka = sent + (m->ttl_ms / 3 > 100 ? m->ttl_ms / 3 : 100);
        } else if (rc == STRATUS_ENOTFOUND || now >= m->last_ok_send + m->ttl_ms - 500) {
            stratus_meta_lost_fn *fn = m->lost;
            void *fa = m->lost_arg;
            LOG_WARN("meta", "broker lease lost node=%d lease=%" PRId64 ": %s", m->node_id, lease,
                     eb.msg);
            m->prev_lease = lease;
            m->lease = 0;
            m->gen++;
            pthread_mutex_unlock(&m->reg_mu);
            if (fn)
                fn(fa);
            pthread_mutex_lock(&m->reg_mu);
        } else {
            int64_t retry = m->ttl_ms / 12 > 100 ? m->ttl_ms / 12 : 100;
            LOG_DEBUG("meta", "keepalive failed (retrying): %s", eb.msg);
            m->next_ka = now + (retry < 500 ? retry : 500);
        }
    }
    pthread_mutex_unlock(&m->reg_mu);
    return NULL;
}

static uint64_t meta_random_u64(void)
{
    uint64_t v = 0;
    while (v == 0) {
        if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            v = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^
                ((uint64_t)(uintptr_t)&v << 16);
        }
    }
    return v;
}

int stratus_meta_register(struct stratus_meta *m,
                          stratus_meta_lost_fn *lost,
                          void *arg,
                          struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX], *val;
    size_t klen = key_broker(key, m->node_id), vlen;
    int64_t lease, ttl, sent, prev, reg_rev;
    uint64_t inc;
    struct stratus_etcd_txn_result t;
    json_t *o;
    int rc;

    pthread_mutex_lock(&m->reg_mu);
    if (m->lease) {
        pthread_mutex_unlock(&m->reg_mu);
        return stratus_errf(eb, STRATUS_EINVAL, "meta: node %d is registered already", m->node_id);
    }
    prev = m->prev_lease;
    /* one incarnation per process: it names the object WAL (wal/<node>/<inc>/), which the
     * process keeps writing after it re-registers, and the claims it makes after */
    if (!m->proc_inc)
        m->proc_inc = meta_random_u64();
    inc = m->proc_inc;
    pthread_mutex_unlock(&m->reg_mu);
    if (prev) {
        /* A lease given up as lost may still live in etcd (keepalives failed, etcd did not
         * expire it yet): revoke it so that brokers/<id> is free for the new one. */
        struct stratus_errbuf e2;
        rc = stratus_etcd_lease_revoke(m->etcd, prev, &e2);
        if (rc < 0 && rc != STRATUS_ENOTFOUND)
            LOG_WARN("meta", "revoke of the previous lease %" PRId64 ": %s", prev, e2.msg);
    }
    sent = stratus_mono_ms();
    if ((rc = stratus_etcd_lease_grant(m->etcd, m->session_ttl_s, 0, &lease, &ttl, eb)) < 0)
        return rc;
    o = json_object();
    json_object_set_new(o, "id", json_integer(m->node_id));
    json_object_set_new(o, "host", json_string(m->host));
    json_object_set_new(o, "port", json_integer(m->port));
    json_object_set_new(o, "rack", json_string(m->rack));
    json_object_set_new(o, "inc", json_u64str(inc));
    val = json_take_dump(o, &vlen);
    {
        struct stratus_etcd_cmp cmp = {.key = key,
                                       .key_len = klen,
                                       .target = STRATUS_ETCD_CMP_CREATE,
                                       .result = STRATUS_ETCD_EQUAL,
                                       .number = 0};
        struct stratus_etcd_op put = {.type = STRATUS_ETCD_OP_PUT,
                                      .key = key,
                                      .key_len = klen,
                                      .value = val,
                                      .value_len = vlen,
                                      .lease = lease};
        struct stratus_etcd_op get = {.type = STRATUS_ETCD_OP_RANGE, .key = key, .key_len = klen};
        rc = stratus_etcd_txn(m->etcd, &cmp, 1, &put, 1, &get, 1, &t, eb);
    }
    free(val);
    if (rc == 0 && !t.succeeded) {
        int64_t holder =
            t.n_responses == 1 && t.responses[0].n_kvs == 1 ? t.responses[0].kvs[0].lease : 0;
        rc = stratus_errf(eb, STRATUS_EEXIST,
                          "meta: node id %d is held by a live broker (lease %" PRId64 ")",
                          m->node_id, holder);
    }
    reg_rev = t.revision; /* the put of brokers/<id> */
    stratus_etcd_txn_result_free(&t);
    if (rc < 0) {
        struct stratus_errbuf e2;
        stratus_etcd_lease_revoke(m->etcd, lease, &e2);
        return rc;
    }
    pthread_mutex_lock(&m->reg_mu);
    m->lease = lease;
    m->prev_lease = lease;
    m->reg_rev = reg_rev;
    m->ttl_ms = (ttl > 0 ? ttl : m->session_ttl_s) * 1000;
    m->last_ok_send = sent;
    m->next_ka = sent + m->ttl_ms / 3;
    m->inc = inc;
    m->gen++;
    m->lost = lost;
    m->lost_arg = arg;
    if (!m->ka_started) {
        if (pthread_create(&m->ka_thread, NULL, meta_keepalive_main, m) != 0) {
            m->lease = 0;
            pthread_mutex_unlock(&m->reg_mu);
            stratus_etcd_lease_revoke(m->etcd, lease, eb);
            return stratus_errf(eb, STRATUS_ENOMEM, "meta: keepalive thread: %s", strerror(errno));
        }
        m->ka_started = 1;
    }
    ttl = m->ttl_ms / 1000; /* the keepalive thread may change m->ttl_ms once unlocked */
    pthread_cond_broadcast(&m->reg_cond);
    pthread_mutex_unlock(&m->reg_mu);
    LOG_INFO("meta", "registered node=%d lease=%" PRId64 " ttl=%" PRId64 "s inc=%" PRIu64,
             m->node_id, lease, ttl, inc);
    return 0;
}

int stratus_meta_unregister(struct stratus_meta *m, struct stratus_errbuf *eb)
{
    int64_t lease;
    int rc;
    pthread_mutex_lock(&m->reg_mu);
    lease = m->lease ? m->lease : m->prev_lease;
    m->lease = 0;
    m->prev_lease = 0;
    m->inc = 0;
    m->gen++;
    pthread_cond_broadcast(&m->reg_cond);
    pthread_mutex_unlock(&m->reg_mu);
    if (!lease)
        return 0;
    rc = stratus_etcd_lease_revoke(m->etcd, lease, eb);
    return rc == STRATUS_ENOTFOUND ? 0 : rc;
}

uint64_t stratus_meta_incarnation(struct stratus_meta *m)
{
    uint64_t v;
    pthread_mutex_lock(&m->reg_mu);
    v = m->inc;
    pthread_mutex_unlock(&m->reg_mu);
    return v;
}

int64_t stratus_meta_lease(struct stratus_meta *m)
{
    int64_t v;
    pthread_mutex_lock(&m->reg_mu);
    v = m->lease;
    pthread_mutex_unlock(&m->reg_mu);
    return v;
}

int stratus_meta_copy_current(struct stratus_meta *m)
{
    int64_t reg;
    int ok;
    pthread_mutex_lock(&m->reg_mu);
    reg = m->lease ? m->reg_rev : 0;
    pthread_mutex_unlock(&m->reg_mu);
    if (!reg)
        return 0;
    pthread_mutex_lock(&m->mu);
    ok = m->copy.rev >= reg;
    pthread_mutex_unlock(&m->mu);
    return ok;
}

int64_t stratus_meta_ack_deadline(struct stratus_meta *m)
{
    int64_t v;
    pthread_mutex_lock(&m->reg_mu);
    v = m->lease ? m->last_ok_send + m->ttl_ms - 500 : 0;
    pthread_mutex_unlock(&m->reg_mu);
    return v;
}

/* ---- the watch ---------------------------------------------------------------------------- */

static void meta_watch_cb(void *arg, const struct stratus_etcd_event *ev);

/* Starts the watch from rev (watch_mu held). */
static int meta_watch_from(struct stratus_meta *m, int64_t rev, struct stratus_errbuf *eb)
{
    struct stratus_etcd_watch_opts o = {
        .key = "", .key_len = 0, .flags = STRATUS_ETCD_PREFIX, .start_revision = rev};
    return stratus_etcd_watch_start(m->etcd, &o, meta_watch_cb, m, &m->watch, eb);
}

/* The watch ended (compaction, cancel): reload the copy and watch again. Runs on the ended
 * watch's thread. */
static void meta_resync(struct stratus_meta *m)
{
    struct meta_copy cp, old;
    int64_t rev = 0;
    struct stratus_errbuf eb;
    int rc;

    for (;;) {
        pthread_mutex_lock(&m->watch_mu);
        rc = m->closing;
        pthread_mutex_unlock(&m->watch_mu);
        if (rc)
            return;
        if (meta_load_copy(m, &cp, &rev, &eb) == 0)
            break;
        LOG_WARN("meta", "resync: %s", eb.msg);
        struct timespec ts = {0, 500 * 1000000L};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&m->mu);
    old = m->copy;
    m->copy = cp;
    pthread_mutex_unlock(&m->mu);
    copy_destroy(&old);
    pthread_mutex_lock(&m->watch_mu);
    if (!m->closing) {
        struct dead_watch *d = xmalloc(sizeof *d), **pp;
        /* Reap watches that ended before (their threads are done or about to be). */
        for (pp = &m->dead; *pp;) {
            struct dead_watch *x = *pp;
            *pp = x->next;
            stratus_etcd_watch_stop(x->w);
            free(x);
        }
        d->w = m->watch;
        d->next = NULL;
        m->dead = d;
        m->watch = NULL;
        if (meta_watch_from(m, rev + 1, &eb) < 0)
            LOG_ERROR("meta", "cannot restart the watch: %s", eb.msg);
    }
    pthread_mutex_unlock(&m->watch_mu);
    LOG_INFO("meta", "copy reloaded at revision %" PRId64, rev);
    if (m->change)
        m->change(m->change_arg, STRATUS_META_RESYNC, NULL);
}

static void meta_watch_cb(void *arg, const struct stratus_etcd_event *ev)
{
    struct stratus_meta *m = arg;
    enum stratus_meta_kind kind;
    int hit;

    if (ev->type == STRATUS_ETCD_EVENT_COMPACTED || ev->type == STRATUS_ETCD_EVENT_CANCELED) {
        LOG_WARN("meta", "watch ended (%s): reloading",
                 ev->type == STRATUS_ETCD_EVENT_COMPACTED ? "compacted" : ev->error);
        meta_resync(m);
        return;
    }
    if (!ev->kv.key)
        return;
    pthread_mutex_lock(&m->mu);
    hit = copy_apply(&m->copy, ev->kv.key, ev->type == STRATUS_ETCD_EVENT_PUT ? ev->kv.value : NULL,
                     ev->kv.value_len, ev->kv.create_revision, ev->kv.mod_revision, &kind);
    if (ev->revision > m->copy.rev)
        m->copy.rev = ev->revision;
    pthread_mutex_unlock(&m->mu);
    if (hit && m->change)
        m->change(m->change_arg, kind, ev->kv.key);
}

int stratus_meta_start_watch(struct stratus_meta *m,
                             stratus_meta_change_fn *fn,
                             void *arg,
                             struct stratus_errbuf *eb)
{
    struct meta_copy cp, old;
    int64_t rev;
    int rc;

    pthread_mutex_lock(&m->watch_mu);
    if (m->watch || m->closing) {
        pthread_mutex_unlock(&m->watch_mu);
        return stratus_errf(eb, STRATUS_EINVAL, "meta: the watch runs already");
    }
    if ((rc = meta_load_copy(m, &cp, &rev, eb)) < 0) {
        pthread_mutex_unlock(&m->watch_mu);
        return rc;
    }
    pthread_mutex_lock(&m->mu);
    old = m->copy;
    m->copy = cp;
    pthread_mutex_unlock(&m->mu);
    copy_destroy(&old);
    m->change = fn;
    m->change_arg = arg;
    rc = meta_watch_from(m, rev + 1, eb);
    pthread_mutex_unlock(&m->watch_mu);
    return rc;
}

/* ---- lookups in the copy ------------------------------------------------------------------ */

static int broker_cmp(const void *a, const void *b)
{
    const struct stratus_meta_broker *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

int stratus_meta_brokers(struct stratus_meta *m, struct stratus_meta_broker **out, size_t *n)
{
    size_t i = 0;
    pthread_mutex_lock(&m->mu);
    *out = xcalloc(m->copy.brokers.n ? m->copy.brokers.n : 1, sizeof **out);
    MAP_EACH(&m->copy.brokers, e)
    {
        (*out)[i++] = *(struct stratus_meta_broker *)e->val;
    }
    pthread_mutex_unlock(&m->mu);
    *n = i;
    qsort(*out, i, sizeof **out, broker_cmp);
    return 0;
}

int stratus_meta_broker_live(struct stratus_meta *m, int32_t id, uint64_t *inc)
{
    char key[META_KEY_MAX];
    struct stratus_meta_broker *b;
    int live;
    key_broker(key, id);
    pthread_mutex_lock(&m->mu);
    b = map_get(&m->copy.brokers, key + 8);
    live = b != NULL;
    if (b && inc)
        *inc = b->inc;
    pthread_mutex_unlock(&m->mu);
    return live;
}

int32_t stratus_meta_controller(struct stratus_meta *m)
{
    int32_t v;
    pthread_mutex_lock(&m->mu);
    v = m->copy.controller;
    pthread_mutex_unlock(&m->mu);
    return v;
}

static int topic_cmp(const void *a, const void *b)
{
    return strcmp(((const struct stratus_meta_topic *)a)->name,
                  ((const struct stratus_meta_topic *)b)->name);
}

int stratus_meta_topics(struct stratus_meta *m, struct stratus_meta_topic **out, size_t *n)
{
    size_t i = 0;
    pthread_mutex_lock(&m->mu);
    *out = xcalloc(m->copy.topics.n ? m->copy.topics.n : 1, sizeof **out);
    MAP_EACH(&m->copy.topics, e)
    {
        topic_copy(&(*out)[i++], e->val);
    }
    pthread_mutex_unlock(&m->mu);
    *n = i;
    qsort(*out, i, sizeof **out, topic_cmp);
    return 0;
}

int stratus_meta_topic(struct stratus_meta *m, const char *name, struct stratus_meta_topic *out)
{
    struct stratus_meta_topic *t;
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    t = map_get(&m->copy.topics, name);
    if (t)
        topic_copy(out, t);
    else
        rc = STRATUS_ENOTFOUND;
    pthread_mutex_unlock(&m->mu);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

/* Fills a from the copy (mu held). */
static void assign_fill(struct stratus_meta *m,
                        const struct stratus_meta_topic *t,
                        int32_t p,
                        struct stratus_meta_assign *a)
{
    char key[META_KEY_MAX];
    struct meta_assign_ent *e;
    memset(a, 0, sizeof *a);
    snprintf(a->topic, sizeof a->topic, "%s", t->name);
    a->partition = p;
    a->stream = t->streams[p];
    key_tp(key, "assign", t->name, p);
    e = map_get(&m->copy.assign, key + 7);
    a->owner = e ? e->owner : -1;
    a->target = e ? e->target : -1;
    a->mod_revision = e ? e->mod_revision : 0;
}

static int assign_cmp(const void *a, const void *b)
{
    const struct stratus_meta_assign *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

int stratus_meta_assignments(struct stratus_meta *m, struct stratus_meta_assign **out, size_t *n)
{
    size_t total = 0, i = 0;
    pthread_mutex_lock(&m->mu);
    MAP_EACH(&m->copy.topics, e)
    {
        total += (size_t)((struct stratus_meta_topic *)e->val)->partitions;
    }
    *out = xcalloc(total ? total : 1, sizeof **out);
    MAP_EACH(&m->copy.topics, e2)
    {
        const struct stratus_meta_topic *t = e2->val;
        for (int32_t p = 0; p < t->partitions; p++)
            assign_fill(m, t, p, &(*out)[i++]);
    }
    pthread_mutex_unlock(&m->mu);
    *n = i;
    qsort(*out, i, sizeof **out, assign_cmp);
    return 0;
}

int stratus_meta_assignment(struct stratus_meta *m,
                            const char *topic,
                            int32_t partition,
                            struct stratus_meta_assign *out)
{
    struct stratus_meta_topic *t;
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    t = map_get(&m->copy.topics, topic);
    if (t && partition >= 0 && partition < t->partitions)
        assign_fill(m, t, partition, out);
    else
        rc = STRATUS_ENOTFOUND;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int stratus_meta_part(struct stratus_meta *m, uint64_t stream, struct stratus_meta_part *out)
{
    char key[META_KEY_MAX];
    struct stratus_meta_part *p;
    int rc = 0;
    key_u64(key, "parts", stream);
    pthread_mutex_lock(&m->mu);
    p = map_get(&m->copy.parts, key + 6);
    if (p)
        *out = *p;
    else
        rc = STRATUS_ENOTFOUND;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int stratus_meta_reassign_requests(struct stratus_meta *m,
                                   struct stratus_meta_assign **out,
                                   size_t *n)
{
    size_t i = 0;
    pthread_mutex_lock(&m->mu);
    *out = xcalloc(m->copy.reassign.n ? m->copy.reassign.n : 1, sizeof **out);
    MAP_EACH(&m->copy.reassign, e)
    {
        const struct meta_assign_ent *r = e->val;
        struct stratus_meta_assign *a = &(*out)[i];
        const char *slash = strrchr(e->key, '/');
        struct stratus_meta_topic *t;
        size_t tl;
        if (!slash)
            continue;
        tl = (size_t)(slash - e->key);
        if (tl >= sizeof a->topic)
            continue;
        memcpy(a->topic, e->key, tl);
        a->topic[tl] = 0;
        a->partition = (int32_t)strtol(slash + 1, NULL, 10);
        a->owner = -1;
        a->target = r->target;
        t = map_get(&m->copy.topics, a->topic);
        a->stream =
            t && a->partition >= 0 && a->partition < t->partitions ? t->streams[a->partition] : 0;
        i++;
    }
    pthread_mutex_unlock(&m->mu);
    *n = i;
    qsort(*out, i, sizeof **out, assign_cmp);
    return 0;
}

int stratus_meta_draining(struct stratus_meta *m, int32_t id)
{
    char key[META_KEY_MAX];
    int v;
    snprintf(key, sizeof key, "%020" PRId32, id);
    pthread_mutex_lock(&m->mu);
    v = map_get(&m->copy.drain, key) != NULL;
    pthread_mutex_unlock(&m->mu);
    return v;
}

int stratus_meta_wal_needed(struct stratus_meta *m, int32_t node, uint64_t inc)
{
    int v = 0;
    pthread_mutex_lock(&m->mu);
    MAP_EACH(&m->copy.parts, e)
    {
        const struct stratus_meta_part *p = e->val;
        if (!p->released && p->owner == node && p->inc == inc) {
            v = 1;
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return v;
}

/* ---- ids and topics ----------------------------------------------------------------------- */

int stratus_meta_alloc_ids(struct stratus_meta *m,
                           const char *name,
                           uint64_t n,
                           uint64_t *first,
                           struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX];
    size_t klen = (size_t)snprintf(key, sizeof key, "ids/%s", name);
    struct stratus_etcd_resp r;
    int have = 0, rc;
    int64_t mod = 0;
    uint64_t cur = 1;

    if (n == 0)
        return stratus_errf(eb, STRATUS_EINVAL, "meta: alloc of 0 ids");
    for (int attempt = 0; attempt < 1000; attempt++) {
        char val[24];
        size_t vlen;
        struct stratus_etcd_cmp cmp = {.key = key, .key_len = klen, .result = STRATUS_ETCD_EQUAL};
        struct stratus_etcd_op put = {.type = STRATUS_ETCD_OP_PUT, .key = key, .key_len = klen};
        struct stratus_etcd_op get = {.type = STRATUS_ETCD_OP_RANGE, .key = key, .key_len = klen};
        struct stratus_etcd_txn_result t;

        if (!have) {
            if ((rc = stratus_etcd_get(m->etcd, key, klen, &r, eb)) < 0)
                return rc;
            mod = 0;
            cur = 1;
            if (r.n_kvs == 1) {
                int64_t v;
                if (parse_dec_i64(r.kvs[0].value, r.kvs[0].value_len, &v) < 0 || v < 1) {
                    stratus_etcd_resp_free(&r);
                    return stratus_errf(eb, STRATUS_ECORRUPT, "meta: bad value of %s", key);
                }
                cur = (uint64_t)v;
                mod = r.kvs[0].mod_revision;
            }
            stratus_etcd_resp_free(&r);
            have = 1;
        }
        vlen = (size_t)snprintf(val, sizeof val, "%" PRIu64, cur + n);
        if (mod) {
            cmp.target = STRATUS_ETCD_CMP_MOD;
            cmp.number = mod;
        } else {
            cmp.target = STRATUS_ETCD_CMP_CREATE;
            cmp.number = 0;
        }
        put.value = val;
        put.value_len = vlen;
        if ((rc = stratus_etcd_txn(m->etcd, &cmp, 1, &put, 1, &get, 1, &t, eb)) < 0)
            return rc;
        if (t.succeeded) {
            stratus_etcd_txn_result_free(&t);
            *first = cur;
            return 0;
        }
        /* Lost the race: the failure branch read the current value. */
        have = 0;
        if (t.n_responses == 1 && t.responses[0].n_kvs == 1) {
            int64_t v;
            if (parse_dec_i64(t.responses[0].kvs[0].value, t.responses[0].kvs[0].value_len, &v) ==
                    0 &&
                v >= 1) {
                cur = (uint64_t)v;
                mod = t.responses[0].kvs[0].mod_revision;
                have = 1;
            }
        }
        stratus_etcd_txn_result_free(&t);
    }
    return stratus_errf(eb, STRATUS_EAGAIN, "meta: alloc of %s keeps losing races", name);
}

static int topic_write(struct stratus_meta *m,
                       const struct stratus_meta_topic *t,
                       int create,
                       struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX], *val;
    size_t klen, vlen;
    struct stratus_etcd_txn_result r;
    int rc;

    if (!t->name[0] || strchr(t->name, '/') || t->partitions < 0 ||
        (t->partitions > 0 && !t->streams))
        return stratus_errf(eb, STRATUS_EINVAL, "meta: bad topic '%s'", t->name);
    klen = (size_t)snprintf(key, sizeof key, "topics/%s", t->name);
    val = encode_topic(t, &vlen);
    {
        struct stratus_etcd_cmp cmp = {.key = key,
                                       .key_len = klen,
                                       .target =
                                           create ? STRATUS_ETCD_CMP_CREATE : STRATUS_ETCD_CMP_MOD,
                                       .result = STRATUS_ETCD_EQUAL,
                                       .number = create ? 0 : t->mod_revision};
        struct stratus_etcd_op put = {.type = STRATUS_ETCD_OP_PUT,
                                      .key = key,
                                      .key_len = klen,
                                      .value = val,
                                      .value_len = vlen};
        rc = stratus_etcd_txn(m->etcd, &cmp, 1, &put, 1, NULL, 0, &r, eb);
    }
    free(val);
    if (rc < 0)
        return rc;
    rc = r.succeeded
             ? 0
             : stratus_errf(eb, STRATUS_EEXIST,
                            create ? "meta: topic %s exists" : "meta: topic %s changed meanwhile",
                            t->name);
    stratus_etcd_txn_result_free(&r);
    return rc;
}

int stratus_meta_create_topic(struct stratus_meta *m,
                              const struct stratus_meta_topic *t,
                              struct stratus_errbuf *eb)
{
    return topic_write(m, t, 1, eb);
}

int stratus_meta_update_topic(struct stratus_meta *m,
                              const struct stratus_meta_topic *t,
                              struct stratus_errbuf *eb)
{
    return topic_write(m, t, 0, eb);
}

int stratus_meta_delete_topic(struct stratus_meta *m, const char *name, struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX], apfx[META_KEY_MAX], rpfx[META_KEY_MAX], dkey[META_KEY_MAX];
    size_t klen = (size_t)snprintf(key, sizeof key, "topics/%s", name);
    size_t alen = (size_t)snprintf(apfx, sizeof apfx, "assign/%s/", name);
    size_t rlen = (size_t)snprintf(rpfx, sizeof rpfx, "reassign/%s/", name);
    int rc;

    if (!*name || strchr(name, '/'))
        return stratus_errf(eb, STRATUS_EINVAL, "meta: bad topic name");
    /* Read the topic, then delete it if unchanged, leaving deltopic/<its create revision> =
     * its value (the streams) for the controller to collect. */
    for (int attempt = 0; attempt < 5; attempt++) {
        struct stratus_etcd_resp r;
        struct stratus_etcd_txn_result t;
        struct stratus_etcd_cmp cmp = {.key = key,
                                       .key_len = klen,
                                       .target = STRATUS_ETCD_CMP_MOD,
                                       .result = STRATUS_ETCD_EQUAL};
        struct stratus_etcd_op ops[4] = {
            {.type = STRATUS_ETCD_OP_DELETE, .key = key, .key_len = klen},
            {.type = STRATUS_ETCD_OP_DELETE,
             .key = apfx,
             .key_len = alen,
             .flags = STRATUS_ETCD_PREFIX},
            {.type = STRATUS_ETCD_OP_DELETE,
             .key = rpfx,
             .key_len = rlen,
             .flags = STRATUS_ETCD_PREFIX},
            {.type = STRATUS_ETCD_OP_PUT, .key = dkey},
        };
        if ((rc = stratus_etcd_get(m->etcd, key, klen, &r, eb)) < 0)
            return rc;
        if (r.n_kvs != 1) {
            stratus_etcd_resp_free(&r);
            return stratus_errf(eb, STRATUS_ENOTFOUND, "meta: no topic %s", name);
        }
        cmp.number = r.kvs[0].mod_revision;
        ops[3].key_len = key_u64(dkey, "deltopic", (uint64_t)r.kvs[0].create_revision);
        ops[3].value = r.kvs[0].value;
        ops[3].value_len = r.kvs[0].value_len;
        rc = stratus_etcd_txn(m->etcd, &cmp, 1, ops, 4, NULL, 0, &t, eb);
        stratus_etcd_resp_free(&r);
        if (rc < 0)
            return rc;
        rc = t.succeeded;
        stratus_etcd_txn_result_free(&t);
        if (rc)
            return 0;
    }
    return stratus_errf(eb, STRATUS_EEXIST, "meta: topic %s keeps changing", name);
}

int stratus_meta_list_deleted_topics(struct stratus_meta *m,
                                     struct stratus_meta_topic **out,
                                     size_t *n,
                                     struct stratus_errbuf *eb)
{
    struct stratus_etcd_op op = {.type = STRATUS_ETCD_OP_RANGE,
                                 .key = "deltopic/",
                                 .key_len = 9,
                                 .flags = STRATUS_ETCD_PREFIX};
    struct stratus_etcd_resp r;
    size_t k = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = stratus_etcd_range(m->etcd, &op, &r, eb)) < 0)
        return rc;
    *out = xcalloc(r.n_kvs ? r.n_kvs : 1, sizeof **out);
    for (size_t i = 0; i < r.n_kvs; i++) {
        if (decode_topic(r.kvs[i].key + 9, r.kvs[i].value, r.kvs[i].value_len, 0, &(*out)[k]) < 0) {
            LOG_WARN("meta", "bad value of %s", r.kvs[i].key);
            continue;
        }
        k++;
    }
    *n = k;
    stratus_etcd_resp_free(&r);
    return 0;
}

int stratus_meta_forget_deleted_topic(struct stratus_meta *m,
                                      const char *name,
                                      struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX];
    size_t klen = (size_t)snprintf(key, sizeof key, "deltopic/%s", name);
    return stratus_etcd_delete(m->etcd, key, klen, 0, NULL, eb);
}

static int fenced_txn(struct stratus_meta *m,
                      const struct stratus_meta_claim *claim,
                      const struct stratus_etcd_op *ops,
                      size_t n,
                      const char *what,
                      struct stratus_errbuf *eb);

/* The parts value of a deleted stream: no claim takes it over (stratus_meta_claim). */
static int part_is_deleted(const char *v, size_t len)
{
    json_t *o = json_parse(v, len);
    const char *st = o ? json_string_value(json_object_get(o, "state")) : NULL;
    int d = st && strcmp(st, "deleted") == 0;
    json_decref(o);
    return d;
}

int stratus_meta_drop_stream(struct stratus_meta *m, uint64_t stream, struct stratus_errbuf *eb)
{
    const size_t per_txn = (META_ETCD_MAX_OPS - 8) / 2;
    char pkey[META_KEY_MAX], pfx[META_KEY_MAX], *tomb = NULL;
    size_t pklen = key_u64(pkey, "parts", stream), tomb_len = 0;
    size_t plen = (size_t)snprintf(pfx, sizeof pfx, "ranges/%020" PRIu64 "/", stream);
    struct stratus_etcd_op *ops = xcalloc(2 * per_txn + 2, sizeof *ops);
    char(*keys)[META_KEY_MAX] = xcalloc(2 * per_txn + 2, sizeof *keys);
    struct stratus_etcd_resp r;
    int rc = 0;

    /* 1. the tombstone: every owner's fenced writes fail from now on, and nobody claims it */
    for (int attempt = 0;; attempt++) {
        struct stratus_meta_part prev = {0};
        struct stratus_etcd_cmp cmp = {.key = pkey, .key_len = pklen, .result = STRATUS_ETCD_EQUAL};
        struct stratus_etcd_op put = {.type = STRATUS_ETCD_OP_PUT, .key = pkey, .key_len = pklen};
        struct stratus_etcd_txn_result t;
        json_t *o;
        if (attempt == 5) {
            rc = stratus_errf(eb, STRATUS_EEXIST,
                              "meta: parts of stream %" PRIu64 " keeps changing", stream);
            goto out;
        }
        if ((rc = stratus_etcd_get(m->etcd, pkey, pklen, &r, eb)) < 0)
            goto out;
        if (r.n_kvs == 1 && part_is_deleted(r.kvs[0].value, r.kvs[0].value_len)) {
            tomb = r.kvs[0].value;
            tomb_len = r.kvs[0].value_len;
            r.kvs[0].value = NULL;
            stratus_etcd_resp_free(&r);
            break;
        }
        if (r.n_kvs == 1) {
            decode_part(r.kvs[0].value, r.kvs[0].value_len, &prev);
            cmp.target = STRATUS_ETCD_CMP_VALUE;
            cmp.value = r.kvs[0].value;
            cmp.value_len = r.kvs[0].value_len;
        } else {
            cmp.target = STRATUS_ETCD_CMP_CREATE;
            cmp.number = 0;
        }
        o = json_object();
        json_object_set_new(o, "epoch", json_integer(prev.epoch + 1));
        json_object_set_new(o, "owner", json_integer(-1));
        json_object_set_new(o, "inc", json_string("0"));
        json_object_set_new(o, "state", json_string("deleted"));
        tomb = json_take_dump(o, &tomb_len);
        put.value = tomb;
        put.value_len = tomb_len;
        rc = stratus_etcd_txn(m->etcd, &cmp, 1, &put, 1, NULL, 0, &t, eb);
        stratus_etcd_resp_free(&r);
        if (rc < 0)
            goto out;
        rc = t.succeeded;
        stratus_etcd_txn_result_free(&t);
        if (rc) {
            rc = 0;
            break;
        }
        free(tomb);
        tomb = NULL;
    }
    /* 2. its ranges become dead ranges, a batch at a time, under the tombstone */
    for (;;) {
        struct stratus_meta_claim tc = {.stream = stream, .value = tomb, .value_len = tomb_len};
        struct stratus_etcd_op op = {.type = STRATUS_ETCD_OP_RANGE,
                                     .key = pfx,
                                     .key_len = plen,
                                     .flags = STRATUS_ETCD_PREFIX,
                                     .limit = (int64_t)per_txn};
        size_t no = 0;
        int last;
        if ((rc = stratus_etcd_range(m->etcd, &op, &r, eb)) < 0)
            goto out;
        for (size_t i = 0; i < r.n_kvs; i++) {
            struct stratus_index_range rg;
            if (decode_range(stream, r.kvs[i].value, r.kvs[i].value_len, &rg) < 0) {
                LOG_WARN("meta", "bad value of %s: dropped", r.kvs[i].key);
                snprintf(keys[no], META_KEY_MAX, "%s", r.kvs[i].key);
                ops[no] = (struct stratus_etcd_op){
                    .type = STRATUS_ETCD_OP_DELETE, .key = keys[no], .key_len = r.kvs[i].key_len};
                no++;
                continue;
            }
            snprintf(keys[no], META_KEY_MAX, "%s", r.kvs[i].key);
            ops[no] = (struct stratus_etcd_op){
                .type = STRATUS_ETCD_OP_DELETE, .key = keys[no], .key_len = r.kvs[i].key_len};
            no++;
            ops[no] = (struct stratus_etcd_op){
                .type = STRATUS_ETCD_OP_PUT,
                .key = keys[no],
                .key_len = key_deadrange(keys[no], rg.object_id, stream, rg.last_offset),
                .value = "",
                .value_len = 0};
            no++;
        }
        last = !r.more;
        stratus_etcd_resp_free(&r);
        if (last) { /* 3. the rest of the stream's state */
            ops[no] = (struct stratus_etcd_op){.type = STRATUS_ETCD_OP_DELETE,
                                               .key = keys[no],
                                               .key_len = key_u64(keys[no], "logstart", stream)};
            no++;
            ops[no] = (struct stratus_etcd_op){.type = STRATUS_ETCD_OP_DELETE,
                                               .key = keys[no],
                                               .key_len = key_u64(keys[no], "pstate", stream)};
            no++;
        }
        if ((rc = fenced_txn(m, &tc, ops, no, "drop", eb)) < 0 || last)
            break;
    }
out:
    free(tomb);
    free(ops);
    free(keys);
    return rc;
}

/* ---- ownership ---------------------------------------------------------------------------- */

void stratus_meta_claim_free(struct stratus_meta_claim *c)
{
    if (!c)
        return;
    free(c->value);
    c->value = NULL;
    c->value_len = 0;
}

/* The compare "parts/<stream> still holds the claim" (key in kbuf). */
static struct stratus_etcd_cmp claim_cmp(const struct stratus_meta_claim *c, char *kbuf)
{
    size_t klen = key_u64(kbuf, "parts", c->stream);
    struct stratus_etcd_cmp cmp = {.key = kbuf,
                                   .key_len = klen,
                                   .target = STRATUS_ETCD_CMP_VALUE,
                                   .result = STRATUS_ETCD_EQUAL,
                                   .value = c->value,
                                   .value_len = c->value_len};
    return cmp;
}

/* The claim; with a, also only while assign/<topic>/<p> is still the copy's (a->mod_revision)
 * and brokers/<me> is still under this broker's lease. */
static int claim(struct stratus_meta *m,
                 uint64_t stream,
                 const struct stratus_meta_assign *a,
                 struct stratus_meta_claim *out,
                 struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX], akey[META_KEY_MAX], bkey[META_KEY_MAX];
    size_t klen = key_u64(key, "parts", stream);
    struct stratus_etcd_resp r;
    char *cur = NULL;
    size_t cur_len = 0;
    int have_cur, rc;
    uint64_t inc = stratus_meta_incarnation(m);
    int64_t lease = stratus_meta_lease(m);
    struct stratus_etcd_cmp fence[2];

    memset(out, 0, sizeof *out);
    if (!inc || (a && !lease))
        return stratus_errf(eb, STRATUS_EINVAL, "meta: claim before register");
    if (a) {
        fence[0] = (struct stratus_etcd_cmp){.key = akey,
                                             .key_len = key_tp(akey, "assign", a->topic,
                                                               a->partition),
                                             .target = STRATUS_ETCD_CMP_MOD,
                                             .result = STRATUS_ETCD_EQUAL,
                                             .number = a->mod_revision};
        fence[1] = (struct stratus_etcd_cmp){.key = bkey,
                                             .key_len = key_broker(bkey, m->node_id),
                                             .target = STRATUS_ETCD_CMP_LEASE,
                                             .result = STRATUS_ETCD_EQUAL,
                                             .number = lease};
    }
    if ((rc = stratus_etcd_get(m->etcd, key, klen, &r, eb)) < 0)
        return rc;
    have_cur = r.n_kvs == 1;
    if (have_cur) {
        cur = r.kvs[0].value;
        cur_len = r.kvs[0].value_len;
        r.kvs[0].value = NULL;
    }
    stratus_etcd_resp_free(&r);
    for (int attempt = 0; attempt < 5; attempt++) {
        struct stratus_meta_part prev = {0}, next;
        struct stratus_etcd_cmp cmps[3] = {
            {.key = key, .key_len = klen, .result = STRATUS_ETCD_EQUAL}};
        struct stratus_etcd_cmp *cmp = &cmps[0];
        int had_cur = have_cur, same;
        struct stratus_etcd_op put = {.type = STRATUS_ETCD_OP_PUT, .key = key, .key_len = klen};
        struct stratus_etcd_op get = {.type = STRATUS_ETCD_OP_RANGE, .key = key, .key_len = klen};
        struct stratus_etcd_txn_result t;
        char *val;
        size_t vlen;

        if (have_cur && part_is_deleted(cur, cur_len)) {
            free(cur);
            return stratus_errf(eb, STRATUS_ENOTFOUND, "meta: stream %" PRIu64 " was deleted",
                                stream);
        }
        if (have_cur && decode_part(cur, cur_len, &prev) < 0)
            LOG_WARN("meta", "bad value of %s: claiming over it", key);
        next.epoch = prev.epoch + 1;
        next.owner = m->node_id;
        next.inc = inc;
        next.released = 0;
        val = encode_part(&next, &vlen);
        if (have_cur) {
            cmp->target = STRATUS_ETCD_CMP_VALUE;
            cmp->value = cur;
            cmp->value_len = cur_len;
        } else {
            cmp->target = STRATUS_ETCD_CMP_CREATE;
            cmp->number = 0;
        }
        put.value = val;
        put.value_len = vlen;
        if (a) {
            cmps[1] = fence[0];
            cmps[2] = fence[1];
        }
        if ((rc = stratus_etcd_txn(m->etcd, cmps, a ? 3 : 1, &put, 1, &get, 1, &t, eb)) < 0) {
            free(val);
            free(cur);
            return rc;
        }
        if (t.succeeded) {
            stratus_etcd_txn_result_free(&t);
            out->stream = stream;
            out->epoch = next.epoch;
            out->value = val;
            out->value_len = vlen;
            out->had_prev = have_cur;
            out->prev = prev;
            free(cur);
            return 0;
        }
        free(val);
        have_cur = t.n_responses == 1 && t.responses[0].n_kvs == 1;
        same = have_cur == had_cur &&
               (!have_cur || (t.responses[0].kvs[0].value_len == cur_len &&
                              memcmp(t.responses[0].kvs[0].value, cur, cur_len) == 0));
        free(cur);
        cur = NULL;
        if (have_cur) {
            cur = t.responses[0].kvs[0].value;
            cur_len = t.responses[0].kvs[0].value_len;
            t.responses[0].kvs[0].value = NULL;
        }
        stratus_etcd_txn_result_free(&t);
        if (a && same) { /* parts/ held: the assignment moved on or the lease is gone */
            free(cur);
            return stratus_errf(eb, STRATUS_EEXIST, "meta: not claiming stream %" PRIu64
                                " (%s/%d): its assignment changed since revision %" PRId64
                                " or this broker's lease %" PRId64 " is gone",
                                stream, a->topic, a->partition, a->mod_revision, lease);
        }
    }
    free(cur);
    return stratus_errf(eb, STRATUS_EEXIST, "meta: claim of stream %" PRIu64 " keeps losing",
                        stream);
}

int stratus_meta_claim(struct stratus_meta *m, uint64_t stream, struct stratus_meta_claim *out,
                       struct stratus_errbuf *eb)
{
    return claim(m, stream, NULL, out, eb);
}

int stratus_meta_claim_assigned(struct stratus_meta *m, const struct stratus_meta_assign *a,
                                struct stratus_meta_claim *out, struct stratus_errbuf *eb)
{
    return claim(m, a->stream, a, out, eb);
}

int stratus_meta_load_stream(struct stratus_meta *m,
                             uint64_t stream,
                             struct stratus_index_range **ranges,
                             size_t *n,
                             int64_t *log_start,
                             uint8_t **pstate,
                             size_t *pstate_len,
                             struct stratus_errbuf *eb)
{
    char pfx[META_KEY_MAX], key[META_KEY_MAX];
    size_t plen = (size_t)snprintf(pfx, sizeof pfx, "ranges/%020" PRIu64 "/", stream);
    struct stratus_etcd_op op = {
        .type = STRATUS_ETCD_OP_RANGE, .key = pfx, .key_len = plen, .flags = STRATUS_ETCD_PREFIX};
    struct stratus_etcd_resp r;
    int64_t rev;
    int rc;

    *ranges = NULL;
    *n = 0;
    *log_start = 0;
    *pstate = NULL;
    *pstate_len = 0;
    if ((rc = stratus_etcd_range(m->etcd, &op, &r, eb)) < 0)
        return rc;
    rev = r.revision;
    *ranges = xcalloc(r.n_kvs ? r.n_kvs : 1, sizeof **ranges);
    for (size_t i = 0; i < r.n_kvs; i++) {
        if (decode_range(stream, r.kvs[i].value, r.kvs[i].value_len, &(*ranges)[i]) < 0) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "meta: bad value of %s", r.kvs[i].key);
            stratus_etcd_resp_free(&r);
            goto fail;
        }
    }
    *n = r.n_kvs;
    stratus_etcd_resp_free(&r);

    /* logstart and pstate at the same revision: one consistent state of the stream. */
    op.key = key;
    op.flags = 0;
    op.revision = rev;
    op.key_len = key_u64(key, "logstart", stream);
    if ((rc = stratus_etcd_range(m->etcd, &op, &r, eb)) < 0)
        goto fail;
    if (r.n_kvs == 1 && parse_dec_i64(r.kvs[0].value, r.kvs[0].value_len, log_start) < 0) {
        rc = stratus_errf(eb, STRATUS_ECORRUPT, "meta: bad value of %s", key);
        stratus_etcd_resp_free(&r);
        goto fail;
    }
    stratus_etcd_resp_free(&r);
    op.key_len = key_u64(key, "pstate", stream);
    if ((rc = stratus_etcd_range(m->etcd, &op, &r, eb)) < 0)
        goto fail;
    if (r.n_kvs == 1) {
        *pstate = (uint8_t *)r.kvs[0].value;
        *pstate_len = r.kvs[0].value_len;
        r.kvs[0].value = NULL;
    }
    stratus_etcd_resp_free(&r);
    return 0;
fail:
    free(*ranges);
    *ranges = NULL;
    *n = 0;
    *log_start = 0;
    return rc;
}

/* Runs ops only while the claim holds: 0, EEXIST (fenced) or the txn's error. */
static int fenced_txn(struct stratus_meta *m,
                      const struct stratus_meta_claim *claim,
                      const struct stratus_etcd_op *ops,
                      size_t n,
                      const char *what,
                      struct stratus_errbuf *eb)
{
    char pkey[META_KEY_MAX];
    struct stratus_etcd_cmp cmp = claim_cmp(claim, pkey);
    struct stratus_etcd_txn_result t;
    int rc;
    if ((rc = stratus_etcd_txn(m->etcd, &cmp, 1, ops, n, NULL, 0, &t, eb)) < 0)
        return rc;
    rc = t.succeeded
             ? 0
             : stratus_errf(eb, STRATUS_EEXIST,
                            "meta: %s of stream %" PRIu64 " fenced (epoch %d is not current)", what,
                            claim->stream, claim->epoch);
    stratus_etcd_txn_result_free(&t);
    return rc;
}

int stratus_meta_release(struct stratus_meta *m,
                         const struct stratus_meta_claim *claim,
                         const char *topic,
                         int32_t partition,
                         int32_t new_owner,
                         struct stratus_errbuf *eb)
{
    char pkey[META_KEY_MAX], akey[META_KEY_MAX], *pval, *aval;
    size_t pvlen, avlen;
    struct stratus_meta_part p;
    int rc;

    if (decode_part(claim->value, claim->value_len, &p) < 0)
        return stratus_errf(eb, STRATUS_EINVAL, "meta: release of a malformed claim");
    p.released = 1;
    pval = encode_part(&p, &pvlen);
    aval = encode_assign(new_owner, -1, &avlen);
    {
        struct stratus_etcd_op ops[2] = {
            {.type = STRATUS_ETCD_OP_PUT,
             .key = pkey,
             .key_len = key_u64(pkey, "parts", claim->stream),
             .value = pval,
             .value_len = pvlen},
            {.type = STRATUS_ETCD_OP_PUT,
             .key = akey,
             .key_len = key_tp(akey, "assign", topic, partition),
             .value = aval,
             .value_len = avlen},
        };
        rc = fenced_txn(m, claim, ops, 2, "release", eb);
    }
    free(pval);
    free(aval);
    return rc;
}

int stratus_meta_set_log_start(struct stratus_meta *m,
                               const struct stratus_meta_claim *claim,
                               int64_t log_start,
                               struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX], val[24];
    struct stratus_etcd_op op = {.type = STRATUS_ETCD_OP_PUT,
                                 .key = key,
                                 .key_len = key_u64(key, "logstart", claim->stream),
                                 .value = val,
                                 .value_len =
                                     (size_t)snprintf(val, sizeof val, "%" PRId64, log_start)};
    return fenced_txn(m, claim, &op, 1, "log start", eb);
}

/* Ops per trim txn: under etcd's 128 with room to spare (the design's ~120). */
#define META_TRIM_MAX_OPS 120

int stratus_meta_trim(struct stratus_meta *m,
                      const struct stratus_meta_claim *claim,
                      int64_t log_start,
                      const struct stratus_index_range *dropped,
                      size_t n,
                      struct stratus_errbuf *eb)
{
    const size_t per_txn = (META_TRIM_MAX_OPS - 1) / 2; /* two ops per range, one logstart */
    struct stratus_etcd_op *ops = xcalloc(2 * per_txn + 1, sizeof *ops);
    char(*keys)[2][META_KEY_MAX] = xcalloc(per_txn, sizeof *keys);
    char lkey[META_KEY_MAX], lval[24];
    size_t done = 0;
    int rc = 0;

    do {
        size_t k = n - done < per_txn ? n - done : per_txn, no = 0;
        /* the log start this txn commits: past its last range, or the target in the last txn */
        int64_t ls = done + k == n ? log_start : dropped[done + k - 1].last_offset + 1;
        for (size_t i = 0; i < k; i++) {
            const struct stratus_index_range *r = &dropped[done + i];
            ops[no++] = (struct stratus_etcd_op){
                .type = STRATUS_ETCD_OP_DELETE,
                .key = keys[i][0],
                .key_len = key_range(keys[i][0], claim->stream, r->last_offset)};
            ops[no++] = (struct stratus_etcd_op){
                .type = STRATUS_ETCD_OP_PUT,
                .key = keys[i][1],
                .key_len = key_deadrange(keys[i][1], r->object_id, claim->stream, r->last_offset),
                .value = "",
                .value_len = 0};
        }
        ops[no++] = (struct stratus_etcd_op){
            .type = STRATUS_ETCD_OP_PUT,
            .key = lkey,
            .key_len = key_u64(lkey, "logstart", claim->stream),
            .value = lval,
            .value_len = (size_t)snprintf(lval, sizeof lval, "%" PRId64, ls)};
        if ((rc = fenced_txn(m, claim, ops, no, "trim", eb)) < 0)
            break;
        done += k;
    } while (done < n);
    free(ops);
    free(keys);
    return rc;
}

/* ---- objects ------------------------------------------------------------------------------ */

int stratus_meta_prepare_object(struct stratus_meta *m,
                                uint64_t object_id,
                                const char *key,
                                struct stratus_errbuf *eb)
{
    char k[META_KEY_MAX], *val;
    size_t klen = key_u64(k, "prepared", object_id), vlen;
    json_t *o = json_object();
    int rc;
    json_object_set_new(o, "key", json_string(key));
    json_object_set_new(o, "node", json_integer(m->node_id));
    json_object_set_new(o, "ms", json_integer(stratus_wall_ms()));
    val = json_take_dump(o, &vlen);
    rc = stratus_etcd_put(m->etcd, k, klen, val, vlen, 0, 0, NULL, eb);
    free(val);
    return rc;
}

int stratus_meta_commit_object(struct stratus_meta *m,
                               const struct stratus_index_object *obj,
                               const struct stratus_meta_commit_item *items,
                               size_t n,
                               int *lost,
                               size_t *committed,
                               struct stratus_errbuf *eb)
{
    char okey[META_KEY_MAX], prkey[META_KEY_MAX];
    size_t oklen = key_u64(okey, "objects", obj->object_id);
    size_t prklen = key_u64(prkey, "prepared", obj->object_id);
    /* Per item: the parts key, the ranges key, the pstate key and the range value. */
    char(*keys)[3][META_KEY_MAX] = NULL;
    char **rvals = NULL;
    size_t *rlens = NULL, nops = 2;
    struct stratus_etcd_cmp *cmps = NULL;
    struct stratus_etcd_op *ops = NULL, *fops = NULL;
    size_t *idx = NULL; /* active item of each compare */
    int any_lost = 0, rc = 0;

    *committed = 0;
    for (size_t i = 0; i < n; i++) {
        lost[i] = 0;
        nops += items[i].pstate ? 2 : 1;
    }
    if (n == 0 || !obj)
        return stratus_errf(eb, STRATUS_EINVAL, "meta: commit of no items");
    if (nops > META_ETCD_MAX_OPS)
        return stratus_errf(eb, STRATUS_EINVAL,
                            "meta: commit of %zu items needs %zu ops (etcd allows %d)", n, nops,
                            META_ETCD_MAX_OPS);
    keys = xcalloc(n, sizeof *keys);
    rvals = xcalloc(n, sizeof *rvals);
    rlens = xcalloc(n, sizeof *rlens);
    cmps = xcalloc(n, sizeof *cmps);
    fops = xcalloc(n, sizeof *fops);
    ops = xcalloc(nops, sizeof *ops);
    idx = xcalloc(n, sizeof *idx);
    for (size_t i = 0; i < n; i++)
        rvals[i] = encode_range(items[i].range, &rlens[i]);

    for (;;) {
        size_t nc = 0, no = 0, ncommit = 0;
        char *oval;
        size_t ovlen;
        json_t *o;
        struct stratus_etcd_txn_result t;
        int progress = 0;

        for (size_t i = 0; i < n; i++) {
            const struct stratus_meta_commit_item *it = &items[i];
            if (lost[i])
                continue;
            cmps[nc] = claim_cmp(it->claim, keys[i][0]);
            fops[nc] = (struct stratus_etcd_op){
                .type = STRATUS_ETCD_OP_RANGE, .key = cmps[nc].key, .key_len = cmps[nc].key_len};
            idx[nc++] = i;
            ops[no++] = (struct stratus_etcd_op){
                .type = STRATUS_ETCD_OP_PUT,
                .key = keys[i][1],
                .key_len = key_range(keys[i][1], it->claim->stream, it->range->last_offset),
                .value = rvals[i],
                .value_len = rlens[i]};
            if (it->pstate)
                ops[no++] = (struct stratus_etcd_op){
                    .type = STRATUS_ETCD_OP_PUT,
                    .key = keys[i][2],
                    .key_len = key_u64(keys[i][2], "pstate", it->claim->stream),
                    .value = it->pstate,
                    .value_len = it->pstate_len};
            ncommit++;
        }
        if (nc == 0) {
            rc = stratus_errf(eb, STRATUS_EEXIST,
                              "meta: object %" PRIu64 ": every partition was fenced",
                              obj->object_id);
            break;
        }
        o = json_object();
        json_object_set_new(o, "key", json_string(obj->key));
        json_object_set_new(o, "size", json_integer((json_int_t)obj->size));
        json_object_set_new(o, "ranges", json_integer((json_int_t)ncommit));
        json_object_set_new(o, "node", json_integer(m->node_id));
        json_object_set_new(o, "ms",
                            json_integer(obj->created_ms ? obj->created_ms : stratus_wall_ms()));
        oval = json_take_dump(o, &ovlen);
        ops[no++] = (struct stratus_etcd_op){.type = STRATUS_ETCD_OP_PUT,
                                             .key = okey,
                                             .key_len = oklen,
                                             .value = oval,
                                             .value_len = ovlen};
        ops[no++] = (struct stratus_etcd_op){
            .type = STRATUS_ETCD_OP_DELETE, .key = prkey, .key_len = prklen};
        rc = stratus_etcd_txn(m->etcd, cmps, nc, ops, no, fops, nc, &t, eb);
        free(oval);
        if (rc < 0)
            break;
        if (t.succeeded) {
            stratus_etcd_txn_result_free(&t);
            *committed = ncommit;
            rc = any_lost ? stratus_errf(eb, STRATUS_EEXIST,
                                         "meta: object %" PRIu64 ": %zu of %zu partitions fenced",
                                         obj->object_id, n - ncommit, n)
                          : 0;
            break;
        }
        /* Some claim no longer holds: the failure branch read every parts key. */
        for (size_t j = 0; j < nc && j < t.n_responses; j++) {
            const struct stratus_etcd_resp *pr = &t.responses[j];
            const struct stratus_meta_claim *c = items[idx[j]].claim;
            if (pr->n_kvs != 1 || pr->kvs[0].value_len != c->value_len ||
                memcmp(pr->kvs[0].value, c->value, c->value_len) != 0) {
                lost[idx[j]] = 1;
                any_lost = 1;
                progress = 1;
            }
        }
        stratus_etcd_txn_result_free(&t);
        if (!progress) {
            rc = stratus_errf(eb, STRATUS_EAGAIN,
                              "meta: object %" PRIu64 ": compare failed but every claim holds",
                              obj->object_id);
            break;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(rvals[i]);
    free(rvals);
    free(rlens);
    free(keys);
    free(cmps);
    free(fops);
    free(ops);
    free(idx);
    return rc;
}

/* ---- assignment writes -------------------------------------------------------------------- */

int stratus_meta_set_assign(struct stratus_meta *m,
                            const char *topic,
                            int32_t partition,
                            int32_t owner,
                            int32_t target,
                            struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX], *val;
    size_t klen = key_tp(key, "assign", topic, partition), vlen;
    int rc;
    val = encode_assign(owner, target, &vlen);
    rc = stratus_etcd_put(m->etcd, key, klen, val, vlen, 0, 0, NULL, eb);
    free(val);
    return rc;
}

int stratus_meta_assign_cas(struct stratus_meta *m,
                            int64_t term,
                            struct stratus_meta_assign *seen,
                            int32_t owner,
                            int32_t target,
                            int consume_request,
                            struct stratus_errbuf *eb)
{
    char akey[META_KEY_MAX], rkey[META_KEY_MAX], *val;
    size_t aklen = key_tp(akey, "assign", seen->topic, seen->partition);
    size_t rklen = key_tp(rkey, "reassign", seen->topic, seen->partition), vlen;
    struct stratus_etcd_cmp cmps[2] = {
        {.key = "controller",
         .key_len = 10,
         .target = STRATUS_ETCD_CMP_CREATE,
         .result = STRATUS_ETCD_EQUAL,
         .number = term},
        {.key = akey,
         .key_len = aklen,
         .target = seen->mod_revision ? STRATUS_ETCD_CMP_MOD : STRATUS_ETCD_CMP_CREATE,
         .result = STRATUS_ETCD_EQUAL,
         .number = seen->mod_revision},
    };
    struct stratus_etcd_op ops[2] = {
        {.type = STRATUS_ETCD_OP_PUT, .key = akey, .key_len = aklen},
        {.type = STRATUS_ETCD_OP_DELETE, .key = rkey, .key_len = rklen},
    };
    struct stratus_etcd_op fop = {
        .type = STRATUS_ETCD_OP_RANGE, .key = "controller", .key_len = 10};
    struct stratus_etcd_txn_result t;
    int rc;

    if (term <= 0)
        return stratus_errf(eb, STRATUS_EINVAL, "meta: assign without a controller term");
    val = encode_assign(owner, target, &vlen);
    ops[0].value = val;
    ops[0].value_len = vlen;
    rc = stratus_etcd_txn(m->etcd, cmps, 2, ops, consume_request ? 2 : 1, &fop, 1, &t, eb);
    free(val);
    if (rc < 0)
        return rc;
    if (t.succeeded) {
        seen->owner = owner;
        seen->target = target;
        seen->mod_revision = t.revision;
    } else {
        int leads = t.n_responses == 1 && t.responses[0].n_kvs == 1 &&
                    t.responses[0].kvs[0].create_revision == term;
        rc = leads ? stratus_errf(eb, STRATUS_EEXIST, "meta: assign/%s/%d changed meanwhile",
                                  seen->topic, seen->partition)
                   : stratus_errf(eb, STRATUS_ECLOSED,
                                  "meta: term %" PRId64 " is not the controller any more", term);
    }
    stratus_etcd_txn_result_free(&t);
    return rc;
}

int stratus_meta_request_move(struct stratus_meta *m,
                              const char *topic,
                              int32_t partition,
                              int32_t target,
                              struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX], *val;
    size_t klen, vlen;
    json_t *o;
    int rc;
    if (target < 0)
        return stratus_meta_delete_request(m, topic, partition, eb);
    klen = key_tp(key, "reassign", topic, partition);
    o = json_object();
    json_object_set_new(o, "target", json_integer(target));
    val = json_take_dump(o, &vlen);
    rc = stratus_etcd_put(m->etcd, key, klen, val, vlen, 0, 0, NULL, eb);
    free(val);
    return rc;
}

int stratus_meta_delete_request(struct stratus_meta *m,
                                const char *topic,
                                int32_t partition,
                                struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX];
    size_t klen = key_tp(key, "reassign", topic, partition);
    struct stratus_etcd_resp r;
    int rc;
    if ((rc = stratus_etcd_delete(m->etcd, key, klen, 0, &r, eb)) < 0)
        return rc;
    rc = r.count > 0 ? 0
                     : stratus_errf(eb, STRATUS_ENOTFOUND, "meta: no reassignment of %s/%d", topic,
                                    partition);
    stratus_etcd_resp_free(&r);
    return rc;
}

int stratus_meta_set_drain(struct stratus_meta *m, int32_t id, int on, struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX];
    size_t klen = (size_t)snprintf(key, sizeof key, "drain/%020" PRId32, id);
    if (on)
        return stratus_etcd_put(m->etcd, key, klen, "1", 1, 0, 0, NULL, eb);
    return stratus_etcd_delete(m->etcd, key, klen, 0, NULL, eb);
}

/* ---- controller election ------------------------------------------------------------------ */

int stratus_meta_try_controller(struct stratus_meta *m, int64_t *term, struct stratus_errbuf *eb)
{
    char val[48];
    size_t vlen = (size_t)snprintf(val, sizeof val, "{\"id\":%" PRId32 "}", m->node_id);
    int64_t lease = stratus_meta_lease(m);
    struct stratus_etcd_kv leader;
    int rc;
    *term = 0;
    if (!lease)
        return stratus_errf(eb, STRATUS_EINVAL, "meta: not registered");
    rc = stratus_election_try(m->etcd, "controller", val, vlen, lease, &leader, eb);
    if (rc == 0)
        *term = leader.create_revision;
    else if (rc == STRATUS_EEXIST)
        stratus_errf(eb, STRATUS_EEXIST, "meta: the controller is %.*s", (int)leader.value_len,
                     leader.value ? leader.value : "");
    stratus_etcd_kv_free(&leader);
    return rc;
}

int stratus_meta_resign_controller(struct stratus_meta *m, int64_t term, struct stratus_errbuf *eb)
{
    return stratus_election_resign(m->etcd, "controller", term, eb);
}

/* ---- garbage collection ------------------------------------------------------------------- */

int stratus_meta_list_prepared(struct stratus_meta *m,
                               struct stratus_meta_prepared **out,
                               size_t *n,
                               struct stratus_errbuf *eb)
{
    struct stratus_etcd_op op = {.type = STRATUS_ETCD_OP_RANGE,
                                 .key = "prepared/",
                                 .key_len = 9,
                                 .flags = STRATUS_ETCD_PREFIX};
    struct stratus_etcd_resp r;
    size_t k = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = stratus_etcd_range(m->etcd, &op, &r, eb)) < 0)
        return rc;
    *out = xcalloc(r.n_kvs ? r.n_kvs : 1, sizeof **out);
    for (size_t i = 0; i < r.n_kvs; i++) {
        struct stratus_meta_prepared *p = &(*out)[k];
        json_t *o = json_parse(r.kvs[i].value, r.kvs[i].value_len);
        const char *s;
        int64_t x;
        char *end;
        p->object_id = strtoull(r.kvs[i].key + 9, &end, 10);
        if (!o || *end) {
            LOG_WARN("meta", "bad prepared key %s", r.kvs[i].key);
            json_decref(o);
            continue;
        }
        if ((s = json_string_value(json_object_get(o, "key"))))
            snprintf(p->key, sizeof p->key, "%s", s);
        p->node = json_get_i64(o, "node", &x) == 0 ? (int32_t)x : -1;
        p->ms = json_get_i64(o, "ms", &x) == 0 ? x : 0;
        json_decref(o);
        k++;
    }
    *n = k;
    stratus_etcd_resp_free(&r);
    return 0;
}

int stratus_meta_object_committed(struct stratus_meta *m,
                                  uint64_t object_id,
                                  struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX];
    size_t klen = key_u64(key, "objects", object_id);
    struct stratus_etcd_resp r;
    int rc;
    if ((rc = stratus_etcd_get(m->etcd, key, klen, &r, eb)) < 0)
        return rc;
    rc = r.n_kvs == 1;
    stratus_etcd_resp_free(&r);
    return rc;
}

int stratus_meta_delete_prepared(struct stratus_meta *m,
                                 uint64_t object_id,
                                 struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX];
    size_t klen = key_u64(key, "prepared", object_id);
    return stratus_etcd_delete(m->etcd, key, klen, 0, NULL, eb);
}

int stratus_meta_list_dead_objects(struct stratus_meta *m,
                                   uint64_t **ids,
                                   size_t *n,
                                   struct stratus_errbuf *eb)
{
    struct stratus_etcd_op op = {.type = STRATUS_ETCD_OP_RANGE,
                                 .key = "deadrange/",
                                 .key_len = 10,
                                 .flags = STRATUS_ETCD_PREFIX,
                                 .keys_only = 1};
    struct stratus_etcd_resp r;
    size_t k = 0;
    int rc;

    *ids = NULL;
    *n = 0;
    if ((rc = stratus_etcd_range(m->etcd, &op, &r, eb)) < 0)
        return rc;
    *ids = xcalloc(r.n_kvs ? r.n_kvs : 1, sizeof **ids);
    for (size_t i = 0; i < r.n_kvs; i++) {
        char *end;
        uint64_t oid;
        errno = 0;
        oid = strtoull(r.kvs[i].key + 10, &end, 10);
        if (errno || *end != '/') {
            LOG_WARN("meta", "bad deadrange key %s", r.kvs[i].key);
            continue;
        }
        if (k == 0 || (*ids)[k - 1] != oid) /* keys are sorted: one object's are together */
            (*ids)[k++] = oid;
    }
    *n = k;
    stratus_etcd_resp_free(&r);
    return 0;
}

int stratus_meta_dead_object(struct stratus_meta *m,
                             uint64_t object_id,
                             struct stratus_meta_dead_object *out,
                             struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX], pfx[META_KEY_MAX];
    struct stratus_etcd_op op = {
        .type = STRATUS_ETCD_OP_RANGE,
        .key = pfx,
        .key_len = (size_t)snprintf(pfx, sizeof pfx, "deadrange/%020" PRIu64 "/", object_id),
        .flags = STRATUS_ETCD_PREFIX,
        .count_only = 1};
    struct stratus_etcd_resp r;
    int rc;

    memset(out, 0, sizeof *out);
    out->object_id = object_id;
    if ((rc = stratus_etcd_range(m->etcd, &op, &r, eb)) < 0)
        return rc;
    out->dead = r.count;
    stratus_etcd_resp_free(&r);
    if ((rc = stratus_etcd_get(m->etcd, key, key_u64(key, "objects", object_id), &r, eb)) < 0)
        return rc;
    if (r.n_kvs == 1) {
        json_t *o = json_parse(r.kvs[0].value, r.kvs[0].value_len);
        const char *s = o ? json_string_value(json_object_get(o, "key")) : NULL;
        int64_t x;
        if (!s || json_get_i64(o, "ranges", &x) < 0) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "meta: bad value of %s", key);
        } else {
            out->exists = 1;
            out->ranges = x;
            snprintf(out->key, sizeof out->key, "%s", s);
        }
        json_decref(o);
    }
    stratus_etcd_resp_free(&r);
    return rc;
}

int stratus_meta_forget_object(struct stratus_meta *m,
                               uint64_t object_id,
                               struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX], pfx[META_KEY_MAX];
    struct stratus_etcd_op ops[2] = {
        {.type = STRATUS_ETCD_OP_DELETE, .key = key, .key_len = key_u64(key, "objects", object_id)},
        {.type = STRATUS_ETCD_OP_DELETE,
         .key = pfx,
         .key_len = (size_t)snprintf(pfx, sizeof pfx, "deadrange/%020" PRIu64 "/", object_id),
         .flags = STRATUS_ETCD_PREFIX},
    };
    struct stratus_etcd_txn_result t;
    int rc = stratus_etcd_txn(m->etcd, NULL, 0, ops, 2, NULL, 0, &t, eb);
    if (rc < 0)
        return rc;
    stratus_etcd_txn_result_free(&t);
    return 0;
}

/* ---- group offsets ------------------------------------------------------------------------ */

int stratus_meta_group_load(struct stratus_meta *m,
                            const char *group,
                            uint8_t **val,
                            size_t *len,
                            struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX];
    size_t klen = (size_t)snprintf(key, sizeof key, "groups/%s", group);
    struct stratus_etcd_resp r;
    int rc;
    *val = NULL;
    *len = 0;
    if (klen >= sizeof key)
        return stratus_errf(eb, STRATUS_EINVAL, "meta: group name too long");
    if ((rc = stratus_etcd_get(m->etcd, key, klen, &r, eb)) < 0)
        return rc;
    if (r.n_kvs != 1) {
        stratus_etcd_resp_free(&r);
        return stratus_errf(eb, STRATUS_ENOTFOUND, "meta: no offsets of group %s", group);
    }
    *val = (uint8_t *)r.kvs[0].value;
    *len = r.kvs[0].value_len;
    r.kvs[0].value = NULL;
    stratus_etcd_resp_free(&r);
    return 0;
}

int stratus_meta_group_store(struct stratus_meta *m,
                             const struct stratus_meta_claim *claim,
                             const char *group,
                             const uint8_t *val,
                             size_t len,
                             struct stratus_errbuf *eb)
{
    char key[META_KEY_MAX];
    size_t klen = (size_t)snprintf(key, sizeof key, "groups/%s", group);
    struct stratus_etcd_op op = {.type = val ? STRATUS_ETCD_OP_PUT : STRATUS_ETCD_OP_DELETE,
                                 .key = key,
                                 .key_len = klen,
                                 .value = val,
                                 .value_len = val ? len : 0};
    if (klen >= sizeof key)
        return stratus_errf(eb, STRATUS_EINVAL, "meta: group name too long");
    return fenced_txn(m, claim, &op, 1, "group store", eb);
}
