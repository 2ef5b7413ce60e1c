#include "util/ratelimit.h"

int ratelimit_allow(struct ratelimit *rl, uint64_t now_ms, unsigned *suppressed_out)
{
	int ok;

	pthread_mutex_lock(&rl->mu);
	if (now_ms - rl->window_start_ms >= rl->interval_ms || now_ms < rl->window_start_ms) {
		rl->window_start_ms = now_ms;
		rl->in_window = 0;
	}
	ok = rl->in_window < rl->burst;
	if (ok) {
		rl->in_window++;
		*suppressed_out = rl->suppressed;
		rl->suppressed = 0;
	} else {
		rl->suppressed++;
	}
	pthread_mutex_unlock(&rl->mu);
	return ok;
}
