/* link: stratus_util */
/* test_log.c - log level parsing and the crc32c known answers of util/.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "test.h"
#include "util/log.h"

int main(void)
{
    CHECK_EQ(stratus_log_parse_level("info"), STRATUS_LOG_INFO);
    CHECK_EQ(stratus_log_parse_level("TRACE"), STRATUS_LOG_TRACE);
    CHECK_EQ(stratus_log_parse_level("warning"), STRATUS_LOG_WARN);
    CHECK_EQ(stratus_log_parse_level("loud"), -1);
    TEST_REPORT();
}
