/* objfmt.c - the stream-set object format, built by the uploader and read by recovery and
 * (later) the compactor. Cold reads use the RocksDB offset index, which holds the same ranges.
 *
 * An object, all integers little-endian:
 *   data blocks   for each range, the partition's consecutive record batches, raw (as the
 *                 producer sent them, base offsets assigned), back to back; ranges follow
 *                 each other, or (gather mode, below) zero padding up to a 4 KiB boundary
 *                 lies between them, which no range covers
 *   index block   u32 range count, then per range (48 bytes): u64 stream id, i64 base offset,
 *                 i64 last offset, i64 max timestamp, u64 position, u32 length, u32 batches
 *   footer (24)   u64 index position, u32 index length, u32 crc32c of the index block,
 *                 u32 magic "SSO1" (0x53534f31), u16 version (1), u16 flags (0)
 * Keys: "data/<hh>/<id as 16 hex>.sso" where hh is the low byte of crc32c(id) in hex.
 * Gather mode (the uploader, with a storage plugin that has putv) builds the same format as
 * pieces: a large batch's whole 4 KiB pages (STRATUS_IOV_ALIGN) stay where the batch is, its
 * partial first and last pages are copied into the builder's buffer next to the small
 * batches, and a batch whose address does not line up (mod 4 KiB) with where its range ends
 * in the object starts a new range of the same stream after padding (or is copied, when the
 * padding would be more than 1/32 of it). So a stream may have several ranges in one object.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "objfmt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util/alloc.h"
#include "util/bytes.h"
#include "util/copy.h"
#include "util/crc32c.h"

/* The object buffer is 4 KiB-aligned (posix_memalign), so that a storage plugin can write it
 * with O_DIRECT (storage-local does); growing copies into a new aligned buffer, which the
 * uploader makes rare by handing each round's buffer to the next (stratus_objfmt_init_buf). */
#define OBJFMT_ALIGN 4096u
#define OBJFMT_HUGE (2u << 20) /* buffers from 4 MiB up: 2 MiB-aligned, transparent huge pages */
/* Gather mode: a batch stays in place only when the zero padding it needs is at most 1/32 of
 * its size, so padding adds at most ~3% to an object (0.2% in workload 1, 1 MB batches) */
#define OBJFMT_PAD_SHARE 32u

static int grow(struct stratus_objfmt_builder *b, size_t more)
{
    size_t need = b->len + more, cap = b->cap ? b->cap : 65536;
    void *nb = NULL;

    if (need <= b->cap)
        return 0;
    while (cap < need)
        cap *= 2;
    if (posix_memalign(&nb, cap >= 2 * OBJFMT_HUGE ? OBJFMT_HUGE : OBJFMT_ALIGN, cap) != 0)
        return STRATUS_ENOMEM;
    if (cap >= 2 * OBJFMT_HUGE) /* fewer page faults and TLB misses; cheaper O_DIRECT pinning */
        (void)madvise(nb, cap, MADV_HUGEPAGE);
    if (b->len)
        memcpy(nb, b->buf, b->len);
    free(b->buf);
    b->buf = nb;
    b->cap = cap;
    return 0;
}

int stratus_objfmt_reserve(struct stratus_objfmt_builder *b, size_t bytes)
{
    const uint8_t *was = b->buf;
    size_t had = b->cap;
    if (bytes > b->len && grow(b, bytes - b->len) != 0)
        return STRATUS_ENOMEM;
    if (b->buf != was)
        had = 0; /* a new buffer: every page past len is fresh */
    /* First touch of a fresh buffer: page faults, and with transparent huge pages possibly
     * synchronous compaction (measured: a 134 ms stall of every produce when this happened
     * under a partition lock in the first upload round). Pay it here, once. */
    for (size_t off = had > b->len ? had : b->len; off < b->cap; off += OBJFMT_ALIGN)
        ((volatile uint8_t *)b->buf)[off] = 0;
    return 0;
}

void stratus_objfmt_init(struct stratus_objfmt_builder *b)
{
    memset(b, 0, sizeof *b);
    b->bp_open = SIZE_MAX;
}

void stratus_objfmt_set_gather(struct stratus_objfmt_builder *b)
{
    b->gather = 1;
}

void stratus_objfmt_init_buf(struct stratus_objfmt_builder *b, uint8_t *buf, size_t cap)
{
    memset(b, 0, sizeof *b);
    b->bp_open = SIZE_MAX;
    if (buf && cap && (uintptr_t)buf % OBJFMT_ALIGN == 0) {
        b->buf = buf;
        b->cap = cap;
    } else {
        free(buf);
    }
}

