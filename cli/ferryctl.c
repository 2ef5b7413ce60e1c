/* ferryctl: the command line for ferryd (a table of subcommands). */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/ctl.h"
#include "cli/drain.h"
#include "cli/nodes.h"
#include "cli/progress.h"
#include "cli/pki.h"
#include "engine/vmspec.h"
#include "schema/mig_settings.h"
#include "schema/vmim.h"
#include "util/timeutil.h"

/* ---- subcommands ----------------------------------------------------------- */

/* Takes every flag out of argv[0..*argc): 1 if it was there. */
static int take_flag(int *argc, char **argv, const char *flag)
{
	int n = 0, found = 0, literal = 0;

	for (int i = 0; i < *argc; i++) {
		literal |= !strcmp(argv[i], "--");
		if (!literal && !strcmp(argv[i], flag)) {
			found = 1;
			continue;
		}
		argv[n++] = argv[i];
	}
	*argc = n;
	return found;
}

/* "-f FILE" (or --file FILE), and nothing else: the file, or NULL after
 * printing what was wrong and the usage. */
static const char *file_arg(int argc, char **argv, const char *usage)
{
	const char *file = NULL;

	for (int i = 0; i < argc; i++) {
		if ((!strcmp(argv[i], "-f") || !strcmp(argv[i], "--file")) && i + 1 < argc && !file) {
			file = argv[++i];
			continue;
		}
		fprintf(stderr, "ferryctl: unexpected argument '%s'\n", argv[i]);
		file = NULL;
		break;
	}
	if (!file)
		fprintf(stderr, "usage: ferryctl %s\n", usage);
	return file;
}

static int cmd_vm_create(struct ctl *c, int argc, char **argv)
{
	struct vm_spec *spec = NULL;
	struct json_object *body, *out = NULL;
	/* --force: create even while a peer cannot be asked whether it has the name. */
	int force = take_flag(&argc, argv, "--force");
	const char *file = file_arg(argc, argv, "vm create -f SPEC.yaml [--force]");
	char err[600];
	int r;

	if (!file)
		return 2;
	r = vmspec_load_file(file, &spec, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ferryctl: %s\n", err);
		return 1;
	}
	body = vmspec_to_json(spec);
	vmspec_free(spec);
	if ((r = call_expect(c, "POST", force ? "/v1/vms?force=true" : "/v1/vms", body, 201, &out)))
		return r;
	if (ctl_document(c))
		print_json(out);
	else
		printf("vm/%s created on node %s\n", jstr(out, "name"), jstr(out, "node"));
	json_object_put(out);
	return 0;
}

/* Every VM of the cluster (GET /v1/cluster/vms): one line per VM, or per
 * node for a name two nodes each run (a conflict, marked). */
static int cmd_vm_list(struct ctl *c, int argc, char **argv)
{
	struct json_object *out = NULL, *vms, *nodes;
	long st;
	int r = arg_positional(argc, argv, 0, 0, "vm list");

	if (r)
		return r;
	st = call(c, "GET", "/v1/cluster/vms", NULL, &out);
	vms = json_object_object_get(out, "vms");
	nodes = json_object_object_get(out, "nodes");
	if (st != 200) {
		r = api_failed(st, out);
	} else if (strcmp(c->output, "table")) {
		print_json(vms);
	} else {
		printf("%-20s %-12s %-10s %-38s %s\n", "NAME", "NODE", "STATE", "LAST MIGRATION", "CONFLICT");
		for (size_t i = 0; i < json_object_array_length(vms); i++) {
			struct json_object *v = json_object_array_get_idx(vms, i), *with;
			char cw[200] = "";

			if (json_object_object_get_ex(v, "conflictWith", &with))
				for (size_t k = 0; k < json_object_array_length(with); k++)
					snprintf(cw + strlen(cw), sizeof(cw) - strlen(cw), "%s%s", k ? "," : "also on ",
						 json_object_get_string(json_object_array_get_idx(with, k)));
			printf("%-20s %-12s %-10s %-38s %s\n", jstr(v, "name"), jstr(v, "node"), jstr(v, "state"),
			       jstr(v, "lastMigration"), cw);
		}
		for (size_t i = 0; i < json_object_array_length(nodes); i++) {
			struct json_object *n = json_object_array_get_idx(nodes, i);

			if (!json_object_get_boolean(json_object_object_get(n, "reachable")))
				printf("(node %s not listed: %s)\n", jstr(n, "name"), jstr(n, "reason"));
		}
	}
	json_object_put(out);
	return r;
}

/* vm stop / vm resume: POST /v1/vms/NAME/<verb>. */
static int vm_action(struct ctl *c, int argc, char **argv, const char *verb, const char *done)
{
	char path[128], usage[64];
	int r;

	snprintf(usage, sizeof(usage), "vm %s NAME", verb);
	if ((r = arg_positional(argc, argv, 1, 1, usage)))
		return r;
	snprintf(path, sizeof(path), "/v1/vms/%s/%s", argv[0], verb);
	return simple_call(c, "POST", path, 200, done, argv[0]);
}

