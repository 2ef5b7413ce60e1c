/* The progress line of migrate --wait (see progress.h). */
#include "cli/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

/* "1.5 GiB", "512.0 MiB", "900 KiB": at most 9 characters. */
static void bytes_short(uint64_t b, char *out, size_t len)
{
	if (b >= (1ull << 30))
		snprintf(out, len, "%.1f GiB", b / (double)(1ull << 30));
	else if (b >= (1ull << 20))
		snprintf(out, len, "%.1f MiB", b / (double)(1ull << 20));
	else
		snprintf(out, len, "%llu KiB", (unsigned long long)(b >> 10));
}

/* "not converging", "ETA 12.3 s", "ETA 4 min 05 s", "ETA 2 h 10 min", "ETA ?" */
static void verdict(const struct progress_view *v, char *out, size_t len)
{
	long long s = v->eta_ms / 1000;

	if (!v->converging)
		snprintf(out, len, "not converging");
	else if (v->eta_ms < 0)
		snprintf(out, len, "ETA ?");
	else if (v->eta_ms < 100000)
		snprintf(out, len, "ETA %.1f s", v->eta_ms / 1000.0);
	else if (s < 3600)
		snprintf(out, len, "ETA %lld min %02lld s", s / 60, s % 60);
	else
		snprintf(out, len, "ETA %lld h %02lld min", s / 3600, s / 60 % 60);
}

size_t progress_line(const struct progress_view *v, unsigned cols, char *out, size_t len)
{
	char rem[24], eta[32], line[256];
	size_t max = cols > 1 ? cols - 1 : 1, n = 0;
	double d = v->dirty_bps / 1e6, c = v->copy_bps / 1e6;
	const char *ph = v->phase ? v->phase : "", *mo = v->mode ? v->mode : "";

	if (!len)
		return 0;
	if (max > len - 1)
		max = len - 1;
	bytes_short(v->remaining, rem, sizeof(rem));
	verdict(v, eta, sizeof(eta));
	/* The forms, longest first; the first that fits is drawn. */
	for (int form = 0; form < 6; form++) {
		switch (form) {
		case 0:
			snprintf(line, sizeof(line),
				 "%-15s %-8s %3.0f%%  remaining %s  dirty %.1f MB/s vs copy %.1f MB/s  %s  pass %lld",
				 ph, mo, v->pct, rem, d, c, eta, v->pass);
			break;
		case 1:
			snprintf(line, sizeof(line), "%s %s %.0f%%  left %s  dirty %.1f / copy %.1f MB/s  %s  pass %lld",
				 ph, mo, v->pct, rem, d, c, eta, v->pass);
			break;
		case 2:
			snprintf(line, sizeof(line), "%s %s %.0f%% left %s dirty %.0f copy %.0f MB/s %s", ph, mo,
				 v->pct, rem, d, c, eta);
			break;
		case 3:
			snprintf(line, sizeof(line), "%s %.0f%% left %s %.0f/%.0f MB/s %s", ph, v->pct, rem, d, c,
				 eta);
			break;
		case 4:
			snprintf(line, sizeof(line), "%.0f%% left %s %s", v->pct, rem, eta);
			break;
		default:
			snprintf(line, sizeof(line), "%.0f%% %s", v->pct, eta);
			break;
		}
		n = strlen(line);
		if (n <= max)
			break;
	}
	if (n > max)
		n = max; /* a terminal narrower than the shortest form: cut */
	memcpy(out, line, n);
	out[n] = '\0';
	return n;
}

unsigned progress_width(unsigned ws_cols, const char *env)
{
	char *end;
	long v;

	if (ws_cols)
		return ws_cols;
	if (env && *env) {
		v = strtol(env, &end, 10);
		if (!*end && v >= 1 && v <= 10000)
			return (unsigned)v;
	}
	return 80;
}

unsigned progress_columns(int fd)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
		ws.ws_col = 0;
	return progress_width(ws.ws_col, getenv("COLUMNS"));
}
