/* ferryctl cordon, uncordon and drain: a node taken out of service,
 * through /v1/nodes/NODE/... so they work from any node. */
#include "cli/drain.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/ctl.h"

#define DRAIN_USAGE "usage: ferryctl drain NODE [--wait] [--max-attempts N] [--timeout S] | drain NODE --interrupt\n"

static int cordon_call(struct ctl *c, int argc, char **argv, const char *what, const char *done)
{
	struct json_object *out = NULL;
	char path[160];
	long st;
	int r = 0;

	if (argc == 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
		printf("usage: ferryctl %s NODE\n", what);
		return 0;
	}
	if (argc != 1 || argv[0][0] == '-') {
		fprintf(stderr, "usage: ferryctl %s NODE\n", what);
		return 2;
	}
	snprintf(path, sizeof(path), "/v1/nodes/%s/%s", argv[0], what);
	st = call(c, "POST", path, NULL, &out);
	if (st != 200)
		r = api_failed(st, out);
	else if (ctl_document(c))
		print_json(out);
	else
		printf("node/%s %s\n", argv[0], done);
	json_object_put(out);
	return r;
}

int cmd_cordon(struct ctl *c, int argc, char **argv)
{
	return cordon_call(c, argc, argv, "cordon", "cordoned");
}

int cmd_uncordon(struct ctl *c, int argc, char **argv)
{
	return cordon_call(c, argc, argv, "uncordon", "uncordoned");
}

static const char *or_dash(const char *s)
{
	return s && s[0] ? s : "-";
}

/* The queue while the drain runs: one line for the drain, one per VM not
 * yet done. */
static void print_queue(struct json_object *d)
{
	struct json_object *vms = json_object_object_get(d, "vms");
	int n[5] = {0};
	static const char *const names[] = {"Pending", "Migrating", "Moved", "NotMovable", "Failed"};
	char now[16];
	time_t t = time(NULL);

	strftime(now, sizeof(now), "%H:%M:%S", localtime(&t));
	for (size_t i = 0; i < json_object_array_length(vms); i++) {
		const char *s = jstr(json_object_array_get_idx(vms, i), "state");

		for (int k = 0; k < 5; k++)
			n[k] += !strcmp(s, names[k]);
	}
	printf("[%s] %s: %d moved, %d migrating, %d pending, %d not movable, %d failed\n", now,
	       jstr(d, "state"), n[2], n[1], n[0], n[3], n[4]);
	for (size_t i = 0; i < json_object_array_length(vms); i++) {
		struct json_object *v = json_object_array_get_idx(vms, i);
		const char *s = jstr(v, "state");

		if (!strcmp(s, "Pending"))
			printf("  %-20s Pending #%lld\n", jstr(v, "vm"), (long long)jint(v, "place"));
		else if (!strcmp(s, "Migrating"))
			printf("  %-20s Migrating to %s (attempt %lld)\n", jstr(v, "vm"), or_dash(jstr(v, "target")),
			       (long long)jint(v, "attempts"));
	}
	fflush(stdout);
}

/* The final table: every VM, where it went or why it did not. */
static void print_report(struct json_object *d, const char *node)
{
	struct json_object *vms = json_object_object_get(d, "vms");

	printf("node/%s drain %s: %zu of %zu VMs did not move\n", node, jstr(d, "state"),
	       json_object_array_length(json_object_object_get(d, "report")), json_object_array_length(vms));
	printf("%-20s %-11s %-12s %-8s %s\n", "VM", "RESULT", "TARGET", "ATTEMPTS", "REASON");
	for (size_t i = 0; i < json_object_array_length(vms); i++) {
		struct json_object *v = json_object_array_get_idx(vms, i);
		const char *s = jstr(v, "state");

		printf("%-20s %-11s %-12s %-8lld %s\n", jstr(v, "vm"), s, or_dash(jstr(v, "target")),
		       (long long)jint(v, "attempts"),
		       !strcmp(s, "Pending") ? "the drain was interrupted before it started" : or_dash(jstr(v, "reason")));
	}
}

