/* loader.c - dlopen a plugin, check every field of its descriptor before trusting it, keep it
 * loaded until exit; resolve plugin names; print a plugin's documentation.
 *
 * Owns the registry of loaded plugins (a list under one mutex; entries are never freed: rule 5
 * of stratus_plugin.h, no dlclose while instances may live). Checks run in this order and the
 * first failure refuses the file with "PATH: reason":
 *   dlopen(RTLD_NOW|RTLD_LOCAL) -> dlsym(stratus_plugin_entry) -> desc non-NULL ->
 *   desc_size >= 1.0 size -> abi_major equal -> abi_minor <= ours -> build_sig -> kind known
 *   (and the wanted one) -> name [a-z0-9_-]+ -> ops non-NULL, ops_size >= 1.0 size ->
 *   required ops non-NULL -> config map well-formed -> name not taken by another file.
 * The descriptor and the ops are copied into zero-filled host-sized structs, so a table built
 * against an older minor (shorter) reads as NULL in the slots it lacks, and the host never
 * reads past what the plugin declared (the Fluent Bit memcpy bug).
 * SPDX-License-Identifier: Apache-2.0
 */
#include <ctype.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "plugin/plugin_int.h"
#include "util/alloc.h"
#include "util/log.h"

#ifndef STRATUS_PLUGIN_INSTALL_DIR
#define STRATUS_PLUGIN_INSTALL_DIR "/usr/local/lib/stratus/plugins"
#endif

#define PLUGIN_MAX_PARAMS 256 /* a config map longer than this is taken as unterminated */

static pthread_mutex_t loader_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stratus_plugin *loader_head; /* guarded by loader_lock */

const char *stratus_plugin_kind_name(int kind)
{
    switch (kind) {
    case STRATUS_PLUGIN_STORAGE:
        return "storage";
    case STRATUS_PLUGIN_CACHE:
        return "cache";
    case STRATUS_PLUGIN_POLICY:
        return "policy";
    }
    return NULL;
}

static int loader_name_ok(const char *name)
{
    size_t n = 0;
    for (const char *c = name; *c; c++, n++)
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_' || *c == '-'))
            return 0;
    return n > 0 && n <= 64;
}

/* Checks the descriptor at d of the plugin at path; fills p's copies. */
static int loader_check(const char *path, const struct stratus_plugin_desc *d, int want_kind,
                        struct stratus_plugin *p, struct stratus_errbuf *eb)
{
    const char *kname;
    uint32_t ops_size, need;
    char err[200];