static int cmd_vm_delete(struct ctl *c, int argc, char **argv)
{
	char path[128];
	int r;

	if ((r = arg_positional(argc, argv, 1, 1, "vm delete NAME")))
		return r;
	snprintf(path, sizeof(path), "/v1/vms/%s", argv[0]);
	return simple_call(c, "DELETE", path, 200, "vm/%s deleted\n", argv[0]);
}

/* A migration's name: its VMIM name, or its id for a record from before
 * every migration had one. */
static const char *mig_label(struct json_object *m)
{
	return jstr(m, "name")[0] ? jstr(m, "name") : jstr(m, "id");
}

/* "123 ms", or "n/a" for a guest that did not pause (no pauseMs). */
static const char *pause_text(struct json_object *m, char *buf, size_t len)
{
	if (!json_object_object_get(m, "pauseMs") || jint(m, "pauseMs") < 0)
		return "n/a";
	snprintf(buf, len, "%lld ms", (long long)jint(m, "pauseMs"));
	return buf;
}

static void print_outcome(struct json_object *m)
{
	char raw[32], wire[32], pause[32];
	uint64_t rb = (uint64_t)jint(m, "rawBytes"), wb = (uint64_t)jint(m, "wireBytes");

	human_bytes(rb, raw, sizeof(raw));
	human_bytes(wb, wire, sizeof(wire));
	printf("migration %s: %s\n", mig_label(m), jstr(m, "phase"));
	printf("  vm:          %s  %s -> %s\n", jstr(m, "vm"), jstr(m, "sourceNode"), jstr(m, "targetNode"));
	if (!strcmp(jstr(m, "phase"), "Failed"))
		printf("  reason:      %s\n", jstr(m, "failureReason"));
	if (jstr(m, "cancelledBy")[0])
		printf("  cancelled by: %s\n", jstr(m, "cancelledBy"));
	printf("  total time:  %lld ms\n", (long long)jint(m, "totalMs"));
	printf("  guest pause: %s%s\n", pause_text(m, pause, sizeof(pause)),
	       json_object_object_get(m, "pauseMs") ? " (target RESUME - source STOP)" : "");
	printf("  bytes:       raw %s, wire %s (%.2fx)\n", raw, wire, wb ? (double)rb / (double)wb : 0.0);
	printf("  mode:        %s, %lld escalation(s), downtime limit %lld ms\n", jstr(m, "mode"),
	       (long long)jint(m, "escalations"), (long long)jint(m, "downtimeLimitMs"));
	if (json_object_object_get(m, "postcopyRequests"))
		printf("  post-copy:   %lld page requests, vCPUs blocked %lld ms in all\n",
		       (long long)jint(m, "postcopyRequests"), (long long)jint(m, "postcopyBlocktimeMs"));
	printf("  channels:    %lld multifd, compress %s\n", (long long)jint(m, "multifdChannels"),
	       json_object_get_boolean(json_object_object_get(m, "compress")) ? "lz4" : "off");
	{
		struct json_object *pc = json_object_object_get(m, "pageCoding");
		char cache[32];

		if (pc) {
			human_bytes((uint64_t)jint(pc, "cacheBytes"), cache, sizeof(cache));
			printf("  page coding: %lld pages: %lld zero, %lld duplicate, %lld delta; cache %s a side\n",
			       (long long)jint(pc, "pages"), (long long)jint(pc, "zero"),
			       (long long)jint(pc, "duplicate"), (long long)jint(pc, "delta"), cache);
		} else {
			printf("  page coding: off\n");
		}
	}
	if (jint(m, "disks") > 0) {
		char dt[32];

		human_bytes((uint64_t)jint(m, "diskTotal"), dt, sizeof(dt));
		printf("  storage:     %lld local disk(s), %s, copy mode %s\n", (long long)jint(m, "disks"), dt,
		       jstr(m, "storageCopyMode"));
	}
	if (json_object_object_get(m, "memoryVerified"))
		printf("  memory:      %s (sha256 %s)\n", jstr(m, "memoryVerified"), jstr(m, "memoryDigest"));
}

/* One redraw of the progress line, at the terminal's width (cli/progress.h). */
static void draw_progress(struct json_object *m)
{
	/* RAM and disks together; RAM counts whole until it starts. */
	uint64_t total = (uint64_t)jint(m, "ramTotal") + (uint64_t)jint(m, "diskTotal");
	uint64_t left = (uint64_t)jint(m, "ramRemaining") + (uint64_t)jint(m, "diskRemaining");
	struct progress_view v = {
		.phase = jstr(m, "phase"),
		.mode = jstr(m, "mode"),
		.dirty_bps = (double)jint(m, "dirtyRateBps"),
		.copy_bps = (double)jint(m, "copyRateBps"),
		.converging = json_object_get_boolean(json_object_object_get(m, "converging")),
		.eta_ms = jint(m, "etaMs"),
		.pass = (long long)jint(m, "iterations"),
	};
	char line[256];

	if (!strcmp(v.mode, "storage")) {
		/* RAM has not started: the disks are the whole story yet. */
		total = (uint64_t)jint(m, "diskTotal");
		left = (uint64_t)jint(m, "diskRemaining");
	}
	v.remaining = left;
	v.pct = total && left <= total ? 100.0 * (double)(total - left) / (double)total : 0.0;
	progress_line(&v, progress_columns(1), line, sizeof(line));
	printf("\r\033[K%s", line);
	fflush(stdout);
}

