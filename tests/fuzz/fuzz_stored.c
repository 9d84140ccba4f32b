/* fuzz_stored.c - libFuzzer target for the decoders of what Stratus reads back from its own
 * storage: object files (footer and index block), engine WAL records, producer-state
 * snapshots, RocksDB index values and keys, and group offset values and blobs. These come
 * from disk, a bucket or etcd, where a torn write, a bit flip or another version can leave
 * anything; each decoder must refuse it with an error, never read out of bounds or overflow.
 *
 * The first byte picks the decoder; the rest is its input. Checksums are recomputed over the
 * input where a decoder checks one (the object index), so that mutations reach the parsing
 * behind them. What a decoder accepts must hold its documented invariants (abort otherwise),
 * and a decoded producer snapshot must survive an encode/decode round trip.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "group/group.h"
#include "group/group_int.h"
#include "index/index.h"
#include "stream/objfmt.h"
#include "stream/stream.h"
#include "stream/stream_int.h"
#include "util/crc32c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An object: the footer at the end, then the index block it names (checksum recomputed). */
static void fuzz_object(const uint8_t *p, size_t n)
{
    struct stratus_errbuf eb;
    uint64_t pos;
    uint32_t ilen, icrc;
    struct stratus_objfmt_range *r = NULL;
    size_t nr = 0;

    if (n < STRATUS_OBJFMT_FOOTER_SIZE)
        return;
    if (stratus_objfmt_parse_footer(p + n - STRATUS_OBJFMT_FOOTER_SIZE, n, &pos, &ilen, &icrc,
                                    &eb) != 0)
        return;
    /* accepted: the index lies inside the object, right before the footer */
    if (pos > n || ilen > n - pos || n - pos - ilen != STRATUS_OBJFMT_FOOTER_SIZE)
        abort();
    icrc = stratus_crc32c(0, p + pos, ilen);
    if (stratus_objfmt_parse_index(p + pos, ilen, icrc, pos, &r, &nr, &eb) != 0)
        return;
    for (size_t i = 0; i < nr; i++) /* every range inside the data before the index */
        if (r[i].position > pos || r[i].length > pos - r[i].position ||
            r[i].base_offset > r[i].last_offset)
            abort();
    free(r);
}

/* An engine WAL record's header (its batches are stratus_batch_parse's, see fuzz_records). */
static void fuzz_walrec(const uint8_t *p, size_t n)
{
    uint64_t sid;
    int32_t epoch;
    int64_t base, last;

    if (stratus_walrec_info(p, n, &sid, &epoch, &base, &last) == 0 &&
        stratus_partition_walrec_stream(p, n) != sid)
        abort(); /* the two readers of the header agree */
}

/* A producer snapshot: decoded, encoded again (now = a real wall clock, nothing durable cut
 * off), and that encoding decodes. */
static void fuzz_pstate(const uint8_t *p, size_t n)
{
    struct stratus_pstate ps = {0}, back = {0};
    uint8_t *v = NULL;
    size_t vlen = 0;

    if (stratus_pstate_decode(&ps, p, n) == 0) {
        stratus_pstate_encode(&ps, INT64_MAX, 1795000000000, &v, &vlen);
        if (stratus_pstate_decode(&back, v, vlen) != 0 ||
            back.expired_pid_end < ps.expired_pid_end)
            abort();
        free(v);
    } else if (ps.n != 0 || ps.expired_pid_end != INT64_MAX) {
        abort(); /* refused: empty, any continuation accepted */
    }
    stratus_pstate_clear(&ps);
    stratus_pstate_clear(&back);
}

/* Index records: the next byte splits the rest into a key and a value. */
static void fuzz_index(const uint8_t *p, size_t n)
{
    struct stratus_index_range r;
    struct stratus_index_object o;
    struct stratus_index_stream st;
    struct stratus_index_time t;
    uint64_t id;
    int64_t off;
    size_t klen;

    if (n < 1)
        return;
    klen = p[0] <= n - 1 ? p[0] : n - 1;
    const uint8_t *k = p + 1, *v = p + 1 + klen;
    size_t vlen = n - 1 - klen;

    (void)stratus_index_range_decode(k, klen, v, vlen, &r);
    if (stratus_index_object_decode(v, vlen, &o) == 0 && memchr(o.key, 0, sizeof o.key) == NULL)
        abort(); /* the key is a C string */
    (void)stratus_index_stream_decode(v, vlen, &st);
    (void)stratus_index_time_decode(k, klen, v, vlen, &t);
    (void)stratus_index_parse_range_key(k, klen, &id, &off);
    if (klen) /* with the key's own prefix byte, so that the prefix check passes */
        (void)stratus_index_parse_id_key(k, klen, k[0], &id);
}

/* Group offsets: a per-offset value, a key, and a whole group's blob. */
static void fuzz_offsets(const uint8_t *p, size_t n)
{
    int64_t off, ms;
    int32_t epoch, part;
    const char *meta, *g, *t;
    size_t mlen, glen, tlen;
    struct stratus_offsets o;

    if (stratus_offsets_value_decode(p, n, &off, &epoch, &ms, &meta, &mlen) == 0 &&
        (meta < (const char *)p || mlen > n || (const uint8_t *)meta + mlen > p + n))
        abort(); /* the metadata lies inside the value */
    if (stratus_offsets_key_parse(p, n, &g, &glen, &t, &tlen, &part) == 0 &&
        ((const uint8_t *)g + glen > p + n || (const uint8_t *)t + tlen > p + n))
        abort();
    memset(&o, 0, sizeof o);
    if (stratus_offsets_blob_decode(p, n, &o) == 0)
        stratus_offsets_free(&o);
}

static void (*const decoders[])(const uint8_t *, size_t) = {
    fuzz_object, fuzz_walrec, fuzz_pstate, fuzz_index, fuzz_offsets};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 1)
        decoders[data[0] % (sizeof decoders / sizeof decoders[0])](data + 1, size - 1);
    return 0;
}
