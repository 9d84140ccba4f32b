/* stratus.c - the admin CLI: what Kafka tools cannot show about a Stratus data directory.
 *
 *   stratus fsck [DATA_DIR] --config FILE [--repair]   index vs objects: missing objects (with
 *                                                     the offset ranges they held), size or
 *                                                     footer mismatches, orphan objects
 *   stratus objects [DATA_DIR] --config FILE --topic T --partition N
 *                                                     the partition's ranges: offsets, bytes,
 *                                                     batches, object id and key
 *   stratus plugins [--config FILE | PATH.so ...]      describe the configured (or given) plugins
 *   stratus config --config FILE [--set S.K=V ...]     the effective config, secrets redacted
 *   stratus cluster status|drain|undrain --config FILE [--node N]
 *                                                     a cluster's brokers, controller and moves;
 *                                                     drain a broker (cluster_cmd.c)
 * DATA_DIR defaults to [broker] data_dir; the index is [index] path or DATA_DIR/index. fsck and
 * objects open the RocksDB index, so run them while the broker is stopped (RocksDB's LOCK
 * refuses a second opener). The storage plugin is loaded through core/plugin as the broker
 * does. Reads the index key schema of core/index/index.c ('T' topics, 'R' ranges, 'O'
 * objects) and the object footer of core/stream/objfmt.h.
 * Exit status: 0 ok / clean, 1 problems found (fsck), 2 usage or runtime error.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "broker.h"
#include "cluster_cmd.h"
#include "conf/conf.h"
#include "index/index.h"
#include "plugin/plugin.h"
#include "stream/objfmt.h"
#include "util/alloc.h"
#include "util/log.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cli {
    const char *cmd;
    const char *config;
    const char *data_dir;
    const char *topic;
    int32_t partition;
    int repair;
    int32_t node;
    const char **sets;
    int nsets;
    const char **paths;
    int npaths;
    struct stratus_conf *conf;
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: stratus fsck [DATA_DIR] --config FILE [--repair]\n"
               "       stratus objects [DATA_DIR] --config FILE --topic T --partition N\n"
               "       stratus plugins [--config FILE | PATH.so ...]\n"
               "       stratus config --config FILE [--set SECTION.KEY=VALUE ...]\n"
               "       stratus cluster status|drain|undrain --config FILE [--node N]\n"
               "       stratus --version | --help\n"
               "\n"
               "Run fsck and objects while the broker is stopped (they open its RocksDB index).\n"
               "fsck exits 0 when clean, 1 when it found problems, 2 on errors.\n");
}

/* ---- shared: config, index, storage ---- */

static int cli_load_conf(struct cli *c)
{
    struct stratus_errbuf eb = {{0}};
    int rc = 0;

    if (c->config)
        rc = stratus_conf_load(c->config, &c->conf, &eb);
    else
        c->conf = stratus_conf_new();
    for (int i = 0; rc == 0 && i < c->nsets; i++)
        rc = stratus_conf_set(c->conf, c->sets[i], &eb);
    if (rc != 0) {
        fprintf(stderr, "stratus: %s\n", eb.msg);
        return -1;
    }
    return 0;
}

static void cli_index_path(struct cli *c, char *out, size_t cap)
{
    const char *ip = stratus_conf_get(c->conf, "index", "path");
    const char *dd = c->data_dir ? c->data_dir : stratus_conf_get(c->conf, "broker", "data_dir");
    if (ip && !c->data_dir)
        snprintf(out, cap, "%s", ip);
    else
        snprintf(out, cap, "%s/index", dd ? dd : "./data");
}

static int cli_open(struct cli *c, struct stratus_index **idx, struct stratus_storage **st)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_index_conf ic = {0};
    char path[PATH_MAX + 8], plugin_dir[PATH_MAX];
    FILE *probe;

    cli_index_path(c, path, sizeof path);
    /* Opening creates a missing index: refuse a directory that has none. */
    char current[PATH_MAX + 16];
    snprintf(current, sizeof current, "%s/CURRENT", path);
    probe = fopen(current, "r");
    if (!probe) {
        fprintf(stderr, "stratus: no index at %s (wrong DATA_DIR?)\n", path);
        return -1;
    }
    fclose(probe);
    ic.path = path;
    if (stratus_index_open(&ic, idx, &eb) != 0) {
        fprintf(stderr, "stratus: open index %s: %s\n(is the broker still running?)\n", path,
                eb.msg);
        return -1;
    }
    if (st) {
        stratus_broker_plugin_dir(c->conf, plugin_dir, sizeof plugin_dir);
        if (stratus_storage_open(c->conf, "storage", plugin_dir, st, &eb) != 0) {
            fprintf(stderr, "stratus: storage: %s\n", eb.msg);
            stratus_index_close(*idx);
            return -1;
        }
    }
    return 0;
}

