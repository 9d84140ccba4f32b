/* coldread.c - reads of partition data from stream-set objects, on the I/O pool.
 *
 * The offset index gives the first range with last offset >= the wanted offset (one seek);
 * ranges are read through the cache plugin in fixed 1 MiB blocks aligned to the object start,
 * keyed "<object key>#<block offset>", and a miss is one ranged stratus_storage_get of the
 * block, inserted into the cache. Batches are walked by their headers from the range start,
 * and whole batches are returned from the one holding the offset. A consumer reading on starts
 * where its previous read stopped (the partition's cold_* hint: no walk over the range's earlier
 * headers, each of which could cost a 1 MiB block copy out of the cache), and each thread keeps
 * its last block between reads. No partition lock is held during I/O; nothing here touches the
 * WAL.
 * Blocks are reference-counted (struct cold_blk): the read that loaded one, its thread (the
 * last block it read) and, for Fetch, each response piece lent from it (no copy out of the
 * block: the network thread sends from it). While held, a block is found by key (the stream's
 * live list) before the read-ahead slots and the cache. When the last holder lets go, a block
 * read from storage goes to a cache with insert_take (ABI 1.1) without a copy, on the I/O
 * pool; a cache without insert_take got a copy when it was read.
 * Read-ahead: a consumer reading on (a read that began where the partition's last one stopped,
 * and stopped before the data ran out) gets the blocks of its next read loaded on the I/O pool
 * once its response has gone out, into a few stream-wide slots (conf.readahead_blocks). The
 * next read takes a loaded block from its slot without a copy and waits for one still loading
 * instead of reading it twice. Without it each fetch of a catch-up waited for its blocks at
 * queue depth 1 while the disk sat idle between fetches. A slot wanted while all are full
 * recycles the oldest loaded block into the cache (insert_take), so an unclaimed block is not
 * lost.
 * Every storage read goes through the cold-read gate (coldgate.h). While the gate holds cold
 * reads below the pool's size -- they measurably slow the WAL's writes, the objects sharing its
 * disk -- a block is read in COLD_PIECE pieces, one gated get each: a WAL write then queues
 * behind a 256 KiB read instead of a 1 MiB one: beside a catch-up reader at workload 4 the
 * WAL's mean write went from 1.25-1.53 ms to 0.68-0.89 (docs/benchmarks.md, round 20).
 * Unlimited (no produce, or objects elsewhere) a block stays one get: always in pieces, a
 * lone catch-up read ran ~10% slower.
 * Time lookups (ListOffsets by timestamp) start at the range the time index ('X', index.c)
 * names: the first entry with timestamp >= ts is the first range whose max timestamp >= ts
 * (for -3, the last entry is the first range with the largest one), one seek whatever the
 * number of ranges. From there ranges are skipped by their index max timestamp and batches by
 * their header maxTimestamp, and the candidate batch is read whole and its records walked
 * (decompressing it) for the exact record, as Kafka's time index lookup does. The entries
 * describe the ranges the index holds, which retention drops whole as it moves the log
 * start; should the log start ever sit past an entry's range (a log start moved without
 * dropping ranges), the lookup starts at the log start and scans forward: right, only slower.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "objfmt.h"
#include "plugin/plugin.h"
#include "proto/recordit.h"
#include "proto/records.h"
#include "stream_int.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

enum { RA_FREE, RA_LOADING, RA_READY };

/* One read-ahead slot of the stream (ra_lock). */
struct stratus_ra_slot {
    char key[96];   /* the block's cache key, "<object key>#<block offset>" (not FREE) */
    uint8_t *buf;   /* READY: the block; NULL otherwise */
    size_t len;     /* READY */
    uint64_t stamp; /* READY: load order, the oldest is recycled first */
    int state;
};

/* A block of an object, shared by the reader that loaded it, its thread (which keeps its last
 * block between reads) and the Fetch responses it is lent to. The last reference gives a block
 * read from storage to the cache (insert_take, no copy; on the I/O pool, since a response lets
 * go on a network thread and a cache plugin may take its time) or frees it. */
struct cold_blk {
    atomic_int refs;
    uint8_t *buf; /* stratus_cache_buf_alloc */
    size_t len;
    _Atomic(struct stratus_stream *) s; /* NULL once the stream closed (a thread's last block) */
    uint64_t uid; /* the stream's */
    uint64_t off; /* in the object */
    char key[64]; /* the object's key */
    _Atomic(struct stratus_cache *) cache; /* non-NULL: it gets the block at the last unref */
};

