/* conf.c - the INI config (parsed by inih) and the stratus_param engine that turns a section
 * into a typed struct, for core sections and plugins alike (see conf.h).
 *
 * Owns: every section/key/value of the file and of --set overrides, each with its origin
 * ("FILE:LINE" or "--set"). A key given twice in one section keeps the last value (as Kafka's
 * properties do). ${env:NAME} anywhere in a value is replaced by the environment variable at
 * load time; an unset variable is an error.
 * Line numbers: Debian's inih is built without INI_HANDLER_LINENO, so the file is fed to
 * ini_parse_stream() through a reader that counts lines; inih calls the handler for a line
 * right after reading it. inih is built with a fixed 200-byte line buffer: a longer line is
 * refused with its file:line (put long secrets in the environment and use ${env:NAME}).
 * Multi-line (indented continuation) values are turned off: an indented line is a new key.
 * Size units: KiB/MiB/GiB/TiB and k/m/g/t are powers of 1024, kB/KB/MB/GB/TB powers of 1000.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"

struct conf_entry {
    char *section;
    char *key;
    char *value; /* after ${env:} substitution */
    char *where; /* "FILE:LINE" or "--set" */
};

struct conf_section {
    char *name;
    char *where; /* where the section was first seen */
};

struct stratus_conf {
    char *path; /* NULL for stratus_conf_new() */
    struct conf_entry *ents;
    size_t nents, capents;
    struct conf_section *secs;
    size_t nsecs, capsecs;
};

/* ---- storage of entries ---------------------------------------------------------------- */

struct stratus_conf *stratus_conf_new(void)
{
    return xcalloc(1, sizeof(struct stratus_conf));
}

void stratus_conf_free(struct stratus_conf *conf)
{
    if (!conf)
        return;
    for (size_t i = 0; i < conf->nents; i++) {
        free(conf->ents[i].section);
        free(conf->ents[i].key);
        free(conf->ents[i].value);
        free(conf->ents[i].where);
    }
    for (size_t i = 0; i < conf->nsecs; i++) {
        free(conf->secs[i].name);
        free(conf->secs[i].where);
    }
    free(conf->ents);
    free(conf->secs);
    free(conf->path);
    free(conf);
}

static struct conf_entry *conf_find(const struct stratus_conf *conf, const char *section,
                                    const char *key)
{
    for (size_t i = 0; i < conf->nents; i++)
        if (strcmp(conf->ents[i].section, section) == 0 && strcmp(conf->ents[i].key, key) == 0)
            return &conf->ents[i];
    return NULL;
}

static const struct conf_section *conf_find_section(const struct stratus_conf *conf,
                                                    const char *section)
{
    for (size_t i = 0; i < conf->nsecs; i++)
        if (strcmp(conf->secs[i].name, section) == 0)
            return &conf->secs[i];
    return NULL;
}

/* Sets section.key = value (takes nothing; copies all). Last value wins. */
static void conf_put(struct stratus_conf *conf, const char *section, const char *key,
                     const char *value, const char *where)
{
    struct conf_entry *e = conf_find(conf, section, key);

    if (!conf_find_section(conf, section)) {
        if (conf->nsecs == conf->capsecs) {
            conf->capsecs = conf->capsecs ? conf->capsecs * 2 : 8;
            conf->secs = xrealloc(conf->secs, conf->capsecs * sizeof *conf->secs);
        }
        conf->secs[conf->nsecs].name = xstrdup(section);
        conf->secs[conf->nsecs].where = xstrdup(where);
        conf->nsecs++;
    }
    if (e) {
        free(e->value);
        free(e->where);
        e->value = xstrdup(value);
        e->where = xstrdup(where);
        return;
    }
    if (conf->nents == conf->capents) {
        conf->capents = conf->capents ? conf->capents * 2 : 32;
        conf->ents = xrealloc(conf->ents, conf->capents * sizeof *conf->ents);
    }
    e = &conf->ents[conf->nents++];
    e->section = xstrdup(section);
    e->key = xstrdup(key);
    e->value = xstrdup(value);
    e->where = xstrdup(where);
}

