/* old_minor_short_ops.c - ABI test plugin: a 1.0 plugin whose ops table is exactly the 1.0 size (no slots past list); must load, later slots reading NULL.
 * SPDX-License-Identifier: Apache-2.0
 */
#define ABI_NAME "oldminor"
#define ABI_MINOR 0
#define ABI_OPS_SIZE (offsetof(struct stratus_storage_ops, list) + sizeof(void (*)(void)))
#include "abi_common.h"