    if (!d)
        return stratus_errf(eb, STRATUS_EINVAL, "%s: stratus_plugin_entry() returned NULL", path);
    if (d->desc_size < STRATUS_DESC_SIZE_1_0)
        return stratus_errf(eb, STRATUS_EINVAL,
                            "%s: descriptor is %u bytes, ABI 1.0 needs at least %zu", path,
                            d->desc_size, (size_t)STRATUS_DESC_SIZE_1_0);
    /* From here on, read only through the zero-filled host-sized copy. */
    memcpy(&p->desc, d, d->desc_size < sizeof p->desc ? d->desc_size : sizeof p->desc);
    d = &p->desc;
    if (d->abi_major != STRATUS_ABI_MAJOR)
        return stratus_errf(eb, STRATUS_EINVAL, "%s: ABI major %u, this broker speaks %d", path,
                            d->abi_major, STRATUS_ABI_MAJOR);
    if (d->abi_minor > STRATUS_ABI_MINOR)
        return stratus_errf(eb, STRATUS_EINVAL,
                            "%s: built for ABI %u.%u, newer than this broker's %d.%d", path,
                            d->abi_major, d->abi_minor, STRATUS_ABI_MAJOR, STRATUS_ABI_MINOR);
    if (!d->build_sig || strcmp(d->build_sig, STRATUS_BUILD_SIG) != 0)
        return stratus_errf(eb, STRATUS_EINVAL,
                            "%s: not binary compatible: build signature \"%.40s\", this broker "
                            "is \"%s\"",
                            path, d->build_sig ? d->build_sig : "(null)", STRATUS_BUILD_SIG);
    kname = stratus_plugin_kind_name(d->kind);
    if (!kname)
        return stratus_errf(eb, STRATUS_EINVAL, "%s: unknown plugin kind %d", path, d->kind);
    if (d->kind == STRATUS_PLUGIN_POLICY)
        return stratus_errf(eb, STRATUS_ENOTSUP, "%s: policy plugins are not supported yet", path);
    if (want_kind && d->kind != want_kind)
        return stratus_errf(eb, STRATUS_EINVAL, "%s: is a %s plugin, a %s plugin is needed here",
                            path, kname, stratus_plugin_kind_name(want_kind));
    if (!d->name || !loader_name_ok(d->name))
        return stratus_errf(eb, STRATUS_EINVAL, "%s: plugin name \"%.64s\" is not [a-z0-9_-]{1,64}",
                            path, d->name ? d->name : "(null)");
    if (!d->ops)
        return stratus_errf(eb, STRATUS_EINVAL, "%s: descriptor has no ops table", path);
    memcpy(&ops_size, d->ops, sizeof ops_size);
    need = d->kind == STRATUS_PLUGIN_STORAGE ? STRATUS_STORAGE_OPS_SIZE_1_0
                                             : STRATUS_CACHE_OPS_SIZE_1_0;
    if (ops_size < need)
        return stratus_errf(eb, STRATUS_EINVAL,
                            "%s: %s ops table is %u bytes, ABI 1.0 needs at least %u", path, kname,
                            ops_size, need);
    p->plugin_ops_size = ops_size;
    if (d->kind == STRATUS_PLUGIN_STORAGE) {
        const struct stratus_storage_ops *o = &p->ops.storage;
        memcpy(&p->ops.storage, d->ops,
               ops_size < sizeof p->ops.storage ? ops_size : sizeof p->ops.storage);
        const char *missing = !o->open ? "open"
                              : !o->close ? "close"
                              : !o->put   ? "put"
                              : !o->get   ? "get"
                              : !o->head  ? "head"
                              : !o->del   ? "del"
                              : !o->list  ? "list"
                                          : NULL;
        if (missing)
            return stratus_errf(eb, STRATUS_EINVAL, "%s: required storage op '%s' is NULL", path,
                                missing);
    } else {
        const struct stratus_cache_ops *o = &p->ops.cache;
        memcpy(&p->ops.cache, d->ops,
               ops_size < sizeof p->ops.cache ? ops_size : sizeof p->ops.cache);
        const char *missing = !o->open         ? "open"
                              : !o->close      ? "close"
                              : !o->lookup     ? "lookup"
                              : !o->insert     ? "insert"
                              : !o->invalidate ? "invalidate"
                              : !o->stats      ? "stats"
                                               : NULL;
        if (missing)
            return stratus_errf(eb, STRATUS_EINVAL, "%s: required cache op '%s' is NULL", path,
                                missing);
    }
    if (d->params) {
        size_t i;
        for (i = 0; i < PLUGIN_MAX_PARAMS && d->params[i].name; i++) {
            if (stratus_conf_check_param(&d->params[i], d->conf_size, err, sizeof err) < 0)
                return stratus_errf(eb, STRATUS_EINVAL, "%s: config map: %s", path, err);
            if (strcmp(d->params[i].name, "plugin") == 0 ||
                strncmp(d->params[i].name, "retry_", 6) == 0)
                return stratus_errf(eb, STRATUS_EINVAL,
                                    "%s: config map: key '%s' is reserved for the core", path,
                                    d->params[i].name);
            for (size_t j = 0; j < i; j++)
                if (strcmp(d->params[j].name, d->params[i].name) == 0)
                    return stratus_errf(eb, STRATUS_EINVAL,
                                        "%s: config map: key '%s' declared twice", path,
                                        d->params[i].name);
        }
        if (i == PLUGIN_MAX_PARAMS)
            return stratus_errf(eb, STRATUS_EINVAL,
                                "%s: config map has no STRATUS_PARAM_END within %d entries", path,
                                PLUGIN_MAX_PARAMS);
    }
    return 0;
}

int stratus_plugin_load(const char *path, int want_kind, struct stratus_plugin **out,
                        struct stratus_errbuf *eb)
{
    char real[PATH_MAX];
    struct stratus_plugin *p = NULL, *q;
    stratus_plugin_entry_fn *entry;
    void *dl;
    int rc;

    *out = NULL;
    if (!realpath(path, real))
        return stratus_errf(eb, STRATUS_ENOTFOUND, "%s: no such plugin file", path);
    pthread_mutex_lock(&loader_lock);
    for (q = loader_head; q; q = q->next) {
        if (strcmp(q->realpath, real) != 0)
            continue;
        if (want_kind && q->desc.kind != want_kind) {
            rc = stratus_errf(eb, STRATUS_EINVAL, "%s: is a %s plugin, a %s plugin is needed here",
                              path, stratus_plugin_kind_name(q->desc.kind),
                              stratus_plugin_kind_name(want_kind));
            goto out_unlock;
        }
        *out = q;
        rc = 0;
        goto out_unlock;
    }
    dlerror();
    dl = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *why = dlerror();
        rc = stratus_errf(eb, STRATUS_EINVAL, "%s: cannot load: %s", path, why ? why : "?");
        goto out_unlock;
    }
    *(void **)&entry = dlsym(dl, STRATUS_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        rc = stratus_errf(eb, STRATUS_EINVAL,
                          "%s: no %s symbol: not a Stratus plugin (use STRATUS_PLUGIN_DECLARE)",
                          path, STRATUS_PLUGIN_ENTRY_SYMBOL);
        goto out_dlclose;
    }
    p = xcalloc(1, sizeof *p);
    rc = loader_check(path, entry(), want_kind, p, eb);
    if (rc < 0)
        goto out_free_p;
    for (q = loader_head; q; q = q->next) {
        if (q->desc.kind == p->desc.kind && strcmp(q->desc.name, p->desc.name) == 0) {
            rc = stratus_errf(eb, STRATUS_EINVAL, "%s: a %s plugin named '%s' is already loaded "
                              "from %s", path, stratus_plugin_kind_name(q->desc.kind),
                              q->desc.name, q->path);
            goto out_free_p;
        }
    }
    p->path = xstrdup(path);
    p->realpath = xstrdup(real);
    p->dl = dl;
    p->next = loader_head;
    loader_head = p;
    LOG_INFO("plugin", "loaded %s plugin '%s' version %s from %s (ABI %u.%u)",
             stratus_plugin_kind_name(p->desc.kind), p->desc.name,
             p->desc.version ? p->desc.version : "?", path, p->desc.abi_major,
             p->desc.abi_minor);
    *out = p;
    pthread_mutex_unlock(&loader_lock);
    return 0;