void stratus_objfmt_begin_range(struct stratus_objfmt_builder *b, uint64_t stream_id)
{
    struct stratus_objfmt_range *r;

    if (b->nranges == b->rcap) {
        b->rcap = b->rcap ? b->rcap * 2 : 16;
        b->ranges = xrealloc(b->ranges, b->rcap * sizeof *b->ranges);
    }
    r = &b->ranges[b->nranges++];
    memset(r, 0, sizeof *r);
    r->stream_id = stream_id;
    r->position = b->len;
    r->max_timestamp = -1;
    b->open = 1;
}

/* Counts a batch of len bytes into range r. */
static void range_add(struct stratus_objfmt_range *r, size_t len, int64_t base_offset,
                      int64_t last_offset, int64_t max_timestamp)
{
    if (r->batches == 0)
        r->base_offset = base_offset;
    r->last_offset = last_offset;
    if (max_timestamp > r->max_timestamp)
        r->max_timestamp = max_timestamp;
    r->length += (uint32_t)len;
    r->batches++;
}

int stratus_objfmt_add_batch(struct stratus_objfmt_builder *b, const uint8_t *batch, size_t len,
                             int64_t base_offset, int64_t last_offset, int64_t max_timestamp)
{
    struct stratus_objfmt_range *r;

    if (!b->open || !b->nranges)
        return STRATUS_EINVAL;
    r = &b->ranges[b->nranges - 1];
    if ((uint64_t)r->length + len > UINT32_MAX || grow(b, len) != 0)
        return STRATUS_ENOMEM;
    if (b->gather) {
        if (b->bp_open == SIZE_MAX)
            b->bp_open = b->len; /* aligned: see close_piece */
        if (r->batches == 0)
            r->position = b->pos;
        b->pos += len;
    }
    stratus_copy_nt(b->buf + b->len, batch, len); /* the object is only read by its put */
    b->len += len;
    range_add(r, len, base_offset, last_offset, max_timestamp);
    return 0;
}

/* The index block of b's ranges at p. */
static void write_index(const struct stratus_objfmt_builder *b, uint8_t *p)
{
    put_le32(p, (uint32_t)b->nranges);
    p += 4;
    for (size_t i = 0; i < b->nranges; i++, p += STRATUS_OBJFMT_RANGE_SIZE) {
        const struct stratus_objfmt_range *r = &b->ranges[i];
        put_le64(p, r->stream_id);
        put_le64(p + 8, (uint64_t)r->base_offset);
        put_le64(p + 16, (uint64_t)r->last_offset);
        put_le64(p + 24, (uint64_t)r->max_timestamp);
        put_le64(p + 32, r->position);
        put_le32(p + 40, r->length);
        put_le32(p + 44, r->batches);
    }
}

static void write_footer(uint8_t *p, uint64_t ipos, uint32_t ilen, uint32_t icrc)
{
    put_le64(p, ipos);
    put_le32(p + 8, ilen);
    put_le32(p + 12, icrc);
    put_le32(p + 16, STRATUS_OBJFMT_MAGIC);
    p[20] = STRATUS_OBJFMT_VERSION;
    p[21] = 0;
    p[22] = 0;
    p[23] = 0;
}

/* Gather mode: appends a piece. */
static void add_piece(struct stratus_objfmt_builder *b, const uint8_t *ext, size_t off,
                      size_t len)
{
    if (b->npieces == b->pcap) {
        b->pcap = b->pcap ? b->pcap * 2 : 64;
        b->pieces = xrealloc(b->pieces, b->pcap * sizeof *b->pieces);
    }
    b->pieces[b->npieces++] = (struct stratus_objfmt_piece){ext, off, len};
}

/* Gather mode: ends the buffer piece being filled, which the callers leave a multiple of the
 * alignment long (so b->len, where the next one starts, stays aligned). */
static void close_piece(struct stratus_objfmt_builder *b)
{
    if (b->bp_open == SIZE_MAX)
        return;
    if (b->len > b->bp_open)
        add_piece(b, NULL, b->bp_open, b->len - b->bp_open);
    b->bp_open = SIZE_MAX;
}

