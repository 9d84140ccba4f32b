/* configs.c - DescribeConfigs (v1-4), AlterConfigs (v0-2) and IncrementalAlterConfigs (v0-1).
 *
 * Topic configs are validated and stored by the engine (all-or-nothing per topic) and reported
 * exactly as set, with their sources and defaults. Broker configs are static (stratus.ini, read
 * at start): DescribeConfigs reports them under their Kafka names; altering a BROKER or
 * BROKER_LOGGER resource is answered INVALID_REQUEST with a message saying so. APPEND and
 * SUBTRACT apply to list configs only (INVALID_CONFIG otherwise), from the effective value, as
 * Kafka does. Alterations write RocksDB (in cluster mode the metastore, through
 * stratus_cluster_alter_topic_configs) and run on an I/O worker.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "conf/conf.h"
#include "handlers.h"
#include "stream/stream.h"
#include "util/log.h"

#define RES_TOPIC 2
#define RES_BROKER 4
#define RES_BROKER_LOGGER 8

/* ---- DescribeConfigs ---- */


/* The broker configs reported, as Kafka names them, from the Stratus config. */
struct broker_cfg {
    const char *kafka_name;
    const char *section, *key; /* Stratus key it comes from, or NULL for a constant */
    const char *def;
    int type;
    const char *doc;
};

static const struct broker_cfg broker_cfgs[] = {
    {"node.id", "broker", "node_id", "1", STRATUS_CONFIG_T_INT, "This broker's id"},
    {"broker.id", "broker", "node_id", "1", STRATUS_CONFIG_T_INT, "This broker's id"},
    {"listeners", "broker", "listeners", "PLAINTEXT://127.0.0.1:9092", STRATUS_CONFIG_T_STRING,
     "Listeners"},
    {"advertised.listeners", "broker", "advertised_listeners", NULL, STRATUS_CONFIG_T_STRING,
     "Advertised listeners"},
    {"auto.create.topics.enable", "broker", "auto_create_topics", "true",
     STRATUS_CONFIG_T_BOOLEAN, "Create topics on first use"},
    {"num.partitions", "broker", "num_partitions", "1", STRATUS_CONFIG_T_INT,
     "Partitions of auto-created topics"},
    {"socket.request.max.bytes", "broker", "max_request_size", "104857600",
     STRATUS_CONFIG_T_INT, "Largest request accepted"},
    {"connections.max.idle.ms", "broker", "idle_timeout", "600000", STRATUS_CONFIG_T_LONG,
     "Idle connections are closed after this"},
    {"default.replication.factor", NULL, NULL, "1", STRATUS_CONFIG_T_INT,
     "Stratus keeps one copy per partition in the object store"},
    {"min.insync.replicas", NULL, NULL, "1", STRATUS_CONFIG_T_INT,
     "Stratus keeps one copy per partition in the object store"},
    {"offsets.topic.replication.factor", NULL, NULL, "1", STRATUS_CONFIG_T_SHORT,
     "Stratus keeps one copy per partition in the object store"},
    {"message.max.bytes", NULL, NULL, "16777216", STRATUS_CONFIG_T_INT,
     "Default max.message.bytes of topics"},
    {"log.retention.ms", NULL, NULL, "604800000", STRATUS_CONFIG_T_LONG,
     "Default retention.ms of topics"},
    {"log.retention.bytes", NULL, NULL, "-1", STRATUS_CONFIG_T_LONG,
     "Default retention.bytes of topics"},
    {"delete.topic.enable", NULL, NULL, "true", STRATUS_CONFIG_T_BOOLEAN,
     "Topics can be deleted"},
};

static int key_wanted(const struct DescribeConfigsRequest_DescribeConfigsResource *res,
                      const char *name)
{
    if (res->ConfigurationKeys.count < 0)
        return 1;
    for (int32_t i = 0; i < res->ConfigurationKeys.count; i++)
        if (kstr_eq_cstr(res->ConfigurationKeys.items[i], name))
            return 1;
    return 0;
}