static int wait_migration(struct ctl *c, const char *id)
{
	struct json_object *m = NULL;
	char path[160];
	int tty = isatty(1), r = 1;
	uint64_t deadline = time_mono_ms() + 3600 * 1000ull;

	snprintf(path, sizeof(path), "/v1/migrations/%s", id);
	while (time_mono_ms() < deadline) {
		const char *phase;
		long st;

		json_object_put(m);
		m = NULL;
		st = call(c, "GET", path, NULL, &m);
		if (st != 200)
			return api_failed(st, m);
		phase = jstr(m, "phase");
		if (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed")) {
			if (tty)
				printf("\r\033[K");
			if (ctl_document(c))
				print_json(m);
			else
				print_outcome(m);
			r = strcmp(phase, "Succeeded") ? 1 : 0;
			break;
		}
		if (tty)
			draw_progress(m);
		poll(NULL, 0, 200); /* a status poll interval, not a synchronisation */
	}
	json_object_put(m);
	return r;
}

/* A numeric migration option: the whole argument a decimal integer in the
 * setting's range (schema/mig_settings.c, the table ferryd checks with),
 * refused here with the option's name ("five" is not 0, and 0 does not
 * turn a timeout off). */
static int add_number(struct json_object *body, enum mset_id id, const char *opt, const char *arg)
{
	const struct mset_info *i = mset_info(id);
	int v;

	if (arg_int(opt, arg, i->min, i->max, &v) < 0)
		return -1;
	json_object_object_add(body, i->api_key, json_object_new_int(v));
	return 0;
}

#define MIGRATE_USAGE                                                                              \
	"migrate VM [--node NAME] [--wait] [--multifd N] [--no-compress]\n"                       \
	"                        [--verify-memory] [--paused] [--max-bandwidth MiBps]\n"          \
	"                        [--progress-timeout S] [--completion-timeout-per-gib S]\n"       \
	"                        [--auto-converge] [--post-copy] [--post-copy-now] [--downtime-step MS]\n" \
	"                        [--escalate-after S] [--page-cache MiB]"

