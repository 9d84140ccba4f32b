/* bad_major.c - ABI test plugin: claims ABI major 2; must be refused.
 * SPDX-License-Identifier: Apache-2.0
 */
#define ABI_NAME "badmajor"
#define ABI_MAJOR 2
#include "abi_common.h"