/* What the queue looks like, to print it only when it changes. */
static char *queue_key(struct json_object *d)
{
	struct json_object *k = json_object_new_object();
	char *s;

	json_object_object_add(k, "state", json_object_get(json_object_object_get(d, "state")));
	json_object_object_add(k, "vms", json_object_get(json_object_object_get(d, "vms")));
	s = strdup(json_object_to_json_string_ext(k, JSON_C_TO_STRING_PLAIN));
	json_object_put(k);
	return s;
}

static int wait_drain(struct ctl *c, const char *path, const char *node)
{
	char *last = NULL;
	int r = 1;

	for (;;) {
		struct json_object *d = NULL;
		long st = call(c, "GET", path, NULL, &d);
		char *key;

		if (st != 200) {
			r = api_failed(st, d);
			json_object_put(d);
			break;
		}
		if (strcmp(jstr(d, "state"), "Running")) {
			if (ctl_document(c))
				print_json(d);
			else
				print_report(d, node);
			r = strcmp(jstr(d, "state"), "Completed") ? 1 : 0;
			json_object_put(d);
			break;
		}
		key = queue_key(d);
		if (!ctl_document(c) && (!last || !key || strcmp(key, last)))
			print_queue(d);
		free(last);
		last = key;
		json_object_put(d);
		poll(NULL, 0, 1000); /* polling the drain's status */
	}
	free(last);
	return r;
}

int cmd_drain(struct ctl *c, int argc, char **argv)
{
	static const struct option o[] = {{"wait", no_argument, NULL, 'w'},
					  {"max-attempts", required_argument, NULL, 'm'},
					  {"timeout", required_argument, NULL, 't'},
					  {"interrupt", no_argument, NULL, 'i'},
					  {"help", no_argument, NULL, 'h'},
					  {NULL, 0, NULL, 0}};
	struct json_object *body = json_object_new_object(), *out = NULL;
	int wait = 0, interrupt = 0, ch, r;
	char path[160];
	int v;

	/* getopt wants the command name in argv[0]: it sits just before. */
	argc++;
	argv--;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "wh", o, NULL)) != -1) {
		switch (ch) {
		case 'w': wait = 1; break;
		case 'i': interrupt = 1; break;
		case 'm':
		case 't':
			if (ch == 'm' ? arg_int("--max-attempts", optarg, 1, 10, &v) < 0
				      : arg_int("--timeout", optarg, 10, 86400, &v) < 0) {
				json_object_put(body);
				return 2;
			}
			json_object_object_add(body, ch == 'm' ? "maxAttempts" : "timeoutS", json_object_new_int((int)v));
			break;
		case 'h':
			printf(DRAIN_USAGE);
			json_object_put(body);
			return 0;
		default:
			fprintf(stderr, DRAIN_USAGE);
			json_object_put(body);
			return 2;
		}
	}
	if (optind != argc - 1 || (interrupt && (wait || json_object_object_length(body)))) {
		fprintf(stderr, DRAIN_USAGE);
		json_object_put(body);
		return 2;
	}
	snprintf(path, sizeof(path), "/v1/nodes/%s/drain", argv[optind]);
	if (interrupt) {
		json_object_put(body);
		return simple_call(c, "DELETE", path, 202, "node/%s: drain interrupted (running migrations finish)\n",
				   argv[optind]);
	}
	if ((r = call_expect(c, "POST", path, body, 202, &out)))
		return r;
	if (!wait) {
		if (ctl_document(c))
			print_json(out);
		else
			printf("node/%s draining: %zu VMs (ferryctl drain %s --wait follows it)\n", argv[optind],
			       json_object_array_length(json_object_object_get(out, "vms")), argv[optind]);
		json_object_put(out);
		return 0;
	}
	json_object_put(out);
	return wait_drain(c, path, argv[optind]);
}