/* stream id -> "topic/partition", from the 'T' records. */
struct stream_name {
    uint64_t sid;
    char topic[256];
    int32_t partition;
};

static int stream_name_cmp(const void *a, const void *b)
{
    const struct stream_name *x = a, *y = b;
    return x->sid < y->sid ? -1 : x->sid > y->sid;
}

static struct stream_name *cli_stream_names(struct stratus_index *idx, size_t *n)
{
    struct stratus_index_iter *it = stratus_index_iter_new(idx);
    uint8_t pfx = STRATUS_IDX_TOPIC;
    struct stream_name *v = NULL;
    size_t cnt = 0, cap = 0;

    for (stratus_index_iter_seek(it, &pfx, 1); stratus_index_iter_has_prefix(it, &pfx, 1);
         stratus_index_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl);
        const uint8_t *val = stratus_index_iter_value(it, &vl);
        /* u8 version=1, id[16], i32 partitions, per partition {u64 stream id, i32 epoch} */
        if (vl < 21 || val[0] != 1 || kl < 2 || kl - 1 > 249)
            continue;
        uint32_t np = stratus_be32_get(val + 17);
        if (np > 1000000 || (vl - 21) / 12 < np)
            continue;
        for (uint32_t i = 0; i < np; i++) {
            if (cnt == cap) {
                cap = cap ? cap * 2 : 64;
                v = xrealloc(v, cap * sizeof *v);
            }
            v[cnt].sid = stratus_be64_get(val + 21 + 12 * (size_t)i);
            snprintf(v[cnt].topic, sizeof v[cnt].topic, "%.*s", (int)(kl - 1), (const char *)k + 1);
            v[cnt].partition = (int32_t)i;
            cnt++;
        }
    }
    stratus_index_iter_free(it);
    if (cnt)
        qsort(v, cnt, sizeof *v, stream_name_cmp);
    *n = cnt;
    return v;
}

static const struct stream_name *
cli_stream_find(const struct stream_name *v, size_t n, uint64_t sid)
{
    struct stream_name key = {.sid = sid};
    return n ? bsearch(&key, v, n, sizeof *v, stream_name_cmp) : NULL;
}

static int cli_get_object(struct stratus_index *idx, uint64_t oid, struct stratus_index_object *o)
{
    uint8_t key[STRATUS_IDX_KEY_MAX], *val = NULL;
    size_t kl = stratus_index_key_object(key, oid), vl;
    struct stratus_errbuf eb = {{0}};
    int rc = stratus_index_get(idx, key, kl, &val, &vl, &eb);
    if (rc == 0) {
        rc = stratus_index_object_decode(val, vl, o);
        free(val);
    }
    return rc;
}

/* ---- objects ---- */

static int cmd_objects(struct cli *c)
{
    struct stratus_index *idx;
    struct stream_name *names;
    size_t nn;
    uint64_t sid = 0;
    int found = 0, n = 0;
    uint64_t bytes = 0;

    if (!c->topic || c->partition < 0) {
        fprintf(stderr, "stratus objects: --topic and --partition are required\n");
        return 2;
    }
    if (cli_open(c, &idx, NULL) != 0)
        return 2;
    names = cli_stream_names(idx, &nn);
    for (size_t i = 0; i < nn; i++)
        if (strcmp(names[i].topic, c->topic) == 0 && names[i].partition == c->partition) {
            sid = names[i].sid;
            found = 1;
        }
    free(names);
    if (!found) {
        fprintf(stderr, "stratus objects: no partition %s/%d in the index\n", c->topic,
                c->partition);
        stratus_index_close(idx);
        return 2;
    }
    printf("partition %s/%d (stream %" PRIu64 ")\n", c->topic, c->partition, sid);
    printf("%-12s %-12s %10s %8s %10s %14s  %s\n", "base_offset", "last_offset", "bytes", "batches",
           "position", "object_id", "object_key (object size)");
    struct stratus_index_iter *it = stratus_index_iter_new(idx);
    uint8_t pfx[9];
    pfx[0] = STRATUS_IDX_RANGE;
    stratus_be64_put(pfx + 1, sid);
    for (stratus_index_iter_seek(it, pfx, 9); stratus_index_iter_has_prefix(it, pfx, 9);
         stratus_index_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl);
        const uint8_t *v = stratus_index_iter_value(it, &vl);
        struct stratus_index_range r;
        struct stratus_index_object o;
        if (stratus_index_range_decode(k, kl, v, vl, &r) != 0)
            continue;
        int have = cli_get_object(idx, r.object_id, &o) == 0;
        printf("%-12" PRId64 " %-12" PRId64 " %10u %8u %10" PRIu64 " %14" PRIu64 "  %s",
               r.base_offset, r.last_offset, r.length, r.batches, r.position, r.object_id,
               have ? o.key : "(no object record)");
        if (have)
            printf(" (%" PRIu64 ")", o.size);
        printf("\n");
        n++;
        bytes += r.length;
    }
    stratus_index_iter_free(it);
    printf("%d ranges, %" PRIu64 " bytes in objects\n", n, bytes);
    stratus_index_close(idx);
    return 0;
}