static int cmd_migrate(struct ctl *c, int argc, char **argv)
{
	static const struct option o[] = {{"node", required_argument, NULL, 'n'},
					  {"wait", no_argument, NULL, 'w'},
					  {"multifd", required_argument, NULL, 'm'},
					  {"no-compress", no_argument, NULL, 'C'},
					  {"verify-memory", no_argument, NULL, 'V'},
					  {"paused", no_argument, NULL, 'p'},
					  {"max-bandwidth", required_argument, NULL, 'b'},
					  {"progress-timeout", required_argument, NULL, 'P'},
					  {"completion-timeout-per-gib", required_argument, NULL, 'T'},
					  {"auto-converge", no_argument, NULL, 'A'},
					  {"post-copy", no_argument, NULL, 'Y'},
					  {"post-copy-now", no_argument, NULL, 'N'},
					  {"downtime-step", required_argument, NULL, 'D'},
					  {"escalate-after", required_argument, NULL, 'E'},
					  {"page-cache", required_argument, NULL, 'G'},
					  {NULL, 0, NULL, 0}};
	struct json_object *body = json_object_new_object(), *out = NULL;
	const char *vm = NULL;
	int wait = 0, ch, r, bad = 0;

	/* getopt wants the command name in argv[0]: it sits just before. */
	argc++;
	argv--;
	optind = 0;
	opterr = 0; /* ferryctl says it, with the usage */
	while ((ch = getopt_long(argc, argv, ":n:w", o, NULL)) != -1) {
		switch (ch) {
		case 'n': json_object_object_add(body, "node", json_object_new_string(optarg)); break;
		case 'w': wait = 1; break;
		case 'm': bad |= add_number(body, MSET_MULTIFD_CHANNELS, "--multifd", optarg); break;
		case 'C': json_object_object_add(body, "compress", json_object_new_boolean(0)); break;
		case 'V': json_object_object_add(body, "verifyMemory", json_object_new_boolean(1)); break;
		case 'p': json_object_object_add(body, "paused", json_object_new_boolean(1)); break;
		case 'b': bad |= add_number(body, MSET_MAX_BANDWIDTH_MIBPS, "--max-bandwidth", optarg); break;
		case 'P': bad |= add_number(body, MSET_PROGRESS_TIMEOUT_S, "--progress-timeout", optarg); break;
		case 'T': bad |= add_number(body, MSET_COMPLETION_TIMEOUT_S_PER_GIB, "--completion-timeout-per-gib", optarg); break;
		case 'A': json_object_object_add(body, "autoConverge", json_object_new_boolean(1)); break;
		case 'Y': json_object_object_add(body, "postCopy", json_object_new_boolean(1)); break;
		case 'N': json_object_object_add(body, "postCopyNow", json_object_new_boolean(1)); break;
		case 'D': bad |= add_number(body, MSET_DOWNTIME_STEP_MS, "--downtime-step", optarg); break;
		case 'E': bad |= add_number(body, MSET_ESCALATE_AFTER_S, "--escalate-after", optarg); break;
		case 'G': bad |= add_number(body, MSET_PAGE_CACHE_MIB, "--page-cache", optarg); break;
		default:
			fprintf(stderr, "ferryctl: %s %s\nusage: ferryctl " MIGRATE_USAGE "\n",
				ch == ':' ? "missing the value of" : "unknown option", argv[optind - 1]);
			json_object_put(body);
			return 2;
		}
	}
	if (bad) {
		json_object_put(body);
		return 2;
	}
	if (optind < argc)
		vm = argv[optind];
	if (!vm || optind + 1 < argc) {
		if (vm)
			fprintf(stderr, "ferryctl: unexpected argument '%s'\n", argv[optind + 1]);
		fprintf(stderr, "usage: ferryctl " MIGRATE_USAGE "\n");
		json_object_put(body);
		return 2;
	}
	if (arg_name("VM", vm) < 0) {
		json_object_put(body);
		return 2;
	}
	json_object_object_add(body, "vm", json_object_new_string(vm));
	if ((r = call_expect(c, "POST", "/v1/migrations", body, 201, &out)))
		return r;
	if (!wait) {
		if (ctl_document(c))
			print_json(out);
		else
			printf("virtualmachineinstancemigration/%s created\n", *jstr(out, "name") ? jstr(out, "name") : jstr(out, "id"));
		json_object_put(out);
		return 0;
	}
	{
		char id[64];

		snprintf(id, sizeof(id), "%s", jstr(out, "id"));
		json_object_put(out);
		return wait_migration(c, id);
	}
}

static int cmd_migrate_cancel(struct ctl *c, int argc, char **argv)
{
	char path[160];
	int r;

	if ((r = arg_positional(argc, argv, 1, 1, "migrate-cancel VM")))
		return r;
	snprintf(path, sizeof(path), "/v1/migrations/%s", argv[0]);
	return simple_call(c, "DELETE", path, 202, "migration of %s: cancel requested\n", argv[0]);
}

static void print_migration_state(struct json_object *ms)
{
	char pause[32];

	printf("  Migration State:\n");
	printf("    Completed:                    %s\n",
	       json_object_get_boolean(json_object_object_get(ms, "completed")) ? "true" : "false");
	if (json_object_object_get(ms, "endTimestamp"))
		printf("    End Timestamp:                %s\n", jstr(ms, "endTimestamp"));
	printf("    Migration Name:               %s\n", mig_label(ms));
	printf("    Migration UID:                %s\n", jstr(ms, "id"));
	printf("    Mode:                         %s\n", jstr(ms, "mode"));
	printf("    Phase:                        %s\n", jstr(ms, "phase"));
	printf("    Source Node:                  %s\n", jstr(ms, "sourceNode"));
	printf("    Start Timestamp:              %s\n", jstr(ms, "startTimestamp"));
	printf("    Target Node:                  %s\n", jstr(ms, "targetNode"));
	printf("    Target Node Address:          %s\n", jstr(ms, "targetNodeAddress"));
	printf("    Target Node Domain Detected:  %s\n",
	       json_object_get_boolean(json_object_object_get(ms, "completed")) ? "true" : "false");
	if (json_object_get_boolean(json_object_object_get(ms, "failed")))
		printf("    Failure Reason:               %s\n", jstr(ms, "failureReason"));
	if (json_object_get_boolean(json_object_object_get(ms, "abortRequested")))
		printf("    Abort Status:                 %s\n", jstr(ms, "abortStatus"));
	if (jstr(ms, "cancelledBy")[0])
		printf("    Cancelled By:                 %s\n", jstr(ms, "cancelledBy"));
	printf("    Total Time:                   %lld ms\n", (long long)jint(ms, "totalMs"));
	printf("    Guest Pause:                  %s\n", pause_text(ms, pause, sizeof(pause)));
	if (!json_object_get_boolean(json_object_object_get(ms, "completed")) &&
	    !json_object_get_boolean(json_object_object_get(ms, "failed"))) {
		/* Still running: the live figures. */
		printf("    Remaining:                    %.1f MiB\n",
		       (jint(ms, "ramRemaining") + jint(ms, "diskRemaining")) / 1048576.0);
		printf("    Dirty Rate:                   %.1f MB/s\n", jint(ms, "dirtyRateBps") / 1e6);
		printf("    Copy Rate:                    %.1f MB/s\n", jint(ms, "copyRateBps") / 1e6);
		printf("    Expected Pause:               %lld ms\n", (long long)jint(ms, "expectedPauseMs"));
		printf("    Converging:                   %s\n",
		       json_object_get_boolean(json_object_object_get(ms, "converging")) ? "true" : "false");
	}
	if (jint(ms, "disks") > 0) {
		printf("    Disks Copied:                 %lld (%.1f MiB)\n", (long long)jint(ms, "disks"),
		       jint(ms, "diskTotal") / 1048576.0);
		printf("    Disk Transferred:             %.1f MiB\n", jint(ms, "diskTransferred") / 1048576.0);
		printf("    Disk Remaining:               %.1f MiB\n", jint(ms, "diskRemaining") / 1048576.0);
		printf("    Disk Write Rate:              %.1f MB/s\n", jint(ms, "diskDirtyRateBps") / 1e6);
		printf("    Storage Copy Mode:            %s\n", jstr(ms, "storageCopyMode"));
		printf("    Storage In Sync:              %s\n",
		       json_object_get_boolean(json_object_object_get(ms, "storageReady")) ? "true" : "false");
	}
}

