/* hash.h - digests the cloud plugins sign and check with: SHA-256, HMAC-SHA256, MD5 (OpenSSL
 * libcrypto) and CRC32C (software, Castagnoli, as GCS's x-goog-hash and Azure use it).
 * All functions are pure and thread-safe; outputs are caller-allocated, raw bytes.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_COMMON_HASH_H
#define STRATUS_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

#define STRATUS_SHA256_LEN 32
#define STRATUS_MD5_LEN    16

void stratus_hash_sha256(const void *data, size_t len, uint8_t out[STRATUS_SHA256_LEN]);
void stratus_hash_hmac_sha256(
    const void *key, size_t klen, const void *data, size_t dlen, uint8_t out[STRATUS_SHA256_LEN]);
void stratus_hash_md5(const void *data, size_t len, uint8_t out[STRATUS_MD5_LEN]);
/* CRC32C continued from crc (0 to start): stratus_hash_crc32c(0, "123456789", 9) = 0xe3069283.
 * GCS wants it big-endian and base64-encoded. */
uint32_t stratus_hash_crc32c(uint32_t crc, const void *data, size_t len);

#endif
