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
		char body[1536];

		va_start(ap, fmt);
		vsnprintf(body, sizeof(body), fmt, ap);
		va_end(ap);
		/* Values may come from outside (a peer's reason, QEMU's error
		 * text): no control character reaches the log, so nothing can
		 * forge a line. Quotes inside values are log_quote's job. */
		log_escape_controls(body, line + n, sizeof(line) - n);
	}
	/* One write per line so lines from several threads never interleave. */
	fprintf(stderr, "%s\n", line);
}

/* Copies in to out, control characters as \n, \r, \t or \xNN. */
void log_escape_controls(const char *in, char *out, size_t len)
{
	size_t o = 0;

	if (!len)
		return;
	for (; *in && o + 1 < len; in++) {
		unsigned char c = (unsigned char)*in;
		char esc[5];
		size_t k;

		if (c >= 0x20 && c != 0x7f) {
			out[o++] = (char)c;
			continue;
		}
		if (c == '\n' || c == '\r' || c == '\t')
			snprintf(esc, sizeof(esc), "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
		else
			snprintf(esc, sizeof(esc), "\\x%02x", c);
		k = strlen(esc);
		if (o + k >= len)
			break;
		memcpy(out + o, esc, k);
		o += k;
	}
	out[o] = '\0';
}

const char *log_quote(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	if (!len)
		return "";
	for (; s && *s && o + 1 < len; s++) {
		if (*s == '"' || *s == '\\') {
			if (o + 2 >= len)
				break;
			buf[o++] = '\\';
		}
		buf[o++] = *s;
	}
	buf[o] = '\0';
	return buf;
}

const char *log_q(const char *s)
{
	static __thread char bufs[LOG_Q_SLOTS][512];
	static __thread unsigned next;

	return log_quote(s, bufs[next++ % LOG_Q_SLOTS], sizeof(bufs[0]));
}