/* Replaces every ${env:NAME} of in; *out is malloc'd. Errors name the variable, never the
 * value (it may be a secret). */
static int conf_expand_env(const char *in, char **out, char *err, size_t errcap)
{
    size_t cap = strlen(in) + 1, n = 0;
    char *buf = xmalloc(cap);
    const char *p = in;

    while (*p) {
        if (strncmp(p, "${env:", 6) == 0) {
            const char *name = p + 6, *end = strchr(name, '}');
            if (!end || end == name) {
                snprintf(err, errcap, "unterminated or empty ${env:...}");
                free(buf);
                return STRATUS_EINVAL;
            }
            char vname[128];
            size_t vn = (size_t)(end - name);
            if (vn >= sizeof vname) {
                snprintf(err, errcap, "environment variable name too long");
                free(buf);
                return STRATUS_EINVAL;
            }
            memcpy(vname, name, vn);
            vname[vn] = '\0';
            const char *val = getenv(vname);
            if (!val) {
                snprintf(err, errcap, "environment variable %s is not set", vname);
                free(buf);
                return STRATUS_EINVAL;
            }
            size_t vl = strlen(val);
            cap += vl;
            buf = xrealloc(buf, cap);
            memcpy(buf + n, val, vl);
            n += vl;
            p = end + 1;
            continue;
        }
        buf[n++] = *p++;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

/* ---- loading a file ---------------------------------------------------------------------- */

struct conf_loader {
    struct stratus_conf *conf;
    FILE *f;
    int line;         /* number of the line inih is working on */
    int too_long;     /* line number of a line longer than inih's buffer, 0 if none */
    int failed;       /* the handler refused a line; detail in eb */
    struct stratus_errbuf *eb;
};

/* fgets-style reader for ini_parse_stream: counts lines and refuses lines inih would cut. */
static char *conf_reader(char *str, int num, void *stream)
{
    struct conf_loader *ld = stream;

    if (ld->too_long || ld->failed)
        return NULL;
    if (!fgets(str, num, ld->f))
        return NULL;
    ld->line++;
    size_t n = strlen(str);
    if (n == (size_t)num - 1 && str[n - 1] != '\n' && !feof(ld->f)) {
        ld->too_long = ld->line;
        return NULL;
    }
    return str;
}

static int conf_handler(void *user, const char *section, const char *name, const char *value)
{
    struct conf_loader *ld = user;
    char where[4096 + 32], err[200];
    char *expanded = NULL;

    snprintf(where, sizeof where, "%s:%d", ld->conf->path, ld->line);
    if (!section[0]) {
        stratus_errf(ld->eb, STRATUS_EINVAL, "%s: key '%s' outside any [section]", where, name);
        ld->failed = 1;
        return 0;
    }
    if (!name[0]) {
        stratus_errf(ld->eb, STRATUS_EINVAL, "%s: [%s] empty key name", where, section);
        ld->failed = 1;
        return 0;
    }
    if (conf_expand_env(value, &expanded, err, sizeof err) < 0) {
        stratus_errf(ld->eb, STRATUS_EINVAL, "%s: [%s] %s: %s", where, section, name, err);
        ld->failed = 1;
        return 0;
    }
    conf_put(ld->conf, section, name, expanded, where);
    free(expanded);
    return 1;
}

static pthread_once_t conf_ini_once = PTHREAD_ONCE_INIT;

static void conf_ini_setup(void)
{
    /* Runtime knobs of Debian's inih; set once, before any parse. */
    ini_allow_multiline = false;
}

int stratus_conf_load(const char *path, struct stratus_conf **out, struct stratus_errbuf *eb)
{
    struct conf_loader ld = {0};
    int rc;

    *out = NULL;
    pthread_once(&conf_ini_once, conf_ini_setup);
    ld.f = fopen(path, "r");
    if (!ld.f)
        return stratus_errf(eb, STRATUS_EIO, "%s: cannot open: %s", path, strerror(errno));
    ld.conf = stratus_conf_new();
    ld.conf->path = xstrdup(path);
    ld.eb = eb;
    rc = ini_parse_stream(conf_reader, &ld, conf_handler, &ld);
    if (ld.failed) {
        rc = STRATUS_EINVAL; /* message already in eb */
        goto out_free_conf;
    }
    if (ld.too_long) {
        rc = stratus_errf(eb, STRATUS_EINVAL,
                          "%s:%d: line longer than the INI parser's limit (197 bytes); "
                          "move a long value to the environment and write ${env:NAME}",
                          path, ld.too_long);
        goto out_free_conf;
    }
    if (ferror(ld.f)) {
        rc = stratus_errf(eb, STRATUS_EIO, "%s: read error", path);
        goto out_free_conf;
    }
    if (rc > 0) {
        rc = stratus_errf(eb, STRATUS_EINVAL,
                          "%s:%d: syntax error (expected [section], key = value or a comment)",
                          path, rc);
        goto out_free_conf;
    }
    if (rc < 0) {
        rc = stratus_errf(eb, STRATUS_EIO, "%s: cannot parse (inih error %d)", path, rc);
        goto out_free_conf;
    }
    fclose(ld.f);
    *out = ld.conf;
    return 0;

out_free_conf:
    stratus_conf_free(ld.conf);
    fclose(ld.f);
    return rc;
}

static char *conf_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int stratus_conf_set(struct stratus_conf *conf, const char *assignment, struct stratus_errbuf *eb)
{
    char *copy = xstrdup(assignment), *eq, *dot, *section, *key, *value, *expanded = NULL;
    char err[200];
    int rc = 0;

    eq = strchr(copy, '=');
    if (!eq) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "--set %s: expected section.key=value", assignment);
        goto out_free_copy;
    }
    *eq = '\0';
    value = conf_trim(eq + 1);
    /* Section names may contain dots ([plugin.s3-main]); keys never do: split at the last. */
    dot = strrchr(copy, '.');
    if (!dot) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "--set %s: expected section.key=value", assignment);
        goto out_free_copy;
    }
    *dot = '\0';
    section = conf_trim(copy);
    key = conf_trim(dot + 1);
    if (!section[0] || !key[0]) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "--set %s: empty section or key", assignment);
        goto out_free_copy;
    }
    if (conf_expand_env(value, &expanded, err, sizeof err) < 0) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "--set [%s] %s: %s", section, key, err);
        goto out_free_copy;
    }
    conf_put(conf, section, key, expanded, "--set");
    free(expanded);
