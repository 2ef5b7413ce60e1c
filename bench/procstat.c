/*
 * procstat.c: what a process cost during a migration, from /proc: CPU
 * seconds (utime + stime) since ps_begin and the peak RSS (VmHWM).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"

static double proc_cpu_s(pid_t p)
{
	char path[64], buf[1024], *s;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)p);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	s = strrchr(buf, ')');
	if (!s)
		return -1;
	/* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
	if (sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long proc_hwm_kib(pid_t p)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)p);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6)) {
			v = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

void ps_begin(struct psample *s, pid_t p)
{
	s->pid = p;
	s->cpu0 = p > 0 ? proc_cpu_s(p) : 0;
	if (s->cpu0 < 0)
		s->cpu0 = 0;
	s->cpu = s->cpu0;
	s->hwm_kib = 0;
}

void ps_update(struct psample *s)
{
	double c;
	long h;

	if (s->pid <= 0)
		return;
	c = proc_cpu_s(s->pid);
	h = proc_hwm_kib(s->pid);
	if (c >= 0)
		s->cpu = c;
	if (h > s->hwm_kib)
		s->hwm_kib = h;
}

