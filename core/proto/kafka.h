/* kafka.h - the Kafka frame headers, and the one include for users of core/proto.
 *
 * A frame is `int32 size | header | body`. Request header v1 = api_key int16, api_version int16,
 * correlation_id int32, client_id (int16-length string, nullable); v2 adds a tagged section and
 * is used when the request version is flexible (per kapi_lookup()). Response header v0 =
 * correlation_id int32; v1 adds a tagged section for flexible versions, except ApiVersions,
 * whose response header is always v0 (KIP-511).
 * Pure functions; thread-safe.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_PROTO_KAFKA_H
#define STRATUS_PROTO_KAFKA_H

#include "proto/codec.h"
#include "proto/kmsg.h"
#include "proto/proto_gen.h"

/* Decodes a request header from r. *flexible gets 1 when the header was v2 (and the body is
 * flexible). Returns 0; STRATUS_ENOTSUP when the API key or version is not served (the header
 * is still filled in: it was read as v1, except ApiVersions above our max, read as v2 like
 * Kafka does, so the caller can answer with an ApiVersions v0 error); STRATUS_EPROTO when the
 * bytes are malformed. */
int kafka_request_header_decode(struct kread *r, struct RequestHeader *h, int *flexible);

/* Writes a response header (v0, or v1 when the version is flexible; ApiVersions always v0).
 * Returns 0 or w->err. */
int kafka_response_header_encode(struct kwrite *w, int16_t api_key, int16_t version,
                                 int32_t correlation_id);

/* 1 when requests/responses of api_key at version use flexible encodings (0 for unknown). */
int kafka_api_flexible(int16_t api_key, int16_t version);

#endif
