/* codec.h - the primitive reader and writer of the Kafka wire protocol.
 *
 * Wire formats (all integers big-endian):
 *   int8/16/32/64, uint16/32, float64 (IEEE-754), bool (1 byte), uuid (16 bytes);
 *   uvarint = 7 bits a byte, low group first, high bit = more (at most 5 bytes, 32 bits);
 *   varint / varlong = zigzag then uvarint (at most 5 / 10 bytes);
 *   string: int16 length (null = -1) | compact: uvarint length+1 (null = 0);
 *   bytes:  int32 length (null = -1) | compact: uvarint length+1 (null = 0);
 *   array:  int32 count  (null = -1) | compact: uvarint count+1  (null = 0);
 *   tagged section (flexible versions): uvarint n, then n x (uvarint tag, uvarint size, data).
 *
 * struct kread reads a borrowed buffer. On any overrun or nonsense length it sets
 * r->err = STRATUS_EPROTO (the first error sticks) and every later read returns zero values,
 * so callers check r->err once at the end. Strings and bytes point INTO the buffer: they are
 * not NUL-terminated and live as long as the buffer. Array counts are bounded by the bytes left
 * (each element needs at least min_elem bytes), so a peer cannot make us allocate much more
 * than its frame.
 *
 * struct kwrite is a growable buffer with a ceiling (max): past it, or on malloc failure,
 * w->err = STRATUS_ENOMEM and later writes are dropped. The writer owns buf until kw_detach().
 * Neither is thread-safe; each belongs to one request.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_PROTO_CODEC_H
#define STRATUS_PROTO_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/arena.h"
#include "stratus/stratus_err.h"

/* A string on the wire: len -1 = null (s == NULL). Not NUL-terminated. */
struct kstr {
    const char *s;
    int32_t len;
};

/* Bytes on the wire: len -1 = null (p == NULL). */
struct kbytes {
    const uint8_t *p;
    int32_t len;
};

#define KSTR_NULL ((struct kstr){NULL, -1})
#define KSTR_LIT(lit) ((struct kstr){(lit), (int32_t)(sizeof(lit) - 1)})

/* A kstr over a NUL-terminated C string (NULL gives the null kstr). */
struct kstr kstr_from(const char *s);
/* Equality of two kstrs (null equals only null). */
bool kstr_eq(struct kstr a, struct kstr b);
/* Equality with a C string (false for a null kstr). */
bool kstr_eq_cstr(struct kstr a, const char *s);
/* Copies into dst (size dstlen, NUL-terminated, truncating); returns a negative STRATUS_ERANGE
 * when truncated, 0 otherwise. A null kstr copies as "". */
int kstr_copy(struct kstr a, char *dst, size_t dstlen);
/* A malloc'd NUL-terminated copy (NULL for a null kstr or on OOM). Caller frees. */
char *kstr_dup(struct kstr a);

struct kread {
    const uint8_t *p, *end;
    int err;
    struct stratus_arena *arena; /* for decoded arrays; may be NULL for primitive reads */
};

void kr_init(struct kread *r, const void *buf, size_t len, struct stratus_arena *arena);
static inline size_t kr_remaining(const struct kread *r)
{
    return r->err ? 0 : (size_t)(r->end - r->p);
}
/* Marks the reader failed (keeps the first error). */
void kr_fail(struct kread *r, int err);

int8_t kr_i8(struct kread *r);
int16_t kr_i16(struct kread *r);
uint16_t kr_u16(struct kread *r);
int32_t kr_i32(struct kread *r);
uint32_t kr_u32(struct kread *r);
int64_t kr_i64(struct kread *r);
double kr_f64(struct kread *r);
int8_t kr_bool(struct kread *r); /* 0 or 1; any nonzero byte reads as 1 */
void kr_uuid(struct kread *r, uint8_t out[16]);
uint32_t kr_uvarint(struct kread *r);
uint64_t kr_uvarlong(struct kread *r);
int32_t kr_varint(struct kread *r);
int64_t kr_varlong(struct kread *r);
/* n raw bytes (pointer into the buffer), or NULL on overrun. */
const uint8_t *kr_raw(struct kread *r, size_t n);
void kr_skip(struct kread *r, size_t n);

