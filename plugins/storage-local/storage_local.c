/* storage_local.c - stratus-storage-local.so: a storage plugin that keeps objects as files
 * under one directory (a local disk, or a shared mount such as NFS for a test cluster).
 *
 * On-disk format: object key "a/b/c" is the file PATH/a/b/c, byte for byte; '/' in a key makes
 * directories. Keys are checked: no leading '/', no empty, "." or ".." segment, at most 1024
 * bytes, and no segment starting with ".stratus-" (reserved for this plugin's temp files:
 * PATH/<dir>/.stratus-tmp-<random>). A filesystem cannot hold both "a" and "a/b"; such a put
 * fails with STRATUS_EINVAL.
 * put: write a temp file in the key's directory, fsync it, then rename it over the key (or
 * renameat2(RENAME_NOREPLACE), falling back to link(2), for if_absent) and fsync the
 * directory: readers see the old object or the whole new one. The check-and-rename of every
 * put and delete runs under flock() on the key's directory, so if_match is an atomic
 * compare-and-swap against the other writers of this store (on this host, or on NFS where
 * flock maps to byte-range locks); if_absent does not depend on the lock at all.
 * etag: hex "<inode>-<size>-<mtime_ns>" of the file. Every put writes a new file (new inode),
 * so an etag changes on every put; only the reuse of an inode with the same size within the
 * same mtime tick could repeat one.
 * Object bodies of 64 KiB or more are written with O_DIRECT (direct_io, on by default): the
 * 4 KiB-aligned body straight from the caller's buffer when that buffer is 4 KiB-aligned (the
 * uploader's is), through a 1 MiB aligned bounce buffer otherwise, and the tail under 4 KiB
 * buffered; then fsync as before. Measured (docs/benchmarks.md, workload 1): buffered write()
 * of 32 MiB objects spent half the broker's CPU copying into fresh page-cache pages that only a
 * later cold read might use (the cache plugin serves those). A filesystem that refuses
 * O_DIRECT (tmpfs: EINVAL) gets the buffered write, decided per put. Direct writes go
 * write_chunk (512 KiB) per call: one 16 MiB write fills the device queue for ~25 ms, and a
 * broker's WAL write on the same disk waited behind it (workload 5's produce p99); in chunks
 * it waits for one chunk. A put the broker marks bulk (stratus_put_opts_bulk: its uploader is
 * an object or more behind) goes bulk_write_chunk (4 MiB) per call: a write costs about the
 * same CPU and device time whatever its size up to that, so an uploader that is behind
 * catches up (docs/benchmarks.md, round 24).
 * putv (the uploader's objects) writes the pieces with O_DIRECT straight from the caller's
 * memory while they are aligned to what statx says the file needs (512 bytes on most disks,
 * 4 KiB where it does not say), with no bounce buffer: see local_write_pieces. The uploader's
 * pieces are 4 KiB-aligned (STRATUS_IOV_ALIGN): ext4 writes 512-aligned ones correctly, but
 * through its unaligned path, 6x slower into a new file (docs/benchmarks.md, round 26).
 * Gets of 64 KiB or more at 4 KiB-aligned offsets into 4 KiB-aligned buffers (the cold reads'
 * blocks: the host allocates them page-aligned) read with O_DIRECT too (local_get_direct).
 * Deleting a key removes the directories it leaves empty. The instance holds nothing mutable
 * after open (the root directory fd and two settings), so every op is thread-safe.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "stratus/stratus_storage.h"

#define LOCAL_TMP_PREFIX ".stratus-"
#define LOCAL_KEY_MAX 1024
#define LOCAL_MKDIR_TRIES 16             /* mkdir -p walks racing deletes that prune */
#define LOCAL_DIO_ALIGN 4096u            /* O_DIRECT offset/length/buffer alignment */
#define LOCAL_DIO_MIN (64u * 1024)        /* smaller bodies: buffered is cheaper */
#define LOCAL_DIO_BOUNCE (1u << 20)       /* bounce buffer for an unaligned caller buffer */

struct local_conf {
    char *path;
    int fsync;
    int direct_io;
    uint64_t write_chunk;
    uint64_t bulk_write_chunk;
    /* Puts hold it shared from making a key's directory until their temp file is in it (a
     * directory with a file in it cannot be pruned); deletes hold it exclusive while they
     * prune the directories they emptied. Within one process a put then never loses its
     * directory to a delete; another process sharing the directory is met by the retries. */
    pthread_rwlock_t prune;
};

