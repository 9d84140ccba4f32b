/* group_int.h - what group.c and offsets.c share inside core/group: one group's table of
 * committed offsets (a sorted array, owned by the coordinator thread), the RocksDB value
 * encoding of one offset and the cluster-mode blob of a whole group. Nothing outside core/group
 * includes this. SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_GROUP_GROUP_INT_H
#define STRATUS_GROUP_GROUP_INT_H

#include <stddef.h>
#include <stdint.h>

#define STRATUS_OFFSET_METADATA_MAX 4096 /* offset.metadata.max.bytes */

/* One committed offset. topic and meta are owned (malloc'd) by the entry. */
struct stratus_offset {
    char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    char *meta;        /* never NULL ("" when none) */
    int64_t commit_ms; /* wall clock of the commit */
};

/* A group's offsets, sorted by (topic, partition). Coordinator thread only. */
struct stratus_offsets {
    struct stratus_offset *v;
    size_t n, cap;
};

/* Index of (topic, partition), or -1. */
long stratus_offsets_find(const struct stratus_offsets *o, const char *topic, int32_t partition);
/* Sets (inserting or replacing) an entry; copies the strings. */
void stratus_offsets_set(struct stratus_offsets *o,
                         const char *topic,
                         int32_t partition,
                         int64_t offset,
                         int32_t leader_epoch,
                         const char *meta,
                         size_t metalen,
                         int64_t commit_ms);
void stratus_offsets_remove_at(struct stratus_offsets *o, size_t i);
void stratus_offsets_free(struct stratus_offsets *o);

/* Deep copy of src into dst (empty). */
void stratus_offsets_copy(struct stratus_offsets *dst, const struct stratus_offsets *src);

/* Cluster mode: all of one group's offsets as one value (format in offsets.c). *out is
 * malloc'd, owned by the caller. */
void stratus_offsets_blob_encode(const struct stratus_offsets *o, uint8_t **out, size_t *len);
/* Fills out (empty on entry) from a blob. 0 or STRATUS_ECORRUPT (out is then left empty). */
int stratus_offsets_blob_decode(const uint8_t *v, size_t len, struct stratus_offsets *out);

/* Value: u8 version=1, i64 offset, i32 leader epoch, i64 commit ms, u16 metadata len, metadata.
 * Returns the length (out must hold 23 + metalen bytes). */
#define STRATUS_OFFSETS_VALUE_FIXED 23
size_t stratus_offsets_value_encode(uint8_t *out,
                                    int64_t offset,
                                    int32_t leader_epoch,
                                    int64_t commit_ms,
                                    const char *meta,
                                    size_t metalen);
/* 0 or STRATUS_ECORRUPT; *meta points into v. */
int stratus_offsets_value_decode(const uint8_t *v,
                                 size_t vlen,
                                 int64_t *offset,
                                 int32_t *leader_epoch,
                                 int64_t *commit_ms,
                                 const char **meta,
                                 size_t *metalen);

#endif
