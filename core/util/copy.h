/* copy.h - copying bytes into buffers that are written once and then only read by a device
 * (an O_DIRECT write: the WAL's group commits, the uploader's objects).
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_UTIL_COPY_H
#define STRATUS_UTIL_COPY_H

#include <stddef.h>

/* memcpy(dst, src, n) with non-temporal stores for n >= 1 KiB where the CPU has them
 * (x86-64: SSE2): the destination's lines are not read first nor kept in the cache, which
 * only the device reads next. Ordered (sfence) before it returns. */
void stratus_copy_nt(void *dst, const void *src, size_t n);

#endif