static const struct stratus_param local_params[] = {
    STRATUS_PARAM_STR("path", NULL, STRATUS_P_REQUIRED, struct local_conf, path,
                      "Directory holding the objects; created if missing; relative paths "
                      "resolve against the broker's working directory"),
    STRATUS_PARAM_BOOL("fsync", "true", 0, struct local_conf, fsync,
                       "fsync files and directories before a put returns"),
    STRATUS_PARAM_BOOL("direct_io", "true", 0, struct local_conf, direct_io,
                       "write object bodies of 64 KiB or more with O_DIRECT, and read aligned "
                       "ranges of 64 KiB or more with it (bypassing the page cache); falls back "
                       "to buffered I/O where refused"),
    STRATUS_PARAM_SIZE("write_chunk", "512KiB", 0, struct local_conf, write_chunk, 64 * 1024,
                       64 * 1024 * 1024,
                       "Bytes per direct write() call (rounded down to 4 KiB): larger costs "
                       "less CPU per GiB, smaller lets a WAL write on the same disk wait less"),
    STRATUS_PARAM_SIZE("bulk_write_chunk", "4MiB", 0, struct local_conf, bulk_write_chunk,
                       64 * 1024, 64 * 1024 * 1024,
                       "Bytes per direct write() call of a put the broker marks bulk (its "
                       "uploader is an object or more behind): throughput first"),
    STRATUS_PARAM_END,
};

struct local {
    const struct stratus_host *host;
    char *root; /* absolute path, for messages */
    int rootfd; /* O_DIRECTORY */
    int fsync;
    int direct_io;
    /* bytes per direct write() call, multiples of LOCAL_DIO_ALIGN: write_chunk, and
     * bulk_write_chunk for puts marked bulk */
    size_t chunk, bulk_chunk;
    /* Puts hold it shared from making a key's directory until their temp file is in it (a
     * directory with a file in it cannot be pruned); deletes hold it exclusive while they
     * prune the directories they emptied. Within one process a put then never loses its
     * directory to a delete; another process sharing the directory is met by the retries. */
    pthread_rwlock_t prune;
};

/* ---- helpers ----------------------------------------------------------------------------- */

static int local_errno(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return STRATUS_ENOTFOUND;
    case EEXIST:
        return STRATUS_EEXIST;
    case EACCES:
    case EPERM:
        return STRATUS_EAUTH;
    case ENOMEM:
        return STRATUS_ENOMEM;
    case EINTR:
    case EAGAIN:
        return STRATUS_EAGAIN;
    case ENOSPC:
    case EDQUOT:
        return STRATUS_ENOMEM;
    case EISDIR:
    case ENAMETOOLONG:
        return STRATUS_EINVAL;
    }
    return STRATUS_EIO;
}

static int local_check_key(const char *key, struct stratus_errbuf *eb)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > LOCAL_KEY_MAX)
        return stratus_errf(eb, STRATUS_EINVAL, "key of %zu bytes (1..%d allowed)", n,
                            LOCAL_KEY_MAX);
    if (key[0] == '/')
        return stratus_errf(eb, STRATUS_EINVAL, "key '%.200s' starts with '/'", key);
    const char *seg = key;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t sl = end ? (size_t)(end - seg) : strlen(seg);
        if (sl == 0 || (sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.'))
            return stratus_errf(eb, STRATUS_EINVAL,
                                "key '%.200s' has an empty, '.' or '..' segment", key);
        if (sl >= strlen(LOCAL_TMP_PREFIX) &&
            strncmp(seg, LOCAL_TMP_PREFIX, strlen(LOCAL_TMP_PREFIX)) == 0)
            return stratus_errf(eb, STRATUS_EINVAL,
                                "key '%.200s': segments starting with '" LOCAL_TMP_PREFIX
                                "' are reserved",
                                key);
        if (sl > NAME_MAX)
            return stratus_errf(eb, STRATUS_EINVAL, "key '%.200s' has a segment over %d bytes",
                                key, NAME_MAX);
        if (!end)
            return 0;
        seg = end + 1;
    }
}

static void local_etag(const struct stat *sb, char *out, size_t cap)
{
    snprintf(out, cap, "%" PRIx64 "-%" PRIx64 "-%" PRIx64, (uint64_t)sb->st_ino,
             (uint64_t)sb->st_size,
             (uint64_t)sb->st_mtim.tv_sec * UINT64_C(1000000000) + (uint64_t)sb->st_mtim.tv_nsec);
}

static void local_info(const char *key, const struct stat *sb, struct stratus_object_info *info)
{
    snprintf(info->key, sizeof info->key, "%s", key);
    info->size = (uint64_t)sb->st_size;
    info->mtime_ms = (int64_t)sb->st_mtim.tv_sec * 1000 + sb->st_mtim.tv_nsec / 1000000;
    local_etag(sb, info->etag, sizeof info->etag);
}

/* Splits key into its directory ("" for top level) and base name. dir has LOCAL_KEY_MAX+1. */
static const char *local_split(const char *key, char *dir)
{
    const char *slash = strrchr(key, '/');
    if (!slash) {
        dir[0] = '\0';
        return key;
    }
    memcpy(dir, key, (size_t)(slash - key));
    dir[slash - key] = '\0';
    return slash + 1;
}