int stratus_objfmt_add_inplace(struct stratus_objfmt_builder *b, const uint8_t *batch, size_t len,
                               int64_t base_offset, int64_t last_offset, int64_t max_timestamp)
{
    const size_t A = STRATUS_IOV_ALIGN;
    size_t head = (A - (uintptr_t)batch % A) % A, pad = 0, tail;
    const uint8_t *body, *body_end;
    struct stratus_objfmt_range *r;

    if (!b->gather || len < head + A)
        return stratus_objfmt_add_batch(b, batch, len, base_offset, last_offset, max_timestamp);
    if (!b->open || !b->nranges)
        return STRATUS_EINVAL;
    body = batch + head;
    body_end = batch + (((uintptr_t)batch + len) / A * A - (uintptr_t)batch);
    tail = (size_t)(batch + len - body_end);
    r = &b->ranges[b->nranges - 1];
    /* Zero padding this batch would need before it (a new range, or the range's first batch
     * not lined up): when it is more than a share of the batch, copying is cheaper than the
     * bytes of padding written and kept */
    if ((b->pos + head) % A != 0 && (A - (b->pos + head) % A) > len / OBJFMT_PAD_SHARE)
        return stratus_objfmt_add_batch(b, batch, len, base_offset, last_offset, max_timestamp);
    if (r->batches && (b->pos + head) % A != 0) { /* cannot follow on: a new range */
        uint64_t sid = r->stream_id;
        stratus_objfmt_end_range(b);
        stratus_objfmt_begin_range(b, sid);
        r = &b->ranges[b->nranges - 1];
    }
    if (r->batches == 0)
        pad = (A - (b->pos + head) % A) % A;
    if ((uint64_t)r->length + len > UINT32_MAX || grow(b, pad + head + tail) != 0)
        return STRATUS_ENOMEM;
    /* the partial first block: copied to the end of a buffer piece that ends aligned */
    if (pad + head) {
        if (b->bp_open == SIZE_MAX)
            b->bp_open = b->len;
        memset(b->buf + b->len, 0, pad);
        b->len += pad;
        b->pos += pad;
    }
    if (r->batches == 0)
        r->position = b->pos;
    if (head) {
        memcpy(b->buf + b->len, batch, head);
        b->len += head;
        b->pos += head;
    }
    close_piece(b);
    add_piece(b, body, 0, (size_t)(body_end - body));
    b->pos += (uint64_t)(body_end - body);
    if (tail) { /* the partial last block starts the next buffer piece */
        b->bp_open = b->len;
        memcpy(b->buf + b->len, body_end, tail);
        b->len += tail;
        b->pos += tail;
    }
    range_add(r, len, base_offset, last_offset, max_timestamp);
    return 0;
}

int stratus_objfmt_finish_pieces(struct stratus_objfmt_builder *b, const struct stratus_iov **iov,
                                 size_t *n, uint64_t *len)
{
    size_t ilen;
    uint64_t ipos;
    uint8_t *p;

    if (!b->gather)
        return STRATUS_EINVAL;
    stratus_objfmt_end_range(b);
    ilen = 4 + b->nranges * STRATUS_OBJFMT_RANGE_SIZE;
    if (ilen > UINT32_MAX || grow(b, ilen + STRATUS_OBJFMT_FOOTER_SIZE) != 0)
        return STRATUS_ENOMEM;
    if (b->bp_open == SIZE_MAX)
        b->bp_open = b->len;
    ipos = b->pos;
    p = b->buf + b->len;
    write_index(b, p);
    b->len += ilen;
    write_footer(b->buf + b->len, ipos, (uint32_t)ilen, stratus_crc32c(0, p, ilen));
    b->len += STRATUS_OBJFMT_FOOTER_SIZE;
    b->pos += ilen + STRATUS_OBJFMT_FOOTER_SIZE;
    close_piece(b);
    free(b->iov);
    b->iov = xcalloc(b->npieces ? b->npieces : 1, sizeof *b->iov);
    for (size_t i = 0; i < b->npieces; i++) {
        const struct stratus_objfmt_piece *pc = &b->pieces[i];
        b->iov[i] = (struct stratus_iov){pc->ext ? pc->ext : b->buf + pc->off, pc->len};
    }
    *iov = b->iov;
    *n = b->npieces;
    *len = b->pos;
    return 0;
}

void stratus_objfmt_end_range(struct stratus_objfmt_builder *b)
{
    if (b->open && b->nranges && b->ranges[b->nranges - 1].batches == 0)
        b->nranges--; /* drop an empty range */
    b->open = 0;
}