static void add_entry(struct stratus_req *req, int include_synonyms,
                      struct DescribeConfigsResponse_DescribeConfigsResourceResult *c,
                      const char *name, const char *value, int source, int read_only,
                      int sensitive, int type, const char *doc, int include_doc)
{
    DescribeConfigsResponse_DescribeConfigsResourceResult_init(c);
    c->Name = api_kstr(req, name);
    c->Value = sensitive || !value ? KSTR_NULL : api_kstr(req, value);
    c->ReadOnly = (int8_t)read_only;
    c->ConfigSource = (int8_t)source;
    c->IsSensitive = (int8_t)sensitive;
    c->ConfigType = (int8_t)type;
    c->Documentation = include_doc && doc ? api_kstr(req, doc) : KSTR_NULL;
    c->Synonyms.count = 0;
    if (include_synonyms) {
        struct DescribeConfigsResponse_DescribeConfigsSynonym *s =
            API_ALLOC(req, struct DescribeConfigsResponse_DescribeConfigsSynonym, 1);
        if (s) {
            DescribeConfigsResponse_DescribeConfigsSynonym_init(s);
            s->Name = c->Name;
            s->Value = c->Value;
            s->Source = (int8_t)source;
            c->Synonyms.items = s;
            c->Synonyms.count = 1;
        }
    }
}