/* ---- fsck ---- */

struct fsck_obj {
    struct stratus_index_object o;
    int state; /* 0 ok, 1 missing, 2 size mismatch, 3 bad footer/index */
    char why[200];
};

struct fsck_list {
    struct fsck_obj *objs;
    size_t n;
    char **orphans;
    size_t norphans, corph;
};

static int fsck_obj_cmp_key(const void *key, const void *elem)
{
    return strcmp(key, ((const struct fsck_obj *)elem)->o.key);
}

static int fsck_obj_cmp(const void *a, const void *b)
{
    return strcmp(((const struct fsck_obj *)a)->o.key, ((const struct fsck_obj *)b)->o.key);
}

static int fsck_list_cb(void *arg, const struct stratus_object_info *info)
{
    struct fsck_list *l = arg;
    if (l->n && bsearch(info->key, l->objs, l->n, sizeof *l->objs, fsck_obj_cmp_key))
        return 0;
    if (l->norphans == l->corph) {
        l->corph = l->corph ? l->corph * 2 : 16;
        l->orphans = xrealloc(l->orphans, l->corph * sizeof *l->orphans);
    }
    l->orphans[l->norphans++] = xstrdup(info->key);
    return 0;
}

/* Reads the footer and index block of an object; fills why on a problem. */
static int fsck_check_object(struct stratus_storage *st, struct fsck_obj *f)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_object_info info;
    uint8_t footer[STRATUS_OBJFMT_FOOTER_SIZE];
    size_t got = 0;
    int rc = stratus_storage_head(st, f->o.key, &info, &eb);

    if (rc == STRATUS_ENOTFOUND) {
        f->state = 1;
        snprintf(f->why, sizeof f->why, "object missing from storage");
        return 0;
    }
    if (rc != 0)
        return rc;
    if (info.size != f->o.size) {
        f->state = 2;
        snprintf(f->why, sizeof f->why, "size %" PRIu64 " in storage, %" PRIu64 " in the index",
                 info.size, f->o.size);
        return 0;
    }
    if (f->o.size < STRATUS_OBJFMT_FOOTER_SIZE ||
        (rc = stratus_storage_get(st, f->o.key, f->o.size - STRATUS_OBJFMT_FOOTER_SIZE,
                                  sizeof footer, footer, &got, &eb)) != 0 ||
        got != sizeof footer) {
        f->state = 3;
        snprintf(f->why, sizeof f->why, "cannot read footer: %s", rc ? eb.msg : "short object");
        return 0;
    }
    uint64_t ipos;
    uint32_t ilen, icrc;
    if (stratus_objfmt_parse_footer(footer, f->o.size, &ipos, &ilen, &icrc, &eb) != 0) {
        f->state = 3;
        snprintf(f->why, sizeof f->why, "bad footer: %s", eb.msg);
        return 0;
    }
    uint8_t *ib = malloc(ilen ? ilen : 1);
    struct stratus_objfmt_range *ranges = NULL;
    size_t nr = 0;
    if (!ib)
        return STRATUS_ENOMEM;
    if ((rc = stratus_storage_get(st, f->o.key, ipos, ilen, ib, &got, &eb)) != 0 || got != ilen ||
        stratus_objfmt_parse_index(ib, ilen, icrc, ipos, &ranges, &nr, &eb) != 0) {
        f->state = 3;
        snprintf(f->why, sizeof f->why, "bad index block: %s", eb.msg);
    }
    free(ranges);
    free(ib);
    return 0;
}