/* Makes the directory that buf names and each of its parents (mkdir -p, one segment at a
 * time; another thread may create the same ones). Returns 0, -ENOENT when a parent vanished
 * between two segments (a concurrent delete removes the directories it empties), or a
 * negative STRATUS_E code. */
static int local_mkdirs(struct local *l, char *buf, struct stratus_errbuf *eb)
{
    for (char *p = buf;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdirat(l->rootfd, buf, 0755) < 0 && errno != EEXIST) {
            int e = errno;
            *p = c;
            if (e == ENOENT)
                return -ENOENT;
            return stratus_errf(eb, e == ENOTDIR ? STRATUS_EINVAL : local_errno(e),
                                "mkdir %s/%s: %s%s", l->root, buf, strerror(e),
                                e == ENOTDIR ? " (a key is a prefix directory of another)" : "");
        }
        if (l->fsync) {
            /* Make the new entry durable in its parent. */
            char *slash = strrchr(buf, '/');
            int pfd;
            if (slash) {
                *slash = '\0';
                pfd = openat(l->rootfd, buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                *slash = '/';
            } else {
                pfd = openat(l->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            }
            if (pfd >= 0) {
                fsync(pfd);
                close(pfd);
            }
        }
        *p = c;
        if (!c)
            return 0;
    }
}

/* Opens directory dir (relative to root; "" = root), creating it and its parents if create.
 * A delete that empties the same directories may remove them while they are being made, or
 * after: the walk is then made again (LOCAL_MKDIR_TRIES times at most).
 * Returns an fd or a negative STRATUS_E code. */
static int local_open_dir(struct local *l, const char *dir, int create, struct stratus_errbuf *eb)
{
    char buf[LOCAL_KEY_MAX + 1];
    int fd, e;

    for (int attempt = 0;; attempt++) {
        fd = openat(l->rootfd, dir[0] ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0)
            return fd;
        e = errno;
        if (!create || e != ENOENT || attempt == LOCAL_MKDIR_TRIES)
            break;
        snprintf(buf, sizeof buf, "%s", dir);
        int rc = local_mkdirs(l, buf, eb);
        if (rc < 0 && rc != -ENOENT)
            return rc;
    }
    return stratus_errf(eb, create && e == ENOTDIR ? STRATUS_EINVAL : local_errno(e),
                        "open dir %s/%s: %s%s", l->root, dir, strerror(e),
                        create && e == ENOTDIR ? " (a key is a prefix directory of another)"
                        : create && e == ENOENT ? " (removed again by concurrent deletes)"
                                                : "");
}

static int local_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Switches O_DIRECT on or off on fd; 0 or -1 with errno. */
static int local_set_direct(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    fl = on ? (fl | O_DIRECT) : (fl & ~O_DIRECT);
    return fcntl(fd, F_SETFL, fl);
}

/* Writes data to fd (a new, empty file at offset 0): the 4 KiB-aligned body with O_DIRECT when
 * allowed, `chunk` bytes per call (at most the bounce buffer's when bouncing), the rest
 * buffered. Any O_DIRECT refusal (EINVAL: the filesystem, or a short direct
 * write leaving the offset unaligned) falls back to buffered writes from where it stopped,
 * which is always correct: a failed write() writes nothing, and the file offset tells where
 * the buffered remainder starts. 0 or -1 with errno. */
static int
local_write_data(const struct local *l, int fd, const void *data, size_t len, size_t chunk)
{
    const unsigned char *p = data;
    size_t done = 0, body = len / LOCAL_DIO_ALIGN * LOCAL_DIO_ALIGN;
    unsigned char *bounce = NULL;

    if (!l->direct_io || len < LOCAL_DIO_MIN || local_set_direct(fd, 1) < 0)
        return local_write_all(fd, data, len);
    if ((uintptr_t)p % LOCAL_DIO_ALIGN != 0) {
        void *b = NULL;
        if (posix_memalign(&b, LOCAL_DIO_ALIGN, LOCAL_DIO_BOUNCE) != 0)
            b = NULL;
        bounce = b;
    }
    while (done < body && (bounce || (uintptr_t)p % LOCAL_DIO_ALIGN == 0)) {
        size_t n = body - done;
        const void *src = p + done;
        if (n > chunk)
            n = chunk;
        if (bounce && n > LOCAL_DIO_BOUNCE)
            n = LOCAL_DIO_BOUNCE;
        if (bounce) {
            memcpy(bounce, p + done, n);
            src = bounce;
        }
        ssize_t w = write(fd, src, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EINVAL)
                break; /* O_DIRECT refused: buffered from here */
            int e = errno;
            free(bounce);
            errno = e;
            return -1;
        }
        done += (size_t)w;
        if ((size_t)w % LOCAL_DIO_ALIGN != 0)
            break; /* a short write: the offset is no longer aligned */
    }
    free(bounce);
    if (local_set_direct(fd, 0) < 0)
        return -1;
    return local_write_all(fd, p + done, len - done);
}

