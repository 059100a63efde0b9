/* incident.c: which incident an alert-started run belongs to: one per alert
 * group and firing, so a repeat notification joins the incident its firing
 * opened and a firing after a resolve opens a new one (docs/serve.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stdlib/serve/alerts.h"
#include "runner/base/sha256.h"

/* The two digits at s, or -1. */
static int two(const char *s)
{
  if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
    return -1;
  return (s[0] - '0') * 10 + (s[1] - '0');
}

/* The zone after the seconds and their fraction: "Z" or "+hh:mm"/"-hh:mm",
 * as seconds east of UTC in *off; -1 when it is neither. */
static int zone(const char *z, long *off)
{
  if ((z[0] == 'Z' || z[0] == 'z') && z[1] == '\0') {
    *off = 0;
    return 0;
  }
  if ((z[0] != '+' && z[0] != '-') || two(z + 1) < 0 || z[3] != ':' || two(z + 4) < 0 ||
      z[6] != '\0')
    return -1;
  *off = (z[0] == '-' ? -1 : 1) * (two(z + 1) * 3600L + two(z + 4) * 60L);
  return 0;
}

int64_t rb_alerts_rfc3339_ms(const char *s)
{
  if (s == NULL || strlen(s) < 20 || s[4] != '-' || s[7] != '-' ||
      (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
    return -1;
  int f[6] = {two(s) * 100 + two(s + 2),
              two(s + 5),
              two(s + 8),
              two(s + 11),
              two(s + 14),
              two(s + 17)};
  if (two(s) < 0 || two(s + 2) < 0 || f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 ||
      f[3] < 0 || f[3] > 23 || f[4] < 0 || f[4] > 59 || f[5] < 0 || f[5] > 60)
    return -1;
  const char *p = s + 19;
  int64_t ms = 0, scale = 100;
  if (*p == '.') {
    if (p[1] < '0' || p[1] > '9')
      return -1;
    for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
      ms += (*p - '0') * scale; /* digits past the millisecond add 0 */
  }
  long off;
  if (zone(p, &off) != 0)
    return -1;
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  tm.tm_year = f[0] - 1900;
  tm.tm_mon = f[1] - 1;
  tm.tm_mday = f[2];
  tm.tm_hour = f[3];
  tm.tm_min = f[4];
  tm.tm_sec = f[5];
  return ((int64_t)timegm(&tm) - off) * 1000 + ms;
}

/* The firing alert i belongs to: with a groupKey (the batch is one group),
 * the earliest startsAt among the batch's firing alerts, for a firing alert:
 * a resolved one still listed belongs to the firing that ended; for a
 * resolved alert, that firing: the earliest of all. Without a groupKey, its
 * own startsAt. -1 when none can be read; a time before 1970 (Go's zero
 * time, which Grafana sends for "unset") counts as unreadable. */
static int64_t firing_ms(const rb_alert_batch *b, size_t i)
{
  if (b->group_key == NULL)
    return rb_alerts_rfc3339_ms(b->alerts[i].starts_at);
  int resolved = strcmp(b->alerts[i].status, "firing") != 0;
  int64_t first = -1;
  for (size_t k = 0; k < b->n; k++) {
    if (!resolved && strcmp(b->alerts[k].status, "firing") != 0)
      continue;
    int64_t t = rb_alerts_rfc3339_ms(b->alerts[k].starts_at);
    if (t >= 0 && (first < 0 || t < first))
      first = t;
  }
  return first;
}

void rb_alerts_incident(const rb_alert_batch *b, size_t i, char *out, size_t len)
{
  char group[65];
  if (b->group_key) {
    rb_sha256_hex(b->group_key, strlen(b->group_key), group);
    group[12] = '\0';
  } else {
    snprintf(group, sizeof group, "%s", b->alerts[i].fingerprint);
  }
  int64_t t = firing_ms(b, i);
  if (t < 0) {
    snprintf(out, len, "ALERT-%s", group);
    return;
  }
  time_t secs = (time_t)(t / 1000);
  struct tm tm;
  char when[32];
  gmtime_r(&secs, &tm);
  strftime(when, sizeof when, "%Y%m%dT%H%M%S", &tm);
  snprintf(out, len, "ALERT-%s-%s.%03dZ", group, when, (int)(t % 1000));
}
