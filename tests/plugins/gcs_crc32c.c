/* gcs_crc32c.c - a tiny shared object exporting CRC32C for tests/plugins/gcs_server.py, whose
 * pure-Python CRC32C (~3 MiB/s) is too slow for the 64 MiB objects of the conformance kit. The
 * server loads it with ctypes only after checking it against its own Python implementation
 * (the RFC 3720 check value and a random buffer), so a broken helper cannot hide a broken
 * plugin: every small object is still checked by the Python code.
 *   uint32_t gcs_crc32c(uint32_t crc, const void *data, size_t len)   (crc = 0 to start)
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"

__attribute__((visibility("default"))) uint32_t gcs_crc32c(uint32_t crc, const void *data,
                                                           size_t len);

uint32_t gcs_crc32c(uint32_t crc, const void *data, size_t len)
{
    return stratus_hash_crc32c(crc, data, len);
}
