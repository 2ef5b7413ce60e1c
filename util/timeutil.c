#include "util/timeutil.h"

#include <limits.h>
#include <stdio.h>

uint64_t time_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t time_mono_ms(void) { return time_mono_ns() / 1000000ull; }

uint64_t time_real_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000ull;
}

uint64_t time_deadline_ms(int timeout_ms)
{
	if (timeout_ms < 0)
		return UINT64_MAX;
	return time_mono_ms() + (uint64_t)timeout_ms;
}

int time_remaining_ms(uint64_t deadline)
{
	uint64_t now;

	if (deadline == UINT64_MAX)
		return -1;
	now = time_mono_ms();
	if (now >= deadline)
		return 0;
	if (deadline - now > INT_MAX)
		return INT_MAX;
	return (int)(deadline - now);
}

struct timespec time_cond_deadline(int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	} else if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += 1000000000L;
	}
	return ts;
}

/* "YYYY-MM-DDTHH:MM:SS", then ".mmm" when with_ms, then "Z". */
static size_t format_utc(uint64_t real_us, int with_ms, char *buf, size_t len)
{
	time_t s = (time_t)(real_us / 1000000ull);
	struct tm tm;
	size_t n;
	int k;

	if (!len)
		return 0;
	buf[0] = '\0';
	if (!gmtime_r(&s, &tm))
		return 0;
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!n)
		goto out_too_small;
	if (with_ms)
		k = snprintf(buf + n, len - n, ".%03uZ",
			     (unsigned)(real_us / 1000ull % 1000ull));
	else
		k = snprintf(buf + n, len - n, "Z");
	if (k < 0 || (size_t)k >= len - n)
		goto out_too_small;
	return n + (size_t)k;
out_too_small:
	buf[0] = '\0';
	return 0;
}

size_t time_format_rfc3339(uint64_t real_us, char *buf, size_t len)
{
	return format_utc(real_us, 0, buf, len);
}

size_t time_format_rfc3339_ms(uint64_t real_us, char *buf, size_t len)
{
	return format_utc(real_us, 1, buf, len);
}
