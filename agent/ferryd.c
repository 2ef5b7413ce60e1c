/* ferryd: the per-host agent. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/peers.h"
#include "util/log.h"

static void usage(void)
{
	fprintf(stderr, "usage: ferryd --config FILE | --version\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	struct ferry_config *cfg = NULL;
	struct agent a;
	struct peers peers;
	struct api api;
	const char *path = NULL;
	char err[1024];
	sigset_t set;
	int sig, c, r;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (c == 'c') {
			path = optarg;
		} else if (c == 'V') {
			printf("ferryd %s\n", FERRY_VERSION);
			return 0;
		} else {
			usage();
			return c == 'h' ? 0 : 2;
		}
	}
	if (!path) {
		usage();
		return 2;
	}
	r = config_load(path, &cfg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ferryd: %s\n", err);
		return 1;
	}
	/* Signals are taken synchronously below; every thread inherits the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* The core first, then its front doors: no link or request before
	 * the tables are loaded. */
	r = agent_init(&a, cfg, err, sizeof(err));
	if (r == 0)
		r = peers_start(&peers, &a, err, sizeof(err));
	if (r == 0)
		r = api_start(&api, &a, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ferryd: %s\n", err);
		log_error("agent", "event=start_failed reason=\"%s\"", log_q(err));
		return 1;
	}
	log_info("agent", "event=ready node=%s", cfg->node);
	for (;;) {
		sigwait(&set, &sig);
		if (sig != SIGHUP)
			break;
		(void)agent_reload_tls(&a);
	}
	log_info("agent", "event=stopping signal=%d", sig);
	api_stop(&api);
	peers_stop(&peers);
	agent_shutdown(&a);
	peers_close(&peers);
	config_free(cfg);
	return 0;
}
