/*
 * date.c — dates as milliseconds since the Unix epoch (UTC) and their civil
 * form: ISO-8601 text for Extended JSON, and the fields the date operators
 * read. The proleptic Gregorian calendar over the whole int64 range of days
 * that fits a year in int32 (days_from_civil and civil_from_days are Howard
 * Hinnant's well-known public-domain algorithms, written out here).
 */
#include <stdio.h>
#include <string.h>

#include "doc_int.h"

#define MS_PER_DAY 86400000LL

/* Days since 1970-01-01 of y-m-d (m 1..12, d 1..31). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                   /* [0, 399] */
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;  /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

void date_civil(int64_t ms, date_parts *out)
{
    int64_t days = ms / MS_PER_DAY, rem = ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }
    civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int)(rem / 3600000);
    out->minute = (int)(rem / 60000 % 60);
    out->second = (int)(rem / 1000 % 60);
    out->ms = (int)(rem % 1000);
    out->wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday: 4 */
    out->yday = (int)(days - days_from_civil(out->year, 1, 1));
}

size_t date_format_iso(int64_t ms, char out[DATE_ISO_MAX])
{
    date_parts p;
    date_civil(ms, &p);
    int n = snprintf(out, DATE_ISO_MAX, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)p.year,
                     p.month, p.day, p.hour, p.minute, p.second, p.ms);
    return n > 0 && n < DATE_ISO_MAX ? (size_t)n : 0;
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

bool date_parse_iso(const char *s, size_t n, int64_t *ms)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    if (n < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d))
        return false;
    size_t i = 10;
    int tz = 0;
    if (i < n) {
        if ((s[i] != 'T' && s[i] != ' ') || n < i + 6 || !digits(s + i + 1, 2, &h) || s[i + 3] != ':' ||
            !digits(s + i + 4, 2, &mi))
            return false;
        i += 6;
        if (i < n && s[i] == ':') {
            if (n < i + 3 || !digits(s + i + 1, 2, &sec))
                return false;
            i += 3;
            if (i < n && s[i] == '.') { /* milliseconds; further digits are truncated */
                size_t k = ++i;
                while (i < n && s[i] >= '0' && s[i] <= '9')
                    i++;
                if (i == k)
                    return false;
                for (size_t j = 0; j < 3; j++)
                    frac = frac * 10 + (k + j < i ? s[k + j] - '0' : 0);
            }
        }
        if (i < n && s[i] == 'Z') {
            i++;
        } else if (i < n && (s[i] == '+' || s[i] == '-')) {
            int th, tm = 0;
            size_t l = n - i - 1;
            if (l == 2 ? !digits(s + i + 1, 2, &th)
                       : l == 4 ? !digits(s + i + 1, 2, &th) || !digits(s + i + 3, 2, &tm)
                                : l != 5 || s[i + 3] != ':' || !digits(s + i + 1, 2, &th) ||
                                      !digits(s + i + 4, 2, &tm))
                return false;
            if (th > 23 || tm > 59)
                return false;
            tz = (s[i] == '-' ? -1 : 1) * (th * 60 + tm);
            i = n;
        } else {
            return false; /* a date-time names its zone */
        }
    }
    if (i != n || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59 ||
        d > mdays[mo - 1] + (mo == 2 && leap(y)))
        return false;
    *ms = days_from_civil(y, mo, d) * MS_PER_DAY + (int64_t)h * 3600000 + (int64_t)mi * 60000 +
          (int64_t)sec * 1000 + frac - (int64_t)tz * 60000;
    return true;
}