/* Newest first (the API's order; kept for an older agent's answer). */
static int by_start(const void *x, const void *y)
{
	struct json_object *a = *(struct json_object *const *)x, *b = *(struct json_object *const *)y;

	return strcmp(jstr(b, "startTimestamp"), jstr(a, "startTimestamp"));
}

/* describe -o json: the VM as this node has it, or, for a VM that is not
 * here (it left), what its newest migration says; either way with its
 * history, newest first. */
static void print_describe_json(const char *name, struct json_object *vm, struct json_object *newest,
				struct json_object **v, size_t n)
{
	struct json_object *o = vm ? json_object_get(vm) : json_object_new_object();
	struct json_object *hist = json_object_new_array();

	if (!vm) {
		int done = json_object_get_boolean(json_object_object_get(newest, "completed"));

		json_object_object_add(o, "name", json_object_new_string(name));
		json_object_object_add(o, "node", json_object_new_string(done ? jstr(newest, "targetNode")
									     : jstr(newest, "sourceNode")));
		json_object_object_add(o, "onThisNode", json_object_new_boolean(0));
		json_object_object_add(o, "lastMigration", json_object_new_string(jstr(newest, "id")));
		json_object_object_add(o, "migrationState", json_object_get(newest));
	}
	for (size_t i = 0; i < n; i++)
		json_object_array_add(hist, json_object_get(v[i]));
	json_object_object_add(o, "migrations", hist);
	print_json(o);
	json_object_put(o);
}

static void print_history(struct json_object **v, size_t n)
{
	char pause[32];

	printf("  Migration History:\n");
	for (size_t i = 0; i < n; i++) {
		int failed = json_object_get_boolean(json_object_object_get(v[i], "failed"));

		printf("    %s  %-9s %s  %s -> %s  %s  total %lld ms  pause %s%s%s%s%s\n",
		       jstr(v[i], "startTimestamp"), jstr(v[i], "phase"), mig_label(v[i]), jstr(v[i], "sourceNode"),
		       jstr(v[i], "targetNode"), jstr(v[i], "mode"), (long long)jint(v[i], "totalMs"),
		       pause_text(v[i], pause, sizeof(pause)), failed ? "  reason: " : "",
		       failed ? jstr(v[i], "failureReason") : "",
		       jstr(v[i], "cancelledBy")[0] ? "  cancelled by: " : "", jstr(v[i], "cancelledBy"));
	}
}

