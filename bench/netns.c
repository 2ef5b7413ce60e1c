/*
 * netns.c: the emulated links. lo is the host's loopback; every other link
 * is a network namespace of its own whose loopback a tbf qdisc shapes, and
 * the runs' QEMUs, relays and agents are started inside it. One namespace
 * exists at a time, made before a link's runs and deleted after them.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"

/* the current namespace, "" = none (lo, or between links) */
static char netns[64];

/* The links --link knows: tbf rate and burst (at least rate/HZ); lo has
 * no namespace. */
static const struct {
	const char *name, *rate, *burst;
} link_specs[] = {{"lo", NULL, NULL},
		  {"10gbit", "10gbit", "12500kb"},
		  {"1gbit", "1gbit", "1250kb"},
		  {"100mbit", "100mbit", "256kb"}};

static int link_spec(const char *name)
{
	for (size_t i = 0; i < sizeof(link_specs) / sizeof(link_specs[0]); i++)
		if (!strcmp(name, link_specs[i].name))
			return (int)i;
	return -1;
}

int link_known(const char *name)
{
	return link_spec(name) >= 0;
}

const char *netns_name(void)
{
	return netns;
}

/* Makes link's namespace (none for lo). The name is the same for every
 * link of an invocation: only one exists at a time. */
int netns_create(const char *link)
{
	int i = link_spec(link);
	const char *rate = link_specs[i].rate, *burst = link_specs[i].burst;

	if (!rate)
		return 0;
	snprintf(netns, sizeof(netns), "ferry-bench-%d", (int)getpid());
	{
		char *a1[] = {"ip", "netns", "add", netns, NULL};
		char *a2[] = {"ip", "-n", netns, "link", "set", "lo", "up", NULL};
		char *a3[] = {"tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", (char *)rate, "burst",
			      (char *)burst, "latency", "100ms", NULL};

		if (run(a1, -1, 0, NULL, NULL, 30) != 0) {
			netns[0] = 0;
			msg("cannot create a network namespace (root and iproute2 needed)");
			return -1;
		}
		if (run(a2, -1, 0, NULL, NULL, 30) != 0 || run(a3, -1, 1, NULL, NULL, 30) != 0) {
			msg("cannot shape the namespace's loopback (tbf)");
			return -1;
		}
	}
	msg("link %s: namespace %s, loopback tbf rate %s burst %s", link, netns, rate, burst);
	return 0;
}

/*
 * Deletes the namespace. Between links it runs outside cleanup_all, so it
 * sets the cleaning flag itself: a signal arriving then must not cut `ip netns
 * del` short. The name is forgotten only once deleted: a failed delete
 * ends the loop over links (the next link reuses the name) and
 * cleanup_all tries again.
 */
int netns_del(void)
{
	char *argv[] = {"ip", "netns", "del", netns, NULL};
	int was, r;

	if (!netns[0])
		return 0;
	was = children_cleaning(1);
	r = run(argv, -1, 0, NULL, NULL, 30);
	children_cleaning(was);
	if (r != 0) {
		msg("warning: ip netns del %s failed (%d)", netns, r);
		return -1;
	}
	netns[0] = 0;
	return 0;
}

/* Bytes through the namespace's loopback so far (tx; on lo every byte is
 * also rx once): the emulated link, both directions, TCP/IP headers
 * included. -1 without a namespace. */
int64_t link_bytes(const char *dir)
{
	char js[PATH_MAX + 32];
	char *argv[] = {"ip", "-n", netns, "-s", "-j", "link", "show", "dev", "lo", NULL};
	struct json_object *a, *s = NULL, *tx = NULL;
	int64_t v = -1;

	if (!netns[0])
		return -1;
	snprintf(js, sizeof(js), "%s/link.json", dir);
	unlink(js);
	if (run(argv, -1, 0, js, NULL, 10) != 0)
		return -1;
	a = json_object_from_file(js);
	if (a && json_object_is_type(a, json_type_array) && json_object_array_length(a) == 1 &&
	    json_object_object_get_ex(json_object_array_get_idx(a, 0), "stats64", &s) &&
	    json_object_object_get_ex(s, "tx", &tx))
		v = jint(tx, "bytes");
	if (a)
		json_object_put(a);
	unlink(js);
	return v;
}
