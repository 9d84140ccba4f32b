/* compress.h - decompression of the records section of a compressed Kafka record batch.
 *
 * The codec is the low 3 bits of the batch attributes:
 *   1 gzip   - one or more gzip members (RFC 1952; zlib inflate, windowBits 15+32);
 *   2 snappy - either a raw snappy block (librdkafka) or the xerial framing (Java client):
 *              magic 82 'S' 'N' 'A' 'P' 'P' 'Y' 00 | int32 BE version | int32 BE compatible
 *              version | repeated (int32 BE length, raw snappy block of that length);
 *   3 lz4    - LZ4 frame format (one or more frames), lz4frame.h;
 *   4 zstd   - one or more zstd frames, with or without a content size.
 * The output is a malloc'd buffer that never grows past a ceiling, so a small hostile input
 * cannot make us allocate much. Pure functions; thread-safe.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_PROTO_COMPRESS_H
#define STRATUS_PROTO_COMPRESS_H

#include "stratus/stratus_err.h"

#include <stddef.h>
#include <stdint.h>

#define STRATUS_CODEC_NONE   0
#define STRATUS_CODEC_GZIP   1
#define STRATUS_CODEC_SNAPPY 2
#define STRATUS_CODEC_LZ4    3
#define STRATUS_CODEC_ZSTD   4

/* The ceiling used when a caller passes max_out = 0. */
#define STRATUS_DECOMPRESS_MAX_DEFAULT (64u * 1024u * 1024u)

/* The codec's name ("none", "gzip", "snappy", "lz4", "zstd"), or "unknown". */
const char *stratus_codec_name(int codec);

/* Decompresses in (in_len bytes) compressed with codec into a new malloc'd buffer: *out (the
 * caller frees it; NULL when *out_len is 0) and *out_len. Output larger than max_out bytes
 * (0 = STRATUS_DECOMPRESS_MAX_DEFAULT) fails. Returns 0; STRATUS_ECORRUPT for input that does
 * not decode (truncated, bad framing, bad checksum, trailing garbage); STRATUS_ENOMEM past the
 * ceiling or when malloc fails; STRATUS_ENOTSUP for an unknown codec or codec 0. On failure
 * *out is NULL and *out_len 0. */
int stratus_decompress(int codec,
                       const uint8_t *in,
                       size_t in_len,
                       size_t max_out,
                       uint8_t **out,
                       size_t *out_len,
                       struct stratus_errbuf *eb);

#endif