static int cmd_fsck(struct cli *c)
{
    struct stratus_index *idx;
    struct stratus_storage *st;
    struct fsck_list l = {0};
    size_t cap = 0, nn;
    int problems = 0, rc = 0;

    if (cli_open(c, &idx, &st) != 0)
        return 2;
    /* Every object the index knows. */
    struct stratus_index_iter *it = stratus_index_iter_new(idx);
    uint8_t pfx = STRATUS_IDX_OBJECT;
    for (stratus_index_iter_seek(it, &pfx, 1); stratus_index_iter_has_prefix(it, &pfx, 1);
         stratus_index_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl);
        const uint8_t *v = stratus_index_iter_value(it, &vl);
        uint64_t oid;
        if (l.n == cap) {
            cap = cap ? cap * 2 : 64;
            l.objs = xrealloc(l.objs, cap * sizeof *l.objs);
        }
        memset(&l.objs[l.n], 0, sizeof l.objs[l.n]);
        if (stratus_index_parse_id_key(k, kl, STRATUS_IDX_OBJECT, &oid) != 0 ||
            stratus_index_object_decode(v, vl, &l.objs[l.n].o) != 0) {
            printf("CORRUPT object record in the index\n");
            problems++;
            continue;
        }
        l.objs[l.n].o.object_id = oid;
        l.n++;
    }
    stratus_index_iter_free(it);
    if (l.n)
        qsort(l.objs, l.n, sizeof *l.objs, fsck_obj_cmp);
    for (size_t i = 0; i < l.n; i++) {
        if ((rc = fsck_check_object(st, &l.objs[i])) != 0) {
            fprintf(stderr, "stratus fsck: storage error on %s: %s\n", l.objs[i].o.key,
                    stratus_strerror(rc));
            problems = -1;
            goto out;
        }
    }
    /* Every range, checked against its object. */
    struct stream_name *names = cli_stream_names(idx, &nn);
    uint64_t nranges = 0;
    it = stratus_index_iter_new(idx);
    pfx = STRATUS_IDX_RANGE;
    for (stratus_index_iter_seek(it, &pfx, 1); stratus_index_iter_has_prefix(it, &pfx, 1);
         stratus_index_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl);
        const uint8_t *v = stratus_index_iter_value(it, &vl);
        struct stratus_index_range r;
        char okey[64];
        if (stratus_index_range_decode(k, kl, v, vl, &r) != 0) {
            printf("CORRUPT range record in the index\n");
            problems++;
            continue;
        }
        nranges++;
        const struct stream_name *sn = cli_stream_find(names, nn, r.stream_id);
        char where[300];
        if (sn)
            snprintf(where, sizeof where, "topic=%s partition=%d", sn->topic, sn->partition);
        else
            snprintf(where, sizeof where, "stream=%" PRIu64 " (deleted topic)", r.stream_id);
        stratus_objfmt_key(r.object_id, okey, sizeof okey);
        const struct fsck_obj *fo =
            l.n ? bsearch(okey, l.objs, l.n, sizeof *l.objs, fsck_obj_cmp_key) : NULL;
        if (fo && fo->o.object_id != r.object_id)
            fo = NULL;
        for (size_t i = 0; i < l.n && !fo; i++)
            if (l.objs[i].o.object_id == r.object_id)
                fo = &l.objs[i];
        if (!fo) {
            printf("MISSING %s offsets=%" PRId64 "-%" PRId64 " object_id=%" PRIu64
                   ": no object record in the index\n",
                   where, r.base_offset, r.last_offset, r.object_id);
            problems++;
        } else if (fo->state != 0) {
            printf("%s %s offsets=%" PRId64 "-%" PRId64 " object=%s: %s\n",
                   fo->state == 1 ? "MISSING" : "DAMAGED", where, r.base_offset, r.last_offset,
                   fo->o.key, fo->why);
            problems++;
        } else if (r.position + r.length > fo->o.size) {
            printf("DAMAGED %s offsets=%" PRId64 "-%" PRId64 " object=%s: range ends past the "
                   "object\n",
                   where, r.base_offset, r.last_offset, fo->o.key);
            problems++;
        }
    }
    stratus_index_iter_free(it);
    free(names);
    /* Objects in storage the index does not know. */
    struct stratus_errbuf eb = {{0}};
    if ((rc = stratus_storage_list(st, "data/", NULL, fsck_list_cb, &l, &eb)) != 0) {
        fprintf(stderr, "stratus fsck: list: %s\n", eb.msg);
        problems = -1;
        goto out;
    }
    for (size_t i = 0; i < l.norphans; i++) {
        if (c->repair) {
            const char *k = l.orphans[i];
            rc = stratus_storage_del(st, &k, 1, &eb);
            printf("ORPHAN %s: %s\n", k, rc == 0 ? "deleted" : eb.msg);
            if (rc != 0)
                problems++;
        } else {
            printf("ORPHAN %s: in storage, not in the index (--repair deletes it)\n", l.orphans[i]);
            problems++;
        }
    }
    for (size_t i = 0; i < l.n; i++)
        if (l.objs[i].state != 0)
            printf("object %s: %s\n", l.objs[i].o.key, l.objs[i].why);
    printf("%s: %zu objects, %" PRIu64 " ranges, %zu orphans%s, %d problems\n",
           problems ? "NOT CLEAN" : "clean", l.n, nranges, l.norphans,
           c->repair ? " (repaired)" : "", problems);
