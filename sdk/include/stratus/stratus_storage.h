/* stratus_storage.h - the storage plugin kind: an object store Stratus keeps its data in.
 *
 * Objects are immutable byte strings named by keys ('/'-separated, at most 1024 bytes). The
 * core writes each object once (put) and reads ranges of it (get); conditional puts fence
 * concurrent writers. Calls come from the core's I/O threads, never from a network thread:
 * every op may block, and every op must be safe to call from several threads at once on one
 * instance. Timeouts, retries with backoff, and metrics are the core's job: an op makes one
 * attempt and classifies its failure:
 *   STRATUS_ENOTFOUND  the key does not exist
 *   STRATUS_EEXIST     a precondition failed (if-absent on an existing key, if-match mismatch)
 *   STRATUS_EAGAIN     transient (throttled, 5xx, reset, timeout): the core retries
 *   STRATUS_EAUTH      credentials refused: fatal
 *   others             fatal for this call
 * with a message in eb naming the key and the provider's error.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_STORAGE_H
#define STRATUS_STORAGE_H

#include "stratus_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options of a put. Zeroed means an unconditional put. */
struct stratus_put_opts {
    uint32_t size;         /* sizeof(struct stratus_put_opts) */
    int if_absent;         /* fail with STRATUS_EEXIST when the key exists */
    const char *if_match;  /* fail with STRATUS_EEXIST unless the current etag equals this */
    /* A hint, added in ABI 1.2 (read it through stratus_put_opts_bulk): non-zero when the
     * caller already has at least another put's worth of data waiting behind this one (the
     * uploader is behind). The plugin may then favour its own throughput over the latency of
     * other I/O on the same device, e.g. with larger writes. Never changes what is stored. */
    int bulk;
};

/* Reads the options a caller passed, honouring the struct's own size (a caller built against
 * an older SDK has a shorter struct; size 0 is read as this header's size). An empty if_match
 * counts as none. Every storage plugin reads its put options through this. */
static inline void stratus_put_opts_read(const struct stratus_put_opts *o, int *if_absent,
                                         const char **if_match)
{
    size_t sz = o ? (o->size ? o->size : sizeof *o) : 0;
    *if_absent = 0;
    *if_match = NULL;
    if (sz >= offsetof(struct stratus_put_opts, if_absent) + sizeof o->if_absent)
        *if_absent = o->if_absent;
    if (sz >= offsetof(struct stratus_put_opts, if_match) + sizeof o->if_match)
        *if_match = o->if_match && *o->if_match ? o->if_match : NULL;
}

/* The bulk hint of the options a caller passed (0 where its struct has no such field). */
static inline int stratus_put_opts_bulk(const struct stratus_put_opts *o)
{
    size_t sz = o ? (o->size ? o->size : sizeof *o) : 0;
    return sz >= offsetof(struct stratus_put_opts, bulk) + sizeof o->bulk && o->bulk;
}

/* What head() and list() report of one object. */
struct stratus_object_info {
    char key[1025];
    uint64_t size;
    int64_t mtime_ms;   /* last modification, ms since the epoch; 0 when unknown */
    char etag[128];     /* opaque version tag usable with if_match; "" when unknown */
};

/* Called by list() once per object, in lexicographic key order. Return 0 to continue, any
 * other value to stop (list() then returns that value). `info` is borrowed for the call. */
typedef int stratus_list_fn(void *arg, const struct stratus_object_info *info);

/* The alignment of the pieces the uploader gives putv (bases and lengths, but the last
 * length): the page size and the usual filesystem block. O_DIRECT needs only the sector
 * (512) on most disks, but ext4 takes its slow path for a direct write whose memory, length
 * or file offset is not a multiple of its block: 6x slower into a new file, measured
 * (docs/benchmarks.md, round 26). It was 512 before 2026-11-28; pieces aligned to this are
 * aligned to that too, so a plugin written then works unchanged. */
#define STRATUS_IOV_ALIGN 4096u

/* One piece of an object given to putv (ABI 1.2): len bytes at base. */
struct stratus_iov {
    const void *base;
    size_t len;
};

struct stratus_storage_ops {
    uint32_t ops_size; /* sizeof(struct stratus_storage_ops) */
    /* ---- ABI 1.0, required ---- */
    /* Creates an instance from the parsed config (conf points at desc->conf_size bytes). */
    int (*open)(const struct stratus_host *host, const void *conf, void **inst /* OUT */,
                struct stratus_errbuf *eb);
    void (*close)(void *inst);
    /* Stores len bytes at key, atomically: readers see the old object or the whole new one.
     * On success writes the new etag into etag_out (may be NULL), at most 128 bytes. */
    int (*put)(void *inst, const char *key, const void *data, size_t len,
               const struct stratus_put_opts *opts /* may be NULL */, char *etag_out,
               struct stratus_errbuf *eb);
    /* Reads up to len bytes from offset off into dst (caller-allocated, len bytes); *got is
     * set to the bytes read, which is less than len only at the end of the object. Reading at
     * or past the end gives *got = 0 and returns 0. */
    int (*get)(void *inst, const char *key, uint64_t off, size_t len, void *dst,
               size_t *got /* OUT */, struct stratus_errbuf *eb);
    /* Fills info for key, or returns STRATUS_ENOTFOUND. */
    int (*head)(void *inst, const char *key, struct stratus_object_info *info /* OUT */,
                struct stratus_errbuf *eb);
    /* Deletes keys; a key that does not exist counts as deleted. */
    int (*del)(void *inst, const char *const *keys, size_t nkeys, struct stratus_errbuf *eb);
    /* Calls cb for every object whose key starts with prefix and sorts after start_after
     * (NULL or "" = from the start). */
    int (*list)(void *inst, const char *prefix, const char *start_after, stratus_list_fn *cb,
                void *arg, struct stratus_errbuf *eb);
    /* ---- ABI 1.1 and later: append below, never reorder ---- */
    /* ABI 1.2, optional (NULL: the host joins the pieces into one buffer and calls put).
     * Like put, with the object given as the concatenation of n pieces, borrowed for the
     * call and unchanged during it. The uploader passes pieces whose bases and lengths are
     * multiples of STRATUS_IOV_ALIGN, except the last piece's length, so that a plugin can
     * hand them to the disk or the network without joining them first. */
    int (*putv)(void *inst, const char *key, const struct stratus_iov *iov, size_t n,
                const struct stratus_put_opts *opts /* may be NULL */, char *etag_out,
                struct stratus_errbuf *eb);
};

#ifdef __cplusplus
}
#endif
#endif
