/* clusterview.c - how the API layer reads the cluster view (core/cluster/cluster.h): the live
 * brokers copied into a request's arena, one broker looked up by id, a partition's leader and
 * epoch, and the leader hints (KIP-951) that Produce and Fetch add to a NOT_LEADER_OR_FOLLOWER
 * answer: CurrentLeader per partition and, once per response, the endpoints of those leaders.
 *
 * Called only when req->ctx->cluster is set (cluster mode). The view's lookups are @locality
 * any (a short lock), so these run on network threads. Arrays returned live in the request's
 * arena.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cluster/cluster.h"
#include "handlers.h"

#include <stdlib.h>
#include <string.h>

int api_cluster_brokers(struct stratus_req *req, struct stratus_cluster_broker **out, int32_t *n)
{
    struct stratus_cluster_broker *bs = NULL;
    size_t nb = 0;

    *out = NULL;
    *n = 0;
    if (stratus_cluster_brokers(req->ctx->cluster, &bs, &nb) != 0)
        return -1;
    if (nb) {
        *out = API_ALLOC(req, struct stratus_cluster_broker, nb);
        if (!*out) {
            free(bs);
            return -1;
        }
        memcpy(*out, bs, nb * sizeof *bs);
    }
    *n = (int32_t)nb;
    free(bs);
    return 0;
}

const struct stratus_cluster_broker *
api_cluster_find(const struct stratus_cluster_broker *bs, int32_t n, int32_t id)
{
    for (int32_t i = 0; id >= 0 && i < n; i++)
        if (bs[i].id == id)
            return &bs[i];
    return NULL;
}

void api_cluster_leader(
    struct stratus_req *req, const char *topic, int32_t partition, int32_t *leader, int32_t *epoch)
{
    *leader = -1;
    *epoch = -1;
    if (!topic || stratus_cluster_owner(req->ctx->cluster, topic, partition, leader, epoch) != 0) {
        *leader = -1;
        *epoch = -1;
    }
}

struct kstr api_cluster_rack(struct stratus_req *req, const struct stratus_cluster_broker *b)
{
    return b->rack[0] ? api_kstr(req, b->rack) : KSTR_NULL;
}

void api_hints_init(struct api_hints *h, struct stratus_req *req, int32_t cap)
{
    h->req = req;
    h->ids = cap > 0 ? API_ALLOC(req, int32_t, cap) : NULL;
    h->cap = h->ids ? cap : 0;
    h->n = 0;
}

void api_hints_add(struct api_hints *h,
                   const char *topic,
                   int32_t partition,
                   int32_t *leader_id,
                   int32_t *leader_epoch)
{
    api_cluster_leader(h->req, topic, partition, leader_id, leader_epoch);
    if (*leader_id < 0)
        return;
    for (int32_t i = 0; i < h->n; i++)
        if (h->ids[i] == *leader_id)
            return;
    if (h->n < h->cap)
        h->ids[h->n++] = *leader_id;
}

int32_t api_hints_endpoints(struct api_hints *h, struct stratus_cluster_broker **out)
{
    struct stratus_cluster_broker *bs, *eps;
    int32_t nb, k = 0;

    *out = NULL;
    if (h->n == 0 || api_cluster_brokers(h->req, &bs, &nb) != 0)
        return 0;
    eps = API_ALLOC(h->req, struct stratus_cluster_broker, h->n);
    if (!eps)
        return 0;
    for (int32_t i = 0; i < h->n; i++) {
        const struct stratus_cluster_broker *b = api_cluster_find(bs, nb, h->ids[i]);
        if (b)
            eps[k++] = *b;
    }
    *out = eps;
    return k;
}
