/* future_minor.c - ABI test plugin: claims ABI 1.99, newer than the host; must be refused.
 * SPDX-License-Identifier: Apache-2.0
 */
#define ABI_NAME "futureminor"
#define ABI_MINOR 99
#include "abi_common.h"
