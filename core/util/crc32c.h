/* crc32c.h - CRC-32C (Castagnoli), as Kafka record batches and the WAL use it.
 * stratus_crc32c(0, buf, len) gives the checksum of buf; pass a previous result to continue.
 * Uses the SSE4.2 instruction when the CPU has it, and carry-less multiply folding (AVX-512
 * VPCLMULQDQ) for long inputs where it has that too. Thread-safe.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_UTIL_CRC32C_H
#define STRATUS_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t stratus_crc32c(uint32_t crc, const void *buf, size_t len);

/* The CRC-32C of A followed by B from crc_a = stratus_crc32c(c, A, ...) and
 * crc_b = stratus_crc32c(0, B, len_b): equal to stratus_crc32c(crc_a, B, len_b) without
 * reading B (O(log len_b) work). */
uint32_t stratus_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/* The portable slice-by-8 path alone, same contract (tests compare it with the default). */
uint32_t stratus_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* The implementations, slowest first; stratus_crc32c uses the best the CPU has. */
enum { STRATUS_CRC32C_SW = 0, STRATUS_CRC32C_SSE42 = 1, STRATUS_CRC32C_VPCLMUL = 2 };

/* The path stratus_crc32c uses on this CPU (one of the values above). */
int stratus_crc32c_path(void);

/* The same contract through one path, for the tests; a path this CPU lacks falls back to the
 * best one below it. */
uint32_t stratus_crc32c_by(int path, uint32_t crc, const void *buf, size_t len);

#endif
