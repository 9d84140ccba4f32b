/* short_ops.c - ABI test plugin: an ops table shorter than ABI 1.0 (ends before list); must be refused.
 * SPDX-License-Identifier: Apache-2.0
 */
#define ABI_NAME "shortops"
#define ABI_OPS_SIZE offsetof(struct stratus_storage_ops, list)
#include "abi_common.h"
