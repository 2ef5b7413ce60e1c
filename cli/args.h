/* ferryctl's arguments: numbers with their range, names as KubeVirt takes
 * them, and "--help" for every subcommand. Pure but for the printing
 * wrappers; tests/unit/test_cli_args.c covers the parsing.
 *
 * A number is the whole argument, decimal, with an optional '-': "five",
 * "5s", " 5", "0x10" and "" are not numbers (atoi would have made "five" a
 * 0, which turns a timeout off). The range is the setting's own
 * (schema/mig_settings.h for the migration settings), so ferryctl refuses
 * what ferryd would refuse, naming the option rather than the REST key. */
#ifndef FERRY_CLI_ARGS_H
#define FERRY_CLI_ARGS_H

#include <stddef.h>

/* 0 with *out set, or -EINVAL with err set:
 *   "--progress-timeout: 'five' is not a number"
 *   "--progress-timeout: 0 is out of range (allowed: 1..86400)" */
int arg_parse_int(const char *opt, const char *arg, long long min, long long max, int *out,
		  char *err, size_t errlen);
/* The same, printing "ferryctl: <err>" on stderr. */
int arg_int(const char *opt, const char *arg, long long min, long long max, int *out);

/* A VM's or a migration's name (what names it: "VM", "NAME"): 0, or -EINVAL
 * after printing "ferryctl: VM: \"Bad_Name\" is not a valid name: ..."
 * (schema_check_dns_label's rule). */
int arg_name(const char *what, const char *name);

/* Nonzero when argv (a subcommand's arguments) holds -h or --help before
 * a "--". */
int arg_wants_help(int argc, char **argv);

/* The arguments of a subcommand that takes only positional ones: between
 * min and max of them, and no option (an argument starting with '-').
 * 0, or 2 (the usage exit status) after printing what was wrong and
 * "usage: ferryctl <usage>". */
int arg_positional(int argc, char **argv, int min, int max, const char *usage);

/* ferryctl's -o / --output, wherever it is on the line: kubectl's users
 * write `ferryctl get vmim -o json`. Takes "-o FMT", "-oFMT", "--output FMT"
 * and "--output=FMT" out of argv[0..*argc) (before a "--"), compacting it,
 * and sets *output to the last one given. 0, or -EINVAL when -o has no
 * value (err set). */
int arg_take_output(int *argc, char **argv, const char **output, char *err, size_t errlen);

#endif