static struct cold_blk *blk_new(struct stratus_stream *s, const char *key, uint64_t off,
                                uint8_t *buf, size_t len, int fresh)
{
    struct cold_blk *b = malloc(sizeof *b);
    if (!b) {
        stratus_cache_buf_free(buf);
        return NULL;
    }
    atomic_init(&b->refs, 1);
    b->buf = buf;
    b->len = len;
    atomic_init(&b->s, s);
    b->uid = s->uid;
    b->off = off;
    snprintf(b->key, sizeof b->key, "%s", key);
    atomic_init(&b->cache, fresh ? s->cache : NULL);
    pthread_mutex_lock(&s->live_lock);
    if (s->nlive == s->live_cap) {
        size_t ncap = s->live_cap ? s->live_cap * 2 : 64;
        struct cold_blk **nv = realloc(s->live, ncap * sizeof *nv);
        if (nv) {
            s->live = nv;
            s->live_cap = ncap;
        }
    }
    if (s->nlive < s->live_cap)
        s->live[s->nlive++] = b;
    pthread_mutex_unlock(&s->live_lock);
    return b;
}

/* A reference to the held block off of object key, or NULL. */
static struct cold_blk *live_get(struct stratus_stream *s, const char *key, uint64_t off)
{
    struct cold_blk *found = NULL;
    pthread_mutex_lock(&s->live_lock);
    for (size_t i = 0; i < s->nlive; i++) {
        struct cold_blk *b = s->live[i];
        if (b->off == off && strcmp(b->key, key) == 0) {
            int n = atomic_load(&b->refs);
            /* 0: its last holder is letting go of it (and waits for the lock to remove it) */
            while (n > 0 && !atomic_compare_exchange_weak(&b->refs, &n, n + 1))
                ;
            if (n > 0)
                found = b;
            break;
        }
    }
    pthread_mutex_unlock(&s->live_lock);
    return found;
}

static void live_del(struct stratus_stream *s, struct cold_blk *b)
{
    pthread_mutex_lock(&s->live_lock);
    for (size_t i = 0; i < s->nlive; i++)
        if (s->live[i] == b) {
            s->live[i] = s->live[--s->nlive];
            break;
        }
    pthread_mutex_unlock(&s->live_lock);
}

static void blk_free(struct cold_blk *b)
{
    stratus_cache_buf_free(b->buf);
    free(b);
}

/* I/O pool job: a block nobody holds any more goes to the cache. */
static void blk_insert_job(void *arg)
{
    struct cold_blk *b = arg;
    char ck[96];
    snprintf(ck, sizeof ck, "%s#%llu", b->key, (unsigned long long)b->off);
    stratus_cache_insert_take(atomic_load(&b->cache), ck, b->buf, b->len);
    free(b);
}

/* stratus_lent.unref of a block; NULL is ignored. */
static void blk_unref(void *ref)
{
    struct cold_blk *b = ref;

    struct stratus_stream *s;

    if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    s = atomic_load(&b->s);
    if (s)
        live_del(s, b);
    if (!s || !atomic_load(&b->cache))
        blk_free(b); /* not for a cache, or its stream is gone */
    else if (stratus_pool_of_thread == s)
        blk_insert_job(b); /* at once: the partition's next read may want it */
    else if (stratus_stream_submit(s, blk_insert_job, b) != 0)
        blk_free(b); /* the stream is closing */
}

/* Drops a reference without giving the block to a cache (its stream may be gone). */
static void blk_drop(struct cold_blk *b)
{
    if (b)
        atomic_store(&b->cache, NULL);
    blk_unref(b);
}

/* Reads an object block by block, through the read-ahead slots and the cache plugin. */
#define COLD_PIECE (256u << 10) /* a block's piece while the gate limits (see the top) */

/* Reads block boff of key into buf (STRATUS_BLOCK_SIZE, page-aligned) through the gate: one
 * get, or COLD_PIECE pieces while the gate limits. *got is less than the block only at the
 * end of the object; a piece at or past the end gets 0 bytes (the storage SDK's contract). */
static int gated_get(struct stratus_stream *s, const char *key, uint64_t boff, uint8_t *buf,
                     size_t *got, struct stratus_errbuf *eb)
{
    size_t done = 0;

    *got = 0;
    while (done < STRATUS_BLOCK_SIZE) {
        size_t want = STRATUS_BLOCK_SIZE - done, n = 0;
        int rc;
        if (stratus_coldgate_enter(&s->gate) && want > COLD_PIECE)
            want = COLD_PIECE;
        rc = stratus_storage_get(s->st, key, boff + done, want, buf + done, &n, eb);
        stratus_coldgate_leave(&s->gate);
        if (rc)
            return rc;
        done += n;
        if (n < want)
            break; /* the end of the object */
    }
    *got = done;
    return 0;
}

struct objreader {
    struct stratus_stream *s;
    char key[64];          /* the object being read */
    struct cold_blk *cur;  /* the block in hand (a reference), NULL */
    int tl;                /* cur goes back to the thread (cr_tl) at close */
};

/* Each thread keeps its last block between reads (objects never change once written, and ids
 * are never reused within a store; uid tells stores apart): a consumer reading on fetch after
 * fetch finds the block it stopped in without copying 1 MiB out of the cache again. */
struct cr_tl {
    struct cold_blk *blk;
    int busy;
};
static pthread_key_t cr_tl_key;
static pthread_once_t cr_tl_once = PTHREAD_ONCE_INIT;