static int cmd_describe(struct ctl *c, int argc, char **argv)
{
	struct json_object *out = NULL, *hist = NULL, *ms = NULL, **v = NULL;
	char path[160];
	long st, hst;
	size_t n = 0;
	int r = 0;

	if (argc < 2 || strcmp(argv[0], "vmi")) {
		fprintf(stderr, "usage: ferryctl describe vmi VM\n");
		return 2;
	}
	snprintf(path, sizeof(path), "/v1/vms/%s", argv[1]);
	st = call(c, "GET", path, NULL, &out);
	snprintf(path, sizeof(path), "/v1/migrations?vm=%s", argv[1]);
	hst = call(c, "GET", path, NULL, &hist);
	if (hst == 200 && json_object_is_type(hist, json_type_array))
		n = json_object_array_length(hist);
	if (st != 200 && n == 0) {
		r = api_failed(st, out);
		goto done;
	}
	/* History, newest first; the newest is the current state. */
	v = calloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = json_object_array_get_idx(hist, i);
	qsort(v, n, sizeof(*v), by_start);
	ms = st == 200 ? json_object_object_get(out, "migrationState") : NULL;
	if (!ms && n)
		ms = v[0];
	if (ctl_document(c)) {
		print_describe_json(argv[1], st == 200 ? out : NULL, ms, v, n);
		goto done;
	}
	printf("Name:         %s\n", argv[1]);
	if (st == 200)
		printf("Node:         %s\n", jstr(out, "node"));
	else /* Known from its last migration's record only. */
		printf("Node:         %s (per the last migration; not on this node)\n",
		       json_object_get_boolean(json_object_object_get(ms, "completed")) ? jstr(ms, "targetNode")
										      : jstr(ms, "sourceNode"));
	printf("Status:\n");
	if (st == 200) {
		int lm = json_object_get_boolean(json_object_object_get(out, "liveMigratable"));

		printf("  Conditions:\n");
		printf("    Type:     LiveMigratable\n");
		printf("    Status:   %s\n", lm ? "True" : "False");
		if (!lm && json_object_object_get(out, "notMigratableReason"))
			printf("    Reason:   %s\n", jstr(out, "notMigratableReason"));
	}
	/* A VM that left: what runs elsewhere is that node's to say. */
	printf("  Phase:      %s\n", st == 200 ? jstr(out, "state") : "(not on this node)");
	printf("  Migration Method:  LiveMigration\n");
	{
		/* Where each disk is on this node, and whether it travels. */
		struct json_object *disks = st == 200 ? json_object_object_get(out, "disks") : NULL;

		if (disks && json_object_array_length(disks)) {
			printf("  Volumes:\n");
			for (size_t i = 0; i < json_object_array_length(disks); i++) {
				struct json_object *d = json_object_array_get_idx(disks, i);

				printf("    %-12s %-6s %-6s %-13s %s\n", jstr(d, "name"), jstr(d, "type"),
				       jstr(d, "format"),
				       !strcmp(jstr(d, "storage"), "shared") ? "shared"
				       : !strcmp(jstr(d, "type"), "disk")    ? "local, copied"
									     : "-",
				       jstr(d, "path")[0] ? jstr(d, "path") : "(empty)");
			}
		}
	}
	if (ms)
		print_migration_state(ms);
	if (n)
		print_history(v, n);
done:
	free(v);
	json_object_put(out);
	json_object_put(hist);
	return r;
}

static int cmd_get(struct ctl *c, int argc, char **argv)
{
	struct json_object *out = NULL;
	long st;
	int r = 0;

	if (argc < 1 || (strcmp(argv[0], "vmim") && strcmp(argv[0], "migrations"))) {
		if (argc >= 1 && (!strcmp(argv[0], "vmi") || !strcmp(argv[0], "vms")))
			return cmd_vm_list(c, argc - 1, argv + 1);
		fprintf(stderr, "usage: ferryctl get vmim|vmi\n");
		return 2;
	}
	st = call(c, "GET", "/v1/migrations", NULL, &out);
	if (st != 200) {
		r = api_failed(st, out);
	} else if (ctl_document(c)) {
		print_json(out);
	} else {
		/* Newest first, as the API lists them. */
		printf("%-30s %-16s %-10s %-12s %-12s %s\n", "NAME", "VM", "PHASE", "SOURCE", "TARGET", "START");
		for (size_t i = 0; i < json_object_array_length(out); i++) {
			struct json_object *m = json_object_array_get_idx(out, i);

			printf("%-30s %-16s %-10s %-12s %-12s %s\n", mig_label(m), jstr(m, "vm"), jstr(m, "phase"),
			       jstr(m, "sourceNode"), jstr(m, "targetNode"), jstr(m, "startTimestamp"));
		}
	}
	json_object_put(out);
	return r;
}

/* The KubeVirt VirtualMachineInstanceMigration manifest, exactly as written
 * (schema/vmim.h: strict, the names checked as KubeVirt does). Creating it
 * starts the migration ("Automatically selected node"). */
static int cmd_create(struct ctl *c, int argc, char **argv)
{
	struct json_object *body = NULL, *out = NULL;
	struct vmim_manifest m;
	const char *file = file_arg(argc, argv, "create -f MIGRATION.yaml");
	char err[600];
	long st;
	int r = 1;

	if (!file)
		return 2;
	if (vmim_manifest_load(file, &m, err, sizeof(err)) < 0) {
		fprintf(stderr, "ferryctl: %s\n", err);
		return 1;
	}
	body = json_object_new_object();
	json_object_object_add(body, "vm", json_object_new_string(m.vmi_name));
	json_object_object_add(body, "name", json_object_new_string(m.name));
	st = call(c, "POST", "/v1/migrations", body, &out);
	if (st != 201) {
		r = api_failed(st, out);
		goto out;
	}
	printf("virtualmachineinstancemigration.kubevirt.io/%s created\n", m.name);
	r = 0;
out:
	json_object_put(body);
	json_object_put(out);
	return r;
}

