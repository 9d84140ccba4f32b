/* bad_sig.c - ABI test plugin: built with another build signature (ilp32,be); must be refused.
 * SPDX-License-Identifier: Apache-2.0
 */
#define ABI_NAME "badsig"
#define ABI_SIG "ilp32,be"
#include "abi_common.h"
