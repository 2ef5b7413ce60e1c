/* The progress line of `ferryctl migrate --wait`: one line, redrawn in
 * place ("\r\033[K"), that fits the terminal. A line longer than the
 * terminal wraps, and then each redraw leaves a new line behind; so the
 * line is built at the width it has: the full form when it fits, shorter
 * forms (abbreviated labels, then fewer fields) when not, cut as a last
 * resort, and never longer than cols - 1 (the last column stays free:
 * some terminals wrap when it is written). The convergence verdict
 * ("not converging", or the ETA) survives every form but the cut.
 *
 * progress_line is pure (unit-tested); progress_columns asks the terminal. */
#ifndef FERRY_CLI_PROGRESS_H
#define FERRY_CLI_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

struct progress_view {
	const char *phase;   /* "Running" */
	const char *mode;    /* "pre-copy" */
	double pct;          /* done, 0..100 */
	uint64_t remaining;  /* bytes */
	double dirty_bps, copy_bps;
	int converging;      /* the monitor's verdict (engine/monitor.h) */
	int64_t eta_ms;      /* -1: unknown */
	long long pass;      /* QEMU's pre-copy pass */
};

/* The line for v in at most cols - 1 characters (and len - 1), into out;
 * returns its length. */
size_t progress_line(const struct progress_view *v, unsigned cols, char *out, size_t len);

/* The width to draw at: ws_cols (the terminal's, 0 when unknown), else
 * $COLUMNS (env, may be NULL) when it is a number in 1..10000, else 80. */
unsigned progress_width(unsigned ws_cols, const char *env);
/* progress_width for fd: TIOCGWINSZ, $COLUMNS, 80. */
unsigned progress_columns(int fd);

#endif