/* The alignment O_DIRECT needs on fd, of memory and of offsets (statx's DIOALIGN), or
 * LOCAL_DIO_ALIGN where the kernel does not say. */
static size_t local_dio_align(int fd)
{
#ifdef STATX_DIOALIGN
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_mem_align && stx.stx_dio_offset_align) {
        size_t a = stx.stx_dio_mem_align > stx.stx_dio_offset_align ? stx.stx_dio_mem_align
                                                                      : stx.stx_dio_offset_align;
        if (a <= LOCAL_DIO_ALIGN && (a & (a - 1)) == 0)
            return a;
    }
#endif
    return LOCAL_DIO_ALIGN;
}

/* Writes pieces iov[0..n) to fd (a new, empty file at offset 0), in order. With direct_io and
 * 64 KiB or more in all, the pieces go with O_DIRECT, straight from the caller's memory (the
 * uploader's request frames: no copy at all), up to write_chunk bytes per writev(), as long as
 * each piece's base and length are multiples of the file's alignment (local_dio_align); the
 * first that is not ends the direct part after its aligned prefix, and the rest goes buffered.
 * Refusals fall back as in local_write_data. 0 or -1 with errno. */
static int local_write_pieces(const struct local *l, int fd, const struct stratus_iov *iov,
                              size_t n, size_t max_chunk)
{
    size_t total = 0, i = 0, off = 0; /* cursor: byte off of piece i */
    for (size_t k = 0; k < n; k++)
        total += iov[k].len;
    if (l->direct_io && total >= LOCAL_DIO_MIN && local_set_direct(fd, 1) == 0) {
        size_t a = local_dio_align(fd);
        for (;;) {
            struct iovec v[64];
            int nv = 0, gap = 0;
            size_t chunk = 0, ci = i, coff = off;
            while (ci < n && nv < 64 && chunk < max_chunk && !gap) {
                const unsigned char *b = (const unsigned char *)iov[ci].base + coff;
                size_t left = iov[ci].len - coff, take;
                if (left == 0) {
                    ci++;
                    coff = 0;
                    continue;
                }
                if ((uintptr_t)b % a != 0)
                    break;
                take = left - left % a;
                if (take > max_chunk - chunk)
                    take = max_chunk - chunk;
                if (take == 0)
                    break;
                gap = take == left - left % a && left % a != 0; /* an unaligned end follows */
                v[nv++] = (struct iovec){(void *)b, take};
                chunk += take;
                coff += take;
            }
            if (nv == 0)
                break;
            ssize_t w = writev(fd, v, nv);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EINVAL)
                    break; /* O_DIRECT refused: buffered from here */
                return -1;
            }
            for (size_t adv = (size_t)w; adv;) { /* move the cursor over what was written */
                size_t left = iov[i].len - off;
                if (adv < left) {
                    off += adv;
                    break;
                }
                adv -= left;
                i++;
                off = 0;
            }
            if ((size_t)w != chunk || (size_t)w % a != 0)
                break; /* a short write: the offset may no longer be aligned */
        }
        if (local_set_direct(fd, 0) < 0)
            return -1;
    }
    for (; i < n; i++, off = 0)
        if (iov[i].len > off &&
            local_write_all(fd, (const unsigned char *)iov[i].base + off, iov[i].len - off) < 0)
            return -1;
    return 0;
}

/* Creates a temp file in dfd; writes its name into name (64 bytes). */
static int local_create_temp(int dfd, char *name)
{
    for (int i = 0; i < 16; i++) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            r = (uint64_t)getpid() * 2654435761u ^ (uint64_t)(uintptr_t)name ^ (uint64_t)i;
        snprintf(name, 64, LOCAL_TMP_PREFIX "tmp-%016" PRIx64, r);
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

/* ---- ops ----------------------------------------------------------------------------------- */

static void local_close(void *inst)
{
    struct local *l = inst;
    if (!l)
        return;
    if (l->rootfd >= 0)
        close(l->rootfd);
    pthread_rwlock_destroy(&l->prune);
    free(l->root);
    free(l);
}

static int local_open(const struct stratus_host *host, const void *confp, void **inst,
                      struct stratus_errbuf *eb)
{
    const struct local_conf *conf = confp;
    struct local *l;
    char cwd[PATH_MAX];
    int rc;

    *inst = NULL;
    l = calloc(1, sizeof *l);
    if (!l)
        return stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
    l->rootfd = -1;
    pthread_rwlock_init(&l->prune, NULL);
    l->host = host;
    l->fsync = conf->fsync;
    l->direct_io = conf->direct_io;
    l->chunk = (size_t)conf->write_chunk / LOCAL_DIO_ALIGN * LOCAL_DIO_ALIGN;
    l->bulk_chunk = (size_t)conf->bulk_write_chunk / LOCAL_DIO_ALIGN * LOCAL_DIO_ALIGN;
    if (conf->path[0] == '/') {
        l->root = strdup(conf->path);
    } else {
        if (!getcwd(cwd, sizeof cwd)) {
            rc = stratus_errf(eb, STRATUS_EIO, "getcwd: %s", strerror(errno));
            goto out_close;
        }
        size_t n = strlen(cwd) + strlen(conf->path) + 2;
        l->root = malloc(n);
        if (l->root)
            snprintf(l->root, n, "%s/%s", cwd, conf->path);
    }
    if (!l->root) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "out of memory");
        goto out_close;
    }
    /* mkdir -p root */
    for (char *p = l->root + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(l->root, 0755) < 0 && errno != EEXIST) {
            rc = stratus_errf(eb, local_errno(errno), "mkdir %s: %s", l->root, strerror(errno));
            *p = c;
            goto out_close;
        }
        *p = c;
        if (!c)
            break;
    }
    l->rootfd = open(l->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (l->rootfd < 0) {
        rc = stratus_errf(eb, local_errno(errno), "open %s: %s", l->root, strerror(errno));
        goto out_close;
    }
    if (faccessat(l->rootfd, ".", W_OK, AT_EACCESS) < 0) {
        rc = stratus_errf(eb, STRATUS_EAUTH, "%s is not writable: %s", l->root, strerror(errno));
        goto out_close;
    }
    if (host && host->log)
        host->log(host->hctx, STRATUS_LOG_INFO,
                  "objects under %s (fsync %s, direct_io %s, write_chunk %zu KiB, bulk %zu KiB)",
                  l->root, l->fsync ? "on" : "off", l->direct_io ? "on" : "off", l->chunk >> 10,
                  l->bulk_chunk >> 10);
    *inst = l;
    return 0;

out_close:
    local_close(l);
    return rc;
}

