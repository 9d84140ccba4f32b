/* kerr.h - Kafka wire error codes (int16_t), as the protocol defines them.
 *
 * These are a separate type from STRATUS_E* (stratus_err.h); stratus_kerr_from_err() maps the
 * latter into the former in one place. Numbers are Kafka's (org.apache.kafka.common.protocol.
 * Errors); only the codes Stratus returns are listed.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_PROTO_KERR_H
#define STRATUS_PROTO_KERR_H

#include <stdint.h>

#define KAFKA_ERR_MAP(XX)                                    \
    XX(UNKNOWN_SERVER_ERROR, -1)                             \
    XX(NONE, 0)                                              \
    XX(OFFSET_OUT_OF_RANGE, 1)                               \
    XX(CORRUPT_MESSAGE, 2)                                   \
    XX(UNKNOWN_TOPIC_OR_PARTITION, 3)                        \
    XX(INVALID_FETCH_SIZE, 4)                                \
    XX(LEADER_NOT_AVAILABLE, 5)                              \
    XX(NOT_LEADER_OR_FOLLOWER, 6)                            \
    XX(REQUEST_TIMED_OUT, 7)                                 \
    XX(BROKER_NOT_AVAILABLE, 8)                              \
    XX(REPLICA_NOT_AVAILABLE, 9)                             \
    XX(MESSAGE_TOO_LARGE, 10)                                \
    XX(STALE_CONTROLLER_EPOCH, 11)                           \
    XX(OFFSET_METADATA_TOO_LARGE, 12)                        \
    XX(NETWORK_EXCEPTION, 13)                                \
    XX(COORDINATOR_LOAD_IN_PROGRESS, 14)                     \
    XX(COORDINATOR_NOT_AVAILABLE, 15)                        \
    XX(NOT_COORDINATOR, 16)                                  \
    XX(INVALID_TOPIC_EXCEPTION, 17)                          \
    XX(RECORD_LIST_TOO_LARGE, 18)                            \
    XX(NOT_ENOUGH_REPLICAS, 19)                              \
    XX(NOT_ENOUGH_REPLICAS_AFTER_APPEND, 20)                 \
    XX(INVALID_REQUIRED_ACKS, 21)                            \
    XX(ILLEGAL_GENERATION, 22)                               \
    XX(INCONSISTENT_GROUP_PROTOCOL, 23)                      \
    XX(INVALID_GROUP_ID, 24)                                 \
    XX(UNKNOWN_MEMBER_ID, 25)                                \
    XX(INVALID_SESSION_TIMEOUT, 26)                          \
    XX(REBALANCE_IN_PROGRESS, 27)                            \
    XX(INVALID_COMMIT_OFFSET_SIZE, 28)                       \
    XX(TOPIC_AUTHORIZATION_FAILED, 29)                       \
    XX(GROUP_AUTHORIZATION_FAILED, 30)                       \
    XX(CLUSTER_AUTHORIZATION_FAILED, 31)                     \
    XX(INVALID_TIMESTAMP, 32)                                \
    XX(UNSUPPORTED_SASL_MECHANISM, 33)                       \
    XX(ILLEGAL_SASL_STATE, 34)                               \
    XX(UNSUPPORTED_VERSION, 35)                              \
    XX(TOPIC_ALREADY_EXISTS, 36)                             \
    XX(INVALID_PARTITIONS, 37)                               \
    XX(INVALID_REPLICATION_FACTOR, 38)                       \
    XX(INVALID_REPLICA_ASSIGNMENT, 39)                       \
    XX(INVALID_CONFIG, 40)                                   \
    XX(NOT_CONTROLLER, 41)                                   \
    XX(INVALID_REQUEST, 42)                                  \
    XX(UNSUPPORTED_FOR_MESSAGE_FORMAT, 43)                   \
    XX(POLICY_VIOLATION, 44)                                 \
    XX(OUT_OF_ORDER_SEQUENCE_NUMBER, 45)                     \
    XX(DUPLICATE_SEQUENCE_NUMBER, 46)                        \
    XX(INVALID_PRODUCER_EPOCH, 47)                           \
    XX(INVALID_TXN_STATE, 48)                                \
    XX(INVALID_PRODUCER_ID_MAPPING, 49)                      \
    XX(INVALID_TRANSACTION_TIMEOUT, 50)                      \
    XX(CONCURRENT_TRANSACTIONS, 51)                          \
    XX(TRANSACTION_COORDINATOR_FENCED, 52)                   \
    XX(TRANSACTIONAL_ID_AUTHORIZATION_FAILED, 53)            \
    XX(SECURITY_DISABLED, 54)                                \
    XX(OPERATION_NOT_ATTEMPTED, 55)                          \
    XX(KAFKA_STORAGE_ERROR, 56)                              \
    XX(LOG_DIR_NOT_FOUND, 57)                                \
    XX(SASL_AUTHENTICATION_FAILED, 58)                       \
    XX(UNKNOWN_PRODUCER_ID, 59)                              \
    XX(REASSIGNMENT_IN_PROGRESS, 60)                         \
    XX(DELEGATION_TOKEN_AUTH_DISABLED, 61)                   \
    XX(INVALID_PRINCIPAL_TYPE, 67)                           \
    XX(NON_EMPTY_GROUP, 68)                                  \
    XX(GROUP_ID_NOT_FOUND, 69)                               \
    XX(FETCH_SESSION_ID_NOT_FOUND, 70)                       \
    XX(INVALID_FETCH_SESSION_EPOCH, 71)                      \
    XX(LISTENER_NOT_FOUND, 72)                               \
    XX(TOPIC_DELETION_DISABLED, 73)                          \
    XX(FENCED_LEADER_EPOCH, 74)                              \
    XX(UNKNOWN_LEADER_EPOCH, 75)                             \
    XX(UNSUPPORTED_COMPRESSION_TYPE, 76)                     \
    XX(STALE_BROKER_EPOCH, 77)                               \
    XX(OFFSET_NOT_AVAILABLE, 78)                             \
    XX(MEMBER_ID_REQUIRED, 79)                               \
    XX(PREFERRED_LEADER_NOT_AVAILABLE, 80)                   \
    XX(GROUP_MAX_SIZE_REACHED, 81)                           \
    XX(FENCED_INSTANCE_ID, 82)                               \
    XX(ELIGIBLE_LEADERS_NOT_AVAILABLE, 83)                   \
    XX(ELECTION_NOT_NEEDED, 84)                              \
    XX(NO_REASSIGNMENT_IN_PROGRESS, 85)                      \
    XX(GROUP_SUBSCRIBED_TO_TOPIC, 86)                        \
    XX(INVALID_RECORD, 87)                                   \
    XX(UNSTABLE_OFFSET_COMMIT, 88)                           \
    XX(THROTTLING_QUOTA_EXCEEDED, 89)                        \
    XX(PRODUCER_FENCED, 90)                                  \
    XX(RESOURCE_NOT_FOUND, 91)                               \
    XX(DUPLICATE_RESOURCE, 92)                               \
    XX(UNACCEPTABLE_CREDENTIAL, 93)                          \
    XX(INCONSISTENT_VOTER_SET, 94)                           \
    XX(INVALID_UPDATE_VERSION, 95)                           \
    XX(FEATURE_UPDATE_FAILED, 96)                            \
    XX(PRINCIPAL_DESERIALIZATION_FAILURE, 97)                \
    XX(SNAPSHOT_NOT_FOUND, 98)                               \
    XX(POSITION_OUT_OF_RANGE, 99)                            \
    XX(UNKNOWN_TOPIC_ID, 100)                                \
    XX(DUPLICATE_BROKER_REGISTRATION, 101)                   \
    XX(BROKER_ID_NOT_REGISTERED, 102)                        \
    XX(INCONSISTENT_TOPIC_ID, 103)                           \
    XX(INCONSISTENT_CLUSTER_ID, 104)                         \
    XX(TRANSACTIONAL_ID_NOT_FOUND, 105)                      \
    XX(FETCH_SESSION_TOPIC_ID_ERROR, 106)                    \
    XX(INELIGIBLE_REPLICA, 107)                              \
    XX(NEW_LEADER_ELECTED, 108)                              \
    XX(UNSUPPORTED_ENDPOINT_TYPE, 115)

enum kafka_err {
#define KAFKA_ERR_ENUM(name, val) KAFKA_ERR_##name = (val),
    KAFKA_ERR_MAP(KAFKA_ERR_ENUM)
#undef KAFKA_ERR_ENUM
};

/* "OFFSET_OUT_OF_RANGE" for 1, "UNKNOWN" for a code not listed. */
const char *stratus_kerr_name(int16_t code);

/* The one place a STRATUS_E* code becomes a Kafka error code. */
int16_t stratus_kerr_from_err(int err);

#endif
