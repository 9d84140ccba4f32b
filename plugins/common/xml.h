/* xml.h - a tiny, allocation-free extractor for the flat XML documents the object stores
 * answer with (S3 ListBucketResult / Error / InitiateMultipartUploadResult / DeleteResult, STS
 * AssumeRoleWithWebIdentityResponse, Azure EnumerationResults / Error).
 *
 * It finds elements by local name (a namespace prefix "s3:Key" matches "Key"), ignores
 * attributes, comments, processing instructions and CDATA nesting, and returns spans into the
 * caller's buffer, so a document is walked without copying:
 *     struct stratus_xml_span doc = {body, body_len}, c, k;
 *     const char *cur = NULL;
 *     while (stratus_xml_next(doc, "Contents", &cur, &c) == 0)
 *         if (stratus_xml_find(c, "Key", &k) == 0) stratus_xml_text(k, key, sizeof key);
 * Never trusts its input: every scan stays inside the span. Not a validating parser: it is
 * meant for well-formed replies whose element names do not nest inside themselves.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_COMMON_XML_H
#define STRATUS_COMMON_XML_H

#include <stddef.h>

struct stratus_xml_span {
    const char *p;
    size_t len;
};

/* The content (between start and end tag) of the first element named name inside in:
 * 0, or -1 when absent. A self-closing <name/> gives an empty span. */
int stratus_xml_find(struct stratus_xml_span in, const char *name, struct stratus_xml_span *out);
/* Iterates the elements named name inside in: *cursor starts NULL and is advanced past each
 * match. 0 with *out set, or -1 when there is no further match. */
int stratus_xml_next(struct stratus_xml_span in,
                     const char *name,
                     const char **cursor,
                     struct stratus_xml_span *out);
/* Copies the text of a span into out (cap bytes, NUL-terminated), decoding the five
 * predefined entities and &#N; / &#xN; (as UTF-8). Returns the decoded length, or -1 when it
 * did not fit (out then holds a truncated, NUL-terminated prefix). */
long stratus_xml_text(struct stratus_xml_span s, char *out, size_t cap);
/* stratus_xml_find + stratus_xml_text: 0, or -1 when absent or too long. */
int stratus_xml_get(struct stratus_xml_span in, const char *name, char *out, size_t cap);
/* Appends s to sb with & < > " ' escaped (for request bodies such as S3's <Delete>). */
struct stratus_sbuf;
void stratus_xml_escape(struct stratus_sbuf *sb, const char *s, size_t len);

#endif
