/* walobj.c - the object WAL ([wal] type = object, see wal.h): group-committed appends PUT as
 * objects of the storage plugin instead of written to a local file. stratus_wal_open() picks it
 * when conf->object_storage is set; every stratus_wal_* function forwards here.
 *
 * Owns: the open batch and the queue of cut batches, the one writer thread, the in-memory list
 * of the objects written or replayed (first/end LSN each), the prefix string. Guarded by w->mu
 * (every field below "guarded by mu"); trims are serialised by w->trim_mu.
 *
 * OBJECT FORMAT (all integers little-endian). Key: <prefix><first lsn, 20 decimal digits>.wal
 *   Header (32 bytes):
 *     0  u64 magic "STRWALOB"    8  u32 version (1)    12 u32 record count
 *     16 u64 first lsn           24 u32 crc32c of bytes 0..23            28 u32 zero
 *   then `count` records back to back, no padding:
 *     0  u64 lsn    8  u32 len    12 u32 crc32c of bytes 0..11, continued over the payload
 *     16 len payload bytes
 *   LSNs are byte positions: a record of len bytes takes 16 + len, so the record at object
 *   offset o (o >= 32) has LSN first + o - 32, and an object of size bytes covers
 *   [first, first + size - 32). A reader checks magic, version, header crc, the key's LSN
 *   against the header, every record's lsn (it must equal its position), bounds and crc, the
 *   count, and that no byte trails; any failure makes the whole object corrupt (PUTs are
 *   atomic: there is no torn tail to tolerate).
 *
 * WRITER. Appends (any thread) reserve their LSN and their space in the open batch under mu and
 * copy outside it (the writer waits for the copiers). The one writer thread cuts the open batch
 * object_interval_ms after its first record arrived, or as soon as it holds object_max_bytes
 * (a larger record gets a batch of its own), PUTs it, and completes its records in LSN order.
 * One PUT is in flight at a time, for simplicity: the next batch fills meanwhile, so the WAL
 * writes one object per max(interval, PUT latency).
 *
 * FAILURES differ from the file WAL. Object storage failures are transient, so a PUT that fails
 * (after the storage wrapper's own retries) completes its records with its error but the WAL
 * stays usable; those LSNs stay a hole. Ack fence: when conf->ack_deadline is set and
 * stratus_mono_ms() is past the deadline before the PUT (the PUT is then skipped) or when it
 * returns, the records complete with STRATUS_EAGAIN (not acknowledged). An object whose PUT
 * succeeded late stays in storage, so its records may still be replayed or recovered (at least
 * once, never acknowledged and lost). durable_lsn is the end of the last completed batch,
 * whichever way it completed.
 *
 * TRIM(x) deletes every object whose records all have LSN < x (end <= x). REPLAY lists the
 * prefix and returns every record of every object in LSN order: after a restart the trim point
 * is the first LSN of the oldest remaining object (a partly trimmed object comes back whole;
 * the stream drops what it already uploaded). New LSNs continue after the last object; with no
 * object left they start at 0 again. A corrupt object fails replay and read_objects with
 * STRATUS_ECORRUPT naming the key (acknowledged data is at stake). hold/release are no-ops:
 * batches are cut by time and size only.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "wal.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics/metrics.h"
#include "plugin/plugin.h"
#include "util/alloc.h"
#include "util/bytes.h"
#include "util/clock.h"
#include "util/crc32c.h"
#include "util/log.h"
#include "util/loop.h"

#define WOBJ_MAGIC 0x424F4C4157525453ull /* "STRWALOB" little-endian */
#define WOBJ_VERSION 1u
#define WOBJ_HDR 32u
#define WOBJ_REC_HDR 16u
#define WOBJ_DIGITS 20
#define WOBJ_SUFFIX ".wal"
#define WOBJ_KEY_MAX 1024
#define WOBJ_DEL_CHUNK 256
#define WOBJ_DEFAULT_PREFIX "wal/local/"

/* One object being filled or written. Fields guarded by mu, except the bytes of buf (each
 * appender writes its own reserved range; the writer reads them once copiers is zero). */
