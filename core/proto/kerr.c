/* kerr.c - names of Kafka error codes, and the mapping from STRATUS_E* (see kerr.h).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "kerr.h"

#include "stratus/stratus_err.h"

const char *stratus_kerr_name(int16_t code)
{
    switch (code) {
#define KAFKA_ERR_CASE(name, val) \
    case val:                     \
        return #name;
        KAFKA_ERR_MAP(KAFKA_ERR_CASE)
#undef KAFKA_ERR_CASE
    }
    return "UNKNOWN";
}

int16_t stratus_kerr_from_err(int err)
{
    switch (err) {
    case STRATUS_OK:
        return KAFKA_ERR_NONE;
    case STRATUS_EAGAIN:
        return KAFKA_ERR_REQUEST_TIMED_OUT;
    case STRATUS_ENOTFOUND:
        return KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    case STRATUS_EINVAL:
        return KAFKA_ERR_INVALID_REQUEST;
    case STRATUS_EPROTO:
        return KAFKA_ERR_INVALID_REQUEST;
    case STRATUS_ECORRUPT:
        return KAFKA_ERR_CORRUPT_MESSAGE;
    case STRATUS_ERANGE:
        return KAFKA_ERR_OFFSET_OUT_OF_RANGE;
    case STRATUS_ENOMEM:
        return KAFKA_ERR_RECORD_LIST_TOO_LARGE;
    case STRATUS_EIO:
        return KAFKA_ERR_KAFKA_STORAGE_ERROR;
    case STRATUS_ECLOSED:
        return KAFKA_ERR_NOT_LEADER_OR_FOLLOWER;
    default:
        return KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    }
}
