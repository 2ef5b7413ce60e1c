/*
 * modes.c: the one table of the bench's modes. A row names the driver that
 * runs it and the knobs that driver reads; --modes, --help and the default
 * mode list are all taken from here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"

static const struct mode modes[] = {
	{.name = "native-unix", .in_full = 1, .run = run_native, .path = PATH_UNIX},
	{.name = "native-tcp", .in_full = 1, .run = run_native, .path = PATH_TCP},
	{.name = "native-multifd", .in_full = 1, .run = run_native, .path = PATH_TCP, .channels = 2},
	{.name = "native-multifd-zstd",
	 .in_full = 1,
	 .run = run_native,
	 .path = PATH_TCP,
	 .channels = 2,
	 .multifd_compression = "zstd"},
	{.name = "plain-relay", .in_full = 1, .run = run_native, .path = PATH_RELAY},
	{.name = "ferry", .in_full = 1, .run = run_ferry},
	{.name = "ferry-nocompress", .in_full = 1, .run = run_ferry, .no_compress = 1},
	/* ferry without page coding: QEMU's stream as opaque chunks, what
	 * the page-aware path gains */
	{.name = "ferry-nopages", .in_full = 1, .run = run_ferry, .no_pages = 1},
	/* ferry without sealing (insecure_transport): what encryption costs */
	{.name = "ferry-insecure", .in_full = 1, .run = run_ferry, .insecure = 1},
	/* ferry-multifdN: N channels; the full run has ferry-multifd2 */
	{.name = "ferry-multifd", .usage = "ferry-multifdN", .numbered = 1, .in_full = 1, .run = run_ferry,
	 .channels = 2},
};

#define NMODES (sizeof(modes) / sizeof(modes[0]))

int mode_find(const char *name, struct mode *out)
{
	for (size_t i = 0; i < NMODES; i++) {
		const struct mode *m = &modes[i];
		size_t len = strlen(m->name);

		if (!m->numbered && !strcmp(name, m->name)) {
			*out = *m;
			return 0;
		}
		if (m->numbered && !strncmp(name, m->name, len) && atoi(name + len) > 0) {
			*out = *m;
			out->channels = atoi(name + len);
			return 0;
		}
	}
	return -1;
}

void modes_full_list(char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = 0;
	for (size_t i = 0; i < NMODES && o < len; i++) {
		const struct mode *m = &modes[i];

		if (!m->in_full)
			continue;
		if (m->numbered)
			o += (size_t)snprintf(buf + o, len - o, "%s%s%d", o ? "," : "", m->name, m->channels);
		else
			o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? "," : "", m->name);
	}
}

void modes_usage(FILE *f)
{
	int col = 6; /* "modes:" */

	fputs("modes:", f);
	for (size_t i = 0; i < NMODES; i++) {
		const char *name = modes[i].usage ? modes[i].usage : modes[i].name;
		int len = (int)strlen(name);

		if (col + 1 + len > 80) {
			fputs("\n      ", f);
			col = 6;
		}
		fprintf(f, " %s", name);
		col += 1 + len;
	}
	fputc('\n', f);
}
