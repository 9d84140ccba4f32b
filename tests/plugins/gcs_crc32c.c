/* gcs_crc32c.c - a tiny shared object exporting CRC32C (Castagnoli, reflected, as GCS's crc32c
 * and x-goog-hash use it) for tests/plugins/gcs_server.py, whose pure-Python CRC32C (~3 MiB/s)
 * is too slow for the 64 MiB objects of the conformance kit. Written apart from
 * plugins/common/hash.c on purpose, so the server does not check the plugin with the plugin's
 * own code; the server loads it with ctypes only after checking it against its Python
 * implementation. Built without sanitizers (it is loaded into a Python process).
 *   uint32_t gcs_crc32c(uint32_t crc, const void *data, size_t len)   (crc = 0 to start)
 * SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

static uint32_t tab[8][256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void gcs_crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        tab[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            tab[t][i] = (tab[t - 1][i] >> 8) ^ tab[0][tab[t - 1][i] & 0xFF];
}

__attribute__((visibility("default"))) uint32_t gcs_crc32c(uint32_t crc, const void *data,
                                                           size_t len);

uint32_t gcs_crc32c(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    pthread_once(&once, gcs_crc32c_init);
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                      (uint32_t)p[7] << 24;
        crc = tab[7][lo & 0xFF] ^ tab[6][(lo >> 8) & 0xFF] ^ tab[5][(lo >> 16) & 0xFF] ^
              tab[4][lo >> 24] ^ tab[3][hi & 0xFF] ^ tab[2][(hi >> 8) & 0xFF] ^
              tab[1][(hi >> 16) & 0xFF] ^ tab[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ tab[0][(crc ^ *p++) & 0xFF];
    return ~crc;
}
