/* fail_open.c - ABI test plugin: open() fails with STRATUS_EAUTH; storage_open must say so.
 * SPDX-License-Identifier: Apache-2.0
 */
#define ABI_NAME "failopen"
#define ABI_OPEN_FAILS 1
#include "abi_common.h"