static void cr_tl_free(void *p)
{
    struct cr_tl *t = p;
    blk_drop(t->blk); /* the thread is ending (the I/O pool stops before its cache closes) */
    free(t);
}

static void cr_tl_init(void)
{
    if (pthread_key_create(&cr_tl_key, cr_tl_free) != 0)
        cr_tl_key = (pthread_key_t)-1;
}

static struct cr_tl *cr_tl_get(void)
{
    struct cr_tl *t;
    pthread_once(&cr_tl_once, cr_tl_init);
    if (cr_tl_key == (pthread_key_t)-1)
        return NULL;
    t = pthread_getspecific(cr_tl_key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t || pthread_setspecific(cr_tl_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    return t;
}

static void objreader_open(struct objreader *r, struct stratus_stream *s)
{
    struct cr_tl *t = cr_tl_get();
    memset(r, 0, sizeof *r);
    r->s = s;
    if (t && !t->busy) {
        t->busy = 1;
        r->tl = 1;
        if (t->blk && t->blk->uid == s->uid) {
            r->cur = t->blk;
            memcpy(r->key, t->blk->key, sizeof r->key);
        } else {
            blk_drop(t->blk); /* another store's */
        }
        t->blk = NULL;
    }
}

static void objreader_close(struct objreader *r)
{
    if (r->tl) {
        struct cr_tl *t = pthread_getspecific(cr_tl_key);
        t->blk = r->cur; /* given to the cache when the thread moves on from it */
        t->busy = 0;
    } else {
        blk_unref(r->cur);
    }
    r->cur = NULL;
}

static void objreader_set(struct objreader *r, uint64_t object_id)
{
    char key[64];
    stratus_objfmt_key(object_id, key, sizeof key);
    if (strcmp(key, r->key) != 0) {
        blk_unref(r->cur);
        r->cur = NULL;
        memcpy(r->key, key, sizeof key);
    }
}

/* ---- read-ahead slots ---- */

void stratus_coldread_ra_init(struct stratus_stream *s)
{
    pthread_mutex_init(&s->live_lock, NULL);
    pthread_mutex_init(&s->ra_lock, NULL);
    pthread_cond_init(&s->ra_cond, NULL);
    s->nra = s->conf.readahead_blocks > 0 ? s->conf.readahead_blocks : 0;
    s->ra = s->nra ? xcalloc((size_t)s->nra, sizeof *s->ra) : NULL;
}

void stratus_coldread_ra_free(struct stratus_stream *s)
{
    for (int i = 0; i < s->nra; i++)
        stratus_cache_buf_free(s->ra[i].buf);
    free(s->ra);
    s->ra = NULL;
    s->nra = 0;
    pthread_cond_destroy(&s->ra_cond);
    pthread_mutex_destroy(&s->ra_lock);
    /* Blocks still held now are some thread's last one (responses and the I/O pool are gone):
     * they no longer belong to this stream nor go to its cache. */
    pthread_mutex_lock(&s->live_lock);
    for (size_t i = 0; i < s->nlive; i++) {
        atomic_store(&s->live[i]->cache, NULL);
        atomic_store(&s->live[i]->s, NULL);
    }
    free(s->live);
    s->live = NULL;
    s->nlive = s->live_cap = 0;
    pthread_mutex_unlock(&s->live_lock);
    pthread_mutex_destroy(&s->live_lock);
}

static struct stratus_ra_slot *ra_find(struct stratus_stream *s, const char *ck)
{
    for (int i = 0; i < s->nra; i++)
        if (s->ra[i].state != RA_FREE && strcmp(s->ra[i].key, ck) == 0)
            return &s->ra[i];
    return NULL;
}

/* Takes the block under ck out of its slot (*buf, *len; the slot is free again); waits while
 * it is loading. 1 when taken, 0 when no slot has it. */
static int ra_take(struct stratus_stream *s, const char *ck, uint8_t **buf, size_t *len)
{
    struct stratus_ra_slot *sl;
    int taken = 0;

    if (!s->nra)
        return 0;
    pthread_mutex_lock(&s->ra_lock);
    while ((sl = ra_find(s, ck)) != NULL && sl->state == RA_LOADING)
        pthread_cond_wait(&s->ra_cond, &s->ra_lock);
    if (sl) {
        *buf = sl->buf;
        *len = sl->len;
        sl->buf = NULL;
        sl->state = RA_FREE;
        sl->key[0] = '\0';
        taken = 1;
    }
    pthread_mutex_unlock(&s->ra_lock);
    if (taken)
        atomic_fetch_add(&s->ra_used, 1);
    return taken;
}

/* Reads block boff of object okey into a free slot (or the oldest loaded one's, whose block
 * goes to the cache), unless a slot has it already. */
static void ra_load(struct stratus_stream *s, const char *okey, uint64_t boff)
{
    static atomic_uint_fast64_t stamps;
    struct stratus_ra_slot *sl = NULL;
    struct stratus_errbuf eb;
    char ck[96], old_key[96];
    uint8_t *buf, *old = NULL;
    size_t old_len = 0, got = 0;
    int rc;

    snprintf(ck, sizeof ck, "%s#%llu", okey, (unsigned long long)boff);
    pthread_mutex_lock(&s->ra_lock);
    if (ra_find(s, ck)) {
        pthread_mutex_unlock(&s->ra_lock);
        return;
    }
    for (int i = 0; i < s->nra; i++) {
        struct stratus_ra_slot *c = &s->ra[i];
        if (c->state == RA_FREE) {
            sl = c;
            break;
        }
        if (c->state == RA_READY && (!sl || c->stamp < sl->stamp))
            sl = c;
    }
    if (!sl) { /* every slot is loading */
        pthread_mutex_unlock(&s->ra_lock);
        return;
    }
    if (sl->state == RA_READY) {
        memcpy(old_key, sl->key, sizeof old_key);
        old = sl->buf;
        old_len = sl->len;
        sl->buf = NULL;
    }
    sl->state = RA_LOADING;
    memcpy(sl->key, ck, sizeof ck);
    pthread_mutex_unlock(&s->ra_lock);

    if (old) { /* never taken: keep it in the cache */
        if (s->cache)
            stratus_cache_insert_take(s->cache, old_key, old, old_len);
        else
            stratus_cache_buf_free(old);
    }
    buf = stratus_cache_buf_alloc(STRATUS_BLOCK_SIZE);
    if (buf) {
        rc = gated_get(s, okey, boff, buf, &got, &eb);
    } else {
        rc = STRATUS_ENOMEM;
    }
    pthread_mutex_lock(&s->ra_lock);
    if (rc == 0 && got > 0) {
        sl->buf = buf;
        sl->len = got;
        sl->stamp = atomic_fetch_add(&stamps, 1);
        sl->state = RA_READY;
    } else { /* the read itself will try again, and say why */
        stratus_cache_buf_free(buf);
        sl->state = RA_FREE;
        sl->key[0] = '\0';
    }
    pthread_cond_broadcast(&s->ra_cond);
    pthread_mutex_unlock(&s->ra_lock);
    if (rc == 0 && got > 0)
        atomic_fetch_add(&s->ra_blocks, 1);
}

static int objreader_load(struct objreader *r, uint64_t boff, struct stratus_errbuf *eb)
{
    struct stratus_stream *s = r->s;
    char ck[96];
    size_t len = 0, got = 0;
    uint8_t *buf = NULL;
    int rc, fresh = 0;

    if (r->cur && r->cur->off == boff)
        return 0;
    blk_unref(r->cur); /* a block read from storage goes to the cache once nobody holds it */
    r->cur = live_get(s, r->key, boff); /* another read's, or lent to a response */
    if (r->cur)
        return 0;
    snprintf(ck, sizeof ck, "%s#%llu", r->key, (unsigned long long)boff);
    if (ra_take(s, ck, &buf, &got)) {
        fresh = 1;
    } else if ((r->cur = live_get(s, r->key, boff)) != NULL) { /* taken from its slot just now */
        return 0;
    } else {
        buf = stratus_cache_buf_alloc(STRATUS_BLOCK_SIZE);
        if (!buf)
            return stratus_errf(eb, STRATUS_ENOMEM, "cold read: no memory for a block buffer");
        if (s->cache && stratus_cache_lookup(s->cache, ck, buf, STRATUS_BLOCK_SIZE, &len) == 0 &&
            len > 0 && len <= STRATUS_BLOCK_SIZE) {
            got = len;
        } else {
            rc = gated_get(s, r->key, boff, buf, &got, eb);
            if (rc == 0 && got == 0)
                rc = stratus_errf(eb, STRATUS_ECORRUPT, "%s: read past the end at %llu", r->key,
                                  (unsigned long long)boff);
            if (rc) {
                stratus_cache_buf_free(buf);
                return rc;
            }
            fresh = 1;
        }
    }
    /* a cache that takes buffers gets a new block when its last holder lets go; others copy */
    if (fresh && s->cache && !stratus_cache_takes(s->cache)) {
        stratus_cache_insert(s->cache, ck, buf, got);
        fresh = 0;
    }
    r->cur = blk_new(s, r->key, boff, buf, got, fresh && s->cache);
    if (!r->cur)
        return stratus_errf(eb, STRATUS_ENOMEM, "cold read: out of memory");
    return 0;
}

/* The bytes at off of the object, as far as they go in their block (at most len): *d, *n. */
static int objreader_piece(struct objreader *r, uint64_t off, size_t len, const uint8_t **d,
                           size_t *n, struct stratus_errbuf *eb)
{
    uint64_t boff = off - off % STRATUS_BLOCK_SIZE;
    size_t in;
    int rc = objreader_load(r, boff, eb);
    if (rc)
        return rc;
    in = (size_t)(off - boff);
    if (in >= r->cur->len)
        return stratus_errf(eb, STRATUS_ECORRUPT, "%s: short object at %llu", r->key,
                            (unsigned long long)off);
    *d = r->cur->buf + in;
    *n = r->cur->len - in < len ? r->cur->len - in : len;
    return 0;
}

/* Copies len bytes at off of the object into dst. */
static int objreader_read(struct objreader *r, uint64_t off, size_t len, uint8_t *dst,
                          struct stratus_errbuf *eb)
{
    while (len) {
        const uint8_t *d = NULL;
        size_t n = 0;
        int rc = objreader_piece(r, off, len, &d, &n, eb);
        if (rc)
            return rc;
        memcpy(dst, d, n);
        dst += n;
        off += n;
        len -= n;
    }
    return 0;
}

/* Pieces of blocks lent to a reader, each holding a reference to its block. */
struct lendv {
    struct stratus_lent *v;
    int n, cap;
};

/* Lends len bytes at off of the object: appended to lv as pieces of the blocks (a piece that
 * continues the last one in the same block extends it). */
static int objreader_lend(struct objreader *r, uint64_t off, size_t len, struct lendv *lv,
                          struct stratus_errbuf *eb)
{
    while (len) {
        struct stratus_lent *last = lv->n ? &lv->v[lv->n - 1] : NULL;
        const uint8_t *d = NULL;
        size_t n = 0;
        int rc = objreader_piece(r, off, len, &d, &n, eb);
        if (rc)
            return rc;
        if (last && last->ref == r->cur && last->data + last->len == d) {
            last->len += n;
        } else {
            if (lv->n == lv->cap) {
                int ncap = lv->cap ? lv->cap * 2 : 4;
                struct stratus_lent *nv = realloc(lv->v, (size_t)ncap * sizeof *nv);
                if (!nv)
                    return stratus_errf(eb, STRATUS_ENOMEM, "cold read: out of memory");
                lv->v = nv;
                lv->cap = ncap;
            }
            atomic_fetch_add_explicit(&r->cur->refs, 1, memory_order_relaxed);
            lv->v[lv->n++] = (struct stratus_lent){d, n, r->cur, blk_unref};
        }
        off += n;
        len -= n;
    }
    return 0;
}

struct bhdr {
    int64_t base, last, max_ts;
    uint32_t size;
};

static int read_bhdr(struct objreader *r, uint64_t pos, uint64_t end, struct bhdr *h,
                     struct stratus_errbuf *eb)
{
    uint8_t b[STRATUS_BATCH_HEADER_SIZE];
    int32_t blen;
    int rc;

    if (end - pos < STRATUS_BATCH_HEADER_SIZE)
        return stratus_errf(eb, STRATUS_ECORRUPT, "%s: truncated batch at %llu", r->key,
                            (unsigned long long)pos);
    rc = objreader_read(r, pos, sizeof b, b, eb);
    if (rc)
        return rc;
    h->base = (int64_t)stratus_be64_get(b);
    blen = (int32_t)stratus_be32_get(b + 8);
    h->last = h->base + (int32_t)stratus_be32_get(b + 23);
    h->max_ts = (int64_t)stratus_be64_get(b + 35);
    if (blen < STRATUS_BATCH_HEADER_SIZE - 12 || (uint64_t)blen + 12 > end - pos)
        return stratus_errf(eb, STRATUS_ECORRUPT, "%s: bad batch length %d at %llu", r->key,
                            blen, (unsigned long long)pos);
    h->size = (uint32_t)blen + 12;
    return 0;
}

int stratus_coldread(struct stratus_partition *p, int64_t offset, size_t max_bytes, int min_one,
                     int64_t hw, uint8_t **out, size_t *len, struct stratus_lent **segs,
                     int *nsegs, int64_t *next_offset, int *sequential,
                     struct stratus_errbuf *eb)
{
    struct stratus_stream *s = p->s;
    struct stratus_index_iter *it = stratus_index_iter_new(s->idx);
    uint8_t key[STRATUS_IDX_KEY_MAX], *buf = NULL;
    size_t klen = stratus_index_key_range(key, p->stream_id, offset), total = 0, cap = 0;
    struct objreader r;
    struct lendv lv = {0};
    int found = 0, rc = 0, full = 0;

    uint64_t hint_obj = 0, hint_pos = 0, stop_obj = 0, stop_pos = 0;
    int hint = 0, stopped = 0, continued;

    *next_offset = offset;
    if (sequential)
        *sequential = 0;
    pthread_mutex_lock(&p->lock);
    if (p->cold_have && p->cold_off == offset) {
        hint = 1;
        hint_obj = p->cold_obj;
        hint_pos = p->cold_pos;
    }
    pthread_mutex_unlock(&p->lock);
    continued = hint;
    objreader_open(&r, s);
    for (stratus_index_iter_seek(it, key, klen); !full && stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it)) {
        struct stratus_index_range rg;
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl), *v = stratus_index_iter_value(it, &vl);
        uint64_t pos, end;
        int hinted;

        if (stratus_index_range_decode(k, kl, v, vl, &rg) != 0) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "index: corrupt range of stream %llu",
                              (unsigned long long)p->stream_id);
            goto out;
        }
        if (rg.base_offset >= hw)
            break;
        found = 1;
        objreader_set(&r, rg.object_id);
        pos = rg.position;
        end = rg.position + rg.length;
        /* where the previous read of this partition stopped, when it asked for this offset:
         * no walk over the range's earlier batch headers (and their blocks) */
        hinted = hint && hint_obj == rg.object_id && hint_pos > pos && hint_pos < end;
        if (hinted)
            pos = hint_pos;
        hint = 0;
        while (pos < end) {
            struct bhdr h = {0};
            rc = read_bhdr(&r, pos, end, &h, eb);
            if (rc)
                goto out;
            if (hinted) {
                hinted = 0;
                if (h.base > offset || h.last < offset) { /* not what it said: walk */
                    pos = rg.position;
                    continue;
                }
            }
            if (h.last < offset) {
                pos += h.size;
                continue;
            }
            if (h.base >= hw || (total + h.size > max_bytes && !(min_one && total == 0))) {
                full = 1;
                stopped = total > 0;
                stop_obj = rg.object_id;
                stop_pos = pos;
                break;
            }
            if (segs) {
                rc = objreader_lend(&r, pos, h.size, &lv, eb);
                if (rc)
                    goto out;
            } else if (total + h.size > cap) {
                size_t ncap = cap ? cap * 2 : 65536;
                uint8_t *nb;
                while (ncap < total + h.size)
                    ncap *= 2;
                nb = realloc(buf, ncap);
                if (!nb) {
                    rc = stratus_errf(eb, STRATUS_ENOMEM, "cold read: out of memory");
                    goto out;
                }
                buf = nb;
                cap = ncap;
            }
            if (!segs) {
                rc = objreader_read(&r, pos, h.size, buf + total, eb);
                if (rc)
                    goto out;
            }
            total += h.size;
            pos += h.size;
            *next_offset = h.last + 1;
        }
    }
    rc = stratus_index_iter_status(it, eb);
    if (rc == 0 && !found)
        rc = STRATUS_ENOTFOUND;
    if (rc == 0 && stopped) {
        pthread_mutex_lock(&p->lock);
        p->cold_have = 1;
        p->cold_obj = stop_obj;
        p->cold_pos = stop_pos;
        p->cold_off = *next_offset;
        pthread_mutex_unlock(&p->lock);
        if (sequential)
            *sequential = continued;
    }