out_free_copy:
    free(copy);
    return rc;
}

const char *stratus_conf_get(const struct stratus_conf *conf, const char *section, const char *key)
{
    const struct conf_entry *e = conf ? conf_find(conf, section, key) : NULL;
    return e ? e->value : NULL;
}

const char *stratus_conf_where(const struct stratus_conf *conf, const char *section,
                               const char *key)
{
    const struct conf_entry *e = conf ? conf_find(conf, section, key) : NULL;
    return e ? e->where : NULL;
}

const char *stratus_conf_path(const struct stratus_conf *conf)
{
    return conf && conf->path ? conf->path : "(no file)";
}

int stratus_conf_has_section(const struct stratus_conf *conf, const char *section)
{
    return conf && conf_find_section(conf, section) != NULL;
}

int stratus_conf_check_sections(const struct stratus_conf *conf, const char *const *known,
                                struct stratus_errbuf *eb)
{
    for (size_t i = 0; i < conf->nsecs; i++) {
        int ok = 0;
        for (size_t k = 0; known && known[k]; k++)
            if (strcmp(known[k], conf->secs[i].name) == 0)
                ok = 1;
        if (!ok)
            return stratus_errf(eb, STRATUS_EINVAL, "%s: unknown section [%s]",
                                conf->secs[i].where, conf->secs[i].name);
    }
    return 0;
}

