#include "agent/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <json-c/json.h>

#include "schema/check.h"
#include "schema/input.h"
#include "schema/mig_settings.h"
#include "schema/yaml.h"
#include "util/log.h"
#include "util/net.h"

#define COFF(m) offsetof(struct ferry_config, m)
#define POFF(m) offsetof(struct ferry_peer_cfg, m)
#define SZ(t, m) sizeof(((t *)0)->m)

static const struct schema_field qemu_fields[] = {
	{"binary", SCHEMA_STR, COFF(qemu_binary), SZ(struct ferry_config, qemu_binary), 0, NULL,
	 NULL, 0},
	{"accel", SCHEMA_STR, COFF(accel), SZ(struct ferry_config, accel), 0, NULL, NULL, 0},
	{"user", SCHEMA_STR, COFF(qemu_user), SZ(struct ferry_config, qemu_user), 0, NULL, NULL, 0},
	{0},
};

static const struct schema_field tls_fields[] = {
	{"ca", SCHEMA_STR, COFF(tls_ca), SZ(struct ferry_config, tls_ca), 0, NULL, NULL, 0},
	{"cert", SCHEMA_STR, COFF(tls_cert), SZ(struct ferry_config, tls_cert), 0, NULL, NULL, 0},
	{"key", SCHEMA_STR, COFF(tls_key), SZ(struct ferry_config, tls_key), 0, NULL, NULL, 0},
	{0},
};

static const struct schema_field limits_fields[] = {
	{"parallel_outbound", SCHEMA_INT, COFF(parallel_outbound), 0, 0, NULL, NULL, 0},
	{"pending_timeout_s", SCHEMA_INT, COFF(pending_timeout_s), 0, 0, NULL, NULL, 0},
	{"parallel_cluster", SCHEMA_INT, COFF(parallel_cluster), 0, 0, NULL, NULL, 0},
	{"parallel_inbound", SCHEMA_INT, COFF(parallel_inbound), 0, 0, NULL, NULL, 0},
	{0},
};

#define PLOFF(f) offsetof(struct ferry_policy_cfg, f)
static const struct schema_field policy_fields[] = {
	{"name", SCHEMA_STR, PLOFF(name), SZ(struct ferry_policy_cfg, name), 0, NULL, NULL, 0},
	{"selector", SCHEMA_KV, PLOFF(selector), 0, PLOFF(n_selector), NULL, NULL, 0},
	{"migration", SCHEMA_OBJ, PLOFF(mig), 0, 0, ferry_migration_fields, NULL, 0},
	{0},
};

static void policy_init(void *p)
{
	/* Every field unset: a policy overrides only what it names. */
	ferry_migration_unset(&((struct ferry_policy_cfg *)p)->mig);
}

#define TOFF(f) offsetof(struct ferry_token_cfg, f)
static const struct schema_field token_fields[] = {
	{"name", SCHEMA_STR, TOFF(name), SZ(struct ferry_token_cfg, name), 0, NULL, NULL, 0},
	{"token", SCHEMA_STR, TOFF(token), SZ(struct ferry_token_cfg, token), 0, NULL, NULL, 0},
	{"role", SCHEMA_STR, TOFF(role), SZ(struct ferry_token_cfg, role), 0, NULL, NULL, 0},
	{0},
};

static const struct schema_field peer_fields[] = {
	{"name", SCHEMA_STR, POFF(name), SZ(struct ferry_peer_cfg, name), 0, NULL, NULL, 0},
	{"address", SCHEMA_HOSTPORT, POFF(host), SZ(struct ferry_peer_cfg, host), POFF(port), NULL,
	 NULL, 0},
	{0},
};

static const struct schema_field api_tls_fields[] = {
	{"cert", SCHEMA_STR, COFF(api_tls_cert), SZ(struct ferry_config, api_tls_cert), 0, NULL, NULL, 0},
	{"key", SCHEMA_STR, COFF(api_tls_key), SZ(struct ferry_config, api_tls_key), 0, NULL, NULL, 0},
	{0},
};

