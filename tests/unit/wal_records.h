/* wal_records.h - the records the WAL unit tests (test_wal, test_walobj) append and check after
 * replay, one copy instead of one per test: payload = u32 id, u32 len (both host order), then
 * len - 8 bytes derived from id and their position, so a record checks itself.
 * Everything is static and marked unused: a test compiles what it calls. The prefix wr_ stands
 * for this file.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_TEST_WAL_RECORDS_H
#define STRATUS_TEST_WAL_RECORDS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Writes record id of len bytes (at least 8) to buf; returns its size. */
__attribute__((unused)) static size_t wr_rec_make(unsigned char *buf, uint32_t id, uint32_t len)
{
    if (len < 8)
        len = 8;
    memcpy(buf, &id, 4);
    memcpy(buf + 4, &len, 4);
    for (uint32_t i = 8; i < len; i++)
        buf[i] = (unsigned char)(id * 31u + i * 7u);
    return len;
}

/* 1 when buf (len bytes) is an intact record, with its id in *id. */
__attribute__((unused)) static int wr_rec_ok(const unsigned char *buf, size_t len, uint32_t *id)
{
    uint32_t l;
    if (len < 8)
        return 0;
    memcpy(id, buf, 4);
    memcpy(&l, buf + 4, 4);
    if (l != len)
        return 0;
    for (uint32_t i = 8; i < len; i++)
        if (buf[i] != (unsigned char)(*id * 31u + i * 7u))
            return 0;
    return 1;
}

#endif
