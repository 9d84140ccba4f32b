/* acl.c - DescribeAcls, CreateAcls and DeleteAcls (v1-3). Authorization is off, so they answer
 * SECURITY_DISABLED (54) with Kafka's message, which MirrorMaker 2 and the UIs expect.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"

static const char *const no_authorizer = "No Authorizer is configured on the broker";

/* ---- ACLs: authorization is off ---- */

int api_describeacls(struct stratus_req *req)
{
    struct DescribeAclsRequest rq;
    struct DescribeAclsResponse rs;
    struct kread r;

    DescribeAclsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (DescribeAclsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed DescribeAcls");
    DescribeAclsResponse_init(&rs);
    rs.ErrorCode = KAFKA_ERR_SECURITY_DISABLED;
    rs.ErrorMessage = api_kstr(req, no_authorizer);
    DescribeAclsResponse_encode(&req->resp, req->api_version, &rs);
    return STRATUS_API_DONE;
}

int api_createacls(struct stratus_req *req)
{
    struct CreateAclsRequest rq;
    struct CreateAclsResponse rs;
    struct kread r;

    CreateAclsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (CreateAclsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed CreateAcls");
    CreateAclsResponse_init(&rs);
    int32_t n = rq.Creations.count > 0 ? rq.Creations.count : 0;
    rs.Results.items = API_ALLOC(req, struct CreateAclsResponse_AclCreationResult, n);
    if (n && !rs.Results.items)
        return api_protocol_error(req, "out of memory");
    rs.Results.count = n;
    for (int32_t i = 0; i < n; i++) {
        CreateAclsResponse_AclCreationResult_init(&rs.Results.items[i]);
        rs.Results.items[i].ErrorCode = KAFKA_ERR_SECURITY_DISABLED;
        rs.Results.items[i].ErrorMessage = api_kstr(req, no_authorizer);
    }
    CreateAclsResponse_encode(&req->resp, req->api_version, &rs);
    return STRATUS_API_DONE;
}

int api_deleteacls(struct stratus_req *req)
{
    struct DeleteAclsRequest rq;
    struct DeleteAclsResponse rs;
    struct kread r;

    DeleteAclsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (DeleteAclsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed DeleteAcls");
    DeleteAclsResponse_init(&rs);
    int32_t n = rq.Filters.count > 0 ? rq.Filters.count : 0;
    rs.FilterResults.items = API_ALLOC(req, struct DeleteAclsResponse_DeleteAclsFilterResult, n);
    if (n && !rs.FilterResults.items)
        return api_protocol_error(req, "out of memory");
    rs.FilterResults.count = n;
    for (int32_t i = 0; i < n; i++) {
        DeleteAclsResponse_DeleteAclsFilterResult_init(&rs.FilterResults.items[i]);
        rs.FilterResults.items[i].ErrorCode = KAFKA_ERR_SECURITY_DISABLED;
        rs.FilterResults.items[i].ErrorMessage = api_kstr(req, no_authorizer);
    }
    DeleteAclsResponse_encode(&req->resp, req->api_version, &rs);
    return STRATUS_API_DONE;
}