/* put and putv: pieces iov[0..n) are the object; n == 1 is put's buffer. */
static int local_put_pieces(void *inst, const char *key, const struct stratus_iov *iov, size_t n,
                            const struct stratus_put_opts *opts, char *etag_out,
                            struct stratus_errbuf *eb)
{
    struct local *l = inst;
    char dir[LOCAL_KEY_MAX + 1], tmp[64];
    const char *base;
    int if_absent = 0, dfd = -1, fd = -1, rc, locked = 0;
    const char *if_match = NULL;
    struct stat sb;
    size_t chunk;

    rc = local_check_key(key, eb);
    if (rc < 0)
        return rc;
    stratus_put_opts_read(opts, &if_absent, &if_match);
    base = local_split(key, dir);
    /* A delete in another process may remove the directory between mkdir and the temp
     * file: retry (in this one, the prune lock keeps it). */
    pthread_rwlock_rdlock(&l->prune);
    for (int attempt = 0;; attempt++) {
        dfd = local_open_dir(l, dir, 1, eb);
        if (dfd < 0) {
            pthread_rwlock_unlock(&l->prune);
            return dfd;
        }
        fd = local_create_temp(dfd, tmp);
        if (fd >= 0)
            break;
        int e = errno;
        close(dfd);
        if (e != ENOENT || attempt == 8) {
            pthread_rwlock_unlock(&l->prune);
            return stratus_errf(eb, local_errno(e), "create temp in %s/%s: %s", l->root, dir,
                                strerror(e));
        }
    }
    pthread_rwlock_unlock(&l->prune);
    chunk = stratus_put_opts_bulk(opts) ? l->bulk_chunk : l->chunk;
    if ((n == 1 ? local_write_data(l, fd, iov[0].base, iov[0].len, chunk)
                : local_write_pieces(l, fd, iov, n, chunk)) < 0) {
        rc = stratus_errf(eb, local_errno(errno), "write %s: %s", key, strerror(errno));
        goto out_unlink_tmp;
    }
    if (l->fsync && fsync(fd) < 0) {
        rc = stratus_errf(eb, local_errno(errno), "fsync %s: %s", key, strerror(errno));
        goto out_unlink_tmp;
    }
    if (fstat(fd, &sb) < 0) {
        rc = stratus_errf(eb, local_errno(errno), "fstat %s: %s", key, strerror(errno));
        goto out_unlink_tmp;
    }
    close(fd);
    fd = -1;