struct wobj_batch {
    struct wobj_batch *next;
    unsigned char *buf;
    size_t cap, used; /* used counts the header */
    uint64_t first;   /* LSN of the first record */
    uint32_t nrec;
    int copiers;      /* appenders still copying into buf */
    int cut;          /* no more appends; owned by the writer queue */
    int64_t opened_us;
    struct stratus_wal_comp *comps; /* nrec of them */
    size_t capcomp;
};

struct wobj_range {
    uint64_t first, end;
};

/* An object found by list(). */
struct wobj_listed {
    uint64_t first, size;
};

struct stratus_walobj {
    struct stratus_storage *st; /* borrowed */
    char *prefix;
    uint32_t interval_ms;
    uint64_t max_bytes, max_pending;
    int64_t (*ack_deadline)(void *arg);
    void *ack_deadline_arg;
    struct stratus_metric *write_hist; /* borrowed, may be NULL */

    pthread_mutex_t trim_mu;
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* writer: a batch opened or was cut, or closing (monotonic) */
    pthread_cond_t copy_cv; /* a cut batch's copiers reached zero */
    /* guarded by mu: */
    int scanned, started, closing;
    struct wobj_batch *open;
    struct wobj_batch *cut_head, *cut_tail;
    uint64_t head_lsn, durable_lsn, trim_lsn, pending_bytes;
    struct wobj_range *objs; /* objects in storage, in LSN order */
    size_t nobjs, capobjs;
    struct stratus_wal_stats stats;
    pthread_t thread;
};

/* ---- keys and the object format --------------------------------------------------------- */

static void wobj_key(const char *prefix, uint64_t first, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%0*" PRIu64 WOBJ_SUFFIX, prefix, WOBJ_DIGITS, first);
}

