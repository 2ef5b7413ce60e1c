/* ferryctl pki init / issue: local files only, no agent involved. */
#include "cli/pki.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "transport/pki.h"

static int usage(void)
{
	fprintf(stderr, "usage: ferryctl %s\n", PKI_HELP);
	return 2;
}

int pki_main(int argc, char **argv)
{
	static const struct option o[] = {{"dir", required_argument, NULL, 'd'},
					  {"ca-dir", required_argument, NULL, 'c'},
					  {"node", required_argument, NULL, 'n'},
					  {"out", required_argument, NULL, 'o'},
					  {"days", required_argument, NULL, 'D'},
					  {NULL, 0, NULL, 0}};
	const char *dir = NULL, *ca_dir = NULL, *node = NULL, *out = NULL;
	int days = -1, init, ch, r;
	char err[512];

	if (argc < 1 || (strcmp(argv[0], "init") && strcmp(argv[0], "issue")))
		return usage();
	init = !strcmp(argv[0], "init");
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (ch) {
		case 'd': dir = optarg; break;
		case 'c': ca_dir = optarg; break;
		case 'n': node = optarg; break;
		case 'o': out = optarg; break;
		case 'D':
			/* 0 days makes a certificate that has expired already:
			 * how a cluster checks that it refuses expired ones. */
			if (arg_int("--days", optarg, 0, 36500, &days) < 0)
				return 2;
			break;
		default: return usage();
		}
	}
	if (optind != argc || (init ? !dir : !ca_dir || !node || !out))
		return usage();
	if (init)
		r = pki_init_ca(dir, days < 0 ? PKI_CA_DAYS : days, err, sizeof(err));
	else
		r = pki_issue(ca_dir, node, out, days < 0 ? PKI_NODE_DAYS : days, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ferryctl: %s\n", err);
		return 1;
	}
	if (init)
		printf("CA written: %s/ca.crt, %s/ca.key (keep the key offline)\n", dir, dir);
	else
		printf("node %s: %s/node.crt, %s/node.key, %s/ca.crt\n", node, out, out, out);
	return 0;
}
