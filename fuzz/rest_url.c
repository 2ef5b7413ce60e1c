/* Fuzzes the one REST parser that is reachable without libmicrohttpd:
 * cluster_split_url (agent/cluster.h), which splits a request URL
 * "/v1/nodes/NODE/REST" into the node to forward to and its path. The URL
 * is the caller's, so it is outside input. (The rest of the routing lives
 * in static functions of agent/api.c; docs/fuzzing.md says what covers the
 * request bodies.)
 *
 * Input: the URL (no NUL inside: libmicrohttpd hands over a C string).
 * Properties, with the buffer sizes agent/api.c uses and with tiny ones:
 * on success node is 1.. bytes without '/', path starts "/v1/", and
 * "/v1/nodes/" NODE PATH-without-"/v1" gives the URL back. */
#include "agent/cluster.h"
#include "fuzz/fuzz.h"

FUZZ_INIT_QUIET()

static void split(const char *url, size_t nodelen, size_t pathlen)
{
	char *node = malloc(nodelen), *path = malloc(pathlen), *back = NULL;
	size_t n;

	if (!node || !path)
		goto out;
	if (cluster_split_url(url, node, nodelen, path, pathlen) < 0)
		goto out;
	fuzz_assert(node[0] != '\0' && strlen(node) < nodelen && !strchr(node, '/'));
	fuzz_assert(strlen(path) < pathlen && !strncmp(path, "/v1/", 4));
	n = strlen("/v1/nodes/") + strlen(node) + strlen(path + 3) + 1;
	back = malloc(n);
	if (back) {
		snprintf(back, n, "/v1/nodes/%s%s", node, path + 3);
		fuzz_assert(!strcmp(back, url));
	}
out:
	free(node);
	free(path);
	free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *url;

	if (memchr(data, '\0', size))
		return 0;
	url = malloc(size + 1);
	if (!url)
		return 0;
	memcpy(url, data, size);
	url[size] = '\0';
	split(url, 64, 512);
	split(url, 2, 5);
	free(url);
	return 0;
}
