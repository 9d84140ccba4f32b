/* no_entry.c - ABI test plugin: exports no stratus_plugin_entry; must be refused.
 * SPDX-License-Identifier: Apache-2.0
 */
#define ABI_NAME "noentry"
#define ABI_NO_ENTRY 1
#include "abi_common.h"
