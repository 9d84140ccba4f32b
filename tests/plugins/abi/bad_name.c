/* bad_name.c - ABI test plugin: an invalid plugin name; must be refused.
 * SPDX-License-Identifier: Apache-2.0
 */
#define ABI_NAME "Bad Name!"
#include "abi_common.h"
