/* Clock helpers: monotonic for deadlines and rates, realtime for records. */
#ifndef FERRY_UTIL_TIMEUTIL_H
#define FERRY_UTIL_TIMEUTIL_H

#include <stdint.h>

uint64_t time_mono_ns(void);
uint64_t time_mono_ms(void);
/* Wall clock in microseconds since the epoch (QMP event timestamps use it). */
uint64_t time_real_us(void);
/* RFC 3339 UTC ("2026-11-21T23:01:02Z") of a realtime microsecond value. */
void time_format_rfc3339(uint64_t real_us, char *buf, unsigned len);

#endif
