/* fuzz_request.c - libFuzzer target: any request frame (header + body, no size prefix) goes
 * through kafka_request_header_decode() and then the matching request decoder, at the version
 * the header names, as the broker does. The first two input bytes may also pick an API and
 * version directly so that every decoder is reached even when the header bytes are mangled.
 * Decoded requests are re-encoded to exercise the writer over decoder output.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stddef.h>
#include <stdint.h>

#include "proto/kafka.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_body(const struct kmsg_desc *md, int16_t version, const uint8_t *p,
                        size_t n, struct stratus_arena *a)
{
    void *body = arena_alloc(a, md->body->size);
    if (!body)
        return;
    struct kread r;
    kr_init(&r, p, n, a);
    if (kmsg_decode(md, &r, version, body) == 0) {
        struct kwrite w;
        kw_init(&w, 1u << 24);
        (void)kmsg_encode(md, &w, version, body);
        kw_free(&w);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct stratus_arena a;
    arena_init(&a, 1u << 24);

    /* 1. as a frame */
    struct kread r;
    struct RequestHeader h;
    int flex;
    kr_init(&r, data, size, &a);
    if (kafka_request_header_decode(&r, &h, &flex) == 0) {
        const struct kmsg_desc *md = kapi_request_desc(h.RequestApiKey);
        if (md)
            decode_body(md, h.RequestApiVersion, r.p, kr_remaining(&r), &a);
    }
    arena_free_all(&a);

    /* 2. byte 0 picks the API, byte 1 the version, the rest is the body */
    if (size >= 2) {
        size_t n;
        const struct kapi_info *all = kapi_all(&n);
        const struct kapi_info *ai = &all[data[0] % n];
        int16_t v = (int16_t)(ai->min + data[1] % (ai->max - ai->min + 1));
        decode_body(kapi_request_desc(ai->key), v, data + 2, size - 2, &a);
        arena_free_all(&a);
        decode_body(kapi_response_desc(ai->key), v, data + 2, size - 2, &a);
        arena_free_all(&a);
    }
    return 0;
}
