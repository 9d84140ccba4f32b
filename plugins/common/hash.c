/* hash.c - SHA-256, HMAC-SHA256 and MD5 through OpenSSL's one-shot EVP calls, and a
 * table-driven software CRC32C (see hash.h).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "hash.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

void stratus_hash_sha256(const void *data, size_t len, uint8_t out[STRATUS_SHA256_LEN])
{
    unsigned int n = 0;
    EVP_Digest(data ? data : "", len, out, &n, EVP_sha256(), NULL);
}

void stratus_hash_hmac_sha256(
    const void *key, size_t klen, const void *data, size_t dlen, uint8_t out[STRATUS_SHA256_LEN])
{
    unsigned int n = 0;
    HMAC(EVP_sha256(), key ? key : "", (int)klen, data ? data : (const void *)"", dlen, out, &n);
}

void stratus_hash_md5(const void *data, size_t len, uint8_t out[STRATUS_MD5_LEN])
{
    unsigned int n = 0;
    EVP_Digest(data ? data : "", len, out, &n, EVP_md5(), NULL);
}

/* Slicing-by-1 table, built at first use; the race of two builders writes equal values. */
static uint32_t hash_crc_table(uint8_t i)
{
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
        c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    return c;
}

uint32_t stratus_hash_crc32c(uint32_t crc, const void *data, size_t len)
{
    static uint32_t table[256];
    static volatile int ready;
    if (!ready) {
        for (int i = 0; i < 256; i++)
            table[i] = hash_crc_table((uint8_t)i);
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}