/* ---- value parsers ----------------------------------------------------------------------- */

struct conf_unit {
    const char *name;
    uint64_t mult;
};

/* Parses "<digits>[ ]<unit>" with a unit from units (case-insensitive; "" = multiplier 1). */
static int conf_parse_unit(const char *s, int allow_neg, const struct conf_unit *units,
                           int64_t *sval, uint64_t *uval)
{
    const char *p = s;
    int neg = 0;
    uint64_t v = 0;

    while (isspace((unsigned char)*p))
        p++;
    if (*p == '-' && allow_neg) {
        neg = 1;
        p++;
    } else if (*p == '+') {
        p++;
    }
    if (!isdigit((unsigned char)*p))
        return STRATUS_EINVAL;
    while (isdigit((unsigned char)*p)) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return STRATUS_EINVAL;
        v = v * 10 + d;
        p++;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    size_t ul = strlen(p);
    while (ul && isspace((unsigned char)p[ul - 1]))
        ul--;
    for (const struct conf_unit *u = units; u->name; u++) {
        if (strlen(u->name) != ul || strncasecmp(u->name, p, ul) != 0)
            continue;
        if (u->mult && v > UINT64_MAX / u->mult)
            return STRATUS_EINVAL;
        v *= u->mult;
        if (uval) {
            *uval = v;
            return 0;
        }
        if (v > (uint64_t)INT64_MAX)
            return STRATUS_EINVAL;
        *sval = neg ? -(int64_t)v : (int64_t)v;
        return 0;
    }
    return STRATUS_EINVAL;
}

static const struct conf_unit size_units[] = {
    {"", 1},
    {"b", 1},
    {"k", STRATUS_KiB},
    {"kib", STRATUS_KiB},
    {"kb", 1000ULL},
    {"m", STRATUS_MiB},
    {"mib", STRATUS_MiB},
    {"mb", 1000ULL * 1000},
    {"g", STRATUS_GiB},
    {"gib", STRATUS_GiB},
    {"gb", 1000ULL * 1000 * 1000},
    {"t", STRATUS_GiB * 1024},
    {"tib", STRATUS_GiB * 1024},
    {"tb", 1000ULL * 1000 * 1000 * 1000},
    {NULL, 0},
};

static const struct conf_unit ms_units[] = {
    {"", 1},         {"ms", 1},         {"s", 1000},       {"sec", 1000},
    {"m", 60000},    {"min", 60000},    {"h", 3600000},    {"d", 86400000},
    {NULL, 0},
};

int stratus_conf_parse_size(const char *s, uint64_t *out)
{
    return conf_parse_unit(s, 0, size_units, NULL, out);
}

int stratus_conf_parse_ms(const char *s, int64_t *out)
{
    return conf_parse_unit(s, 1, ms_units, out, NULL);
}

static int conf_parse_int(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno)
        return STRATUS_EINVAL;
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return STRATUS_EINVAL;
    *out = v;
    return 0;
}

static int conf_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return STRATUS_EINVAL;
}

static const char *conf_type_name(int type)
{
    switch (type) {
    case STRATUS_PARAM_T_STR:
        return "string";
    case STRATUS_PARAM_T_INT:
        return "int";
    case STRATUS_PARAM_T_BOOL:
        return "bool";
    case STRATUS_PARAM_T_SIZE:
        return "size";
    case STRATUS_PARAM_T_MS:
        return "duration";
    }
    return "?";
}

/* Parses text as p's type and checks its bounds, writing the value at dst + p->offset.
 * err gets a short reason ("bad size '12QB'", "5 is out of range [10, 20]"); a secret's text
 * never goes into err. */
