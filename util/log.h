/* Structured logging: one key=value line per event on stderr.
 *
 * Every line carries a timestamp, level, component and, when set for the
 * calling thread, the migration id, so one migration can be followed across
 * the agent's threads with a single grep. */
#ifndef FERRY_UTIL_LOG_H
#define FERRY_UTIL_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Lines below this level are dropped (default LOG_INFO; FERRY_LOG=debug). */
void log_set_level(enum log_level lvl);

/* Set (or clear with NULL) the migration id stamped on this thread's lines. */
void log_set_migration(const char *mig_id);

/* component: short module name ("qmp", "link", "mig", ...);
 * fmt: the rest of the line, conventionally "event=... key=value ...". */
void log_msg(enum log_level lvl, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(c, ...) log_msg(LOG_DEBUG, c, __VA_ARGS__)
#define log_info(c, ...) log_msg(LOG_INFO, c, __VA_ARGS__)
#define log_warn(c, ...) log_msg(LOG_WARN, c, __VA_ARGS__)
#define log_error(c, ...) log_msg(LOG_ERROR, c, __VA_ARGS__)

#endif
