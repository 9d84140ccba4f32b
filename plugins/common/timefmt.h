/* timefmt.h - the time formats of the cloud protocols, from and to milliseconds since the
 * epoch (UTC). Plugins format the host's injectable clock (host->now_ms) with these, never
 * time(2), so signing is a pure function of its inputs in tests.
 *   ISO 8601 basic  "20240102T030405Z"   (SigV4 x-amz-date; 16 chars)
 *   ISO 8601 ext.   "2024-01-02T03:04:05.678Z" (S3 LastModified, credential Expiration, JWT)
 *   RFC 1123        "Tue, 02 Jan 2024 03:04:05 GMT" (HTTP Date, Last-Modified, x-ms-date)
 * Thread-safe (no locale, no static buffers).
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_COMMON_TIMEFMT_H
#define STRATUS_COMMON_TIMEFMT_H

#include <stdint.h>

#define STRATUS_TIMEFMT_ISO_BASIC_LEN 17 /* buffer size incl. NUL */
#define STRATUS_TIMEFMT_RFC1123_LEN   30 /* buffer size incl. NUL */

void stratus_timefmt_iso8601_basic(int64_t ms, char out[STRATUS_TIMEFMT_ISO_BASIC_LEN]);
void stratus_timefmt_rfc1123(int64_t ms, char out[STRATUS_TIMEFMT_RFC1123_LEN]);
/* Parses "YYYY-MM-DDTHH:MM:SS[.fff...][Z|+HH:MM|-HH:MM]" (also "YYYYMMDDTHHMMSSZ");
 * 0 or -1 when malformed. */
int stratus_timefmt_parse_iso8601(const char *s, int64_t *ms);
/* Parses "Tue, 02 Jan 2024 03:04:05 GMT"; 0 or -1. */
int stratus_timefmt_parse_rfc1123(const char *s, int64_t *ms);

#endif