static int conf_parse_value(const struct stratus_param *p, const char *text, void *dst,
                            char *err, size_t errcap)
{
    char *field = (char *)dst + p->offset;
    const char *shown = (p->flags & STRATUS_P_SECRET) ? "****" : text;
    int64_t sv = 0;
    uint64_t uv = 0;
    int b = 0, bounded = p->min != 0 || p->max != 0;

    switch (p->type) {
    case STRATUS_PARAM_T_STR: {
        char **slot = (char **)(void *)field;
        free(*slot);
        *slot = xstrdup(text);
        return 0;
    }
    case STRATUS_PARAM_T_BOOL:
        if (conf_parse_bool(text, &b) < 0) {
            snprintf(err, errcap, "bad bool '%s' (true/false, yes/no, on/off, 1/0)", shown);
            return STRATUS_EINVAL;
        }
        memcpy(field, &b, sizeof b);
        return 0;
    case STRATUS_PARAM_T_INT:
        if (conf_parse_int(text, &sv) < 0) {
            snprintf(err, errcap, "bad integer '%s'", shown);
            return STRATUS_EINVAL;
        }
        break;
    case STRATUS_PARAM_T_MS:
        if (stratus_conf_parse_ms(text, &sv) < 0) {
            snprintf(err, errcap, "bad duration '%s' (e.g. 250ms, 5s, 2m, 1h, 7d)", shown);
            return STRATUS_EINVAL;
        }
        break;
    case STRATUS_PARAM_T_SIZE:
        if (stratus_conf_parse_size(text, &uv) < 0) {
            snprintf(err, errcap, "bad size '%s' (e.g. 4096, 64KiB, 8MiB, 1GB)", shown);
            return STRATUS_EINVAL;
        }
        if (bounded && (uv < (uint64_t)p->min || uv > (uint64_t)p->max)) {
            snprintf(err, errcap, "%s is out of range [%" PRId64 ", %" PRId64 "]", shown,
                     p->min, p->max);
            return STRATUS_ERANGE;
        }
        memcpy(field, &uv, sizeof uv);
        return 0;
    default:
        snprintf(err, errcap, "unknown parameter type %d", p->type);
        return STRATUS_EINVAL;
    }
    if (bounded && (sv < p->min || sv > p->max)) {
        snprintf(err, errcap, "%s is out of range [%" PRId64 ", %" PRId64 "]", shown, p->min,
                 p->max);
        return STRATUS_ERANGE;
    }
    memcpy(field, &sv, sizeof sv);
    return 0;
}

static int conf_in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

