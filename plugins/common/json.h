/* json.h - a tiny, allocation-free reader for the small JSON documents of cloud auth and
 * metadata endpoints (ECS/IMDS credentials, OAuth2 token replies, GCS error bodies and object
 * resources). It does not build a tree: stratus_json_get() walks one object and finds a
 * member by name at that object's top level (nested objects and arrays are skipped
 * correctly), and stratus_json_at() follows a dotted path ("error.message").
 * Strings are unescaped (\uXXXX incl. surrogate pairs, to UTF-8). Never trusts its input.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_COMMON_JSON_H
#define STRATUS_COMMON_JSON_H

#include <stddef.h>
#include <stdint.h>

enum stratus_json_type {
    STRATUS_JSON_NONE = 0,
    STRATUS_JSON_STRING,
    STRATUS_JSON_NUMBER,
    STRATUS_JSON_OBJECT,
    STRATUS_JSON_ARRAY,
    STRATUS_JSON_TRUE,
    STRATUS_JSON_FALSE,
    STRATUS_JSON_NULL,
};

/* A value: its raw text (a string's span includes the quotes) and type. */
struct stratus_json_val {
    const char *p;
    size_t len;
    int type; /* enum stratus_json_type */
};

/* Finds member `name` of the object whose text is doc[0..len): 0, or -1 when doc is not an
 * object, is malformed before the member, or lacks it. */
int stratus_json_get(const char *doc, size_t len, const char *name, struct stratus_json_val *out);
/* Like stratus_json_get with a dotted path of member names ("a.b.c"). */
int stratus_json_at(const char *doc, size_t len, const char *path, struct stratus_json_val *out);
/* Iterates the elements of an array value: *cursor starts NULL. 0 or -1 at the end. */
int stratus_json_next(const struct stratus_json_val *arr,
                      const char **cursor,
                      struct stratus_json_val *out);
/* Unescapes a string value into out (cap bytes, NUL-terminated): length, or -1 when the value
 * is not a string, is malformed, or does not fit. Numbers are copied as text. */
long stratus_json_str(const struct stratus_json_val *v, char *out, size_t cap);
/* A number (or a string holding one, as GCS sends int64 values) as int64: 0 or -1. */
int stratus_json_int(const struct stratus_json_val *v, int64_t *out);
/* Shorthands: member `path` of doc as a string / integer; 0 or -1. */
int stratus_json_get_str(const char *doc, size_t len, const char *path, char *out, size_t cap);
int stratus_json_get_int(const char *doc, size_t len, const char *path, int64_t *out);
/* Appends s as a JSON string literal (with quotes) to sb. */
struct stratus_sbuf;
void stratus_json_quote(struct stratus_sbuf *sb, const char *s, size_t len);

#endif