    /* Check-and-replace under the directory lock (brief: the data is already written). */
    if (flock(dfd, LOCK_EX) < 0) {
        rc = stratus_errf(eb, local_errno(errno), "lock %s/%s: %s", l->root, dir,
                          strerror(errno));
        goto out_unlink_tmp;
    }
    locked = 1;
    if (if_match) {
        struct stat cur;
        char etag[128];
        if (fstatat(dfd, base, &cur, 0) < 0) {
            rc = errno == ENOENT ? stratus_errf(eb, STRATUS_EEXIST, "put %s: if_match: no object",
                                                key)
                                 : stratus_errf(eb, local_errno(errno), "stat %s: %s", key,
                                                strerror(errno));
            goto out_unlink_tmp;
        }
        local_etag(&cur, etag, sizeof etag);
        if (strcmp(etag, if_match) != 0) {
            rc = stratus_errf(eb, STRATUS_EEXIST, "put %s: etag is %s, not %.100s", key, etag,
                              if_match);
            goto out_unlink_tmp;
        }
    }
    if (if_absent) {
        if (renameat2(dfd, tmp, dfd, base, RENAME_NOREPLACE) < 0) {
            if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
                rc = errno == EEXIST
                         ? stratus_errf(eb, STRATUS_EEXIST, "put %s: if_absent: exists", key)
                         : stratus_errf(eb, local_errno(errno), "rename %s: %s", key,
                                        strerror(errno));
                goto out_unlink_tmp;
            }
            /* The filesystem lacks RENAME_NOREPLACE: link(2) fails with EEXIST just as well. */
            if (linkat(dfd, tmp, dfd, base, 0) < 0) {
                rc = errno == EEXIST
                         ? stratus_errf(eb, STRATUS_EEXIST, "put %s: if_absent: exists", key)
                         : stratus_errf(eb, local_errno(errno), "link %s: %s", key,
                                        strerror(errno));
                goto out_unlink_tmp;
            }
            unlinkat(dfd, tmp, 0);
        }
    } else if (renameat(dfd, tmp, dfd, base) < 0) {
        rc = stratus_errf(eb, errno == EISDIR ? STRATUS_EINVAL : local_errno(errno),
                          "rename %s: %s", key, strerror(errno));
        goto out_unlink_tmp;
    }
    flock(dfd, LOCK_UN);
    if (l->fsync && fsync(dfd) < 0) {
        rc = stratus_errf(eb, local_errno(errno), "fsync dir of %s: %s", key, strerror(errno));
        close(dfd);
        return rc;
    }
    close(dfd);
    if (etag_out)
        local_etag(&sb, etag_out, 128);
    return 0;

out_unlink_tmp:
    if (fd >= 0)
        close(fd);
    unlinkat(dfd, tmp, 0);
    if (locked)
        flock(dfd, LOCK_UN);
    close(dfd);
    return rc;
}

static int local_put(void *inst, const char *key, const void *data, size_t len,
                     const struct stratus_put_opts *opts, char *etag_out,
                     struct stratus_errbuf *eb)
{
    const struct stratus_iov one = {data, len};
    return local_put_pieces(inst, key, &one, 1, opts, etag_out, eb);
}

static int local_putv(void *inst, const char *key, const struct stratus_iov *iov, size_t n,
                      const struct stratus_put_opts *opts, char *etag_out,
                      struct stratus_errbuf *eb)
{
    const struct stratus_iov none = {"", 0};
    if (n == 0)
        return local_put_pieces(inst, key, &none, 1, opts, etag_out, eb);
    return local_put_pieces(inst, key, iov, n, opts, etag_out, eb);
}

/* Reads with O_DIRECT when direct_io is on and the read is large and aligned (the cold reads'
 * 1 MiB blocks into page-aligned buffers): the disk's DMA lands in the caller's buffer, where a
 * buffered read would copy every byte out of freshly filled page-cache pages (35% of the
 * broker's CPU in a catch-up read, docs/benchmarks.md round 15) and fill the page cache with
 * objects the cache plugin already caches. The length asked of the kernel is rounded up to the
 * alignment (the caller's buffer holds len, a multiple of it): at the end of the object it
 * returns what there is. Any refusal falls back to a buffered read. */
static int local_get_direct(struct local *l, int fd, const struct stat *sb, uint64_t off,
                            size_t len, void *dst, size_t *got)
{
    if (!l->direct_io || len < LOCAL_DIO_MIN || off % LOCAL_DIO_ALIGN || len % LOCAL_DIO_ALIGN ||
        (uintptr_t)dst % LOCAL_DIO_ALIGN || off >= (uint64_t)sb->st_size)
        return -1;
    uint64_t want = (uint64_t)sb->st_size - off < len ? (uint64_t)sb->st_size - off : len;
    size_t ask = (size_t)((want + LOCAL_DIO_ALIGN - 1) / LOCAL_DIO_ALIGN * LOCAL_DIO_ALIGN);
    if (local_set_direct(fd, 1) != 0)
        return -1;
    ssize_t r;
    do
        r = pread(fd, dst, ask, (off_t)off);
    while (r < 0 && errno == EINTR);
    int e = errno;
    (void)local_set_direct(fd, 0);
    if (r < 0) {
        errno = e;
        return -1; /* EINVAL and the like: the buffered read below tries again */
    }
    *got = (size_t)r < want ? (size_t)r : (size_t)want;
    return 0;
}