out:
    stratus_index_iter_free(it);
    objreader_close(&r);
    if (rc) {
        free(buf);
        stratus_lent_release(lv.v, lv.n);
        return rc;
    }
    *out = buf;
    *len = total;
    if (segs) {
        *segs = lv.v;
        *nsegs = lv.n;
    }
    return 0;
}

void stratus_coldread_ahead(struct stratus_partition *p, int64_t offset, size_t max_bytes,
                            int64_t hw)
{
    struct stratus_stream *s = p->s;
    struct stratus_index_iter *it;
    uint8_t key[STRATUS_IDX_KEY_MAX];
    size_t klen, want = max_bytes;
    uint64_t obj, pos, last_blk;
    int first = 1, nblk = 0, most = s->nra / 4 > 0 ? s->nra / 4 : 1;

    if (!s->nra)
        return;
    pthread_mutex_lock(&p->lock);
    if (!p->cold_have || p->cold_off != offset) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    obj = p->cold_obj;
    pos = p->cold_pos;
    pthread_mutex_unlock(&p->lock);
    last_blk = pos - pos % STRATUS_BLOCK_SIZE; /* the last read ended in it: it has it */
    it = stratus_index_iter_new(s->idx);
    klen = stratus_index_key_range(key, p->stream_id, offset);
    for (stratus_index_iter_seek(it, key, klen); want && stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it)) {
        struct stratus_index_range rg;
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl), *v = stratus_index_iter_value(it, &vl);
        uint64_t start, end;
        char okey[64];

        if (stratus_index_range_decode(k, kl, v, vl, &rg) != 0 || rg.base_offset >= hw)
            break;
        start = rg.position;
        end = rg.position + rg.length;
        if (first && rg.object_id == obj && pos > start && pos < end)
            start = pos;
        first = 0;
        if (end - start > want)
            end = start + want;
        want -= (size_t)(end - start);
        stratus_objfmt_key(rg.object_id, okey, sizeof okey);
        for (uint64_t b = start - start % STRATUS_BLOCK_SIZE; b < end; b += STRATUS_BLOCK_SIZE) {
            if (rg.object_id == obj && b == last_blk)
                continue;
            if (nblk++ >= most)
                goto out;
            ra_load(s, okey, b);
        }
    }
