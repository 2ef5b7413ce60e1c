/* ferryd's REST API (agent/api.c): the HTTP front door of one agent, on a
 * unix socket and, with api_listen, on TCP (HTTPS with api_tls_cert).
 * ferryd.c holds a struct api beside the agent it serves: api_start after
 * agent_init, api_stop before agent_shutdown. */
#ifndef FERRY_AGENT_API_H
#define FERRY_AGENT_API_H

#include <stddef.h>

struct agent;
struct json_object;
struct mig_request;
struct mset_request;
struct MHD_Daemon;

/* One HTTP listener: the unix socket (root is admin) or TCP (tokens only). */
struct api_listener {
	struct agent *a;
	int is_tcp;
};

struct api {
	struct agent *a; /* the agent it serves */
	struct MHD_Daemon *unix_daemon, *tcp_daemon;
	int unix_fd, tcp_fd;
	struct api_listener unix_listener, tcp_listener;
	char *tls_mem[2]; /* the TCP API's certificate and key, PEM in memory */
};

/* Fills api (no earlier state) and listens on a's api_socket, and on its
 * api_listen when set, serving the routes for a. 0, or -errno with a
 * message. */
int api_start(struct api *api, struct agent *a, char *err, size_t errlen);
/* Stops both listeners, closes them and removes the socket; valid after
 * any api_start, failed or not. */
void api_stop(struct api *api);
/* The body of POST /v1/migrations ({"vm", "node"?, "name"?, settings},
 * docs/api.md) as a request: vm, target_node, name and the flags into req,
 * the settings into settings (absent ones unset). Decoded by the schema
 * decoder (an unknown key or a wrong type is refused with its name), the
 * names checked (vm and name: DNS-1123 labels; node: a node name) and the
 * settings' ranges checked. 0, or -EINVAL with a message. Pure. */
int api_migration_request(struct json_object *body, struct mig_request *req,
			  struct mset_request *settings, char *err, size_t errlen);

#endif