int stratus_objfmt_finish(struct stratus_objfmt_builder *b, uint8_t **out, size_t *len)
{
    size_t ilen = 4 + b->nranges * STRATUS_OBJFMT_RANGE_SIZE;
    uint64_t ipos;
    uint8_t *p;

    stratus_objfmt_end_range(b);
    ilen = 4 + b->nranges * STRATUS_OBJFMT_RANGE_SIZE;
    if (ilen > UINT32_MAX || grow(b, ilen + STRATUS_OBJFMT_FOOTER_SIZE) != 0)
        return STRATUS_ENOMEM;
    if (b->gather)
        return STRATUS_EINVAL;
    ipos = b->len;
    p = b->buf + b->len;
    write_index(b, p);
    b->len += ilen;
    write_footer(b->buf + b->len, ipos, (uint32_t)ilen, stratus_crc32c(0, p, ilen));
    b->len += STRATUS_OBJFMT_FOOTER_SIZE;
    *out = b->buf;
    *len = b->len;
    b->out_cap = b->cap;
    b->buf = NULL;
    b->len = b->cap = 0;
    return 0;
}

void stratus_objfmt_free(struct stratus_objfmt_builder *b)
{
    free(b->buf);
    free(b->ranges);
    free(b->pieces);
    free(b->iov);
    memset(b, 0, sizeof *b);
}

int stratus_objfmt_parse_footer(const uint8_t *f, uint64_t object_size, uint64_t *index_pos,
                                uint32_t *index_len, uint32_t *index_crc,
                                struct stratus_errbuf *eb)
{
    uint16_t version = (uint16_t)(f[20] | (f[21] << 8));

    if (object_size < STRATUS_OBJFMT_FOOTER_SIZE + 4)
        return stratus_errf(eb, STRATUS_ECORRUPT, "object too small (%llu bytes)",
                            (unsigned long long)object_size);
    if (get_le32(f + 16) != STRATUS_OBJFMT_MAGIC)
        return stratus_errf(eb, STRATUS_ECORRUPT, "object footer: bad magic");
    if (version != STRATUS_OBJFMT_VERSION)
        return stratus_errf(eb, STRATUS_ENOTSUP, "object footer: version %u", version);
    *index_pos = get_le64(f);
    *index_len = get_le32(f + 8);
    *index_crc = get_le32(f + 12);
    if (*index_len < 4 || *index_pos > object_size ||
        object_size - *index_pos != (uint64_t)*index_len + STRATUS_OBJFMT_FOOTER_SIZE)
        return stratus_errf(eb, STRATUS_ECORRUPT, "object footer: index %llu+%u out of bounds",
                            (unsigned long long)*index_pos, *index_len);
    return 0;
}

int stratus_objfmt_parse_index(const uint8_t *p, size_t len, uint32_t crc, uint64_t index_pos,
                               struct stratus_objfmt_range **out, size_t *n,
                               struct stratus_errbuf *eb)
{
    uint32_t count;
    struct stratus_objfmt_range *r;

    if (len < 4)
        return stratus_errf(eb, STRATUS_ECORRUPT, "object index: too short");
    if (stratus_crc32c(0, p, len) != crc)
        return stratus_errf(eb, STRATUS_ECORRUPT, "object index: crc mismatch");
    count = get_le32(p);
    if ((uint64_t)count * STRATUS_OBJFMT_RANGE_SIZE + 4 != len)
        return stratus_errf(eb, STRATUS_ECORRUPT, "object index: %u ranges in %zu bytes", count,
                            len);
    r = xcalloc(count ? count : 1, sizeof *r);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *q = p + 4 + (size_t)i * STRATUS_OBJFMT_RANGE_SIZE;
        r[i].stream_id = get_le64(q);
        r[i].base_offset = (int64_t)get_le64(q + 8);
        r[i].last_offset = (int64_t)get_le64(q + 16);
        r[i].max_timestamp = (int64_t)get_le64(q + 24);
        r[i].position = get_le64(q + 32);
        r[i].length = get_le32(q + 40);
        r[i].batches = get_le32(q + 44);
        if (r[i].position > index_pos || r[i].length > index_pos - r[i].position ||
            r[i].base_offset > r[i].last_offset) { /* no sum: a wrap would pass */
            free(r);
            return stratus_errf(eb, STRATUS_ECORRUPT, "object index: range %u out of bounds", i);
        }
    }
    *out = r;
    *n = count;
    return 0;
}

void stratus_objfmt_key(uint64_t object_id, char *buf, size_t cap)
{
    uint8_t idb[8];
    put_le64(idb, object_id);
    snprintf(buf, cap, "data/%02x/%016llx.sso", stratus_crc32c(0, idb, 8) & 0xff,
             (unsigned long long)object_id);
}