out:
    stratus_index_iter_free(it);
}

/* ---- offsets by time ---- */

int stratus_coldread_batch_time(struct stratus_partition *p, const uint8_t *batch, size_t len,
                                int64_t ts, int64_t min_offset, int64_t *offset,
                                int64_t *timestamp)
{
    struct stratus_recordit it;
    struct stratus_record rec;
    struct stratus_errbuf eb;
    int64_t best_off = -1, best_ts = -1;
    int rc;

    *offset = -1;
    *timestamp = -1;
    rc = stratus_recordit_init(&it, batch, len, 0, &eb);
    while (rc >= 0 && (rc = stratus_recordit_next(&it, &rec, &eb)) == 1) {
        if (rec.offset < min_offset)
            continue;
        if (ts == -3) {
            if (best_off < 0 || rec.timestamp > best_ts) {
                best_off = rec.offset;
                best_ts = rec.timestamp;
            }
        } else if (rec.timestamp >= ts) {
            best_off = rec.offset;
            best_ts = rec.timestamp;
            break;
        }
    }
    stratus_recordit_close(&it);
    if (rc < 0) {
        struct stratus_batch_info bi;
        if (rc == STRATUS_ENOMEM)
            return rc;
        /* A batch we cannot read record by record: answer at batch granularity. */
        LOG_WARN("stream", "offset for time topic=%s partition=%d: unreadable batch: %s",
                 p->topic, p->index, eb.msg);
        if (stratus_batch_parse(batch, len, &bi, &eb) != 0)
            return 0;
        if (ts != -3 && bi.max_timestamp < ts)
            return 0;
        if (bi.base_offset + bi.last_offset_delta < min_offset)
            return 0;
        *offset = bi.base_offset < min_offset ? min_offset : bi.base_offset;
        *timestamp = bi.max_timestamp;
        return 1;
    }
    if (best_off < 0)
        return 0;
    *offset = best_off;
    *timestamp = best_ts;
    return 1;
}