static const struct stratus_param *conf_param_find(const struct stratus_param *params,
                                                   const char *name)
{
    for (const struct stratus_param *p = params; p && p->name; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

int stratus_conf_apply(const struct stratus_conf *conf, const char *section,
                       const struct stratus_param *params, const char *const *ignore, void *dst,
                       struct stratus_errbuf *eb)
{
    char err[200];
    int rc;

    /* 1. Every key of the section must be known. */
    for (size_t i = 0; conf && i < conf->nents; i++) {
        const struct conf_entry *e = &conf->ents[i];
        if (strcmp(e->section, section) != 0 || conf_param_find(params, e->key) ||
            conf_in_list(ignore, e->key))
            continue;
        char known[160];
        size_t n = 0;
        known[0] = '\0';
        for (const struct stratus_param *p = params; p && p->name; p++) {
            int k = snprintf(known + n, sizeof known - n, "%s%s", n ? ", " : "", p->name);
            if (k < 0 || (size_t)k >= sizeof known - n) {
                snprintf(known + (sizeof known - 5), 5, "...");
                break;
            }
            n += (size_t)k;
        }
        return stratus_errf(eb, STRATUS_EINVAL, "%s: [%s] unknown key '%s' (known: %s)",
                            e->where, section, e->key, n ? known : "none");
    }
    /* 2. Defaults, then the configured value, for every declared key. */
    for (const struct stratus_param *p = params; p && p->name; p++) {
        const struct conf_entry *e = conf ? conf_find(conf, section, p->name) : NULL;
        if (p->def) {
            rc = conf_parse_value(p, p->def, dst, err, sizeof err);
            if (rc < 0) {
                stratus_conf_free_struct(params, dst);
                return stratus_errf(eb, rc, "[%s] %s: default: %s", section, p->name, err);
            }
        }
        if (!e) {
            if (p->flags & STRATUS_P_REQUIRED) {
                stratus_conf_free_struct(params, dst);
                return stratus_errf(eb, STRATUS_EINVAL, "%s: [%s] missing required key '%s'",
                                    stratus_conf_path(conf), section, p->name);
            }
            continue;
        }
        rc = conf_parse_value(p, e->value, dst, err, sizeof err);
        if (rc < 0) {
            stratus_conf_free_struct(params, dst);
            return stratus_errf(eb, STRATUS_EINVAL, "%s: [%s] %s: %s", e->where, section,
                                p->name, err);
        }
    }
    return 0;
}

void stratus_conf_free_struct(const struct stratus_param *params, void *dst)
{
    for (const struct stratus_param *p = params; p && p->name; p++) {
        if (p->type != STRATUS_PARAM_T_STR)
            continue;
        char **slot = (char **)(void *)((char *)dst + p->offset);
        free(*slot);
        *slot = NULL;
    }
}

int stratus_conf_check_param(const struct stratus_param *p, size_t conf_size, char *err,
                             size_t errcap)
{
    size_t width;
    int bounded = p->min != 0 || p->max != 0;

    if (!p->name || !p->name[0]) {
        snprintf(err, errcap, "a parameter has no name");
        return STRATUS_EINVAL;
    }
    for (const char *c = p->name; *c; c++) {
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_')) {
            snprintf(err, errcap, "parameter name '%.64s' is not [a-z0-9_]+", p->name);
            return STRATUS_EINVAL;
        }
    }
    switch (p->type) {
    case STRATUS_PARAM_T_STR:
        width = sizeof(char *);
        break;
    case STRATUS_PARAM_T_BOOL:
        width = sizeof(int);
        break;
    case STRATUS_PARAM_T_INT:
    case STRATUS_PARAM_T_MS:
        width = sizeof(int64_t);
        break;
    case STRATUS_PARAM_T_SIZE:
        width = sizeof(uint64_t);
        break;
    default:
        snprintf(err, errcap, "parameter '%s' has unknown type %d", p->name, p->type);
        return STRATUS_EINVAL;
    }
    if (p->offset > conf_size || conf_size - p->offset < width) {
        snprintf(err, errcap, "parameter '%s' lies outside conf_size %zu", p->name, conf_size);
        return STRATUS_EINVAL;
    }
    if (bounded && p->min > p->max) {
        snprintf(err, errcap, "parameter '%s' has min > max", p->name);
        return STRATUS_EINVAL;
    }
    if (p->def) {
        char scratch[16] __attribute__((aligned(16))) = {0};
        char e2[160];
        struct stratus_param shifted = *p;
        shifted.offset = 0;
        if (p->type == STRATUS_PARAM_T_STR)
            return 0;
        if (conf_parse_value(&shifted, p->def, scratch, e2, sizeof e2) < 0) {
            snprintf(err, errcap, "parameter '%s' default: %s", p->name, e2);
            return STRATUS_EINVAL;
        }
    }
    return 0;
}

void stratus_conf_describe(const struct stratus_param *params, void *file)
{
    FILE *f = file;

    for (const struct stratus_param *p = params; p && p->name; p++) {
        char bounds[64] = "";
        if ((p->min || p->max) && p->type != STRATUS_PARAM_T_STR && p->type != STRATUS_PARAM_T_BOOL)
            snprintf(bounds, sizeof bounds, "[%" PRId64 "..%" PRId64 "]", p->min, p->max);
        const char *def = p->def ? p->def : "-";
        if ((p->flags & STRATUS_P_SECRET) && p->def)
            def = "****";
        fprintf(f, "  %-22s %-8s default=%-10s %-24s %s%s%s\n", p->name, conf_type_name(p->type),
                def, bounds, (p->flags & STRATUS_P_REQUIRED) ? "required " : "",
                (p->flags & STRATUS_P_SECRET) ? "secret " : "", p->help ? p->help : "");
    }
}
