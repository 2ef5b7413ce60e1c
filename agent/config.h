/* config: ferryd's YAML configuration file (docs/config.md).
 *
 * Read once at start. Strict like the VM spec: unknown keys, duplicate keys
 * and wrong types are errors with "file:line: key ..." messages, because a
 * misspelt timeout silently falling back to its default is worse than a
 * daemon that refuses to start.
 */
#ifndef FERRY_AGENT_CONFIG_H
#define FERRY_AGENT_CONFIG_H

#include <stddef.h>

#include "schema/migration.h" /* struct ferry_migration_defaults */
#include "schema/schema.h"    /* struct ferry_kv, FERRY_UNSET */

struct ferry_peer_cfg {
	char name[64];
	char host[256];
	int port;
};

/* A named migration policy: VMs whose labels match every selector entry
 * get its settings over the agent defaults (KubeVirt's MigrationPolicy).
 * Unset fields are FERRY_UNSET. The first matching policy applies. */
struct ferry_policy_cfg {
	char name[64];
	struct ferry_kv *selector;
	size_t n_selector;
	struct ferry_migration_defaults mig;
};

/* A bearer token for the REST API and the role it grants:
 * viewer (read), migrator (read, start and cancel migrations), admin (all). */
struct ferry_token_cfg {
	char name[64];
	char token[256];
	char role[16];
};

struct ferry_config {
	char node[64];           /* required, [a-z0-9-]{1,63} */
	char listen_host[256];   /* peer links; default 127.0.0.1 */
	int listen_port;         /* default 7700 */
	char api_socket[256];    /* default /run/ferry/api.sock (ferryctl default) */
	char api_listen[256];    /* "" (default) or host:port for the REST API */
	char api_tls_cert[256];  /* api_tls.cert: PEM certificate (chain) for HTTPS on api_listen */
	char api_tls_key[256];   /* api_tls.key: its PEM key, mode 0600 */
	int insecure_api;        /* plain HTTP on a non-loopback api_listen, explicitly */
	char state_dir[256];     /* default /var/lib/ferry/<node> */
	char cluster_key[256];   /* default /etc/ferry/cluster.key; lab mode (PSK) */
	char tls_ca[256], tls_cert[256], tls_key[256]; /* tls: certificate mode when set */
	int insecure_transport;        /* frames unsealed (CRC32C only); default 0 */
	int insecure_transport_remote; /* allows the above on a non-loopback listen */
	char qemu_binary[256];   /* default qemu-system-x86_64 */
	char accel[32];          /* kvm | tcg | kvm:tcg (default kvm:tcg) */
	char qemu_user[64];      /* the user QEMU runs as (default ferry-qemu; root = no drop) */
	char **allowed_paths;    /* dirs VM spec files may be in (default [/var/lib/ferry/images]) */
	size_t n_allowed_paths;
	struct ferry_kv *labels;
	size_t n_labels;
	char **networks;         /* default [default] */
	size_t n_networks;
	char **cpu_models;       /* default [qemu64, host], [qemu64] when accel is tcg */
	size_t n_cpu_models;
	struct ferry_peer_cfg *peers;
	size_t n_peers;
	int parallel_outbound, parallel_inbound; /* default 2, 2 */
	int pending_timeout_s;                   /* default 600: longest wait in Pending */
	int parallel_cluster;                    /* default 5: outbound migrations cluster-wide */
	struct ferry_migration_defaults mig;     /* all set, none FERRY_UNSET */
	struct ferry_policy_cfg *policies;
	size_t n_policies;
	struct ferry_token_cfg *tokens;
	size_t n_tokens;
};

/* Files that hold secrets (the config when it lists tokens, api_tls.key,
 * tls.key; the cluster key is checked where it is read, auth_load_key)
 * must be mode 0600 or stricter. 0, or -EPERM/-errno with the reason. */
int config_check_secrets(const char *path, const struct ferry_config *c, char *err, size_t errlen);

/* The first policy whose selector matches these VM labels, or NULL. */
const struct ferry_policy_cfg *config_match_policy(const struct ferry_config *c,
						   const struct ferry_kv *labels, size_t n_labels);

/* Read and validate path (at most 1 MiB). 0, or -EINVAL with the reason in
 * err ("ferryd.yaml:3: listen must be host:port ..."), -ENOENT etc. from
 * reading, -ENOMEM. */
int config_load(const char *path, struct ferry_config **out, char *err, size_t errlen);
/* The same from text; origin names it in messages. */
int config_parse(const char *text, size_t len, const char *origin, struct ferry_config **out,
		 char *err, size_t errlen);
void config_free(struct ferry_config *c);
/* NULL when name is not a configured peer. */
const struct ferry_peer_cfg *config_find_peer(const struct ferry_config *c, const char *name);

#endif