static int cmd_delete(struct ctl *c, int argc, char **argv)
{
	char path[160];
	int r;

	if ((r = arg_positional(argc, argv, 2, 2, "delete vmim NAME   (cancels that migration)")))
		return r;
	if (strcmp(argv[0], "vmim") && strcmp(argv[0], "virtualmachineinstancemigration")) {
		fprintf(stderr, "usage: ferryctl delete vmim NAME   (cancels that migration)\n");
		return 2;
	}
	snprintf(path, sizeof(path), "/v1/migrations/%s", argv[1]);
	return simple_call(c, "DELETE", path, 202,
			   "virtualmachineinstancemigration.kubevirt.io \"%s\" deleted\n", argv[1]);
}

static int cmd_candidates(struct ctl *c, int argc, char **argv)
{
	struct json_object *out = NULL;
	char path[160];
	long st;
	int r;

	if ((r = arg_positional(argc, argv, 1, 1, "candidates VM")))
		return r;
	snprintf(path, sizeof(path), "/v1/vms/%s/candidates", argv[0]);
	st = call(c, "GET", path, NULL, &out);
	if (st != 200) {
		r = api_failed(st, out);
	} else if (ctl_document(c)) {
		print_json(out);
	} else {
		printf("%-16s %-9s %-10s %s\n", "NODE", "ELIGIBLE", "FREE MiB", "REASON");
		for (size_t i = 0; i < json_object_array_length(out); i++) {
			struct json_object *n = json_object_array_get_idx(out, i);

			printf("%-16s %-9s %-10lld %s\n", jstr(n, "name"),
			       json_object_get_boolean(json_object_object_get(n, "eligible")) ? "yes" : "no",
			       (long long)jint(n, "freeMemoryMiB"), jstr(n, "reason"));
		}
	}
	json_object_put(out);
	return r;
}

static int cmd_vm(struct ctl *c, int argc, char **argv);

static int cmd_pki(struct ctl *c, int argc, char **argv)
{
	(void)c;
	return pki_main(argc, argv);
}

/* `ferryctl migrate --help`: each option with its range, from the table
 * ferryd checks with. */
static void migrate_help(void)
{
	static const struct {
		const char *opt;
		enum mset_id id;
		const char *what;
	} nums[] = {
		{"--multifd N", MSET_MULTIFD_CHANNELS, "multifd channels (0: one main channel)"},
		{"--max-bandwidth MiBps", MSET_MAX_BANDWIDTH_MIBPS, "bandwidth cap (0: unlimited)"},
		{"--progress-timeout S", MSET_PROGRESS_TIMEOUT_S, "abort after S s without progress"},
		{"--completion-timeout-per-gib S", MSET_COMPLETION_TIMEOUT_S_PER_GIB,
		 "abort after S s per GiB of RAM and copied disk"},
		{"--downtime-step MS", MSET_DOWNTIME_STEP_MS, "raise the downtime limit by MS per escalation (0: off)"},
		{"--escalate-after S", MSET_ESCALATE_AFTER_S, "escalate after S s without progress"},
		{"--page-cache MiB", MSET_PAGE_CACHE_MIB, "page cache per side for page coding (0: off)"},
	};

	printf("usage: ferryctl " MIGRATE_USAGE "\n\n"
	       "Starts a live migration of VM; without --node the target is chosen automatically.\n"
	       "  --node NAME          the target node\n"
	       "  --wait               follow it on one line (fitted to the terminal) until it ends\n"
	       "  --no-compress        no LZ4 on the wire\n"
	       "  --verify-memory      both sides hash guest RAM after the switchover\n"
	       "  --paused             the guest arrives paused and stays so\n"
	       "  --auto-converge, --post-copy, --post-copy-now   escalations (docs/monitor.md)\n");
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		printf("  %-32s %s; %d..%d\n", nums[i].opt, nums[i].what, mset_info(nums[i].id)->min,
		       mset_info(nums[i].id)->max);
	printf("Unset options come from the VM spec, a policy or the agent defaults.\n");
}

/* Subcommands whose `ferryctl NAME --help` says more than their line in
 * `ferryctl --help`. */
static const struct {
	const char *name;
	void (*usage)(void);
} long_help[] = {
	{"migrate", migrate_help},
};

/* `ferryctl NAME --help` (-h): on stdout, since it was asked for. */
static void subcommand_help(const char *name, const char *help)
{
	for (size_t i = 0; i < sizeof(long_help) / sizeof(long_help[0]); i++) {
		if (!strcmp(long_help[i].name, name)) {
			long_help[i].usage();
			return;
		}
	}
	printf("usage: ferryctl %s\n", help);
}