/* Reads the whole batch at pos (header h) into a new buffer. */
static int read_batch(struct objreader *r, uint64_t pos, const struct bhdr *h, uint8_t **out,
                      struct stratus_errbuf *eb)
{
    uint8_t *b = malloc(h->size);
    int rc;

    *out = NULL;
    if (!b)
        return stratus_errf(eb, STRATUS_ENOMEM, "offset for time: out of memory (%u bytes)",
                            h->size);
    rc = objreader_read(r, pos, h->size, b, eb);
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int stratus_coldread_offset_for_time(struct stratus_partition *p, int64_t ts, int64_t stop_offset,
                                     int64_t *offset, int64_t *timestamp,
                                     struct stratus_errbuf *eb)
{
    struct stratus_stream *s = p->s;
    struct stratus_index_iter *it;
    struct stratus_index_time te;
    uint8_t key[STRATUS_IDX_KEY_MAX];
    int64_t log_start, hw, start;
    size_t klen;
    struct objreader r;
    int rc = 0, done = 0;

    *offset = -1;
    *timestamp = -1;
    /* The log start before the iterator's view: ranges retention drops meanwhile are gone
     * from the view, never the other way round. */
    stratus_partition_offsets(p, &log_start, &hw, NULL);
    it = stratus_index_iter_new(s->idx);
    if (stop_offset > hw)
        stop_offset = hw;
    objreader_open(&r, s);
    rc = stratus_index_time_seek(it, p->stream_id, ts, &te, eb);
    if (rc == STRATUS_ENOTFOUND) { /* no range reaches ts */
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    start = te.base_offset > log_start ? te.base_offset : log_start;
    klen = stratus_index_key_range(key, p->stream_id, start);
    for (stratus_index_iter_seek(it, key, klen); !done && stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it)) {
        struct stratus_index_range rg;
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl), *v = stratus_index_iter_value(it, &vl);
        uint64_t pos, end;

