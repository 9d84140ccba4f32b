/* cluster_cmd.h - `stratus cluster status|drain|undrain` (cluster_cmd.c).
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_TOOLS_CLUSTER_CMD_H
#define STRATUS_TOOLS_CLUSTER_CMD_H

#include <stdint.h>

struct stratus_conf;

/* Runs the subcommand; node < 0 = the config's [broker] node_id. Returns the exit status. */
int stratus_cli_cluster(const struct stratus_conf *conf, const char *sub, int32_t node);

#endif
