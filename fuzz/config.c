/* Fuzzes ferryd's configuration file (agent/config.h: config_parse, the
 * text behind config_load), YAML decoded by the schema shared with the VM
 * spec. Not input from the network, but from an operator's editor, where a
 * typo must give an error with a line, not a crash.
 *
 * Properties: a failure says why; an accepted config has a node name and a
 * listen port in range, and its peers can be found by name. */
#include "agent/config.h"
#include "fuzz/fuzz.h"

FUZZ_INIT_QUIET()

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ferry_kv labels[] = {{"zone", "a"}, {"tier", "gold"}};
	struct ferry_config *c = NULL;
	char err[512] = "";

	if (config_parse((const char *)data, size, "ferryd.yaml", &c, err, sizeof(err)) < 0) {
		fuzz_assert(c == NULL && err[0] != '\0');
		return 0;
	}
	fuzz_assert(c->node[0] != '\0');
	fuzz_assert(c->listen_port >= 1 && c->listen_port <= 65535);
	for (size_t i = 0; i < c->n_peers; i++)
		fuzz_assert(config_find_peer(c, c->peers[i].name) != NULL);
	(void)config_match_policy(c, labels, 2);
	config_free(c);
	return 0;
}
