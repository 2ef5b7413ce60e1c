/* Structured logging: one key=value line per event on stderr.
 *
 * Every line carries a timestamp, level, component and, when set for the
 * calling thread, the migration id, so one migration can be followed across
 * the agent's threads with a single grep. */
#ifndef FERRY_UTIL_LOG_H
#define FERRY_UTIL_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Lines below this level are dropped (default LOG_INFO; FERRY_LOG=debug). */
void log_set_level(enum log_level lvl);

/* Set (or clear with NULL) the migration id stamped on this thread's lines. */
void log_set_migration(const char *mig_id);

/* component: short module name ("qmp", "link", "mig", ...);
 * fmt: the rest of the line, conventionally "event=... key=value ...". */
void log_msg(enum log_level lvl, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A value for key="..." with its quotes and backslashes escaped, so a
 * value from outside cannot close the quotes and forge keys. Returns buf
 * (always terminated; cut when too long). Control characters are escaped
 * by log_msg itself for every line. */
const char *log_quote(const char *s, char *buf, size_t len);
/* The same into one of LOG_Q_SLOTS buffers of this thread, taken in turn:
 * for the arguments of one log call (at most LOG_Q_SLOTS of them). */
#define LOG_Q_SLOTS 4
const char *log_q(const char *s);
/* What log_msg does to every line: control characters written as \n, \r,
 * \t or \xNN. out is always terminated. */
void log_escape_controls(const char *in, char *out, size_t len);

#define log_debug(c, ...) log_msg(LOG_DEBUG, c, __VA_ARGS__)
#define log_info(c, ...) log_msg(LOG_INFO, c, __VA_ARGS__)
#define log_warn(c, ...) log_msg(LOG_WARN, c, __VA_ARGS__)
#define log_error(c, ...) log_msg(LOG_ERROR, c, __VA_ARGS__)

#endif
