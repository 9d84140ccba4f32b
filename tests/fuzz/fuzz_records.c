/* fuzz_records.c - libFuzzer target for stratus_records_validate() and stratus_batch_parse():
 * any bytes as a Produce records blob. The input is copied so that a header rewrite on a
 * validated batch (LogAppendTime) also runs and must leave it valid.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/records.h"
#include "util/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct stratus_errbuf eb;
    struct stratus_batch_info bi;
    int nb;
    int64_t nr;
    (void)stratus_batch_parse(data, size, &bi, &eb);
    if (stratus_records_validate(data, size, &nb, &nr, &eb) != 0)
        return 0;
    /* a valid blob: the first batch's header rewrites keep it valid */
    if (stratus_batch_parse(data, size, &bi, &eb) != 0)
        abort();
    uint8_t *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    stratus_batch_set_base_offset(copy, 42);
    stratus_batch_set_leader_epoch(copy, 3);
    stratus_batch_set_log_append_time(copy, (size_t)bi.size, 1234567);
    int nb2;
    int64_t nr2;
    if (stratus_records_validate(copy, size, &nb2, &nr2, &eb) != 0 || nb2 != nb || nr2 != nr)
        abort();
    free(copy);
    return 0;
}
