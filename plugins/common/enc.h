/* enc.h - text encodings of the cloud protocols: lowercase hex, base64 (RFC 4648, with
 * padding), and URI percent-encoding per AWS SigV4 rules (which also suit Azure and GCS):
 * every byte except the unreserved A-Z a-z 0-9 - _ . ~ becomes %XX (uppercase hex); '/' is kept
 * when keep_slash (object keys in paths) and encoded otherwise (query names and values).
 * All functions are pure and thread-safe.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_COMMON_ENC_H
#define STRATUS_COMMON_ENC_H

#include "sbuf.h"

#include <stddef.h>
#include <stdint.h>

/* Writes 2*len lowercase hex digits and a NUL into out (2*len+1 bytes). */
void stratus_enc_hex(const uint8_t *in, size_t len, char *out);
/* Writes the base64 of in and a NUL into out; returns the length written, or 0 when cap
 * (which must be >= 4*((len+2)/3)+1) is too small. */
size_t stratus_enc_base64(const void *in, size_t len, char *out, size_t cap);
/* Decodes base64 (padding optional, no whitespace) into out; returns the byte count, or -1
 * on a bad character or when cap is too small. */
long stratus_enc_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);
/* Appends the URI-encoding of in[0..len) to sb (see above for the rules). */
void stratus_enc_uri(struct stratus_sbuf *sb, const char *in, size_t len, int keep_slash);
/* Decodes %XX escapes (and, when plus_is_space, '+' as ' ') of in[0..len) into sb. */
void stratus_enc_uri_decode(struct stratus_sbuf *sb, const char *in, size_t len, int plus_is_space);

#endif
