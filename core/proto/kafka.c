/* kafka.c - request / response header codecs (formats in kafka.h).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "proto/kafka.h"

int kafka_api_flexible(int16_t api_key, int16_t version)
{
    const struct kapi_info *ai = kapi_lookup(api_key);
    return ai && ai->flex_min >= 0 && version >= ai->flex_min;
}

int kafka_request_header_decode(struct kread *r, struct RequestHeader *h, int *flexible)
{
    RequestHeader_init(h);
    *flexible = 0;
    h->RequestApiKey = kr_i16(r);
    h->RequestApiVersion = kr_i16(r);
    h->CorrelationId = kr_i32(r);
    h->ClientId = kr_string(r);
    if (r->err)
        return r->err;
    const struct kapi_info *ai = kapi_lookup(h->RequestApiKey);
    int served = ai && h->RequestApiVersion >= ai->min && h->RequestApiVersion <= ai->max;
    if (served)
        *flexible = ai->flex_min >= 0 && h->RequestApiVersion >= ai->flex_min;
    else if (ai && h->RequestApiKey == KAPI_ApiVersions && h->RequestApiVersion > ai->max)
        *flexible = 1; /* a newer client's ApiVersions: header v2 as for v3+ */
    if (*flexible)
        kr_skip_tags(r);
    if (r->err)
        return r->err;
    return served ? 0 : STRATUS_ENOTSUP;
}

int kafka_response_header_encode(struct kwrite *w, int16_t api_key, int16_t version,
                                 int32_t correlation_id)
{
    kw_i32(w, correlation_id);
    if (api_key != KAPI_ApiVersions && kafka_api_flexible(api_key, version))
        kw_empty_tags(w);
    return w->err;
}