out:
    for (size_t i = 0; i < l.norphans; i++)
        free(l.orphans[i]);
    free(l.orphans);
    free(l.objs);
    stratus_storage_close(st);
    stratus_index_close(idx);
    return problems < 0 ? 2 : problems ? 1 : 0;
}

/* ---- plugins ---- */

static int describe_path(const char *path)
{
    struct stratus_plugin *p;
    struct stratus_errbuf eb = {{0}};
    if (stratus_plugin_load(path, 0, &p, &eb) != 0) {
        fprintf(stderr, "stratus: %s\n", eb.msg);
        return 2;
    }
    stratus_plugin_describe(p, stdout);
    return 0;
}

static int cmd_plugins(struct cli *c)
{
    static const char *const secs[][2] = {{"storage", "storage"}, {"cache", "cache"}};
    char plugin_dir[PATH_MAX], path[PATH_MAX + 64];
    struct stratus_errbuf eb = {{0}};
    int rc = 0, n = 0;

    for (int i = 0; i < c->npaths; i++) {
        rc |= describe_path(c->paths[i]);
        printf("\n");
        n++;
    }
    if (n && !c->config)
        return rc;
    stratus_broker_plugin_dir(c->conf, plugin_dir, sizeof plugin_dir);
    printf("plugin_dir: %s\n\n", plugin_dir);
    for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++) {
        const char *name = stratus_conf_get(c->conf, secs[i][0], "plugin");
        if (!name || strcmp(name, "none") == 0) {
            printf("[%s] no plugin\n\n", secs[i][0]);
            continue;
        }
        if (stratus_plugin_resolve(plugin_dir, secs[i][1], name, path, sizeof path, &eb) != 0) {
            fprintf(stderr, "stratus: [%s] %s\n", secs[i][0], eb.msg);
            rc = 2;
            continue;
        }
        printf("[%s]\n", secs[i][0]);
        rc |= describe_path(path);
        printf("\n");
    }
    return rc;
}

/* ---- config ---- */

static int cli_looks_secret(const char *key)
{
    static const char *const words[] = {"secret",     "password", "passwd", "token",
                                        "credential", "private",  "_key",   NULL};
    for (int i = 0; words[i]; i++)
        if (strstr(key, words[i]))
            return 1;
    return 0;
}

static void dump_params(const struct stratus_conf *conf,
                        const char *sec,
                        const struct stratus_param *params,
                        int *any)
{
    for (const struct stratus_param *p = params; p && p->name; p++) {
        const char *v = stratus_conf_get(conf, sec, p->name);
        const char *where = stratus_conf_where(conf, sec, p->name);
        int secret = (p->flags & STRATUS_P_SECRET) || cli_looks_secret(p->name);
        if (!*any) {
            printf("[%s]\n", sec);
            *any = 1;
        }
        if (v)
            printf("%s = %s    ; %s\n", p->name, secret ? "****" : v, where ? where : "set");
        else if (p->def)
            printf("%s = %s    ; default\n", p->name, secret ? "****" : p->def);
        else
            printf("; %s is unset\n", p->name);
    }
}