static const struct schema_field config_fields[] = {
	{"node", SCHEMA_STR, COFF(node), SZ(struct ferry_config, node), 0, NULL, NULL, 0},
	{"listen", SCHEMA_HOSTPORT, COFF(listen_host), SZ(struct ferry_config, listen_host),
	 COFF(listen_port), NULL, NULL, 0},
	{"api_socket", SCHEMA_STR, COFF(api_socket), SZ(struct ferry_config, api_socket), 0, NULL,
	 NULL, 0},
	{"api_listen", SCHEMA_STR, COFF(api_listen), SZ(struct ferry_config, api_listen), 0, NULL,
	 NULL, 0},
	{"api_tls", SCHEMA_OBJ, 0, 0, 0, api_tls_fields, NULL, 0},
	{"insecure_api", SCHEMA_BOOL, COFF(insecure_api), 0, 0, NULL, NULL, 0},
	{"state_dir", SCHEMA_STR, COFF(state_dir), SZ(struct ferry_config, state_dir), 0, NULL,
	 NULL, 0},
	{"cluster_key", SCHEMA_STR, COFF(cluster_key), SZ(struct ferry_config, cluster_key), 0,
	 NULL, NULL, 0},
	{"tls", SCHEMA_OBJ, 0, 0, 0, tls_fields, NULL, 0},
	{"insecure_transport", SCHEMA_BOOL, COFF(insecure_transport), 0, 0, NULL, NULL, 0},
	{"insecure_transport_remote", SCHEMA_BOOL, COFF(insecure_transport_remote), 0, 0, NULL,
	 NULL, 0},
	{"labels", SCHEMA_KV, COFF(labels), 0, COFF(n_labels), NULL, NULL, 0},
	{"networks", SCHEMA_STRLIST, COFF(networks), 0, COFF(n_networks), NULL, NULL, 0},
	{"cpu_models", SCHEMA_STRLIST, COFF(cpu_models), 0, COFF(n_cpu_models), NULL, NULL, 0},
	{"allowed_paths", SCHEMA_STRLIST, COFF(allowed_paths), 0, COFF(n_allowed_paths), NULL, NULL,
	 0},
	{"qemu", SCHEMA_OBJ, 0, 0, 0, qemu_fields, NULL, 0},
	{"limits", SCHEMA_OBJ, 0, 0, 0, limits_fields, NULL, 0},
	/* The agent defaults: never FERRY_UNSET once checked. */
	{"migration", SCHEMA_OBJ, COFF(mig), 0, 0, ferry_migration_fields, NULL, 0},
	{"tokens", SCHEMA_OBJLIST, COFF(tokens), sizeof(struct ferry_token_cfg), COFF(n_tokens),
	 token_fields, NULL, 0},
	{"peers", SCHEMA_OBJLIST, COFF(peers), sizeof(struct ferry_peer_cfg), COFF(n_peers),
	 peer_fields, NULL, 0},
	{"policies", SCHEMA_OBJLIST, COFF(policies), sizeof(struct ferry_policy_cfg),
	 COFF(n_policies), policy_fields, policy_init, 0},
	{0},
};

static int strlist_set(char ***l, size_t *n, const char *const *vals)
{
	size_t k = 0, i;
	char **v;

	while (vals[k])
		k++;
	v = calloc(k + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < k; i++) {
		if (!(v[i] = strdup(vals[i]))) {
			while (i--)
				free(v[i]);
			free(v);
			return -ENOMEM;
		}
	}
	*l = v;
	*n = k;
	return 0;
}

