/* good.c - ABI test plugin: a valid plugin (the control case).
 * SPDX-License-Identifier: Apache-2.0
 */
#define ABI_NAME "abigood"
#include "abi_common.h"
