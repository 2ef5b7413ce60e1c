#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/timeutil.h"

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
	char line[2048], ts[40];
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
	time_format_rfc3339_ms(time_real_us(), ts, sizeof(ts));
	n = (size_t)snprintf(line, sizeof(line), "ts=%s level=%s comp=%s ", ts,
			     level_name(lvl), component);
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