static int local_get(void *inst, const char *key, uint64_t off, size_t len, void *dst,
                     size_t *got, struct stratus_errbuf *eb)
{
    struct local *l = inst;
    struct stat sb;
    size_t n = 0;
    int fd, rc;

    *got = 0;
    rc = local_check_key(key, eb);
    if (rc < 0)
        return rc;
    fd = openat(l->rootfd, key, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return stratus_errf(eb, local_errno(errno), "get %s: %s", key, strerror(errno));
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return stratus_errf(eb, STRATUS_ENOTFOUND, "get %s: not an object", key);
    }
    if (local_get_direct(l, fd, &sb, off, len, dst, &n) != 0)
        n = 0;
    else if (off + n >= (uint64_t)sb.st_size)
        len = n; /* read to the end of the object: nothing more to ask */
    /* the buffered read: all of it, or what a short direct read left */
    while (n < len) {
        ssize_t r = pread(fd, (char *)dst + n, len - n, (off_t)(off + n));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = stratus_errf(eb, local_errno(errno), "read %s: %s", key, strerror(errno));
            close(fd);
            return rc;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *got = n;
    return 0;
}

static int local_head(void *inst, const char *key, struct stratus_object_info *info,
                      struct stratus_errbuf *eb)
{
    struct local *l = inst;
    struct stat sb;
    int rc = local_check_key(key, eb);
    if (rc < 0)
        return rc;
    if (fstatat(l->rootfd, key, &sb, 0) < 0)
        return stratus_errf(eb, local_errno(errno), "head %s: %s", key, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return stratus_errf(eb, STRATUS_ENOTFOUND, "head %s: not an object", key);
    local_info(key, &sb, info);
    return 0;
}

static int local_del_one(struct local *l, const char *key, struct stratus_errbuf *eb)
{
    char dir[LOCAL_KEY_MAX + 1];
    const char *base = local_split(key, dir);
    int dfd = local_open_dir(l, dir, 0, eb);
    struct stat sb;

    if (dfd == STRATUS_ENOTFOUND)
        return 0;
    if (dfd < 0)
        return dfd;
    flock(dfd, LOCK_EX);
    if (fstatat(dfd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode)) {
        close(dfd);
        return 0; /* a "directory" of keys is not an object */
    }
    if (unlinkat(dfd, base, 0) < 0 && errno != ENOENT) {
        int e = errno;
        close(dfd);
        return stratus_errf(eb, local_errno(e), "delete %s: %s", key, strerror(e));
    }
    flock(dfd, LOCK_UN);
    if (l->fsync)
        fsync(dfd);
    close(dfd);
    /* Remove the directories this left empty; ENOTEMPTY (or a racing put) stops the walk. */
    pthread_rwlock_wrlock(&l->prune);
    while (dir[0]) {
        if (unlinkat(l->rootfd, dir, AT_REMOVEDIR) < 0)
            break;
        char *slash = strrchr(dir, '/');
        if (!slash)
            break;
        *slash = '\0';
    }
    pthread_rwlock_unlock(&l->prune);
    return 0;
}

static int local_del(void *inst, const char *const *keys, size_t nkeys,
                     struct stratus_errbuf *eb)
{
    struct local *l = inst;
    for (size_t i = 0; i < nkeys; i++) {
        int rc = local_check_key(keys[i], eb);
        if (rc < 0)
            return rc;
        rc = local_del_one(l, keys[i], eb);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- list: a depth-first walk that visits keys in lexicographic order ---------------------
 * Within a directory, entries are sorted by their name with a '/' appended for directories:
 * every key under directory "d" starts with "d/", so this order is the keys' byte order. */

struct local_ent {
    char *name;
    int is_dir;
    char sortkey[NAME_MAX + 2];
};

static int local_ent_cmp(const void *a, const void *b)
{
    return strcmp(((const struct local_ent *)a)->sortkey, ((const struct local_ent *)b)->sortkey);
}

struct local_walk {
    struct local *l;
    const char *prefix;
    const char *start_after; /* "" = from the start */
    stratus_list_fn *cb;
    void *arg;
    struct stratus_errbuf *eb;
    char path[LOCAL_KEY_MAX + 2]; /* key of the directory being walked, with trailing '/' */
};

/* Could a key starting with s (a directory's "d/") match the prefix and come after start? */
static int local_dir_relevant(const struct local_walk *w, const char *s, size_t sl)
{
    size_t pl = strlen(w->prefix);
    size_t m = sl < pl ? sl : pl;
    if (strncmp(s, w->prefix, m) != 0)
        return 0;
    /* Every key under s is > start_after unless start_after is >= s without s as prefix. */
    if (w->start_after[0] && strncmp(w->start_after, s, sl) > 0)
        return 0;
    return 1;
}

static int local_walk_dir(struct local_walk *w, int dfd)
{
    struct local_ent *ents = NULL;
    size_t n = 0, cap = 0, plen = strlen(w->path);
    struct dirent *de;
    int rc = 0;
    DIR *d = fdopendir(dfd);

    if (!d) {
        close(dfd);
        return stratus_errf(w->eb, local_errno(errno), "list %s: %s", w->path, strerror(errno));
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            strncmp(de->d_name, LOCAL_TMP_PREFIX, strlen(LOCAL_TMP_PREFIX)) == 0)
            continue;
        int is_dir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN || de->d_type == DT_LNK) {
            struct stat sb;
            if (fstatat(dirfd(d), de->d_name, &sb, 0) < 0)
                continue;
            is_dir = S_ISDIR(sb.st_mode);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            struct local_ent *ne = realloc(ents, cap * sizeof *ents);
            if (!ne) {
                rc = stratus_errf(w->eb, STRATUS_ENOMEM, "list: out of memory");
                goto out_free;
            }
            ents = ne;
        }
        ents[n].name = strdup(de->d_name);
        if (!ents[n].name) {
            rc = stratus_errf(w->eb, STRATUS_ENOMEM, "list: out of memory");
            goto out_free;
        }
        ents[n].is_dir = is_dir;
        snprintf(ents[n].sortkey, sizeof ents[n].sortkey, "%s%s", de->d_name, is_dir ? "/" : "");
        n++;
    }
    if (errno) {
        rc = stratus_errf(w->eb, local_errno(errno), "list %s: %s", w->path, strerror(errno));
        goto out_free;
    }
    if (n)
        qsort(ents, n, sizeof *ents, local_ent_cmp);
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t nl = strlen(ents[i].sortkey);
        if (plen + nl > LOCAL_KEY_MAX)
            continue; /* cannot be a valid key */
        memcpy(w->path + plen, ents[i].sortkey, nl + 1);
        if (ents[i].is_dir) {
            if (!local_dir_relevant(w, w->path, plen + nl))
                continue;
            int sub = openat(dirfd(d), ents[i].name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sub < 0) {
                if (errno == ENOENT)
                    continue; /* deleted meanwhile */
                rc = stratus_errf(w->eb, local_errno(errno), "list %s: %s", w->path,
                                  strerror(errno));
                break;
            }
            rc = local_walk_dir(w, sub);
        } else {
            struct stat sb;
            struct stratus_object_info info;
            if (strncmp(w->path, w->prefix, strlen(w->prefix)) != 0)
                continue;
            if (w->start_after[0] && strcmp(w->path, w->start_after) <= 0)
                continue;
            if (fstatat(dirfd(d), ents[i].name, &sb, 0) < 0 || !S_ISREG(sb.st_mode))
                continue; /* deleted meanwhile, or not a file */
            local_info(w->path, &sb, &info);
            rc = w->cb(w->arg, &info);
        }
    }
    w->path[plen] = '\0';
out_free:
    for (size_t i = 0; i < n; i++)
        free(ents[i].name);
    free(ents);
    closedir(d);
    return rc;
}

static int local_list(void *inst, const char *prefix, const char *start_after,
                      stratus_list_fn *cb, void *arg, struct stratus_errbuf *eb)
{
    struct local *l = inst;
    struct local_walk *w;
    char dir[LOCAL_KEY_MAX + 1];
    int dfd, rc;

    if (!prefix)
        prefix = "";
    if (strlen(prefix) > LOCAL_KEY_MAX)
        return stratus_errf(eb, STRATUS_EINVAL, "list: prefix too long");
    w = calloc(1, sizeof *w);
    if (!w)
        return stratus_errf(eb, STRATUS_ENOMEM, "list: out of memory");
    w->l = l;
    w->prefix = prefix;
    w->start_after = start_after ? start_after : "";
    w->cb = cb;
    w->arg = arg;
    w->eb = eb;
    /* Start at the deepest directory the prefix names completely ("a/b/c" -> "a/b/"). */
    local_split(prefix, dir);
    dfd = dir[0] ? openat(l->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                 : openat(l->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        rc = (errno == ENOENT || errno == ENOTDIR)
                 ? 0
                 : stratus_errf(eb, local_errno(errno), "list %s: %s", prefix, strerror(errno));
        free(w);
        return rc;
    }
    snprintf(w->path, sizeof w->path, "%s%s", dir, dir[0] ? "/" : "");
    rc = local_walk_dir(w, dfd);
    free(w);
    return rc;
}

static const struct stratus_storage_ops local_ops = {
    .ops_size = sizeof(struct stratus_storage_ops),
    .open = local_open,
    .close = local_close,
    .put = local_put,
    .get = local_get,
    .head = local_head,
    .del = local_del,
    .list = local_list,
    .putv = local_putv,
};

static const struct stratus_plugin_desc local_desc = {
    .desc_size = sizeof(struct stratus_plugin_desc),
    .abi_major = STRATUS_ABI_MAJOR,
    .abi_minor = STRATUS_ABI_MINOR,
    .build_sig = STRATUS_BUILD_SIG,
    .kind = STRATUS_PLUGIN_STORAGE,
    .name = "local",
    .version = "0.1.0",
    .description = "Objects as files under a local or shared directory (atomic rename puts)",
    .params = local_params,
    .conf_size = sizeof(struct local_conf),
    .ops = &local_ops,
};

STRATUS_PLUGIN_DECLARE(local_desc)
