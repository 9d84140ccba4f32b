/* missing_op.c - ABI test plugin: leaves the required put op NULL; must be refused.
 * SPDX-License-Identifier: Apache-2.0
 */
#define ABI_NAME "missingop"
#define ABI_PUT NULL
#include "abi_common.h"