/* 0 and *first when key is exactly prefix + 20 digits + ".wal"; -1 for any other key. */
static int wobj_key_parse(const char *prefix, const char *key, uint64_t *first)
{
    size_t pl = strlen(prefix);
    uint64_t v = 0;

    if (strncmp(key, prefix, pl) != 0)
        return -1;
    key += pl;
    if (strlen(key) != WOBJ_DIGITS + strlen(WOBJ_SUFFIX) ||
        strcmp(key + WOBJ_DIGITS, WOBJ_SUFFIX) != 0)
        return -1;
    for (int i = 0; i < WOBJ_DIGITS; i++) {
        unsigned d = (unsigned)(key[i] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *first = v;
    return 0;
}

/* Checks a whole object (see the format above); 0 or STRATUS_ECORRUPT naming key. */
static int wobj_verify(const char *key, uint64_t key_first, const unsigned char *buf, size_t size,
                       struct stratus_errbuf *eb)
{
    if (size < WOBJ_HDR)
        return stratus_errf(eb, STRATUS_ECORRUPT, "wal object %s: %zu bytes, shorter than a header",
                            key, size);
    if (get_le64(buf) != WOBJ_MAGIC || get_le32(buf + 8) != WOBJ_VERSION ||
        get_le32(buf + 24) != stratus_crc32c(0, buf, 24) || get_le32(buf + 28) != 0)
        return stratus_errf(eb, STRATUS_ECORRUPT, "wal object %s: bad header", key);
    uint32_t count = get_le32(buf + 12);
    uint64_t first = get_le64(buf + 16);
    if (first != key_first)
        return stratus_errf(eb, STRATUS_ECORRUPT, "wal object %s: header says first lsn %" PRIu64,
                            key, first);
    size_t pos = WOBJ_HDR;
    uint32_t n = 0;
    while (pos < size) {
        if (size - pos < WOBJ_REC_HDR)
            return stratus_errf(eb, STRATUS_ECORRUPT, "wal object %s: torn record at byte %zu",
                                key, pos);
        const unsigned char *h = buf + pos;
        uint64_t lsn = get_le64(h);
        uint32_t len = get_le32(h + 8);
        if (lsn != first + (pos - WOBJ_HDR) || len > size - pos - WOBJ_REC_HDR)
            return stratus_errf(eb, STRATUS_ECORRUPT,
                                "wal object %s: bad record header at byte %zu", key, pos);
        uint32_t crc = stratus_crc32c(stratus_crc32c(0, h, 12), h + WOBJ_REC_HDR, len);
        if (crc != get_le32(h + 12))
            return stratus_errf(eb, STRATUS_ECORRUPT,
                                "wal object %s: crc mismatch in the record at lsn %" PRIu64, key,
                                lsn);
        pos += WOBJ_REC_HDR + (size_t)len;
        n++;
    }
    if (n != count)
        return stratus_errf(eb, STRATUS_ECORRUPT, "wal object %s: %u records, header says %u",
                            key, n, count);
    return 0;
}

/* ---- reading a prefix ------------------------------------------------------------------- */

struct wobj_list_ctx {
    const char *prefix;
    struct wobj_listed *v;
    size_t n, cap;
};

static int wobj_list_cb(void *arg, const struct stratus_object_info *info)
{
    struct wobj_list_ctx *c = arg;
    uint64_t first;

    if (wobj_key_parse(c->prefix, info->key, &first) != 0)
        return 0; /* not a WAL object of this prefix (e.g. a deeper prefix) */
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->v = xrealloc(c->v, c->cap * sizeof *c->v);
    }
    c->v[c->n++] = (struct wobj_listed){first, info->size};
    return 0;
}

static int wobj_listed_cmp(const void *a, const void *b)
{
    const struct wobj_listed *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* The WAL objects under prefix in LSN order (*out owned by the caller). */
static int wobj_list(struct stratus_storage *st, const char *prefix, struct wobj_listed **out,
                     size_t *n, struct stratus_errbuf *eb)
{
    struct wobj_list_ctx c = {.prefix = prefix};
    int rc = stratus_storage_list(st, prefix, NULL, wobj_list_cb, &c, eb);
    if (rc != 0) {
        free(c.v);
        return rc;
    }
    if (c.n > 1)
        qsort(c.v, c.n, sizeof *c.v, wobj_listed_cmp);
    *out = c.v;
    *n = c.n;
    return 0;
}

/* Reads every object under prefix in LSN order: with fn, GETs and verifies each and calls fn
 * for every record (records of an object only once all of it verified); without fn, only
 * lists. Fills *ranges (owned by the caller) when ranges != NULL. */
static int wobj_read_prefix(struct stratus_storage *st, const char *prefix,
                            stratus_wal_replay_fn *fn, void *arg, struct wobj_range **ranges,
                            size_t *nranges, uint64_t *nrec_out, struct stratus_errbuf *eb)
{
    struct wobj_listed *v = NULL;
    struct wobj_range *r = NULL;
    unsigned char *buf = NULL;
    size_t n = 0, bufcap = 0;
    uint64_t nrec = 0;
    char key[WOBJ_KEY_MAX + 64];
    int rc;

    rc = wobj_list(st, prefix, &v, &n, eb);
    if (rc != 0)
        return rc;
    r = xcalloc(n ? n : 1, sizeof *r);
    for (size_t i = 0; i < n; i++) {
        wobj_key(prefix, v[i].first, key, sizeof key);
        if (v[i].size < WOBJ_HDR) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "wal object %s: %" PRIu64 " bytes", key,
                              v[i].size);
            goto out;
        }
        r[i].first = v[i].first;
        r[i].end = v[i].first + (v[i].size - WOBJ_HDR);
        if (i > 0 && r[i].first < r[i - 1].end) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT,
                              "wal object %s overlaps the one before it (ends at %" PRIu64 ")",
                              key, r[i - 1].end);
            goto out;
        }
        if (!fn)
            continue;
        if (v[i].size > SIZE_MAX) {
            rc = stratus_errf(eb, STRATUS_ENOMEM, "wal object %s is too large", key);
            goto out;
        }
        size_t size = (size_t)v[i].size, got = 0;
        if (size > bufcap) {
            unsigned char *nb = realloc(buf, size);
            if (!nb) {
                rc = stratus_errf(eb, STRATUS_ENOMEM, "wal object %s: out of memory", key);
                goto out;
            }
            buf = nb;
            bufcap = size;
        }
        rc = stratus_storage_get(st, key, 0, size, buf, &got, eb);
        if (rc != 0)
            goto out;
        if (got != size) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "wal object %s: read %zu of %zu bytes", key,
                              got, size);
            goto out;
        }
        rc = wobj_verify(key, v[i].first, buf, size, eb);
        if (rc != 0)
            goto out;
        for (size_t pos = WOBJ_HDR; pos < size;) {
            uint32_t len = get_le32(buf + pos + 8);
            rc = fn(arg, get_le64(buf + pos), buf + pos + WOBJ_REC_HDR, len);
            if (rc != 0)
                goto out;
            nrec++;
            pos += WOBJ_REC_HDR + (size_t)len;
        }
    }
    if (ranges) {
        *ranges = r;
        *nranges = n;
        r = NULL;
    }
    if (nrec_out)
        *nrec_out = nrec;
