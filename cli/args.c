/* ferryctl's argument checks (see args.h). */
#include "cli/args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/check.h"

int arg_parse_int(const char *opt, const char *arg, long long min, long long max, int *out,
		  char *err, size_t errlen)
{
	const char *digits = arg[0] == '-' ? arg + 1 : arg;
	long long v;
	char *end;

	if (!digits[0] || strspn(digits, "0123456789") != strlen(digits)) {
		snprintf(err, errlen, "%s: '%s' is not a number", opt, arg);
		return -EINVAL;
	}
	errno = 0;
	v = strtoll(arg, &end, 10);
	if (errno == ERANGE || v < min || v > max) {
		snprintf(err, errlen, "%s: %s is out of range (allowed: %lld..%lld)", opt, arg, min,
			 max);
		return -EINVAL;
	}
	*out = (int)v;
	return 0;
}

int arg_int(const char *opt, const char *arg, long long min, long long max, int *out)
{
	char err[300];
	int r = arg_parse_int(opt, arg, min, max, out, err, sizeof(err));

	if (r < 0)
		fprintf(stderr, "ferryctl: %s\n", err);
	return r;
}

int arg_name(const char *what, const char *name)
{
	struct schema_err e;

	if (schema_check_dns_label(&e, what, name) == 0)
		return 0;
	fprintf(stderr, "ferryctl: %s\n", e.msg);
	return -EINVAL;
}

int arg_wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return 0;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
	}
	return 0;
}

int arg_positional(int argc, char **argv, int min, int max, const char *usage)
{
	for (int i = 0; i < argc; i++) {
		if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "ferryctl: unknown option %s\nusage: ferryctl %s\n", argv[i],
				usage);
			return 2;
		}
	}
	if (argc < min || argc > max) {
		if (argc > max)
			fprintf(stderr, "ferryctl: unexpected argument '%s'\n", argv[max]);
		fprintf(stderr, "usage: ferryctl %s\n", usage);
		return 2;
	}
	return 0;
}

int arg_take_output(int *argc, char **argv, const char **output, char *err, size_t errlen)
{
	int n = 0, i;

	for (i = 0; i < *argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--"))
			break;
		if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
			if (i + 1 >= *argc) {
				snprintf(err, errlen, "%s needs a value: table, json or yaml", a);
				return -EINVAL;
			}
			*output = argv[++i];
		} else if (!strncmp(a, "--output=", 9)) {
			*output = a + 9;
		} else if (!strncmp(a, "-o", 2)) {
			*output = a + 2;
		} else {
			argv[n++] = argv[i];
		}
	}
	for (; i < *argc; i++)
		argv[n++] = argv[i];
	*argc = n;
	return 0;
}
