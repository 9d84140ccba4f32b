/* broker.h - the broker as a whole: builds every subsystem from the configuration, in order,
 * and tears them down in reverse. The start and stop order lives only in broker.c.
 *
 * Configuration sections the core reads (keys documented in conf/stratus.ini and README.md):
 * [broker], [wal], [index], [upload], [storage] (plugin + its keys), [cache] (plugin + its keys),
 * [metrics] (core/observe.h).
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_BROKER_H
#define STRATUS_BROKER_H

#include <stdio.h>

#include "stratus/stratus_err.h"

struct stratus_conf;
struct stratus_broker;

/* Validates the whole configuration: every section and key, listeners, and each plugin's own
 * keys (the plugins are loaded but not opened). Prints nothing; errors go to eb. */
int stratus_broker_check_config(const struct stratus_conf *conf, struct stratus_errbuf *eb);

/* @locality main thread. Starts the broker; it serves until stratus_broker_stop(). The conf is
 * borrowed and must outlive the broker. */
int stratus_broker_start(const struct stratus_conf *conf, struct stratus_broker **out,
                         struct stratus_errbuf *eb);

/* The parameter table of a core section ("broker", "wal", "index", "upload", "group",
 * "metrics"), or NULL (storage and cache keys belong to their plugins). For `stratus config`. */
struct stratus_param;
const struct stratus_param *stratus_broker_section_params(const char *section);
/* The bound port of the [metrics] listener, 0 when off. */
int stratus_broker_metrics_port(const struct stratus_broker *b);

/* The bound port of the first listener. */
int stratus_broker_port(const struct stratus_broker *b);

/* @locality main thread. Drains in-flight requests (at most timeout_ms), stops everything and
 * frees the broker. */
void stratus_broker_stop(struct stratus_broker *b, long timeout_ms);

/* The plugin directory in effect: [broker] plugin_dir, else the build tree's plugins/ beside
 * the running executable, else the install directory. Writes into out. */
void stratus_broker_plugin_dir(const struct stratus_conf *conf, char *out, size_t cap);

#endif