static int config_defaults(struct ferry_config *c)
{
	static const char *const networks[] = {"default", NULL};
	static const char *const allowed[] = {"/var/lib/ferry/images", NULL};
	int r;

	snprintf(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
	c->listen_port = 7700;
	snprintf(c->cluster_key, sizeof(c->cluster_key), "/etc/ferry/cluster.key");
	snprintf(c->qemu_binary, sizeof(c->qemu_binary), "qemu-system-x86_64");
	snprintf(c->accel, sizeof(c->accel), "kvm:tcg");
	snprintf(c->qemu_user, sizeof(c->qemu_user), "ferry-qemu");
	c->parallel_outbound = 2;
	c->pending_timeout_s = 600;
	c->parallel_cluster = 5;
	c->parallel_inbound = 2;
	/* The two timeouts are the product's documented defaults (150 s
	 * without progress; 800 s per GiB). */
	c->mig.progress_timeout_s = 150;
	c->mig.completion_timeout_s_per_gib = 800;
	c->mig.max_bandwidth_mibps = 0;
	c->mig.downtime_limit_ms = 300;
	c->mig.compress = 1;
	c->mig.multifd_channels = 0;
	c->mig.auto_converge = 0;
	c->mig.post_copy = 0;
	c->mig.downtime_step_ms = 0;
	c->mig.downtime_max_ms = 2000;
	c->mig.escalate_after_s = 30;
	c->mig.page_cache_mib = 256;
	r = strlist_set(&c->allowed_paths, &c->n_allowed_paths, allowed);
	return r < 0 ? r : strlist_set(&c->networks, &c->n_networks, networks);
}

static int accel_has(const char *accel, const char *what)
{
	size_t n = strlen(what);

	for (const char *p = accel; p; p = strchr(p, ':'), p = p ? p + 1 : p)
		if (!strncmp(p, what, n) && (p[n] == ':' || !p[n]))
			return 1;
	return 0;
}

/* Defaults derived from other keys. cpu_models_given: the key was present. */
static int config_finish(struct ferry_config *c, int cpu_models_given)
{
	static const char *const with_host[] = {"qemu64", "host", NULL};
	static const char *const tcg_only[] = {"qemu64", NULL};

	if (c->node[0] && !c->api_socket[0])
		snprintf(c->api_socket, sizeof(c->api_socket), "%s", "/run/ferry/api.sock");
	if (c->node[0] && !c->state_dir[0])
		snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/ferry/%s", c->node);
	if (cpu_models_given)
		return 0;
	/* "host" is a host-model CPU, which only KVM can give. */
	return strlist_set(&c->cpu_models, &c->n_cpu_models,
			   accel_has(c->accel, "kvm") ? with_host : tcg_only);
}


/* tls: all three paths or none; unsealed frames only where nobody else can
 * reach the links, unless the operator says so twice. */
static int check_transport(struct schema_err *e, const struct ferry_config *c)
{
	int n = !!c->tls_ca[0] + !!c->tls_cert[0] + !!c->tls_key[0];
	int rc;

	if (n && n != 3)
		return schema_fail(e, "tls", "tls needs all of ca, cert and key");
	if (n && ((rc = schema_check_abs_path(e, "tls.ca", c->tls_ca)) ||
		  (rc = schema_check_abs_path(e, "tls.cert", c->tls_cert)) ||
		  (rc = schema_check_abs_path(e, "tls.key", c->tls_key))))
		return rc;
	if (c->insecure_transport && !net_is_loopback(c->listen_host) && !c->insecure_transport_remote)
		return schema_fail(e, "insecure_transport",
				   "insecure_transport sends guest memory in clear; refused with a "
				   "non-loopback listen (%s) unless insecure_transport_remote: true",
				   c->listen_host);
	return 0;
}

static int check_accel(struct schema_err *e, const char *a)
{
	char buf[32];
	char *save = NULL, *t;
	int n = 0, seen_kvm = 0, seen_tcg = 0;

	snprintf(buf, sizeof(buf), "%s", a);
	for (t = strtok_r(buf, ":", &save); t; t = strtok_r(NULL, ":", &save), n++) {
		if (!strcmp(t, "kvm") && !seen_kvm)
			seen_kvm = 1;
		else if (!strcmp(t, "tcg") && !seen_tcg)
			seen_tcg = 1;
		else
			n = -100;
	}
	if (n <= 0 || a[0] == ':' || a[strlen(a) - 1] == ':' || strstr(a, "::"))
		return schema_fail(e, "qemu.accel",
				   "qemu.accel must be kvm, tcg or a fallback list like kvm:tcg "
				   "(got \"%s\")",
				   a);
	return 0;
}

static int check_strlist(struct schema_err *e, const char *key, char *const *l, size_t n,
			 int cpu)
{
	char p[96];
	int rc;

	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(l[i]);

		snprintf(p, sizeof(p), "%s[%zu]", key, i);
		if (cpu) {
			if (!len || len > 63 ||
			    strspn(l[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					 "0123456789._-") != len)
				return schema_fail(e, p, "%s must be a QEMU CPU model name (got \"%s\")",
						   p, l[i]);
		} else if ((rc = schema_check_name(e, p, l[i], 63))) {
			return rc;
		}
		for (size_t j = 0; j < i; j++)
			if (!strcmp(l[j], l[i]))
				return schema_fail(e, p, "%s: duplicate \"%s\"", p, l[i]);
	}
	return 0;
}

/* The defaults, and a policy over them, must make a working set of
 * settings on their own (no request or spec needed to fix them), so a bad
 * pair is refused when ferryd starts rather than at each migration. */
static int check_mig_combination(struct schema_err *e, const char *path,
				 const struct ferry_migration_defaults *policy,
				 const struct ferry_migration_defaults *defaults)
{
	struct mset set;
	char msg[300];

	if (mset_resolve(NULL, NULL, policy, defaults, &set, msg, sizeof(msg)) == 0)
		return 0;
	return schema_fail(e, path, "%s: %s", path, msg);
}

static int config_check(const struct ferry_config *c, struct schema_err *e)
{
	struct sockaddr_un sun;
	char host[256], p[96];
	int port, rc;

	if ((rc = schema_check_name(e, "node", c->node, 63)))
		return rc;
	if ((rc = schema_check_abs_path(e, "api_socket", c->api_socket)))
		return rc;
	/* bind() would fail much later with a less helpful error. */
	if (strlen(c->api_socket) >= sizeof(sun.sun_path))
		return schema_fail(e, "api_socket",
				   "api_socket is too long for a unix socket (max %zu characters)",
				   sizeof(sun.sun_path) - 1);
	if (c->api_listen[0] && schema_parse_hostport(c->api_listen, host, sizeof(host), &port))
		return schema_fail(e, "api_listen",
				   "api_listen must be empty or host:port with a port in 1..65535 "
				   "(got \"%s\")",
				   c->api_listen);
	if (!c->api_tls_cert[0] != !c->api_tls_key[0])
		return schema_fail(e, "api_tls", "api_tls needs both cert and key");
	if (c->api_tls_cert[0] && ((rc = schema_check_abs_path(e, "api_tls.cert", c->api_tls_cert)) ||
				   (rc = schema_check_abs_path(e, "api_tls.key", c->api_tls_key))))
		return rc;
	/* Tokens and everything the API does would cross the network in
	 * clear: only on loopback, or when the operator says so. */
	if (c->api_listen[0] && !c->api_tls_cert[0] && !c->insecure_api && !net_is_loopback(host))
		return schema_fail(e, "api_listen",
				   "api_listen %s is not a loopback address: set api_tls {cert, key} for HTTPS, "
				   "or insecure_api: true to serve plain HTTP there",
				   c->api_listen);
	if ((rc = schema_check_abs_path(e, "state_dir", c->state_dir)))
		return rc;
	if ((rc = schema_check_abs_path(e, "cluster_key", c->cluster_key)))
		return rc;
	if ((rc = check_transport(e, c)))
		return rc;
	if (!c->qemu_binary[0])
		return schema_fail(e, "qemu.binary", "qemu.binary must not be empty");
	if (!c->qemu_user[0])
		return schema_fail(e, "qemu.user", "qemu.user must not be empty (root: no drop)");
	for (size_t i = 0; i < c->n_allowed_paths; i++) {
		snprintf(p, sizeof(p), "allowed_paths[%zu]", i);
		if ((rc = schema_check_abs_path(e, p, c->allowed_paths[i])))
			return rc;
	}
	if ((rc = check_accel(e, c->accel)))
		return rc;
	if ((rc = schema_check_labels(e, "labels", c->labels, c->n_labels)))
		return rc;
	if ((rc = check_strlist(e, "networks", c->networks, c->n_networks, 0)))
		return rc;
	if ((rc = check_strlist(e, "cpu_models", c->cpu_models, c->n_cpu_models, 1)))
		return rc;
	/* Advertising "host" without KVM would let preflight pick this node
	 * for a host-model VM whose QEMU then cannot start here. */
	for (size_t i = 0; i < c->n_cpu_models; i++)
		if (!strcmp(c->cpu_models[i], "host") && !accel_has(c->accel, "kvm"))
			return schema_fail(e, "cpu_models",
					   "cpu_models lists host, which needs kvm, but qemu.accel is %s",
					   c->accel);
	if (c->parallel_cluster < 1 || c->parallel_cluster > 1024)
		return schema_fail(e, "limits.parallel_cluster",
				   "limits.parallel_cluster must be between 1 and 1024 (got %d)",
				   c->parallel_cluster);
	if (c->pending_timeout_s < 1 || c->pending_timeout_s > 86400)
		return schema_fail(e, "limits.pending_timeout_s",
				   "limits.pending_timeout_s must be between 1 and 86400 (got %d)",
				   c->pending_timeout_s);
	if (c->parallel_outbound < 1 || c->parallel_outbound > 64)
		return schema_fail(e, "limits.parallel_outbound",
				   "limits.parallel_outbound must be between 1 and 64 (got %d)",
				   c->parallel_outbound);
	if (c->parallel_inbound < 1 || c->parallel_inbound > 64)
		return schema_fail(e, "limits.parallel_inbound",
				   "limits.parallel_inbound must be between 1 and 64 (got %d)",
				   c->parallel_inbound);
	if ((rc = ferry_migration_check(e, "migration", &c->mig, 0)) ||
	    (rc = check_mig_combination(e, "migration", NULL, &c->mig)))
		return rc;
	for (size_t i = 0; i < c->n_tokens; i++) {
		const struct ferry_token_cfg *t = &c->tokens[i];

		snprintf(p, sizeof(p), "tokens[%zu]", i);
		if ((rc = schema_check_name(e, p, t->name, 63)))
			return rc;
		/* Guessable tokens are no protection. */
		if (strlen(t->token) < 16)
			return schema_fail(e, p, "%s.token must be at least 16 characters", p);
		if (strcmp(t->role, "viewer") && strcmp(t->role, "migrator") && strcmp(t->role, "admin"))
			return schema_fail(e, p, "%s.role must be viewer, migrator or admin (got \"%s\")",
					   p, t->role);
	}
	for (size_t i = 0; i < c->n_policies; i++) {
		const struct ferry_policy_cfg *pl = &c->policies[i];

		snprintf(p, sizeof(p), "policies[%zu].name", i);
		if ((rc = schema_check_name(e, p, pl->name, 63)))
			return rc;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(c->policies[j].name, pl->name))
				return schema_fail(e, p, "%s: duplicate policy \"%s\"", p, pl->name);
		snprintf(p, sizeof(p), "policies[%zu].selector", i);
		if ((rc = schema_check_labels(e, p, pl->selector, pl->n_selector)))
			return rc;
		snprintf(p, sizeof(p), "policies[%zu].migration", i);
		if ((rc = ferry_migration_check(e, p, &pl->mig, 1)) ||
		    (rc = check_mig_combination(e, p, &pl->mig, &c->mig)))
			return rc;
	}
	for (size_t i = 0; i < c->n_peers; i++) {
		const struct ferry_peer_cfg *pc = &c->peers[i];

		snprintf(p, sizeof(p), "peers[%zu].name", i);
		if ((rc = schema_check_name(e, p, pc->name, 63)))
			return rc;
		if (!strcmp(pc->name, c->node))
			return schema_fail(e, p, "%s: a node is not its own peer (\"%s\")", p,
					   pc->name);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(c->peers[j].name, pc->name))
				return schema_fail(e, p, "%s: duplicate peer \"%s\"", p, pc->name);
		if (!pc->host[0]) {
			snprintf(p, sizeof(p), "peers[%zu]", i);
			return schema_fail(e, p, "peers[%zu].address is required", i);
		}
	}
	return 0;
}

