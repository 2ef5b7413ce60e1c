/* A rate limit for log lines an outsider can provoke (refused handshakes):
 * at most `burst` lines per `interval_ms`, and the next line let through
 * says how many were suppressed. Thread-safe. */
#ifndef FERRY_UTIL_RATELIMIT_H
#define FERRY_UTIL_RATELIMIT_H

#include <pthread.h>
#include <stdint.h>

struct ratelimit {
	pthread_mutex_t mu;
	unsigned burst, interval_ms;
	uint64_t window_start_ms;
	unsigned in_window, suppressed;
};

#define RATELIMIT_INIT(burst_, interval_ms_) \
	{PTHREAD_MUTEX_INITIALIZER, (burst_), (interval_ms_), 0, 0, 0}

/* 1: log this one, *suppressed_out = lines dropped since the last one
 * logged (then reset); 0: drop it. now_ms: a monotonic clock. */
int ratelimit_allow(struct ratelimit *rl, uint64_t now_ms, unsigned *suppressed_out);

#endif
