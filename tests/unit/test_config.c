/* ferryd's YAML config: the documented example, defaults, and the errors
 * that must stop the daemon instead of being guessed around. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/config.h"

static const char example[] =
	"node: node-a                         # required, [a-z0-9-]{1,63}\n"
	"listen: 127.0.0.1:7700               # peer links (host:port)\n"
	"api_socket: /run/ferry/node-a/api.sock\n"
	"api_listen: \"\"\n"
	"state_dir: /var/lib/ferry/node-a\n"
	"cluster_key: /etc/ferry/cluster.key\n"
	"labels: {zone: a}\n"
	"networks: [default]\n"
	"cpu_models: [qemu64, host]\n"
	"qemu: {binary: qemu-system-x86_64, accel: kvm:tcg}\n"
	"limits: {parallel_outbound: 2, parallel_inbound: 2}\n"
	"migration: {progress_timeout_s: 150, completion_timeout_s_per_gib: 800, "
	"max_bandwidth_mibps: 0, downtime_limit_ms: 300, compress: true, multifd_channels: 0}\n"
	"tokens: []\n"
	"peers:\n"
	"  - {name: node-b, address: 127.0.0.1:7701}\n";

static int parse(const char *yaml, struct ferry_config **out, char *err, size_t errlen)
{
	return config_parse(yaml, strlen(yaml), "ferryd.yaml", out, err, errlen);
}

static const char *parse_fail(const char *yaml)
{
	static char err[512];
	struct ferry_config *c = (struct ferry_config *)1;

	err[0] = '\0';
	assert_int_equal(parse(yaml, &c, err, sizeof(err)), -EINVAL);
	assert_null(c);
	return err;
}

static void test_example(void **state)
{
	char err[256] = "";
	struct ferry_config *c = NULL;

	(void)state;
	assert_int_equal(parse(example, &c, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(c->node, "node-a");
	assert_string_equal(c->listen_host, "127.0.0.1");
	assert_int_equal(c->listen_port, 7700);
	assert_string_equal(c->api_socket, "/run/ferry/node-a/api.sock");
	assert_string_equal(c->api_listen, "");
	assert_string_equal(c->state_dir, "/var/lib/ferry/node-a");
	assert_string_equal(c->cluster_key, "/etc/ferry/cluster.key");
	assert_int_equal(c->n_labels, 1);
	assert_string_equal(c->labels[0].key, "zone");
	assert_string_equal(c->labels[0].value, "a");
	assert_int_equal(c->n_networks, 1);
	assert_string_equal(c->networks[0], "default");
	assert_int_equal(c->n_cpu_models, 2);
	assert_string_equal(c->cpu_models[0], "qemu64");
	assert_string_equal(c->cpu_models[1], "host");
	assert_string_equal(c->qemu_binary, "qemu-system-x86_64");
	assert_string_equal(c->accel, "kvm:tcg");
	assert_int_equal(c->parallel_outbound, 2);
	assert_int_equal(c->parallel_inbound, 2);
	assert_int_equal(c->mig.progress_timeout_s, 150);
	assert_int_equal(c->mig.completion_timeout_s_per_gib, 800);
	assert_int_equal(c->mig.max_bandwidth_mibps, 0);
	assert_int_equal(c->mig.downtime_limit_ms, 300);
	assert_int_equal(c->mig.compress, 1);
	assert_int_equal(c->mig.multifd_channels, 0);
	assert_int_equal(c->n_peers, 1);
	assert_string_equal(c->peers[0].name, "node-b");
	assert_string_equal(c->peers[0].host, "127.0.0.1");
	assert_int_equal(c->peers[0].port, 7701);
	config_free(c);
}

static void test_defaults(void **state)
{
	char err[256] = "";
	struct ferry_config *c = NULL;

	(void)state;
	assert_int_equal(parse("node: n1\n", &c, err, sizeof(err)), 0);
	assert_string_equal(c->listen_host, "127.0.0.1");
	assert_int_equal(c->listen_port, 7700);
	assert_string_equal(c->api_socket, "/run/ferry/api.sock");
	assert_string_equal(c->api_listen, "");
	assert_string_equal(c->state_dir, "/var/lib/ferry/n1");
	assert_string_equal(c->cluster_key, "/etc/ferry/cluster.key");
	assert_int_equal(c->n_labels, 0);
	assert_int_equal(c->n_networks, 1);
	assert_string_equal(c->networks[0], "default");
	assert_string_equal(c->qemu_binary, "qemu-system-x86_64");
	assert_string_equal(c->accel, "kvm:tcg");
	assert_int_equal(c->n_cpu_models, 2); /* kvm can offer host */
	assert_string_equal(c->cpu_models[1], "host");
	assert_int_equal(c->parallel_outbound, 2);
	assert_int_equal(c->parallel_inbound, 2);
	assert_int_equal(c->mig.progress_timeout_s, 150);
	assert_int_equal(c->mig.completion_timeout_s_per_gib, 800);
	assert_int_equal(c->mig.max_bandwidth_mibps, 0);
	assert_int_equal(c->mig.downtime_limit_ms, 300);
	assert_int_equal(c->mig.compress, 1);
	assert_int_equal(c->mig.multifd_channels, 0);
	assert_int_equal(c->n_peers, 0);
	assert_null(config_find_peer(c, "x"));
	config_free(c);

	/* tcg-only: no host-model CPU to offer */
	assert_int_equal(parse("node: n1\nqemu: {accel: tcg}\nmigration: {progress_timeout_s: 5}\n",
			       &c, err, sizeof(err)),
			 0);
	assert_int_equal(c->n_cpu_models, 1);
	assert_string_equal(c->cpu_models[0], "qemu64");
	assert_string_equal(c->qemu_binary, "qemu-system-x86_64"); /* sibling kept */
	assert_int_equal(c->mig.progress_timeout_s, 5);
	assert_int_equal(c->mig.completion_timeout_s_per_gib, 800);
	config_free(c);

	/* explicitly empty lists stay empty */
	assert_int_equal(parse("node: n1\nnetworks: []\ncpu_models: []\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c->n_networks, 0);
	assert_int_equal(c->n_cpu_models, 0);
	config_free(c);
}

static void test_missing_node(void **state)
{
	(void)state;
	assert_string_equal(parse_fail("listen: 127.0.0.1:7700\n"), "ferryd.yaml:1: node is required");
	assert_string_equal(parse_fail("node: Node_A\n"),
			    "ferryd.yaml:1: node must be 1..63 characters of a-z, 0-9 and '-' "
			    "(got \"Node_A\")");
	assert_string_equal(parse_fail(""), "ferryd.yaml:1: empty document");
}

static void test_unknown_key(void **state)
{
	(void)state;
	assert_string_equal(parse_fail("node: a\nlisten_addr: 127.0.0.1:1\n"),
			    "ferryd.yaml:2: unknown key \"listen_addr\"");
	assert_string_equal(parse_fail("node: a\nmigration:\n  progress_timeout: 10\n"),
			    "ferryd.yaml:3: unknown key \"migration.progress_timeout\"");
	assert_string_equal(parse_fail("node: a\npeers:\n  - name: b\n    address: h:1\n    port: 2\n"),
			    "ferryd.yaml:5: unknown key \"peers[0].port\"");
	assert_string_equal(parse_fail("node: a\nnode: b\n"), "ferryd.yaml:2: duplicate key \"node\"");
}

static void test_bad_values(void **state)
{
	(void)state;
	assert_string_equal(parse_fail("node: a\nlisten: 127.0.0.1:99999\n"),
			    "ferryd.yaml:2: listen must be host:port with a port in 1..65535 "
			    "(got \"127.0.0.1:99999\")");
	assert_string_equal(parse_fail("node: a\nlisten: 127.0.0.1\n"),
			    "ferryd.yaml:2: listen must be host:port with a port in 1..65535 "
			    "(got \"127.0.0.1\")");
	assert_string_equal(parse_fail("node: a\nlisten: \"127.0.0.1:0\"\n"),
			    "ferryd.yaml:2: listen must be host:port with a port in 1..65535 "
			    "(got \"127.0.0.1:0\")");
	assert_string_equal(parse_fail("node: a\nlisten: 7700\n"),
			    "ferryd.yaml:2: listen must be a string \"host:port\", not an integer");
	assert_string_equal(parse_fail("node: a\napi_listen: localhost\n"),
			    "ferryd.yaml:2: api_listen must be empty or host:port with a port in "
			    "1..65535 (got \"localhost\")");
	assert_string_equal(parse_fail("node: a\nstate_dir: var/lib\n"),
			    "ferryd.yaml:2: state_dir must be an absolute path (got \"var/lib\")");
	assert_string_equal(parse_fail("node: a\nqemu: {accel: hvf}\n"),
			    "ferryd.yaml:2: qemu.accel must be kvm, tcg or a fallback list like "
			    "kvm:tcg (got \"hvf\")");
	assert_string_equal(parse_fail("node: a\nqemu: {accel: tcg}\ncpu_models: [qemu64, host]\n"),
			    "ferryd.yaml:3: cpu_models lists host, which needs kvm, but qemu.accel "
			    "is tcg");
	assert_string_equal(parse_fail("node: a\nlimits: {parallel_inbound: 0}\n"),
			    "ferryd.yaml:2: limits.parallel_inbound must be between 1 and 64 (got 0)");
	assert_string_equal(parse_fail("node: a\nmigration:\n  compress: 1\n"),
			    "ferryd.yaml:3: migration.compress must be true or false, not an integer");
	assert_string_equal(parse_fail("node: a\nmigration:\n  progress_timeout_s: 0\n"),
			    "ferryd.yaml:3: migration.progress_timeout_s must be between 1 and 86400 "
			    "(got 0)");
	assert_string_equal(parse_fail("node: a\nmigration: {downtime_limit_ms: -1}\n"),
			    "ferryd.yaml:2: migration.downtime_limit_ms must be between 1 and 2000000 "
			    "(got -1)");
	/* A combination that cannot work is refused at load, naming both. */
	assert_string_equal(parse_fail("node: a\nmigration: {downtime_step_ms: 100, "
				       "downtime_limit_ms: 2000}\n"),
			    "ferryd.yaml:2: migration: downtime_max_ms (2000, agent default) must "
			    "be above downtime_limit_ms (2000, agent default) while "
			    "downtime_step_ms (100, agent default) is on: a step could not raise "
			    "the limit");
	assert_string_equal(parse_fail("node: a\ntokens: [{name: t, role: admin}]\n"),
			    "ferryd.yaml:2: tokens[0].token must be at least 16 characters");
	assert_string_equal(parse_fail("node: a\ntokens: [{name: t, token: 0123456789abcdef, role: root}]\n"),
			    "ferryd.yaml:2: tokens[0].role must be viewer, migrator or admin (got \"root\")");
	assert_string_equal(parse_fail("node: a\nnetworks: [default, default]\n"),
			    "ferryd.yaml:2: networks[1]: duplicate \"default\"");
	assert_string_equal(parse_fail("node: a\nnetworks: default\n"),
			    "ferryd.yaml:2: networks must be a list, not a string");
	assert_string_equal(parse_fail("node: a\napi_socket: /run/ferry/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
				       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
				       "aaaaaaaaaaaaaaaaa/api.sock\n"),
			    "ferryd.yaml:2: api_socket is too long for a unix socket (max 107 "
			    "characters)");
	assert_string_equal(parse_fail("node: a\nlabels: {zone: \"a b\"}\n"),
			    "ferryd.yaml:2: labels.zone: label value \"a b\" must be 0..63 characters "
			    "of A-Z, a-z, 0-9, '.', '_', '-'");
}

static void test_peers(void **state)
{
	char err[256] = "";
	struct ferry_config *c = NULL;
	const struct ferry_peer_cfg *p;

	(void)state;
	assert_int_equal(parse("node: node-a\nlisten: \"[::1]:7700\"\n"
			       "peers:\n"
			       "  - {name: node-b, address: 127.0.0.1:7701}\n"
			       "  - name: node-c\n"
			       "    address: \"[fd00::3]:7702\"\n"
			       "  - {name: node-d, address: host-d.example:7703}\n",
			       &c, err, sizeof(err)),
			 0);
	assert_string_equal(c->listen_host, "::1");
	assert_int_equal(c->n_peers, 3);
	p = config_find_peer(c, "node-c");
	assert_non_null(p);
	assert_string_equal(p->host, "fd00::3");
	assert_int_equal(p->port, 7702);
	p = config_find_peer(c, "node-d");
	assert_non_null(p);
	assert_string_equal(p->host, "host-d.example");
	assert_int_equal(p->port, 7703);
	assert_ptr_equal(config_find_peer(c, "node-b"), &c->peers[0]);
	assert_null(config_find_peer(c, "node-a"));
	assert_null(config_find_peer(c, "node"));
	config_free(c);

	assert_string_equal(parse_fail("node: a\npeers:\n  - {name: b, address: h:1}\n"
				       "  - {name: b, address: h:2}\n"),
			    "ferryd.yaml:4: peers[1].name: duplicate peer \"b\"");
	assert_string_equal(parse_fail("node: a\npeers:\n  - {name: a, address: h:1}\n"),
			    "ferryd.yaml:3: peers[0].name: a node is not its own peer (\"a\")");
	assert_string_equal(parse_fail("node: a\npeers:\n  - {name: b}\n"),
			    "ferryd.yaml:3: peers[0].address is required");
	assert_string_equal(parse_fail("node: a\npeers:\n  - {name: b, address: \"fd00::3:7702\"}\n"),
			    "ferryd.yaml:3: peers[0].address must be host:port with a port in "
			    "1..65535 (got \"fd00::3:7702\")");
	assert_string_equal(parse_fail("node: a\npeers: {name: b}\n"),
			    "ferryd.yaml:2: peers must be a list, not a mapping");
	assert_string_equal(parse_fail("node: a\npeers:\n  - b\n"),
			    "ferryd.yaml:3: peers[0] must be a mapping, not a string");
}

/* Named policies: parsed with unset fields left unset, matched by VM labels
 * (all selector entries must match; the first matching policy wins). */
/* tls: all three paths or none; unsealed frames only on loopback unless the
 * operator allows it explicitly. */
static void test_transport(void **state)
{
	struct ferry_config *c = NULL;
	char err[512];

	(void)state;
	assert_non_null(strstr(parse_fail("node: a\ntls: {ca: /etc/ca.crt, cert: /etc/n.crt}\n"),
			       "tls needs all of ca, cert and key"));
	assert_non_null(strstr(parse_fail("node: a\nlisten: 10.0.0.1:7700\ninsecure_transport: true\n"),
			       "insecure_transport_remote"));
	assert_int_equal(parse("node: a\nlisten: 10.0.0.1:7700\ninsecure_transport: true\n"
			       "insecure_transport_remote: true\n", &c, err, sizeof(err)), 0);
	config_free(c);
	assert_int_equal(parse("node: a\ninsecure_transport: true\n"
			       "tls: {ca: /etc/ca.crt, cert: /etc/n.crt, key: /etc/n.key}\n",
			       &c, err, sizeof(err)), 0);
	assert_true(c->insecure_transport);
	assert_string_equal(c->tls_key, "/etc/n.key");
	config_free(c);
	assert_int_equal(parse("node: a\n", &c, err, sizeof(err)), 0);
	assert_false(c->insecure_transport); /* sealed by default */
	config_free(c);
}

static void test_policies(void **state)
{
	char err[256] = "";
	struct ferry_config *c = NULL;
	struct ferry_kv db[] = {{"tier", "db"}, {"zone", "a"}}, web[] = {{"tier", "web"}};
	const struct ferry_policy_cfg *p;

	(void)state;
	assert_int_equal(parse("node: n1\n"
			       "policies:\n"
			       "  - name: databases\n"
			       "    selector: {tier: db}\n"
			       "    migration: {post_copy: true, escalate_after_s: 20}\n"
			       "  - name: everyone\n"
			       "    migration: {auto_converge: true}\n",
			       &c, err, sizeof(err)),
			 0);
	assert_int_equal(c->n_policies, 2);
	p = config_match_policy(c, db, 2);
	assert_non_null(p);
	assert_string_equal(p->name, "databases");
	assert_int_equal(p->mig.post_copy, 1);
	assert_int_equal(p->mig.escalate_after_s, 20);
	assert_int_equal(p->mig.auto_converge, FERRY_UNSET);
	assert_int_equal(p->mig.progress_timeout_s, FERRY_UNSET);
	p = config_match_policy(c, web, 1);
	assert_non_null(p);
	assert_string_equal(p->name, "everyone"); /* empty selector matches all */
	assert_int_equal(p->mig.auto_converge, 1);
	config_free(c);

	assert_non_null(strstr(parse_fail("node: n1\npolicies:\n  - name: x\n    migration: {escalate_after_s: 0}\n"),
			       "escalate_after_s must be between 1 and 86400"));
	/* A policy over the defaults must work too: post-copy after 200 s
	 * would come after the 150 s progress timeout. */
	assert_non_null(strstr(parse_fail("node: n1\npolicies:\n  - name: x\n    migration: "
					  "{post_copy: true, escalate_after_s: 200}\n"),
			       "policies[0].migration: escalate_after_s (200, policy) must be below "
			       "progress_timeout_s (150, agent default)"));
	assert_non_null(strstr(parse_fail("node: n1\npolicies:\n  - name: x\n  - name: x\n"),
			       "duplicate policy"));
}

static void test_load(void **state)
{
	char dir[] = "/tmp/ferry-config-XXXXXX", path[64], err[256];
	struct ferry_config *c = NULL;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ferryd.yaml", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, example, strlen(example)), (ssize_t)strlen(example));
	close(fd);
	assert_int_equal(config_load(path, &c, err, sizeof(err)), 0);
	assert_string_equal(c->node, "node-a");
	config_free(c);
	unlink(path);
	assert_int_equal(config_load(path, &c, err, sizeof(err)), -ENOENT);
	assert_null(c);
	assert_non_null(strstr(err, "ferryd.yaml: No such file or directory"));
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_missing_node),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_peers),
		cmocka_unit_test(test_transport),
		cmocka_unit_test(test_policies),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