out:
    free(r);
    free(buf);
    free(v);
    return rc;
}

int stratus_wal_read_objects(struct stratus_storage *st, const char *prefix,
                             stratus_wal_replay_fn *fn, void *arg, struct stratus_errbuf *eb)
{
    if (!st || !prefix || !fn)
        return stratus_errf(eb, STRATUS_EINVAL, "wal: read_objects needs storage, prefix, fn");
    return wobj_read_prefix(st, prefix, fn, arg, NULL, NULL, NULL, eb);
}

/* Deletes the objects of prefix starting at the given LSNs, in chunks. */
static int wobj_delete(struct stratus_storage *st, const char *prefix, const uint64_t *firsts,
                       size_t n, struct stratus_errbuf *eb)
{
    size_t kcap = strlen(prefix) + WOBJ_DIGITS + sizeof WOBJ_SUFFIX;
    size_t chunk = n < WOBJ_DEL_CHUNK ? n : WOBJ_DEL_CHUNK;
    char *keys = xmalloc((chunk ? chunk : 1) * kcap);
    const char **kp = xcalloc(chunk ? chunk : 1, sizeof *kp);
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i += chunk) {
        size_t m = n - i < chunk ? n - i : chunk;
        for (size_t j = 0; j < m; j++) {
            wobj_key(prefix, firsts[i + j], keys + j * kcap, kcap);
            kp[j] = keys + j * kcap;
        }
        rc = stratus_storage_del(st, kp, m, eb);
    }
    free(kp);
    free(keys);
    return rc;
}

int stratus_wal_delete_objects(struct stratus_storage *st, const char *prefix,
                               struct stratus_errbuf *eb)
{
    struct wobj_listed *v = NULL;
    size_t n = 0;
    int rc;

    if (!st || !prefix)
        return stratus_errf(eb, STRATUS_EINVAL, "wal: delete_objects needs storage and prefix");
    rc = wobj_list(st, prefix, &v, &n, eb);
    if (rc != 0)
        return rc;
    uint64_t *firsts = xcalloc(n ? n : 1, sizeof *firsts);
    for (size_t i = 0; i < n; i++)
        firsts[i] = v[i].first;
    rc = wobj_delete(st, prefix, firsts, n, eb);
    free(firsts);
    free(v);
    return rc;
}

/* ---- open, replay, start ----------------------------------------------------------------- */

int stratus_walobj_open(const struct stratus_wal_conf *conf, struct stratus_walobj **out,
                        struct stratus_errbuf *eb)
{
    struct stratus_walobj *w;
    pthread_condattr_t ca;
    const char *prefix;

    *out = NULL;
    if (!conf || !conf->object_storage)
        return stratus_errf(eb, STRATUS_EINVAL, "wal: object WAL without a storage");
    prefix = conf->object_prefix && *conf->object_prefix ? conf->object_prefix
                                                          : WOBJ_DEFAULT_PREFIX;
    if (strlen(prefix) + WOBJ_DIGITS + strlen(WOBJ_SUFFIX) > WOBJ_KEY_MAX)
        return stratus_errf(eb, STRATUS_EINVAL, "wal: object prefix too long (%zu bytes)",
                            strlen(prefix));
    w = xcalloc(1, sizeof *w);
    w->st = conf->object_storage;
    w->prefix = xstrdup(prefix);
    w->interval_ms = conf->object_interval_ms ? conf->object_interval_ms : 150;
    w->max_bytes = conf->object_max_bytes ? conf->object_max_bytes : (8ull << 20);
    w->max_pending = conf->max_pending_bytes ? conf->max_pending_bytes : (256ull << 20);
    w->ack_deadline = conf->ack_deadline;
    w->ack_deadline_arg = conf->ack_deadline_arg;
    w->write_hist = conf->write_hist;
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->trim_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->work_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&w->copy_cv, NULL);
    *out = w;
    return 0;
}

