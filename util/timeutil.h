/* Clock helpers: monotonic for deadlines and rates, realtime for records. */
#ifndef FERRY_UTIL_TIMEUTIL_H
#define FERRY_UTIL_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

uint64_t time_mono_ns(void);
uint64_t time_mono_ms(void);
/* Wall clock in microseconds since the epoch (QMP event timestamps use it). */
uint64_t time_real_us(void);

/* The time_mono_ms() value timeout_ms from now; a negative timeout_ms means
 * no limit and gives UINT64_MAX. */
uint64_t time_deadline_ms(int timeout_ms);
/* Milliseconds left until deadline (a time_mono_ms() value), in poll()'s
 * terms: 0 once it has passed, -1 for UINT64_MAX (no limit), at most
 * INT_MAX. */
int time_remaining_ms(uint64_t deadline);
/* The CLOCK_REALTIME instant ms milliseconds from now, as the absolute time
 * pthread_cond_timedwait() takes for a condition variable with the default
 * clock. */
struct timespec time_cond_deadline(int ms);

/* RFC 3339 UTC of a realtime microsecond value, whole seconds
 * ("2026-11-21T23:01:02Z") or with milliseconds ("2026-11-21T23:01:02.345Z").
 * Returns the length written; 0 (and an empty buf, if len > 0) when buf is
 * too small. */
size_t time_format_rfc3339(uint64_t real_us, char *buf, size_t len);
size_t time_format_rfc3339_ms(uint64_t real_us, char *buf, size_t len);

#endif
