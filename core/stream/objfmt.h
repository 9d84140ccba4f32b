/* objfmt.h - stream-set objects: building one in memory, reading back its footer and index.
 * The format is documented at the top of objfmt.c. Pure functions; thread-safe.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_STREAM_OBJFMT_H
#define STRATUS_STREAM_OBJFMT_H

#include <stddef.h>
#include <stdint.h>

#include "stratus/stratus_err.h"
#include "stratus/stratus_storage.h"

#define STRATUS_OBJFMT_MAGIC 0x53534f31u /* "SSO1" */
#define STRATUS_OBJFMT_VERSION 1
#define STRATUS_OBJFMT_FOOTER_SIZE 24
#define STRATUS_OBJFMT_RANGE_SIZE 48

/* One range: consecutive batches of one partition stream, stored raw. */
struct stratus_objfmt_range {
    uint64_t stream_id;
    int64_t base_offset;
    int64_t last_offset;
    int64_t max_timestamp;
    uint64_t position; /* byte offset of the first batch in the object */
    uint32_t length;
    uint32_t batches;
};

/* A piece of an object in gather mode: len bytes at ext (the caller's memory), or, ext NULL,
 * at offset off of the builder's buffer (which may move while it grows). */
struct stratus_objfmt_piece {
    const uint8_t *ext;
    size_t off, len;
};

/* Builds an object. The builder owns its buffer until stratus_objfmt_finish hands it over. */
struct stratus_objfmt_builder {
    uint8_t *buf;
    size_t len, cap;
    struct stratus_objfmt_range *ranges;
    size_t nranges, rcap;
    int open; /* a range is being filled */
    size_t out_cap; /* after finish: the allocated size of the buffer handed out */
    /* gather mode (stratus_objfmt_set_gather) */
    int gather;
    uint64_t pos;    /* the object's length so far */
    size_t bp_open;  /* offset in buf of the buffer piece being filled, or SIZE_MAX */
    struct stratus_objfmt_piece *pieces;
    size_t npieces, pcap;
    struct stratus_iov *iov; /* after stratus_objfmt_finish_pieces */
};

void stratus_objfmt_init(struct stratus_objfmt_builder *b);
/* Like init, but the builder takes buf (cap bytes, from an earlier finish: 4 KiB-aligned and
 * free()-able) to build into, saving a fresh allocation and its page faults; a buf that is NULL
 * or not aligned is freed and ignored. */
void stratus_objfmt_init_buf(struct stratus_objfmt_builder *b, uint8_t *buf, size_t cap);
/* Grows the buffer to hold at least bytes in all and touches every page of it, so that the
 * adds that follow neither reallocate nor fault (the uploader calls it before taking any
 * partition lock). Returns STRATUS_ENOMEM when the buffer cannot grow. */
int stratus_objfmt_reserve(struct stratus_objfmt_builder *b, size_t bytes);
/* Starts a range of stream_id; the batches added next belong to it. */
void stratus_objfmt_begin_range(struct stratus_objfmt_builder *b, uint64_t stream_id);
/* Appends one whole batch (base..last offsets, its max timestamp). Returns STRATUS_ENOMEM when
 * the buffer cannot grow or a range would pass 4 GiB. */
int stratus_objfmt_add_batch(struct stratus_objfmt_builder *b, const uint8_t *batch, size_t len,
                             int64_t base_offset, int64_t last_offset, int64_t max_timestamp);
void stratus_objfmt_end_range(struct stratus_objfmt_builder *b);

/* Gather mode, set right after init: the object is built as pieces for a gather put
 * (stratus_storage_putv) instead of in one buffer. stratus_objfmt_add_batch still copies into
 * the buffer; stratus_objfmt_add_inplace leaves a batch's aligned middle where it is. Every
 * piece but the last starts and ends on STRATUS_IOV_ALIGN (in the object and in memory), so
 * that storage-local writes them all with O_DIRECT, straight from where they are. */
void stratus_objfmt_set_gather(struct stratus_objfmt_builder *b);
/* Gather mode: appends a batch like stratus_objfmt_add_batch, referencing the whole
 * STRATUS_IOV_ALIGN blocks inside it, which must stay unchanged until the object is put; its
 * partial first and last blocks are copied. When the batch's place in memory does not line up
 * with the end of the range in the object, the range ends and a new one of the same stream
 * starts at the batch, after zero padding (so a stream may have several ranges in an object:
 * its ranges are b->ranges[first..nranges), first read before the first add). A batch with no
 * whole block, or whose padding would be more than 1/32 of its size, is copied. Same return
 * codes. */
int stratus_objfmt_add_inplace(struct stratus_objfmt_builder *b, const uint8_t *batch, size_t len,
                               int64_t base_offset, int64_t last_offset,
                               int64_t max_timestamp);
/* Gather mode: like stratus_objfmt_finish, but iov and n get the object's pieces (owned by the
 * builder, valid until stratus_objfmt_free, the buffer's pieces until it grows) and *len its
 * length. The buffer stays the builder's. */
int stratus_objfmt_finish_pieces(struct stratus_objfmt_builder *b, const struct stratus_iov **iov,
                                 size_t *n, uint64_t *len);
/* Writes the index block and the footer; *out (4 KiB-aligned, free()-able, now the caller's;
 * b->out_cap is its allocated size) and *len get the
 * object. The ranges stay in b->ranges until stratus_objfmt_free. */
int stratus_objfmt_finish(struct stratus_objfmt_builder *b, uint8_t **out, size_t *len);
void stratus_objfmt_free(struct stratus_objfmt_builder *b);

/* Reads the footer (the last STRATUS_OBJFMT_FOOTER_SIZE bytes of an object of object_size). */
int stratus_objfmt_parse_footer(const uint8_t *footer, uint64_t object_size, uint64_t *index_pos,
                                uint32_t *index_len, uint32_t *index_crc,
                                struct stratus_errbuf *eb);
/* Checks the index block's CRC and decodes it; *out is malloc'd (caller frees). */
int stratus_objfmt_parse_index(const uint8_t *p, size_t len, uint32_t crc, uint64_t index_pos,
                               struct stratus_objfmt_range **out, size_t *n,
                               struct stratus_errbuf *eb);

/* The storage key of an object id: "data/<2 hex>/<16 hex>.sso" (the 2 hex chars spread keys
 * over prefixes). buf needs 32 bytes. */
void stratus_objfmt_key(uint64_t object_id, char *buf, size_t cap);

#endif
