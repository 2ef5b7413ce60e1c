/* ferry-qmp: a tiny QMP command-line client for shell-based tests.
 *
 *   ferry-qmp --socket PATH [--timeout SEC] execute CMD ['{json args}']
 *   ferry-qmp --socket PATH [--timeout SEC] wait-event NAME
 *   ferry-qmp --socket PATH [--timeout SEC] hmp 'info status'
 *
 * Exit status: 0 success, 1 local failure (usage, connect, timeout of a
 * command, protocol), 2 QEMU answered with an error, 3 wait-event timed out.
 * Every invocation is its own QMP session: wait-event only sees events
 * emitted after it connected, and since a QEMU monitor socket serves one
 * client at a time, a wait-event blocks other clients of the same socket
 * (give QEMU a second -qmp socket for them). Library logs are limited to
 * errors unless FERRY_LOG=debug.
 */
#include "qmp/qmp.h"
#include "util/log.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

enum { EXIT_LOCAL = 1, EXIT_QEMU = 2, EXIT_TIMEOUT = 3 };

struct opts {
	const char *socket;
	int timeout_ms;
};

struct subcmd {
	const char *name;
	int (*fn)(const struct opts *o, int argc, char **argv);
	const char *help;
};

static const char *json_out(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* Connect, run one command, map the outcome to an exit status. */
static int run(const struct opts *o, const char *cmd, struct json_object *args,
	       struct json_object **ret)
{
	struct qmp_error err;
	struct qmp *q = NULL;
	int rc, status = 0;

	rc = qmp_connect(o->socket, o->timeout_ms, &q, &err);
	if (rc) {
		fprintf(stderr, "ferry-qmp: %s\n", err.desc);
		status = EXIT_LOCAL;
		goto out;
	}
	rc = qmp_execute(q, cmd, args, ret, &err, o->timeout_ms);
	if (rc == -EREMOTEIO) {
		fprintf(stderr, "error: %s: %s\n", err.cls, err.desc);
		status = EXIT_QEMU;
	} else if (rc) {
		fprintf(stderr, "ferry-qmp: %s: %s\n", cmd, err.desc);
		status = EXIT_LOCAL;
	}
out:
	qmp_close(q);
	return status;
}

static int cmd_execute(const struct opts *o, int argc, char **argv)
{
	struct json_object *args = NULL, *ret = NULL;
	enum json_tokener_error jerr;
	int status;

	if (argc < 1 || argc > 2) {
		fprintf(stderr, "usage: ferry-qmp --socket PATH execute CMD ['{json args}']\n");
		status = EXIT_LOCAL;
		goto out;
	}
	if (argc == 2) {
		args = json_tokener_parse_verbose(argv[1], &jerr);
		if (!json_object_is_type(args, json_type_object)) {
			fprintf(stderr, "ferry-qmp: arguments must be a JSON object%s%s\n",
				args ? "" : ": ", args ? "" : json_tokener_error_desc(jerr));
			status = EXIT_LOCAL;
			goto out;
		}
	}
	status = run(o, argv[0], args, &ret);
	if (status == 0)
		printf("%s\n", json_out(ret));
out:
	json_object_put(args);
	json_object_put(ret);
	return status;
}

static int cmd_hmp(const struct opts *o, int argc, char **argv)
{
	struct json_object *args = NULL, *ret = NULL;
	const char *s;
	int status;

	if (argc != 1) {
		fprintf(stderr, "usage: ferry-qmp --socket PATH hmp 'COMMAND LINE'\n");
		status = EXIT_LOCAL;
		goto out;
	}
	args = json_object_new_object();
	if (!args || json_object_object_add(args, "command-line", json_object_new_string(argv[0]))) {
		fprintf(stderr, "ferry-qmp: out of memory\n");
		status = EXIT_LOCAL;
		goto out;
	}
	status = run(o, "human-monitor-command", args, &ret);
	if (status)
		goto out;
	/* HMP text uses "\r\n"; shells want "\n". */
	for (s = json_object_get_string(ret); s && *s; s++)
		if (*s != '\r')
			putchar(*s);
out:
	json_object_put(args);
	json_object_put(ret);
	return status;
}

static int cmd_wait_event(const struct opts *o, int argc, char **argv)
{
	struct json_object *out = NULL;
	struct qmp_event ev = { 0 };
	struct qmp_error err;
	struct qmp *q = NULL;
	int rc, status = 0;

	if (argc != 1) {
		fprintf(stderr, "usage: ferry-qmp --socket PATH wait-event NAME\n");
		status = EXIT_LOCAL;
		goto out;
	}
	rc = qmp_connect(o->socket, o->timeout_ms, &q, &err);
	if (rc) {
		fprintf(stderr, "ferry-qmp: %s\n", err.desc);
		status = EXIT_LOCAL;
		goto out;
	}
	rc = qmp_wait_event(q, argv[0], o->timeout_ms, &ev);
	if (rc) {
		fprintf(stderr, "ferry-qmp: %s\n", qmp_last_error(q));
		status = rc == -ETIMEDOUT ? EXIT_TIMEOUT : EXIT_LOCAL;
		goto out;
	}
	out = json_object_new_object();
	if (!out ||
	    json_object_object_add(out, "event", json_object_new_string(ev.name)) ||
	    json_object_object_add(out, "timestamp_us", json_object_new_int64((int64_t)ev.ts_us)) ||
	    json_object_object_add(out, "data", ev.data ? json_object_get(ev.data) :
							  json_object_new_object())) {
		fprintf(stderr, "ferry-qmp: out of memory\n");
		status = EXIT_LOCAL;
		goto out;
	}
	printf("%s\n", json_out(out));
out:
	json_object_put(out);
	qmp_event_clear(&ev);
	qmp_close(q);
	return status;
}

static const struct subcmd subcmds[] = {
	{ "execute", cmd_execute, "CMD ['{json args}']  run a QMP command, print its return value" },
	{ "wait-event", cmd_wait_event, "NAME                wait for an event, print it as JSON" },
	{ "hmp", cmd_hmp, "'COMMAND LINE'       run a human monitor command, print its text" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: ferry-qmp --socket PATH [--timeout SEC] COMMAND [ARGS]\n\n");
	for (i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++)
		fprintf(f, "  %-10s %s\n", subcmds[i].name, subcmds[i].help);
	fprintf(f, "\n--timeout SEC  connect and command timeout (default 10, < 0 = forever)\n"
		   "exit: 0 ok, 1 local failure, 2 QEMU error, 3 wait-event timeout\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .socket = NULL, .timeout_ms = 10000 };
	double sec;
	char *end;
	size_t i;
	int c;

	/* stdout/stderr are the tool's interface; keep library chatter out. */
	log_set_level(LOG_ERROR);
	while ((c = getopt_long(argc, argv, "+s:t:h", lopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.socket = optarg;
			break;
		case 't':
			sec = strtod(optarg, &end);
			if (end == optarg || *end || sec > 2e6) {
				fprintf(stderr, "ferry-qmp: bad --timeout '%s'\n", optarg);
				return EXIT_LOCAL;
			}
			o.timeout_ms = sec < 0 ? -1 : (int)(sec * 1000.0);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_LOCAL;
		}
	}
	if (!o.socket || optind >= argc) {
		usage(stderr);
		return EXIT_LOCAL;
	}
	for (i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++)
		if (!strcmp(argv[optind], subcmds[i].name))
			return subcmds[i].fn(&o, argc - optind - 1, argv + optind + 1);
	fprintf(stderr, "ferry-qmp: unknown command '%s'\n", argv[optind]);
	usage(stderr);
	return EXIT_LOCAL;
}