struct kstr kr_string(struct kread *r);         /* int16 length */
struct kstr kr_compact_string(struct kread *r); /* uvarint length+1 */
struct kbytes kr_bytes(struct kread *r);        /* int32 length */
struct kbytes kr_compact_bytes(struct kread *r);
/* Array count: -1 for null; fails when count * min_elem exceeds the bytes left
 * (min_elem 0 is treated as 1). */
int32_t kr_array_len(struct kread *r, size_t min_elem);
int32_t kr_compact_array_len(struct kread *r, size_t min_elem);
/* Skips a whole tagged-field section. */
void kr_skip_tags(struct kread *r);

/* A run of bytes a splicing writer did not copy: logically at buf offset `off` (before the
 * byte buf[off]), n bytes at p, which must stay valid until the encoded bytes are written out.
 * Several splices may share one off (they follow each other in array order). */
struct kw_splice {
    size_t off;
    const uint8_t *p;
    size_t n;
};

struct kwrite {
    uint8_t *buf;
    size_t len, cap, max;
    int err;
    /* Splicing, off unless splice_min > 0 (set by the owner after kw_init): a BYTES or
     * RECORDS value (kw_bytes, kw_compact_bytes) of splice_min bytes or more is recorded as a
     * struct kw_splice instead of copied (kw_raw always copies). The encoded stream is then
     * buf with the splices inserted; its length is len + spliced. */
    size_t splice_min, spliced;
    struct kw_splice *splices;
    size_t nsplices, splices_cap;
};

#define KW_DEFAULT_MAX (256u * 1024u * 1024u)

/* An empty writer that will not grow beyond max bytes (0 = KW_DEFAULT_MAX). */
void kw_init(struct kwrite *w, size_t max);
void kw_free(struct kwrite *w);
/* Hands buf over to the caller (who frees it) and leaves the writer empty; *len gets the size. */
uint8_t *kw_detach(struct kwrite *w, size_t *len);
/* Makes room for n more bytes; returns a pointer to them (not yet counted in len) or NULL. */
uint8_t *kw_ensure(struct kwrite *w, size_t n);

void kw_raw(struct kwrite *w, const void *p, size_t n);
void kw_i8(struct kwrite *w, int8_t v);
void kw_i16(struct kwrite *w, int16_t v);
void kw_u16(struct kwrite *w, uint16_t v);
void kw_i32(struct kwrite *w, int32_t v);
void kw_u32(struct kwrite *w, uint32_t v);
void kw_i64(struct kwrite *w, int64_t v);
void kw_f64(struct kwrite *w, double v);
void kw_bool(struct kwrite *w, bool v);
void kw_uuid(struct kwrite *w, const uint8_t v[16]);
void kw_uvarint(struct kwrite *w, uint32_t v);
void kw_uvarlong(struct kwrite *w, uint64_t v);
void kw_varint(struct kwrite *w, int32_t v);
void kw_varlong(struct kwrite *w, int64_t v);
size_t kw_uvarint_size(uint32_t v);

void kw_string(struct kwrite *w, struct kstr s); /* len -1 writes null */
void kw_compact_string(struct kwrite *w, struct kstr s);
void kw_bytes(struct kwrite *w, struct kbytes b);
void kw_compact_bytes(struct kwrite *w, struct kbytes b);
void kw_array_len(struct kwrite *w, int32_t count); /* -1 writes null */
void kw_compact_array_len(struct kwrite *w, int32_t count);
void kw_empty_tags(struct kwrite *w); /* a tagged section with no fields: 0x00 */

/* Reserves an int32 at the current position and returns its offset for kw_patch_i32(). */
size_t kw_reserve_i32(struct kwrite *w);
void kw_patch_i32(struct kwrite *w, size_t pos, int32_t v);

#endif