static int cmd_config(struct cli *c)
{
    static const char *const core[] = {"broker", "wal",     "index", "upload",
                                       "group",  "metrics", NULL};
    struct stratus_errbuf eb = {{0}};
    char plugin_dir[PATH_MAX], path[PATH_MAX + 64];
    int rc = stratus_broker_check_config(c->conf, &eb);

    if (rc != 0) {
        fprintf(stderr, "stratus: invalid configuration: %s\n", eb.msg);
        return 2;
    }
    printf("; effective configuration of %s (secrets shown as ****)\n", stratus_conf_path(c->conf));
    for (int i = 0; core[i]; i++) {
        int any = 0;
        dump_params(c->conf, core[i], stratus_broker_section_params(core[i]), &any);
        if (any)
            printf("\n");
    }
    stratus_broker_plugin_dir(c->conf, plugin_dir, sizeof plugin_dir);
    const char *secs[] = {"storage", "cache"};
    for (int i = 0; i < 2; i++) {
        const char *name = stratus_conf_get(c->conf, secs[i], "plugin");
        struct stratus_plugin *p;
        int any = 0;
        if (!name)
            continue;
        printf("[%s]\nplugin = %s\n", secs[i], name);
        any = 1;
        if (i == 0)
            dump_params(c->conf, secs[i], stratus_storage_core_params() + 1, &any);
        if (strcmp(name, "none") == 0 ||
            stratus_plugin_resolve(plugin_dir, secs[i], name, path, sizeof path, &eb) != 0 ||
            stratus_plugin_load(path, 0, &p, &eb) != 0) {
            printf("\n");
            continue;
        }
        dump_params(c->conf, secs[i], stratus_plugin_desc(p)->params, &any);
        printf("\n");
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct cli c;
    int rc;

    memset(&c, 0, sizeof c);
    c.partition = -1;
    c.node = -1;
    c.sets = calloc((size_t)argc + 1, sizeof *c.sets);
    c.paths = calloc((size_t)argc + 1, sizeof *c.paths);
    stratus_log_level = STRATUS_LOG_WARN; /* the plugin loader's INFO lines are noise here */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (!strcmp(a, "--version")) {
            printf("stratus %s\n", STRATUS_VERSION);
            rc = 0;
            goto out;
        } else if ((!strcmp(a, "--config") || !strcmp(a, "-c")) && i + 1 < argc) {
            c.config = argv[++i];
        } else if (!strcmp(a, "--set") && i + 1 < argc) {
            c.sets[c.nsets++] = argv[++i];
        } else if (!strcmp(a, "--topic") && i + 1 < argc) {
            c.topic = argv[++i];
        } else if (!strcmp(a, "--partition") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > INT32_MAX) {
                fprintf(stderr, "stratus: bad partition '%s'\n", argv[i]);
                rc = 2;
                goto out;
            }
            c.partition = (int32_t)v;
        } else if (!strcmp(a, "--node") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > INT32_MAX) {
                fprintf(stderr, "stratus: bad node id '%s'\n", argv[i]);
                rc = 2;
                goto out;
            }
            c.node = (int32_t)v;
        } else if (!strcmp(a, "--repair")) {
            c.repair = 1;
        } else if (a[0] == '-') {
            fprintf(stderr, "stratus: unknown or incomplete argument '%s'\n\n", a);
            usage(stderr);
            rc = 2;
            goto out;
        } else if (!c.cmd) {
            c.cmd = a;
        } else if (!strcmp(c.cmd, "plugins")) {
            c.paths[c.npaths++] = a;
        } else if (!c.data_dir) {
            c.data_dir = a;
        } else {
            fprintf(stderr, "stratus: unexpected argument '%s'\n", a);
            rc = 2;
            goto out;
        }
    }
    if (!c.cmd) {
        usage(stderr);
        rc = 2;
        goto out;
    }
    int needs_config = strcmp(c.cmd, "plugins") != 0;
    if (needs_config && !c.config && c.nsets == 0) {
        fprintf(stderr, "stratus %s: --config FILE is required\n", c.cmd);
        rc = 2;
        goto out;
    }
    if (cli_load_conf(&c) != 0) {
        rc = 2;
        goto out;
    }
    if (!strcmp(c.cmd, "fsck"))
        rc = cmd_fsck(&c);
    else if (!strcmp(c.cmd, "objects"))
        rc = cmd_objects(&c);
    else if (!strcmp(c.cmd, "plugins"))
        rc = cmd_plugins(&c);
    else if (!strcmp(c.cmd, "config"))
        rc = cmd_config(&c);
    else if (!strcmp(c.cmd, "cluster"))
        rc = stratus_cli_cluster(c.conf, c.data_dir, c.node);
    else {
        fprintf(stderr, "stratus: unknown command '%s'\n\n", c.cmd);
        usage(stderr);
        rc = 2;
    }
    stratus_conf_free(c.conf);
out:
    free(c.sets);
    free(c.paths);
    return rc;
}