int api_describeconfigs(struct stratus_req *req)
{
    struct DescribeConfigsRequest rq;
    struct DescribeConfigsResponse rs;
    struct kread r;
    char node[16];

    DescribeConfigsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (DescribeConfigsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed DescribeConfigs");
    snprintf(node, sizeof node, "%d", req->ctx->node_id);
    DescribeConfigsResponse_init(&rs);
    int32_t n = rq.Resources.count > 0 ? rq.Resources.count : 0;
    rs.Results.items = API_ALLOC(req, struct DescribeConfigsResponse_DescribeConfigsResult, n);
    rs.Results.count = rs.Results.items ? n : 0;
    for (int32_t i = 0; i < rs.Results.count; i++) {
        const struct DescribeConfigsRequest_DescribeConfigsResource *res = &rq.Resources.items[i];
        struct DescribeConfigsResponse_DescribeConfigsResult *out = &rs.Results.items[i];
        char *name = api_cstr(req, res->ResourceName);

        DescribeConfigsResponse_DescribeConfigsResult_init(out);
        out->ResourceType = res->ResourceType;
        out->ResourceName = res->ResourceName;
        out->ErrorMessage = KSTR_NULL;
        if (res->ResourceType == RES_TOPIC) {
            struct stratus_config_entry *ce = NULL;
            size_t nc = 0;
            int16_t err =
                name ? stratus_stream_describe_topic_configs(req->ctx->stream, name, &ce, &nc)
                     : KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            if (err) {
                out->ErrorCode = err;
                out->ErrorMessage = api_kstr(req, "Topic does not exist");
                continue;
            }
            out->Configs.items =
                API_ALLOC(req, struct DescribeConfigsResponse_DescribeConfigsResourceResult, nc);
            int32_t k = 0;
            for (size_t j = 0; out->Configs.items && j < nc; j++) {
                if (!key_wanted(res, ce[j].name))
                    continue;
                add_entry(req, rq.IncludeSynonyms, &out->Configs.items[k++], ce[j].name,
                          ce[j].value, ce[j].source, ce[j].read_only, ce[j].sensitive,
                          ce[j].type, ce[j].doc, rq.IncludeDocumentation);
            }
            out->Configs.count = k;
            free(ce);
        } else if (res->ResourceType == RES_BROKER) {
            if (name && name[0] && strcmp(name, node) != 0) {
                out->ErrorCode = KAFKA_ERR_INVALID_REQUEST;
                out->ErrorMessage = api_kstr(req, "Unknown broker id");
                continue;
            }
            size_t nb = sizeof broker_cfgs / sizeof broker_cfgs[0];
            out->Configs.items =
                API_ALLOC(req, struct DescribeConfigsResponse_DescribeConfigsResourceResult, nb);
            int32_t k = 0;
            for (size_t j = 0; out->Configs.items && j < nb; j++) {
                const struct broker_cfg *bc = &broker_cfgs[j];
                const char *v = bc->section
                                    ? stratus_conf_get(req->ctx->conf, bc->section, bc->key)
                                    : NULL;
                int src = v ? STRATUS_CONFIG_SRC_STATIC_BROKER : STRATUS_CONFIG_SRC_DEFAULT;
                if (!key_wanted(res, bc->kafka_name))
                    continue;
                if (!v && bc->section && !strcmp(bc->key, "node_id"))
                    v = node;
                add_entry(req, rq.IncludeSynonyms, &out->Configs.items[k++], bc->kafka_name,
                          v ? v : bc->def, src, 1, 0, bc->type, bc->doc,
                          rq.IncludeDocumentation);
            }
            out->Configs.count = k;
        } else if (res->ResourceType == RES_BROKER_LOGGER) {
            out->Configs.count = 0;
        } else {
            out->ErrorCode = KAFKA_ERR_INVALID_REQUEST;
            out->ErrorMessage = api_kstr(req, "Unsupported resource type");
        }
    }
    DescribeConfigsResponse_encode(&req->resp, req->api_version, &rs);
    return STRATUS_API_DONE;
}

/* ---- AlterConfigs / IncrementalAlterConfigs ---- */

/* Error for a resource that is not a topic; 0 for a topic. */
static int16_t config_resource_check(int8_t type, char *msg, size_t cap)
{
    if (type == RES_TOPIC)
        return KAFKA_ERR_NONE;
    if (type == RES_BROKER || type == RES_BROKER_LOGGER) {
        snprintf(msg, cap, "broker configs are static in Stratus: set them in stratus.ini "
                 "(or with --set) and restart the broker");
        return KAFKA_ERR_INVALID_REQUEST;
    }
    snprintf(msg, cap, "unsupported resource type %d", type);
    return KAFKA_ERR_INVALID_REQUEST;
}

/* Applies a topic's configs in the local catalog, or in cluster mode in the metastore. */
static int16_t alter_topic_configs(struct stratus_req *req, const char *name,
                                   const struct stratus_kv *kv, size_t n, int incremental,
                                   int validate_only, char *msg, size_t cap)
{
    if (req->ctx->cluster)
        return stratus_cluster_alter_topic_configs(req->ctx->cluster, name, kv, n, incremental,
                                                   validate_only, msg, cap);
    return stratus_stream_alter_topic_configs(req->ctx->stream, name, kv, n, incremental,
                                              validate_only, msg, cap);
}

static void alterconfigs_on_worker(struct stratus_req *req)
{
    struct AlterConfigsRequest rq;
    struct AlterConfigsResponse rs;
    struct kread r;

    AlterConfigsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    AlterConfigsRequest_decode(&r, req->api_version, &rq);
    AlterConfigsResponse_init(&rs);
    int32_t n = rq.Resources.count > 0 ? rq.Resources.count : 0;
    rs.Responses.items =
        API_ALLOC(req, struct AlterConfigsResponse_AlterConfigsResourceResponse, n);
    rs.Responses.count = rs.Responses.items ? n : 0;
    for (int32_t i = 0; i < rs.Responses.count; i++) {
        const struct AlterConfigsRequest_AlterConfigsResource *rr = &rq.Resources.items[i];
        struct AlterConfigsResponse_AlterConfigsResourceResponse *o = &rs.Responses.items[i];
        char msg[256] = "";
        int16_t err;

        AlterConfigsResponse_AlterConfigsResourceResponse_init(o);
        o->ResourceType = rr->ResourceType;
        o->ResourceName = rr->ResourceName;
        err = config_resource_check(rr->ResourceType, msg, sizeof msg);
        if (!err) {
            char *name = api_cstr(req, rr->ResourceName);
            int32_t nc = rr->Configs.count > 0 ? rr->Configs.count : 0;
            struct stratus_kv *kv = API_ALLOC(req, struct stratus_kv, nc);
            for (int32_t c = 0; kv && c < nc; c++) {
                kv[c].name = api_cstr(req, rr->Configs.items[c].Name);
                kv[c].value = rr->Configs.items[c].Value.len < 0
                                  ? NULL
                                  : api_cstr(req, rr->Configs.items[c].Value);
            }
            if (!name || (nc && !kv))
                err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            else
                err = alter_topic_configs(req, name, kv, (size_t)nc, 0, rq.ValidateOnly, msg,
                                          sizeof msg);
            LOG_INFO("api", "alter configs topic=%s n=%d validate_only=%d err=%s %s",
                     name ? name : "?", nc, rq.ValidateOnly, stratus_kerr_name(err), msg);
        }
        o->ErrorCode = err;
        o->ErrorMessage = err && msg[0] ? api_kstr(req, msg) : KSTR_NULL;
    }
    AlterConfigsResponse_encode(&req->resp, req->api_version, &rs);
}

int api_alterconfigs(struct stratus_req *req)
{
    struct AlterConfigsRequest rq;
    struct kread r;

    AlterConfigsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (AlterConfigsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed AlterConfigs");
    return api_run_on_worker(req, alterconfigs_on_worker);
}

/* 1 when the comma-separated list contains item. */
static int list_has(const char *list, const char *item)
{
    size_t il = strlen(item);
    const char *p = list;

    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == il && strncmp(p, item, l) == 0)
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

/* APPEND (op 2) or SUBTRACT (op 3) of the comma-separated items of arg to cur; arena string. */
static char *list_apply(struct stratus_req *req, const char *cur, const char *arg, int op)
{
    size_t cap = strlen(cur) + strlen(arg) + 2, o = 0;
    char *out = arena_alloc(&req->arena, cap), *tmp;

    if (!out)
        return NULL;
    out[0] = 0;
    tmp = arena_alloc(&req->arena, cap);
    if (!tmp)
        return NULL;
    /* the kept items of cur */
    snprintf(tmp, cap, "%s", cur);
    for (char *save = NULL, *it = strtok_r(tmp, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        if (op == 3 && list_has(arg, it))
            continue;
        o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? "," : "", it);
    }
    if (op == 2) { /* the new items of arg */
        snprintf(tmp, cap, "%s", arg);
        for (char *save = NULL, *it = strtok_r(tmp, ",", &save); it;
             it = strtok_r(NULL, ",", &save)) {
            if (list_has(out, it))
                continue;
            o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? "," : "", it);
        }
    }
    return out;
}

static void incrementalalterconfigs_on_worker(struct stratus_req *req)
{
    struct IncrementalAlterConfigsRequest rq;
    struct IncrementalAlterConfigsResponse rs;
    struct kread r;

    IncrementalAlterConfigsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    IncrementalAlterConfigsRequest_decode(&r, req->api_version, &rq);
    IncrementalAlterConfigsResponse_init(&rs);
    int32_t n = rq.Resources.count > 0 ? rq.Resources.count : 0;
    rs.Responses.items =
        API_ALLOC(req, struct IncrementalAlterConfigsResponse_AlterConfigsResourceResponse, n);
    rs.Responses.count = rs.Responses.items ? n : 0;
    for (int32_t i = 0; i < rs.Responses.count; i++) {
        const struct IncrementalAlterConfigsRequest_AlterConfigsResource *rr =
            &rq.Resources.items[i];
        struct IncrementalAlterConfigsResponse_AlterConfigsResourceResponse *o =
            &rs.Responses.items[i];
        struct stratus_config_entry *ce = NULL;
        size_t nce = 0;
        char msg[256] = "";
        char *name = NULL;
        int16_t err;

        IncrementalAlterConfigsResponse_AlterConfigsResourceResponse_init(o);
        o->ResourceType = rr->ResourceType;
        o->ResourceName = rr->ResourceName;
        err = config_resource_check(rr->ResourceType, msg, sizeof msg);
        if (!err) {
            name = api_cstr(req, rr->ResourceName);
            err = name ? stratus_stream_describe_topic_configs(req->ctx->stream, name, &ce, &nce)
                       : KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            if (err == KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION)
                snprintf(msg, sizeof msg, "topic %s does not exist", name);
        }
        int32_t nc = rr->Configs.count > 0 ? rr->Configs.count : 0;
        struct stratus_kv *kv = err ? NULL : API_ALLOC(req, struct stratus_kv, nc);
        if (!err && nc && !kv)
            err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        for (int32_t c = 0; !err && c < nc; c++) {
            const struct IncrementalAlterConfigsRequest_AlterableConfig *ac = &rr->Configs.items[c];
            const struct stratus_config_entry *cur = NULL;
            char *cname = api_cstr(req, ac->Name);
            char *val = ac->Value.len < 0 ? NULL : api_cstr(req, ac->Value);

            for (int32_t d = 0; d < c; d++)
                if (kv[d].name && cname && strcmp(kv[d].name, cname) == 0) {
                    err = KAFKA_ERR_INVALID_REQUEST;
                    snprintf(msg, sizeof msg, "config %s is named more than once", cname);
                }
            for (size_t e = 0; cname && e < nce; e++)
                if (strcmp(ce[e].name, cname) == 0)
                    cur = &ce[e];
            kv[c].name = cname;
            switch (ac->ConfigOperation) {
            case 0: /* SET */
                if (!val) {
                    err = KAFKA_ERR_INVALID_REQUEST;
                    snprintf(msg, sizeof msg, "SET of %s needs a value", cname);
                }
                kv[c].value = val;
                break;
            case 1: /* DELETE */
                kv[c].value = NULL;
                break;
            case 2: /* APPEND */
            case 3: /* SUBTRACT */
                if (!cur || cur->type != STRATUS_CONFIG_T_LIST) {
                    err = KAFKA_ERR_INVALID_CONFIG;
                    snprintf(msg, sizeof msg, "Config value %s is not allowed for config key: %s",
                             ac->ConfigOperation == 2 ? "append" : "subtract", cname);
                    break;
                }
                kv[c].value = list_apply(req, cur->value, val ? val : "", ac->ConfigOperation);
                if (!kv[c].value)
                    err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
                break;
            default:
                err = KAFKA_ERR_INVALID_REQUEST;
                snprintf(msg, sizeof msg, "unknown config operation %d", ac->ConfigOperation);
            }
        }
        free(ce);
        if (!err)
            err = alter_topic_configs(req, name, kv, (size_t)nc, 1, rq.ValidateOnly, msg,
                                      sizeof msg);
        if (rr->ResourceType == RES_TOPIC)
            LOG_INFO("api", "incremental alter configs topic=%s n=%d validate_only=%d err=%s %s",
                     name ? name : "?", nc, rq.ValidateOnly, stratus_kerr_name(err), msg);
        o->ErrorCode = err;
        o->ErrorMessage = err && msg[0] ? api_kstr(req, msg) : KSTR_NULL;
    }
    IncrementalAlterConfigsResponse_encode(&req->resp, req->api_version, &rs);
}

int api_incrementalalterconfigs(struct stratus_req *req)
{
    struct IncrementalAlterConfigsRequest rq;
    struct kread r;

    IncrementalAlterConfigsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (IncrementalAlterConfigsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed IncrementalAlterConfigs");
    return api_run_on_worker(req, incrementalalterconfigs_on_worker);
}