const struct ferry_policy_cfg *config_match_policy(const struct ferry_config *c,
						   const struct ferry_kv *labels, size_t n_labels)
{
	for (size_t i = 0; i < c->n_policies; i++) {
		const struct ferry_policy_cfg *pl = &c->policies[i];
		size_t hit = 0;

		for (size_t k = 0; k < pl->n_selector; k++)
			for (size_t l = 0; l < n_labels; l++)
				if (!strcmp(pl->selector[k].key, labels[l].key) &&
				    !strcmp(pl->selector[k].value, labels[l].value)) {
					hit++;
					break;
				}
		if (hit == pl->n_selector)
			return pl;
	}
	return NULL;
}

void config_free(struct ferry_config *c)
{
	if (!c)
		return;
	schema_free(config_fields, c);
	free(c);
}

int config_parse(const char *text, size_t len, const char *origin, struct ferry_config **out,
		 char *err, size_t errlen)
{
	struct json_object *root = NULL;
	struct ferry_config *c = NULL;
	struct schema_err e;
	int rc;

	*out = NULL;
	if (!origin)
		origin = "<config>";
	rc = schema_yaml_to_json(text, len, origin, &root, err, errlen);
	if (rc)
		goto out;
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	rc = config_defaults(c);
	if (rc)
		goto out;
	rc = schema_decode(root, config_fields, c, origin, err, errlen);
	if (rc)
		goto out;
	rc = config_finish(c, json_object_object_get_ex(root, "cpu_models", NULL));
	if (rc)
		goto out;
	rc = config_check(c, &e);
	if (rc) {
		schema_report(&e, root, origin, err, errlen);
		goto out;
	}
	*out = c;
	c = NULL;
out:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "%s: out of memory", origin);
	config_free(c);
	json_object_put(root);
	return rc;
}

