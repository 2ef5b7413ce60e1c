#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum log_level g_level = LOG_INFO;
static __thread char t_mig[64];

static const char *level_name(enum log_level l)
{
	switch (l) {
	case LOG_DEBUG: return "debug";
	case LOG_INFO: return "info";
	case LOG_WARN: return "warn";
	default: return "error";
	}
}

void log_set_level(enum log_level lvl) { g_level = lvl; }

void log_set_migration(const char *mig_id)
{
	if (mig_id)
		snprintf(t_mig, sizeof(t_mig), "%s", mig_id);
	else
		t_mig[0] = '\0';
}

void log_msg(enum log_level lvl, const char *component, const char *fmt, ...)
{
	static int env_checked;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	if (!env_checked) {
		const char *e = getenv("FERRY_LOG");
		if (e && !strcmp(e, "debug"))
			g_level = LOG_DEBUG;
		env_checked = 1;
	}
	if (lvl < g_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = (size_t)snprintf(line, sizeof(line),
			     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=%s ",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_name(lvl),
			     component);
	if (t_mig[0] && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, "mig=%s ", t_mig);
	if (n < sizeof(line)) {
		va_start(ap, fmt);
		vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		va_end(ap);
	}
	/* One write per line so lines from several threads never interleave. */
	fprintf(stderr, "%s\n", line);
}
