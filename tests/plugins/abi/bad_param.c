/* bad_param.c - ABI test plugin: a config key outside conf_size; must be refused.
 * SPDX-License-Identifier: Apache-2.0
 */
#define ABI_NAME "badparam"
#define ABI_BAD_PARAM 1
#include "abi_common.h"
