/* timefmt.c - ISO 8601 and RFC 1123 time formats from/to ms since the epoch, UTC, with the
 * civil-calendar arithmetic done by hand (no timegm/locale), so it is pure and thread-safe.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "timefmt.h"

#include <stdio.h>
#include <string.h>

static const char *const timefmt_wday[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
static const char *const timefmt_mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t timefmt_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

struct timefmt_tm {
    int64_t year;
    int mon, mday, hour, min, sec, wday; /* mon 1..12; wday index into timefmt_wday */
};

static void timefmt_split(int64_t ms, struct timefmt_tm *t)
{
    int64_t s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int64_t days = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
    int64_t rem = s - days * 86400;
    t->hour = (int)(rem / 3600);
    t->min = (int)(rem % 3600 / 60);
    t->sec = (int)(rem % 60);
    t->wday = (int)(((days % 7) + 7) % 7);
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    t->mday = (int)(doy - (153 * mp + 2) / 5 + 1);
    t->mon = (int)(mp < 10 ? mp + 3 : mp - 9);
    t->year = yoe + era * 400 + (t->mon <= 2);
}

void stratus_timefmt_iso8601_basic(int64_t ms, char out[STRATUS_TIMEFMT_ISO_BASIC_LEN])
{
    struct timefmt_tm t;
    timefmt_split(ms, &t);
    snprintf(out, STRATUS_TIMEFMT_ISO_BASIC_LEN, "%04d%02d%02dT%02d%02d%02dZ",
             (int)(t.year % 10000), t.mon, t.mday, t.hour, t.min, t.sec);
}

void stratus_timefmt_rfc1123(int64_t ms, char out[STRATUS_TIMEFMT_RFC1123_LEN])
{
    struct timefmt_tm t;
    timefmt_split(ms, &t);
    snprintf(out, STRATUS_TIMEFMT_RFC1123_LEN, "%s, %02d %s %04d %02d:%02d:%02d GMT",
             timefmt_wday[t.wday], t.mday, timefmt_mon[t.mon - 1], (int)(t.year % 10000), t.hour,
             t.min, t.sec);
}

/* Reads exactly n digits at *s; -1 when not digits. */
static int timefmt_num(const char **s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*s)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *s += n;
    return v;
}

static int timefmt_make(int64_t y, int mo, int d, int h, int mi, int se, int64_t *ms)
{
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
        se < 0 || se > 60)
        return -1;
    int64_t days = timefmt_days_from_civil(y, mo, d);
    *ms = ((days * 86400) + h * 3600 + mi * 60 + se) * 1000;
    return 0;
}

int stratus_timefmt_parse_iso8601(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, se, frac = 0;
    int basic = strlen(s) >= 8 && s[4] != '-';
    if ((y = timefmt_num(&s, 4)) < 0 || (!basic && *s++ != '-') || (mo = timefmt_num(&s, 2)) < 0 ||
        (!basic && *s++ != '-') || (d = timefmt_num(&s, 2)) < 0 ||
        (*s != 'T' && *s != 't' && *s != ' '))
        return -1;
    s++;
    if ((h = timefmt_num(&s, 2)) < 0 || (!basic && *s++ != ':') || (mi = timefmt_num(&s, 2)) < 0 ||
        (!basic && *s++ != ':') || (se = timefmt_num(&s, 2)) < 0)
        return -1;
    if (*s == '.') {
        s++;
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            if (digits < 3)
                frac = frac * 10 + (*s - '0');
            digits++;
            s++;
        }
        for (; digits < 3; digits++)
            frac *= 10;
    }
    int off_min = 0;
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1, oh, om = 0;
        if ((oh = timefmt_num(&s, 2)) < 0)
            return -1;
        if (*s == ':')
            s++;
        if (*s && (om = timefmt_num(&s, 2)) < 0)
            return -1;
        off_min = sign * (oh * 60 + om);
    }
    if (*s)
        return -1;
    if (timefmt_make(y, mo, d, h, mi, se, ms) < 0)
        return -1;
    *ms += frac - (int64_t)off_min * 60000;
    return 0;
}

int stratus_timefmt_parse_rfc1123(const char *s, int64_t *ms)
{
    const char *c = strchr(s, ',');
    s = c ? c + 1 : s;
    while (*s == ' ')
        s++;
    int d, y, h, mi, se, mo = -1;
    if ((d = timefmt_num(&s, 2)) < 0 || *s++ != ' ')
        return -1;
    for (int i = 0; i < 12; i++)
        if (strncmp(s, timefmt_mon[i], 3) == 0)
            mo = i + 1;
    if (mo < 0)
        return -1;
    s += 3;
    if (*s++ != ' ' || (y = timefmt_num(&s, 4)) < 0 || *s++ != ' ' ||
        (h = timefmt_num(&s, 2)) < 0 || *s++ != ':' || (mi = timefmt_num(&s, 2)) < 0 ||
        *s++ != ':' || (se = timefmt_num(&s, 2)) < 0)
        return -1;
    return timefmt_make(y, mo, d, h, mi, se, ms);
}