static const struct subcommand {
	const char *name;
	int (*fn)(struct ctl *c, int argc, char **argv);
	const char *help;
} commands[] = {
	{"vm", cmd_vm, "vm create -f SPEC [--force] | vm list | vm stop NAME | vm resume NAME | vm delete NAME"},
	{"migrate", cmd_migrate, "migrate VM [--node NAME] [--wait] [options]  (ferryctl migrate --help)"},
	{"migrate-cancel", cmd_migrate_cancel, "migrate-cancel VM   (cancel the running migration of VM)"},
	{"describe", cmd_describe, "describe vmi VM     (where it runs and its migration state)"},
	{"get", cmd_get, "get vmim | get vmi"},
	{"create", cmd_create, "create -f MIGRATION.yaml  (a VirtualMachineInstanceMigration manifest)"},
	{"delete", cmd_delete, "delete vmim NAME     (cancel that migration)"},
	{"candidates", cmd_candidates, "candidates VM        (each node as a target: eligible or why not)"},
	{"nodes", cmd_nodes, "nodes               (every node: reachable, cordoned, its VMs)"},
	{"cordon", cmd_cordon, CORDON_HELP},
	{"uncordon", cmd_uncordon, UNCORDON_HELP},
	{"drain", cmd_drain, DRAIN_HELP},
	{"pki", cmd_pki, PKI_HELP},
};

static int cmd_vm(struct ctl *c, int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "create"))
		return cmd_vm_create(c, argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "list"))
		return cmd_vm_list(c, argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "delete"))
		return cmd_vm_delete(c, argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "stop"))
		return vm_action(c, argc - 1, argv + 1, "stop", "vm/%s stopped\n");
	if (argc >= 1 && !strcmp(argv[0], "resume"))
		return vm_action(c, argc - 1, argv + 1, "resume", "vm/%s resumed\n");
	fprintf(stderr, "usage: ferryctl %s\n", commands[0].help);
	return 2;
}

static void usage(void)
{
	fprintf(stderr, "usage: ferryctl [--server SOCKET|https://HOST:PORT] [--token-file FILE] [--cacert FILE] [-o table|json|yaml] COMMAND ...\n"
			"       (-o may also follow the command; COMMAND --help says more)\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(stderr, "  %s\n", commands[i].help);
	fprintf(stderr, "\nThe server defaults to $FERRY_SERVER or /run/ferry/api.sock; the token to $FERRY_TOKEN\n"
			"(or the file $FERRY_TOKEN_FILE); the CA to $FERRY_CACERT, else the system's.\n");
}

int main(int argc, char **argv)
{
	struct ctl c = {getenv("FERRY_SERVER"), getenv("FERRY_TOKEN"), "table", getenv("FERRY_CACERT"), ""};
	int i = 1, r = 2;

	if (!c.server)
		c.server = "/run/ferry/api.sock";
	if (!c.token && getenv("FERRY_TOKEN_FILE") && read_token_file(&c, getenv("FERRY_TOKEN_FILE")) < 0)
		return 2;
	while (i < argc && argv[i][0] == '-') {
		if ((!strcmp(argv[i], "--server") || !strcmp(argv[i], "-s")) && i + 1 < argc) {
			c.server = argv[i + 1];
			i += 2;
		} else if (!strcmp(argv[i], "--token")) {
			fprintf(stderr, "ferryctl: --token would show the token to every user in ps: put it in a file "
					"(mode 0600) and use --token-file FILE, or set FERRY_TOKEN\n");
			return 2;
		} else if (!strcmp(argv[i], "--token-file") && i + 1 < argc) {
			if (read_token_file(&c, argv[i + 1]) < 0)
				return 2;
			i += 2;
		} else if (!strcmp(argv[i], "--cacert") && i + 1 < argc) {
			c.cacert = argv[i + 1];
			i += 2;
		} else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
			c.output = argv[i + 1];
			i += 2;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage();
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("ferryctl %s\n", FERRY_VERSION);
			return 0;
		} else {
			fprintf(stderr, "ferryctl: unknown option %s\n", argv[i]);
			usage();
			return 2;
		}
	}
	if (i >= argc) {
		usage();
		return 2;
	}
	{
		/* -o after the subcommand too (`ferryctl get vmim -o json`). */
		int n = argc - i - 1;
		char err[128];

		if (arg_take_output(&n, argv + i + 1, &c.output, err, sizeof(err)) < 0) {
			fprintf(stderr, "ferryctl: %s\n", err);
			return 2;
		}
		argc = i + 1 + n;
	}
	if (!strcmp(c.output, "yaml")) {
		/* Structured output: the commands take their JSON path, printed as YAML. */
		g_yaml = 1;
		c.output = "json";
	} else if (strcmp(c.output, "json") && strcmp(c.output, "table")) {
		fprintf(stderr, "ferryctl: -o must be table, json or yaml\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
		if (strcmp(commands[k].name, argv[i]))
			continue;
		if (arg_wants_help(argc - i - 1, argv + i + 1)) {
			subcommand_help(commands[k].name, commands[k].help);
			r = 0;
		} else {
			r = commands[k].fn(&c, argc - i - 1, argv + i + 1);
		}
		goto out;
	}
	fprintf(stderr, "ferryctl: unknown command %s\n", argv[i]);
	usage();
out:
	curl_global_cleanup();
	return r;
}