/* Reads the own prefix (records to fn when given) and sets head, durable and trim LSNs. */
static int wobj_scan(struct stratus_walobj *w, stratus_wal_replay_fn *fn, void *arg,
                     struct stratus_errbuf *eb)
{
    struct wobj_range *r = NULL;
    size_t n = 0;
    uint64_t nrec = 0;
    int rc = wobj_read_prefix(w->st, w->prefix, fn, arg, &r, &n, &nrec, eb);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&w->mu);
    free(w->objs);
    w->objs = r;
    w->nobjs = w->capobjs = n;
    w->head_lsn = w->durable_lsn = n ? r[n - 1].end : 0;
    w->trim_lsn = n ? r[0].first : w->head_lsn;
    w->scanned = 1;
    pthread_mutex_unlock(&w->mu);
    LOG_INFO("wal", "object WAL %s: %zu objects, %" PRIu64 " records replayed, lsn %" PRIu64
                    "..%" PRIu64,
             w->prefix, n, nrec, w->trim_lsn, w->head_lsn);
    return 0;
}

int stratus_walobj_replay(struct stratus_walobj *w, stratus_wal_replay_fn *fn, void *arg,
                          struct stratus_errbuf *eb)
{
    if (w->started)
        return stratus_errf(eb, STRATUS_EINVAL, "wal: replay after start");
    if (!fn)
        return stratus_errf(eb, STRATUS_EINVAL, "wal: replay without a function");
    return wobj_scan(w, fn, arg, eb);
}

static void *wobj_writer_main(void *arg);

int stratus_walobj_start(struct stratus_walobj *w, struct stratus_errbuf *eb)
{
    int rc;
    if (w->started)
        return stratus_errf(eb, STRATUS_EINVAL, "wal: already started");
    if (!w->scanned) {
        rc = wobj_scan(w, NULL, NULL, eb);
        if (rc != 0)
            return rc;
    }
    pthread_mutex_lock(&w->mu);
    if (pthread_create(&w->thread, NULL, wobj_writer_main, w) != 0) {
        pthread_mutex_unlock(&w->mu);
        return stratus_errf(eb, STRATUS_ENOMEM, "wal: cannot start the object writer thread");
    }
    w->started = 1;
    pthread_mutex_unlock(&w->mu);
    LOG_INFO("wal", "object WAL %s started head=%" PRIu64 " interval=%ums max=%" PRIu64,
             w->prefix, w->head_lsn, w->interval_ms, w->max_bytes);
    return 0;
}

/* ---- appends ------------------------------------------------------------------------------ */

static void wobj_batch_free(struct wobj_batch *b)
{
    free(b->buf);
    free(b->comps);
    free(b);
}

/* Ends appends to b and queues it for the writer. Under mu. */
static void wobj_cut(struct stratus_walobj *w, struct wobj_batch *b)
{
    if (w->open == b)
        w->open = NULL;
    b->cut = 1;
    b->next = NULL;
    if (w->cut_tail)
        w->cut_tail->next = b;
    else
        w->cut_head = b;
    w->cut_tail = b;
    pthread_cond_signal(&w->work_cv);
}