        if (stratus_index_range_decode(k, kl, v, vl, &rg) != 0) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "index: corrupt range");
            goto out;
        }
        if (rg.base_offset >= stop_offset)
            break;
        if (rg.max_timestamp < ts)
            continue;
        /* The first batch of the range with a record at or after ts. */
        objreader_set(&r, rg.object_id);
        pos = rg.position;
        end = rg.position + rg.length;
        while (pos < end) {
            struct bhdr h = {0};
            uint8_t *batch;
            int found;
            rc = read_bhdr(&r, pos, end, &h, eb);
            if (rc)
                goto out;
            if (h.base >= stop_offset) {
                done = 1;
                break;
            }
            if (h.last < log_start || h.max_ts < ts) {
                pos += h.size;
                continue;
            }
            rc = read_batch(&r, pos, &h, &batch, eb);
            if (rc)
                goto out;
            found = stratus_coldread_batch_time(p, batch, h.size, ts, log_start, offset,
                                                timestamp);
            free(batch);
            if (found < 0) {
                rc = stratus_errf(eb, found, "offset for time: out of memory");
                goto out;
            }
            if (found) {
                if (*offset >= stop_offset) { /* past what the caller already has */
                    *offset = -1;
                    *timestamp = -1;
                }
                done = 1;
                break;
            }
            pos += h.size;
        }
    }
    if (!done)
        rc = stratus_index_iter_status(it, eb);
