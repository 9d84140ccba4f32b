/* conf.h - the broker's configuration: an INI file (inih) plus --set overrides, and the one
 * engine that turns a section into a typed struct from a declared map of keys
 * (struct stratus_param, stratus_plugin.h), for core sections and plugins alike.
 *
 * Every value remembers where it came from (file:line, or "--set"), so an error names the
 * file, the line and the key. Values of the form ${env:NAME} are read from the environment.
 * A stratus_conf is built at startup and read-only afterwards: any thread may read it.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_CONF_CONF_H
#define STRATUS_CONF_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "stratus/stratus_plugin.h"

struct stratus_conf;

/* An empty config (no file), e.g. for --set only or tests. */
struct stratus_conf *stratus_conf_new(void);

/* Parses an INI file. Errors: "FILE:LINE: message". */
int stratus_conf_load(const char *path, struct stratus_conf **out, struct stratus_errbuf *eb);

/* Applies one "section.key=value" override (--set); it replaces a value from the file. */
int stratus_conf_set(struct stratus_conf *conf, const char *assignment, struct stratus_errbuf *eb);

/* The raw value of section.key after overrides, or NULL. Borrowed from conf. */
const char *stratus_conf_get(const struct stratus_conf *conf, const char *section, const char *key);

/* "FILE:LINE" or "--set" for section.key, or NULL when absent. */
const char *stratus_conf_where(const struct stratus_conf *conf, const char *section,
                               const char *key);

/* Fills dst (zeroed by the caller, of the size the map describes) from [section]: defaults,
 * types, bounds, required keys. Keys of the section that are not in params and not in ignore
 * (a NULL-terminated list, may be NULL) are refused: "FILE:LINE: [section] unknown key 'k'".
 * Strings written into dst are malloc'd; free them with stratus_conf_free_struct(). */
int stratus_conf_apply(const struct stratus_conf *conf, const char *section,
                       const struct stratus_param *params, const char *const *ignore, void *dst,
                       struct stratus_errbuf *eb);
void stratus_conf_free_struct(const struct stratus_param *params, void *dst);

/* Refuses any section of conf not in known (NULL-terminated): "FILE:LINE: unknown section". */
int stratus_conf_check_sections(const struct stratus_conf *conf, const char *const *known,
                                struct stratus_errbuf *eb);

/* Parses "64MiB", "1GB", "4096", "10k" into bytes; "250ms", "5s", "2m", "1h", "7d", "100" (ms)
 * into milliseconds. Return 0 or STRATUS_EINVAL. */
int stratus_conf_parse_size(const char *s, uint64_t *out);
int stratus_conf_parse_ms(const char *s, int64_t *out);

/* Writes one line per key of params (name, type, default, bounds, flags, help) to f, as
 * --describe-plugin prints them. */
void stratus_conf_describe(const struct stratus_param *params, void *file /* FILE * */);

void stratus_conf_free(struct stratus_conf *conf);

/* ---- additions (plugins engineer) ---- */

/* The file conf was loaded from, or "(no file)". Borrowed from conf. */
const char *stratus_conf_path(const struct stratus_conf *conf);

/* 1 when conf has at least one key in [section] (file or --set), else 0. */
int stratus_conf_has_section(const struct stratus_conf *conf, const char *section);

/* Checks one entry of a config map as the plugin loader must before trusting it: a name of
 * [a-z0-9_]+, a known type, a field inside conf_size, min <= max, a default that parses and
 * is in bounds. Returns 0 or STRATUS_EINVAL with a reason in err. */
int stratus_conf_check_param(const struct stratus_param *p, size_t conf_size, char *err,
                             size_t errcap);

#endif