out_free_p:
    free(p);
out_dlclose:
    dlclose(dl); /* refused before any instance exists */
out_unlock:
    pthread_mutex_unlock(&loader_lock);
    return rc;
}

const struct stratus_plugin_desc *stratus_plugin_desc(const struct stratus_plugin *p)
{
    return &p->desc;
}

const char *stratus_plugin_path(const struct stratus_plugin *p)
{
    return p->path;
}

void stratus_plugin_describe(const struct stratus_plugin *p, FILE *f)
{
    const struct stratus_plugin_desc *d = &p->desc;

    fprintf(f, "plugin:      %s\n", d->name);
    fprintf(f, "kind:        %s\n", stratus_plugin_kind_name(d->kind));
    fprintf(f, "version:     %s\n", d->version ? d->version : "-");
    fprintf(f, "description: %s\n", d->description ? d->description : "-");
    fprintf(f, "file:        %s\n", p->path);
    fprintf(f, "abi:         %u.%u (this broker: %d.%d), ops table %u bytes\n", d->abi_major,
            d->abi_minor, STRATUS_ABI_MAJOR, STRATUS_ABI_MINOR, p->plugin_ops_size);
    fprintf(f, "config keys:\n");
    if (!d->params || !d->params[0].name)
        fprintf(f, "  (none)\n");
    else
        stratus_conf_describe(d->params, f);
}

int stratus_plugin_resolve(const char *plugin_dir, const char *kind_name, const char *name,
                           char *out, size_t cap, struct stratus_errbuf *eb)
{
    size_t nl = strlen(name);
    int n;

    if (strchr(name, '/') || (nl > 3 && strcmp(name + nl - 3, ".so") == 0)) {
        n = snprintf(out, cap, "%s", name);
    } else {
        if (!loader_name_ok(name))
            return stratus_errf(eb, STRATUS_EINVAL,
                                "plugin name '%.64s' is not [a-z0-9_-]+ (or a path to a .so)",
                                name);
        n = snprintf(out, cap, "%s/stratus-%s-%s.so",
                     plugin_dir ? plugin_dir : STRATUS_PLUGIN_INSTALL_DIR, kind_name, name);
    }
    if (n < 0 || (size_t)n >= cap)
        return stratus_errf(eb, STRATUS_EINVAL, "plugin path for '%.64s' is too long", name);
    return 0;
}

const char **stratus_plugin_param_names(const struct stratus_plugin *p)
{
    size_t n = 0;
    const struct stratus_param *pp = p->desc.params;
    while (pp && pp[n].name)
        n++;
    const char **names = xcalloc(n + 1, sizeof *names);
    for (size_t i = 0; i < n; i++)
        names[i] = pp[i].name;
    return names;
}

int stratus_plugin_open_section(const struct stratus_conf *conf, const char *section,
                                const char *plugin_dir, int kind, const char *plugin_name,
                                const char *const *core_keys, struct stratus_plugin **p_out,
                                void **plugconf, struct stratus_errbuf *eb)
{
    char path[PATH_MAX];
    struct stratus_plugin *p;
    void *pc;
    int rc;

    *p_out = NULL;
    *plugconf = NULL;
    rc = stratus_plugin_resolve(plugin_dir, stratus_plugin_kind_name(kind), plugin_name, path,
                                sizeof path, eb);
    if (rc < 0)
        return rc;
    rc = stratus_plugin_load(path, kind, &p, eb);
    if (rc < 0)
        return rc;
    pc = xcalloc(1, p->desc.conf_size ? p->desc.conf_size : 1);
    rc = stratus_conf_apply(conf, section, p->desc.params, core_keys, pc, eb);
    if (rc < 0) {
        free(pc);
        return rc;
    }
    *p_out = p;
    *plugconf = pc;
    return 0;
}

void stratus_plugin_conf_free(const struct stratus_plugin *p, void *plugconf)
{
    if (!plugconf)
        return;
    stratus_conf_free_struct(p->desc.params, plugconf);
    free(plugconf);
}