out:
    objreader_close(&r);
    stratus_index_iter_free(it);
    return rc;
}

/* The largest header max timestamp of the batches of range rg that end at or after log_start
 * and start below hw; *found = 0 when there is none. */
static int range_tail_max(struct objreader *r, const struct stratus_index_range *rg,
                          int64_t log_start, int64_t hw, int64_t *max_ts, int *found,
                          struct stratus_errbuf *eb)
{
    uint64_t pos = rg->position, end = rg->position + rg->length;

    *found = 0;
    while (pos < end) {
        struct bhdr h = {0};
        int rc = read_bhdr(r, pos, end, &h, eb);
        if (rc)
            return rc;
        if (h.base >= hw)
            break;
        if (h.last >= log_start && (!*found || h.max_ts > *max_ts)) {
            *max_ts = h.max_ts;
            *found = 1;
        }
        pos += h.size;
    }
    return 0;
}

int stratus_coldread_max_time_batch(struct stratus_partition *p, uint8_t **batch, size_t *len,
                                    int64_t *max_ts, struct stratus_errbuf *eb)
{
    struct stratus_stream *s = p->s;
    struct stratus_index_iter *it;
    struct stratus_index_range best = {0};
    struct stratus_index_time te;
    uint8_t key[STRATUS_IDX_KEY_MAX];
    int64_t log_start, hw;
    size_t klen;
    struct objreader r;
    int have = 0, rc = 0;

    *batch = NULL;
    *len = 0;
    *max_ts = -1;
    stratus_partition_offsets(p, &log_start, &hw, NULL); /* before the view, as above */
    it = stratus_index_iter_new(s->idx);
    objreader_open(&r, s);
    /* The time index's last entry is the first range with the largest max timestamp. */
    rc = stratus_index_time_last(it, p->stream_id, &te, eb);
    if (rc == STRATUS_ENOTFOUND) {
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    if (te.base_offset >= log_start && te.base_offset < hw) {
        klen = stratus_index_key_range(key, p->stream_id, te.last_offset);
        stratus_index_iter_seek(it, key, klen);
        if (stratus_index_iter_has_prefix(it, key, 9)) {
            size_t kl, vl;
            const uint8_t *k = stratus_index_iter_key(it, &kl),
                          *v = stratus_index_iter_value(it, &vl);
            if (stratus_index_range_decode(k, kl, v, vl, &best) == 0 &&
                best.base_offset == te.base_offset && best.last_offset == te.last_offset &&
                best.max_timestamp == te.timestamp)
                have = 1;
        }
    }
    /* Otherwise (the log start inside or past that range, or an entry that disagrees with
     * its range) every range from the log start is looked at. */
    klen = stratus_index_key_range(key, p->stream_id, log_start);
    if (!have)
        stratus_index_iter_seek(it, key, klen);
    for (int scan = !have; scan && stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it)) {
        struct stratus_index_range rg;
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl), *v = stratus_index_iter_value(it, &vl);
        if (stratus_index_range_decode(k, kl, v, vl, &rg) != 0) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "index: corrupt range");
            goto out;
        }
        if (rg.base_offset >= hw)
            break;
        if (rg.base_offset < log_start) {
            /* The range holding the log start: its index max may come from batches below it,
             * so it counts by the batches at or after the log start. */
            int any = 0;
            objreader_set(&r, rg.object_id);
            rc = range_tail_max(&r, &rg, log_start, hw, &rg.max_timestamp, &any, eb);
            if (rc)
                goto out;
            if (!any)
                continue;
        }
        if (!have || rg.max_timestamp > best.max_timestamp) {
            best = rg;
            have = 1;
        }
    }
    rc = stratus_index_iter_status(it, eb);
    if (rc || !have)
        goto out;
    /* The first batch of that range with the range's largest max timestamp. */
    {
        uint64_t pos = best.position, end = best.position + best.length, bpos = 0;
        struct bhdr h, bh = {0};
        int found = 0;
        objreader_set(&r, best.object_id);
        while (pos < end) {
            rc = read_bhdr(&r, pos, end, &h, eb);
            if (rc)
                goto out;
            if (h.base >= hw)
                break;
            if (h.last >= log_start && (!found || h.max_ts > bh.max_ts)) {
                bh = h;
                bpos = pos;
                found = 1;
            }
            pos += h.size;
        }
        if (!found)
            goto out;
        rc = read_batch(&r, bpos, &bh, batch, eb);
        if (rc)
            goto out;
        *len = bh.size;
        *max_ts = bh.max_ts;
    }
out:
    objreader_close(&r);
    stratus_index_iter_free(it);
    return rc;
}