int stratus_walobj_append(struct stratus_walobj *w, const struct iovec *iov, const int64_t *crcs,
                          int iovcnt, stratus_wal_done_fn *done, void *arg, uint64_t *lsn_out)
{
    uint64_t len;
    struct wobj_batch *b;
    int rc = stratus_wal_append_len(iov, iovcnt, done, &len);

    if (rc != 0)
        return rc;
    uint64_t total = WOBJ_REC_HDR + len;

    pthread_mutex_lock(&w->mu);
    if (w->closing || !w->started) {
        rc = w->closing ? STRATUS_ECLOSED : STRATUS_EINVAL;
        goto out;
    }
    if (len > UINT32_MAX || total > w->max_pending || total > SIZE_MAX - WOBJ_HDR) {
        rc = STRATUS_ERANGE;
        goto out;
    }
    if (w->pending_bytes + total > w->max_pending) {
        rc = STRATUS_ENOMEM;
        goto out;
    }
    b = w->open;
    if (b && b->used + total > b->cap)
        wobj_cut(w, b), b = NULL;
    if (!b) {
        uint64_t body = total > w->max_bytes ? total : w->max_bytes;
        b = calloc(1, sizeof *b);
        if (b)
            b->buf = malloc(WOBJ_HDR + (size_t)body);
        if (!b || !b->buf) {
            free(b);
            rc = STRATUS_ENOMEM;
            goto out;
        }
        b->cap = WOBJ_HDR + (size_t)body;
        b->used = WOBJ_HDR;
        b->first = w->head_lsn;
        b->opened_us = stratus_mono_us();
        w->open = b;
        pthread_cond_signal(&w->work_cv); /* the writer starts this batch's clock */
    }
    rc = stratus_wal_comps_reserve(&b->comps, b->nrec, &b->capcomp);
    if (rc != 0)
        goto out;
    size_t at = b->used;
    uint64_t lsn = w->head_lsn;
    w->head_lsn += total;
    b->used += (size_t)total;
    b->comps[b->nrec++] = (struct stratus_wal_comp){done, arg, lsn};
    b->copiers++;
    w->pending_bytes += total;
    w->stats.appends++;
    w->stats.append_bytes += len;
    if (b->used - WOBJ_HDR >= w->max_bytes)
        wobj_cut(w, b);
    pthread_mutex_unlock(&w->mu);

    /* copy and checksum outside the lock: the writer waits for copiers before the PUT */
    unsigned char *h = b->buf + at;
    put_le64(h, lsn);
    put_le32(h + 8, (uint32_t)len);
    put_le32(h + 12, stratus_wal_copy_crc(h + WOBJ_REC_HDR, stratus_crc32c(0, h, 12), iov, crcs,
                                          iovcnt));
    if (lsn_out)
        *lsn_out = lsn;

    pthread_mutex_lock(&w->mu);
    if (--b->copiers == 0 && b->cut)
        pthread_cond_broadcast(&w->copy_cv);
out:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* ---- the writer ------------------------------------------------------------------------------ */

/* 1 when the ack fence has passed. */
static int wobj_fenced(struct stratus_walobj *w)
{
    return w->ack_deadline && stratus_mono_ms() > w->ack_deadline(w->ack_deadline_arg);
}

/* PUTs one cut batch (its copiers done) and completes its records; frees it. Writer thread,
 * without mu. */
static void wobj_write(struct stratus_walobj *w, struct wobj_batch *b)
{
    struct stratus_errbuf eb = {{0}};
    char key[WOBJ_KEY_MAX + 64];
    uint64_t end = b->first + (b->used - WOBJ_HDR);
    int err = 0, stored = 0, put = 0;
    int64_t t0 = 0, us = 0;

    put_le64(b->buf, WOBJ_MAGIC);
    put_le32(b->buf + 8, WOBJ_VERSION);
    put_le32(b->buf + 12, b->nrec);
    put_le64(b->buf + 16, b->first);
    put_le32(b->buf + 24, stratus_crc32c(0, b->buf, 24));
    put_le32(b->buf + 28, 0);
    wobj_key(w->prefix, b->first, key, sizeof key);

    if (wobj_fenced(w)) {
        err = STRATUS_EAGAIN;
        LOG_WARN("wal", "%s: past the ack deadline, not written: %u records not acknowledged",
                 key, b->nrec);
    } else {
        t0 = stratus_mono_us();
        put = 1;
        err = stratus_storage_put(w->st, key, b->buf, b->used, NULL, NULL, &eb);
        us = stratus_mono_us() - t0;
        if (err != 0) {
            LOG_WARN("wal", "PUT %s failed, %u records fail: %s", key, b->nrec, eb.msg);
        } else {
            stored = 1;
            if (wobj_fenced(w)) {
                err = STRATUS_EAGAIN;
                LOG_WARN("wal", "%s: PUT finished past the ack deadline: %u records not "
                                "acknowledged",
                         key, b->nrec);
            }
        }
    }

    pthread_mutex_lock(&w->mu);
    if (put) {
        w->stats.writes++;
        w->stats.write_us_total += (uint64_t)us;
        stratus_metric_observe_us(w->write_hist, us);
    }
    if (stored) {
        w->stats.write_bytes += b->used;
        if (w->nobjs == w->capobjs) {
            w->capobjs = w->capobjs ? w->capobjs * 2 : 64;
            w->objs = xrealloc(w->objs, w->capobjs * sizeof *w->objs);
        }
        w->objs[w->nobjs++] = (struct wobj_range){b->first, end};
    }
    w->durable_lsn = end;
    w->pending_bytes -= end - b->first;
    pthread_mutex_unlock(&w->mu);

    stratus_loop_defer_wakes(); /* each network thread woken once for the whole object */
    for (uint32_t i = 0; i < b->nrec; i++)
        b->comps[i].done(b->comps[i].arg, err, b->comps[i].lsn);
    stratus_loop_flush_wakes();
    wobj_batch_free(b);
}

static void *wobj_writer_main(void *arg)
{
    struct stratus_walobj *w = arg;
    pthread_setname_np(pthread_self(), "wal-object"); /* top -H, perf, gdb */

    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct wobj_batch *b = NULL;
        if (w->cut_head) {
            b = w->cut_head;
            w->cut_head = b->next;
            if (!w->cut_head)
                w->cut_tail = NULL;
        } else if (w->open && w->open->nrec) {
            int64_t due = w->open->opened_us + (int64_t)w->interval_ms * 1000;
            if (!w->closing && stratus_mono_us() < due) {
                struct timespec ts = {.tv_sec = due / 1000000, .tv_nsec = due % 1000000 * 1000};
                pthread_cond_timedwait(&w->work_cv, &w->mu, &ts);
                continue;
            }
            b = w->open;
            w->open = NULL;
            b->cut = 1;
        } else if (w->closing) {
            break;
        } else {
            pthread_cond_wait(&w->work_cv, &w->mu);
            continue;
        }
        while (b->copiers > 0)
            pthread_cond_wait(&w->copy_cv, &w->mu);
        pthread_mutex_unlock(&w->mu);
        wobj_write(w, b);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- trim, stats, close ---------------------------------------------------------------------- */

int stratus_walobj_trim(struct stratus_walobj *w, uint64_t upto_lsn, struct stratus_errbuf *eb)
{
    uint64_t *firsts = NULL;
    size_t n = 0;
    int rc = 0;

    pthread_mutex_lock(&w->trim_mu);
    pthread_mutex_lock(&w->mu);
    if (upto_lsn > w->durable_lsn)
        upto_lsn = w->durable_lsn;
    if (upto_lsn <= w->trim_lsn) {
        pthread_mutex_unlock(&w->mu);
        goto out;
    }
    while (n < w->nobjs && w->objs[n].end <= upto_lsn)
        n++;
    if (n) {
        firsts = xcalloc(n, sizeof *firsts);
        for (size_t i = 0; i < n; i++)
            firsts[i] = w->objs[i].first;
    }
    pthread_mutex_unlock(&w->mu);

    if (n) {
        /* only the writer adds objects (at the end): the first n are still these */
        rc = wobj_delete(w->st, w->prefix, firsts, n, eb);
        if (rc != 0)
            goto out;
    }
    pthread_mutex_lock(&w->mu);
    if (n) {
        memmove(w->objs, w->objs + n, (w->nobjs - n) * sizeof *w->objs);
        w->nobjs -= n;
    }
    w->trim_lsn = upto_lsn;
    pthread_mutex_unlock(&w->mu);
out:
    pthread_mutex_unlock(&w->trim_mu);
    free(firsts);
    return rc;
}

void stratus_walobj_get_stats(struct stratus_walobj *w, struct stratus_wal_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    out->head_lsn = w->head_lsn;
    out->durable_lsn = w->durable_lsn;
    out->trim_lsn = w->trim_lsn;
    out->pending_bytes = w->pending_bytes;
    out->fsyncs = 0;
    out->direct_io = 0;
    pthread_mutex_unlock(&w->mu);
}

void stratus_walobj_close(struct stratus_walobj *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->closing = 1;
    int started = w->started;
    pthread_cond_broadcast(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
    if (started)
        pthread_join(w->thread, NULL);
    /* the writer drained every batch with records; an empty one may be left open */
    if (w->open)
        wobj_batch_free(w->open);
    LOG_INFO("wal", "object WAL %s closed durable=%" PRIu64, w->prefix, w->durable_lsn);
    free(w->objs);
    free(w->prefix);
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->trim_mu);
    pthread_cond_destroy(&w->work_cv);
    pthread_cond_destroy(&w->copy_cv);
    free(w);
}