/* A file holding a secret must be readable by its owner only. */
static int check_private(const char *what, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -errno;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "%s %s is mode %04o: it holds a secret, make it 0600 (chmod 600 %s)", what,
			 path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	return 0;
}

/* The config itself when it holds API tokens, and the API's TLS key. */
int config_check_secrets(const char *path, const struct ferry_config *c, char *err, size_t errlen)
{
	int rc = 0;

	if (c->n_tokens)
		rc = check_private("the config", path, err, errlen);
	if (!rc && c->api_tls_key[0])
		rc = check_private("api_tls.key", c->api_tls_key, err, errlen);
	if (!rc && c->tls_key[0])
		rc = check_private("tls.key", c->tls_key, err, errlen);
	return rc;
}

int config_load(const char *path, struct ferry_config **out, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = schema_read_file(path, &text, &len, err, errlen);
	if (rc)
		goto out;
	rc = config_parse(text, len, path, out, err, errlen);
	if (rc)
		goto out;
	rc = config_check_secrets(path, *out, err, errlen);
	if (rc) {
		config_free(*out);
		*out = NULL;
		goto out;
	}
	log_info("config", "event=config_loaded path=%s node=%s listen=%s:%d peers=%zu accel=%s",
		 path, (*out)->node, (*out)->listen_host, (*out)->listen_port, (*out)->n_peers,
		 (*out)->accel);
out:
	free(text);
	return rc;
}

const struct ferry_peer_cfg *config_find_peer(const struct ferry_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_peers; i++)
		if (!strcmp(c->peers[i].name, name))
			return &c->peers[i];
	return NULL;
}
