/* kmsg.h - the table-driven encoder/decoder behind every generated Kafka message.
 *
 * tools/gen_proto.py turns each message JSON into a C struct plus a struct kstruct descriptor
 * (one struct kfield per member: wire type, offset, versions, nullable/tagged versions,
 * default). The three engines here walk a descriptor:
 *   kstruct_init  - sets every field to its JSON default;
 *   kmsg_decode   - reads one message body of a version (arrays from r->arena; unknown tagged
 *                   fields skipped; known tagged fields decoded);
 *   kmsg_encode   - writes one message body (fields absent in the version skipped; tagged
 *                   fields written only when they differ from their default).
 * Flexible versions use compact strings/bytes/arrays and end each struct with a tagged
 * section; a field may override flexibility (RequestHeader.ClientId: "none").
 * Writing null into a field that is not nullable in that version writes an empty value
 * (empty string / bytes / array) instead of failing. Reading a null where the version does not
 * allow it is STRATUS_EPROTO, as in Kafka.
 * Descriptors are const data; the functions are reentrant.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_PROTO_KMSG_H
#define STRATUS_PROTO_KMSG_H

#include <stdint.h>

#include "proto/codec.h"

enum ktype {
    KT_BOOL = 1,
    KT_INT8,
    KT_INT16,
    KT_UINT16,
    KT_INT32,
    KT_INT64,
    KT_FLOAT64,
    KT_UUID,
    KT_STRING,
    KT_BYTES,
    KT_RECORDS,
    KT_STRUCT,
    KT_ARRAY,
};

#define KV_NONE (-1)     /* a version range that never applies */
#define KV_MAX 0x7fff    /* "N+" */
#define KFLEX_INHERIT (-2)

/* uuid array element */
struct kuuid {
    uint8_t b[16];
};

/* The layout every generated array member shares: struct { T *items; int32_t count; }. */
struct karray {
    void *items;
    int32_t count; /* -1 = null */
};

struct kstruct;

struct kfield {
    const char *name;
    uint32_t offset;          /* of the member inside its struct */
    uint8_t type;             /* enum ktype */
    uint8_t elem;             /* element type of KT_ARRAY */
    int16_t vmin, vmax;       /* versions the field is on the wire */
    int16_t nmin, nmax;       /* nullable versions (KV_NONE = never) */
    int16_t tmin, tmax;       /* tagged versions (KV_NONE = never) */
    int32_t tag;
    int16_t flex_min;         /* field-level flexibleVersions: KFLEX_INHERIT, KV_NONE or first */
    int8_t def_null;          /* default is null (strings, bytes, arrays, structs) */
    int64_t def_int;          /* default of integer and bool fields */
    double def_f64;
    const char *def_str;      /* default of non-null string fields */
    const struct kstruct *sub; /* KT_STRUCT, or KT_ARRAY of KT_STRUCT */
};

struct kstruct {
    const char *name;
    uint32_t size;
    uint16_t nfields;
    const struct kfield *fields;
};

struct kmsg_desc {
    const char *name;
    int16_t api_key;
    int16_t vmin, vmax; /* as clipped to what Stratus supports */
    int16_t flex_min;   /* first flexible version, KV_NONE if never */
    const struct kstruct *body;
};

/* Sets every field of the struct at p to its default (arrays: empty, or null when the default
 * says so; strings: "" or null; nested non-array structs recursively). */
void kstruct_init(const struct kstruct *sd, void *p);

/* Decodes a body of the given version into out (which it initialises first). Returns 0, or
 * STRATUS_ENOTSUP for a version outside the descriptor's range, or r->err (STRATUS_EPROTO /
 * STRATUS_ENOMEM). Trailing bytes after the body are left in r for the caller to judge. */
int kmsg_decode(const struct kmsg_desc *md, struct kread *r, int16_t version, void *out);

/* Encodes a body; returns 0, STRATUS_ENOTSUP, or w->err. */
int kmsg_encode(const struct kmsg_desc *md, struct kwrite *w, int16_t version, const void *in);

/* Same engines for one struct given an explicit flexibility (used by the header codecs). */
void kstruct_decode(const struct kstruct *sd, struct kread *r, int16_t version, int flexible,
                    void *out);
void kstruct_encode(const struct kstruct *sd, struct kwrite *w, int16_t version, int flexible,
                    const void *in);

/* Smallest number of wire bytes a struct can take at a version (bounds array counts). */
size_t kstruct_min_size(const struct kstruct *sd, int16_t version, int flexible);

#endif
