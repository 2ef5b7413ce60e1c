/* ferryd's REST API: HTTP/JSON (libmicrohttpd) on a unix socket.
 *
 * Routes (docs/api.md):
 *   GET    /v1/node
 *   GET    /v1/vms                  POST /v1/vms (VM spec as JSON)
 *   GET    /v1/vms/NAME             DELETE /v1/vms/NAME   POST /v1/vms/NAME/stop
 *   GET    /v1/vms/NAME/candidates  each peer as a target: eligible or why not
 *   GET    /v1/migrations[?vm=NAME] POST /v1/migrations {"vm","node",...}
 *   GET    /v1/migrations/ID        DELETE /v1/migrations/ID-or-VM (cancel)
 *   GET    /v1/migrations/ID/samples  the monitor's time series
 *   GET    /v1/migrations/ID/events   server-sent events until it ends
 *   GET    /metrics                   Prometheus text
 *   GET    /v1/whoami                 the caller's role (the console asks)
 *   GET    /v1/cluster/vms, /v1/cluster/migrations, ANY /v1/nodes/NODE/...
 *                                     the cluster through this node (cluster.c)
 *   GET    /, /console/...            the web console's files, no token (console.c)
 * Errors: {"error":{"code":"not_found","message":"..."}} with a fitting status. */
#include <errno.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <poll.h>
#include <sys/socket.h>

#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/console.h"
#include "transport/link.h"
#include "util/log.h"
#include "util/net.h"

#define API_BODY_MAX (1u << 20)

struct req_body {
	char *buf;
	size_t len;
	int too_big;
};

static enum MHD_Result respond_json(struct MHD_Connection *c, unsigned status, struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), (void *)s, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	json_object_put(o);
	return ret;
}

static const char *code_of(int err)
{
	switch (err) {
	case -ENOENT: case -ESRCH: return "not_found";
	case -EEXIST: return "already_exists";
	case -EBUSY: case -EALREADY: return "conflict";
	case -EINVAL: return "invalid";
	case -EPERM: return "not_migratable";
	case -EHOSTUNREACH: return "unreachable";
	default: return "internal";
	}
}

static unsigned status_of(int err)
{
	switch (err) {
	case -ENOENT: case -ESRCH: return 404;
	case -EEXIST: case -EBUSY: case -EALREADY: return 409;
	case -EINVAL: return 400;
	case -EPERM: return 422;
	case -EHOSTUNREACH: return 502;
	default: return 500;
	}
}

static enum MHD_Result respond_error(struct MHD_Connection *c, int err, const char *msg)
{
	struct json_object *o = json_object_new_object(), *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_string(code_of(err)));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(o, "error", e);
	return respond_json(c, status_of(err), o);
}

enum role { ROLE_NONE, ROLE_VIEWER, ROLE_MIGRATOR, ROLE_ADMIN };

static const char *role_name(enum role r)
{
	return r == ROLE_ADMIN ? "admin" : r == ROLE_MIGRATOR ? "migrator" : r == ROLE_VIEWER ? "viewer" : "none";
}

/* Who is asking: root on the unix socket is admin (it could run QEMU
 * itself); anyone else shows a bearer token from the config. Tokens are
 * compared in constant time and never logged. */
static enum role caller_role(struct agent *a, struct MHD_Connection *c, int is_tcp, int *had_token)
{
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	const union MHD_ConnectionInfo *ci;

	*had_token = 0;
	if (!is_tcp) {
		struct ucred cred;
		socklen_t len = sizeof(cred);

		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
		    cred.uid == 0)
			return ROLE_ADMIN;
	}
	if (!auth || strncmp(auth, "Bearer ", 7))
		return ROLE_NONE;
	*had_token = 1;
	auth += 7;
	for (size_t i = 0; i < a->cfg->n_tokens; i++) {
		const struct ferry_token_cfg *t = &a->cfg->tokens[i];
		size_t n = strlen(t->token);

		if (strlen(auth) == n && CRYPTO_memcmp(auth, t->token, n) == 0)
			return !strcmp(t->role, "admin") ? ROLE_ADMIN
			       : !strcmp(t->role, "migrator") ? ROLE_MIGRATOR : ROLE_VIEWER;
	}
	return ROLE_NONE;
}

/* Reading is for everyone with a role; starting and cancelling migrations
 * needs the migrate role (the product rule: "only holders of the migrate role or
 * administrators"); creating and deleting VMs is for administrators. */
static enum role role_needed(const char *method, const char *url)
{
	char node[64], inner[512];

	if (!strcmp(method, "GET"))
		return ROLE_VIEWER;
	/* Through the gateway, the route on the node decides. */
	if (cluster_split_url(url, node, sizeof(node), inner, sizeof(inner)) == 0)
		url = inner;
	if (!strncmp(url, "/v1/migrations", 14))
		return ROLE_MIGRATOR;
	return ROLE_ADMIN;
}

static enum MHD_Result respond_status(struct MHD_Connection *c, unsigned status, const char *code,
				      const char *msg)
{
	struct json_object *o = json_object_new_object(), *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(o, "error", e);
	return respond_json(c, status, o);
}

/* Server-sent events: the migration's status as one `data:` line every
 * half second (and at once on each phase change seen), until it ends. */
struct sse {
	struct agent *a;
	char id[64];
	char *pending;
	size_t len, off;
	int done;
	char last_phase[32];
};

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *e = cls;

	(void)pos;
	while (!e->pending || e->off >= e->len) {
		struct json_object *o;
		const char *phase;

		if (e->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		free(e->pending);
		e->pending = NULL;
		if (e->last_phase[0])
			poll(NULL, 0, 500); /* the sampling interval of the stream */
		o = agent_migration_json(e->a, e->id);
		if (!o)
			return MHD_CONTENT_READER_END_OF_STREAM;
		phase = json_object_get_string(json_object_object_get(o, "phase")) ?: "";
		snprintf(e->last_phase, sizeof(e->last_phase), "%s", phase);
		e->pending = agent_migration_event(o, &e->done);
		e->len = e->pending ? strlen(e->pending) : 0;
		e->off = 0;
		json_object_put(o);
		if (!e->pending)
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	if (max > e->len - e->off)
		max = e->len - e->off;
	memcpy(buf, e->pending + e->off, max);
	e->off += max;
	return (ssize_t)max;
}

static void sse_free(void *cls)
{
	struct sse *e = cls;

	free(e->pending);
	free(e);
}

static enum MHD_Result serve_events(struct agent *a, struct MHD_Connection *c, const char *id)
{
	struct json_object *probe = agent_migration_json(a, id);
	struct MHD_Response *r;
	struct sse *e;
	enum MHD_Result ret;

	if (!probe)
		return respond_error(c, -ENOENT, "no such migration on this node");
	json_object_put(probe);
	e = calloc(1, sizeof(*e));
	if (!e)
		return MHD_NO;
	e->a = a;
	snprintf(e->id, sizeof(e->id), "%s", id);
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, e, sse_free);
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	MHD_add_response_header(r, "Cache-Control", "no-cache");
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result route(struct agent *a, struct MHD_Connection *c, const char *method,
			     const char *url, struct req_body *b);

/* The cluster through this node (agent/cluster.c): the aggregated views,
 * and /v1/nodes/NODE/... answered here for this node, forwarded to NODE
 * over the peer link otherwise. The caller's role was checked already. */
static enum MHD_Result route_cluster(struct agent *a, struct MHD_Connection *c, const char *method,
				     const char *url, struct req_body *b)
{
	const char *vm = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "vm");
	char node[64], path[512], err[600] = "", id[64];
	struct json_object *body = NULL, *o = NULL;
	enum MHD_Result ret;
	unsigned status;
	size_t n;
	int r;

	if (!strcmp(url, "/v1/cluster/vms") && !strcmp(method, "GET"))
		return respond_json(c, 200, cluster_vms_json(a));
	if (!strcmp(url, "/v1/cluster/migrations") && !strcmp(method, "GET"))
		return respond_json(c, 200, cluster_migrations_json(a, vm));
	if (cluster_split_url(url, node, sizeof(node), path, sizeof(path)) < 0)
		return respond_error(c, -ENOENT, "no such route");
	if (!strcmp(node, a->cfg->node))
		return route(a, c, method, path, b);
	n = strlen(path);
	if (!strcmp(method, "GET") && !strncmp(path, "/v1/migrations/", 15) && n > 22 &&
	    !strcmp(path + n - 7, "/events")) {
		struct MHD_Response *resp;

		snprintf(id, sizeof(id), "%.*s", (int)(n - 15 - 7), path + 15);
		r = cluster_events(a, node, id, &resp, err, sizeof(err));
		if (r < 0)
			return respond_error(c, r, err);
		MHD_add_response_header(resp, "Content-Type", "text/event-stream");
		MHD_add_response_header(resp, "Cache-Control", "no-cache");
		ret = MHD_queue_response(c, 200, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	if (b->len) {
		body = json_tokener_parse(b->buf);
		if (!body || !json_object_is_type(body, json_type_object)) {
			json_object_put(body);
			return respond_error(c, -EINVAL, "request body is not a JSON object");
		}
	}
	r = cluster_forward(a, node, method, path, vm, body, &status, &o, err, sizeof(err));
	json_object_put(body);
	return r < 0 ? respond_error(c, r, err) : respond_json(c, status, o);
}

static enum MHD_Result route(struct agent *a, struct MHD_Connection *c, const char *method,
			     const char *url, struct req_body *b)
{
	char err[600] = "";
	struct json_object *body = NULL, *o;
	enum MHD_Result ret;
	int r;

	if (b->len) {
		body = json_tokener_parse(b->buf);
		if (!body || !json_object_is_type(body, json_type_object)) {
			json_object_put(body);
			return respond_error(c, -EINVAL, "request body is not a JSON object");
		}
	}
	if (!strncmp(url, "/v1/nodes/", 10) || !strncmp(url, "/v1/cluster/", 12)) {
		json_object_put(body);
		return route_cluster(a, c, method, url, b);
	}
	if (!strcmp(url, "/metrics") && !strcmp(method, "GET")) {
		char *txt = agent_metrics_text(a);
		struct MHD_Response *r = MHD_create_response_from_buffer(strlen(txt), txt, MHD_RESPMEM_MUST_FREE);

		MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
		ret = MHD_queue_response(c, 200, r);
		MHD_destroy_response(r);
	} else if (!strncmp(url, "/v1/migrations/", 15) && !strcmp(method, "GET") &&
		   strlen(url) > 22 && !strcmp(url + strlen(url) - 7, "/events")) {
		char id[64];

		snprintf(id, sizeof(id), "%.*s", (int)(strlen(url) - 15 - 7), url + 15);
		ret = serve_events(a, c, id);
	} else if (!strcmp(url, "/v1/node") && !strcmp(method, "GET")) {
		ret = respond_json(c, 200, agent_node_json(a));
	} else if (!strcmp(url, "/v1/vms") && !strcmp(method, "GET")) {
		ret = respond_json(c, 200, agent_vms_json(a));
	} else if (!strcmp(url, "/v1/vms") && !strcmp(method, "POST")) {
		struct vm_spec *spec = NULL;

		r = body ? vmspec_from_json(body, &spec, err, sizeof(err)) : -EINVAL;
		if (r == 0)
			r = vmspec_validate(spec, err, sizeof(err));
		if (r < 0) {
			vmspec_free(spec);
			ret = respond_error(c, -EINVAL, err[0] ? err : "missing VM spec");
		} else {
			char name[64];

			snprintf(name, sizeof(name), "%s", spec->name);
			r = agent_vm_create(a, spec, err, sizeof(err));
			ret = r < 0 ? respond_error(c, r, err) : respond_json(c, 201, agent_vm_json(a, name));
		}
	} else if (!strncmp(url, "/v1/vms/", 8) && !strcmp(method, "GET") &&
		   strlen(url) > 19 && !strcmp(url + strlen(url) - 11, "/candidates")) {
		char name[64];

		snprintf(name, sizeof(name), "%.*s", (int)(strlen(url) - 8 - 11), url + 8);
		o = agent_vm_candidates_json(a, name);
		ret = o ? respond_json(c, 200, o) : respond_error(c, -ENOENT, "no such VM on this node");
	} else if (!strncmp(url, "/v1/vms/", 8) && !strcmp(method, "GET")) {
		o = agent_vm_json(a, url + 8);
		ret = o ? respond_json(c, 200, o) : respond_error(c, -ENOENT, "no such VM on this node");
	} else if (!strncmp(url, "/v1/vms/", 8) && !strcmp(method, "POST") &&
		   strlen(url) > 13 && !strcmp(url + strlen(url) - 5, "/stop")) {
		char name[64];

		snprintf(name, sizeof(name), "%.*s", (int)(strlen(url) - 8 - 5), url + 8);
		r = agent_vm_stop(a, name, err, sizeof(err));
		ret = r < 0 ? respond_error(c, r, err) : respond_json(c, 200, agent_vm_json(a, name));
	} else if (!strncmp(url, "/v1/vms/", 8) && !strcmp(method, "POST") &&
		   strlen(url) > 15 && !strcmp(url + strlen(url) - 7, "/resume")) {
		char name[64];

		snprintf(name, sizeof(name), "%.*s", (int)(strlen(url) - 8 - 7), url + 8);
		r = agent_vm_resume(a, name, err, sizeof(err));
		ret = r < 0 ? respond_error(c, r, err) : respond_json(c, 200, agent_vm_json(a, name));
	} else if (!strncmp(url, "/v1/vms/", 8) && !strcmp(method, "DELETE")) {
		r = agent_vm_delete(a, url + 8, err, sizeof(err));
		ret = r < 0 ? respond_error(c, r, err)
			    : respond_json(c, 200, json_object_new_object());
	} else if (!strcmp(url, "/v1/migrations") && !strcmp(method, "GET")) {
		ret = respond_json(c, 200, agent_migrations_json(a,
			MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "vm")));
	} else if (!strcmp(url, "/v1/migrations") && !strcmp(method, "POST")) {
		const char *vm = json_object_get_string(json_object_object_get(body, "vm"));
		const char *node = json_object_get_string(json_object_object_get(body, "node"));
		char id[64];

		if (!vm) {
			ret = respond_error(c, -EINVAL, "a migration needs \"vm\"");
		} else {
			r = agent_migrate(a, vm, node, body, id, sizeof(id), err, sizeof(err));
			ret = r < 0 ? respond_error(c, r, err)
				    : respond_json(c, 201, agent_migration_json(a, id));
		}
	} else if (!strncmp(url, "/v1/migrations/", 15) && !strcmp(method, "GET") &&
		   strlen(url) > 23 && !strcmp(url + strlen(url) - 8, "/samples")) {
		char id[64];

		snprintf(id, sizeof(id), "%.*s", (int)(strlen(url) - 15 - 8), url + 15);
		o = agent_migration_samples_json(a, id);
		ret = o ? respond_json(c, 200, o) : respond_error(c, -ENOENT, "no such migration on this node");
	} else if (!strncmp(url, "/v1/migrations/", 15) && !strcmp(method, "GET")) {
		o = agent_migration_json(a, url + 15);
		ret = o ? respond_json(c, 200, o) : respond_error(c, -ENOENT, "no such migration on this node");
	} else if (!strncmp(url, "/v1/migrations/", 15) && !strcmp(method, "DELETE")) {
		r = agent_migration_cancel(a, url + 15, err, sizeof(err));
		ret = r < 0 ? respond_error(c, r, err)
			    : respond_json(c, 202, json_object_new_object());
	} else {
		ret = respond_error(c, -ENOENT, "no such route");
	}
	json_object_put(body);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	struct req_body *b = *con_cls;

	(void)version;
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return MHD_NO;
		*con_cls = b;
		return MHD_YES;
	}
	if (*upload_size) {
		if (b->len + *upload_size > API_BODY_MAX) {
			b->too_big = 1;
		} else {
			char *nb = realloc(b->buf, b->len + *upload_size + 1);

			if (!nb)
				return MHD_NO;
			b->buf = nb;
			memcpy(b->buf + b->len, upload, *upload_size);
			b->len += *upload_size;
			b->buf[b->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (b->too_big)
		return respond_error(c, -EINVAL, "request body over 1 MiB");
	/* The console's files are public; its API calls carry the token. */
	if (!strcmp(method, "GET") && console_is_path(url))
		return (enum MHD_Result)console_serve(c, url);
	{
		struct api_listener *l = cls;
		int had_token;
		enum role have = caller_role(l->a, c, l->is_tcp, &had_token);
		enum role need = role_needed(method, url);
		char msg[200];

		log_debug("api", "event=request method=%s url=%s role=%s", method, url, role_name(have));
		if (have == ROLE_NONE)
			return respond_status(c, 401, "unauthorized",
					      had_token ? "the bearer token is not valid"
							: "a bearer token is required (ferryctl --token)");
		if (have < need) {
			snprintf(msg, sizeof(msg), "role %s may not do this: it needs the %s role or higher",
				 role_name(have), role_name(need));
			return respond_status(c, 403, "forbidden", msg);
		}
		if (!strcmp(url, "/v1/whoami") && !strcmp(method, "GET")) {
			/* The console shows the Migrate action to everyone and
			 * says "not permitted" up front to a viewer. */
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "role", json_object_new_string(role_name(have)));
			json_object_object_add(o, "node", json_object_new_string(l->a->cfg->node));
			json_object_object_add(o, "canMigrate", json_object_new_boolean(have >= ROLE_MIGRATOR));
			return respond_json(c, 200, o);
		}
		return route(l->a, c, method, url, b);
	}
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct req_body *b = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (b) {
		free(b->buf);
		free(b);
	}
	*con_cls = NULL;
}

static struct MHD_Daemon *start_daemon(struct api_listener *l, int fd)
{
	return MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
				NULL, NULL, handler, l, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
}

int api_start(struct agent *a, char *err, size_t errlen)
{
	char dir[300];
	char *slash;
	int r;

	snprintf(dir, sizeof(dir), "%s", a->cfg->api_socket);
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		for (char *p = dir + 1; *p; p++)
			if (*p == '/') {
				*p = '\0';
				mkdir(dir, 0755);
				*p = '/';
			}
		mkdir(dir, 0755);
	}
	r = link_listen_unix(a->cfg->api_socket, &a->api_fd);
	if (r < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", a->cfg->api_socket, strerror(-r));
		return r;
	}
	/* Only root (the admin) reaches the unix socket for now. */
	chmod(a->cfg->api_socket, 0600);
	a->api_unix.a = a;
	a->api_unix.is_tcp = 0;
	a->api = start_daemon(&a->api_unix, a->api_fd);
	if (!a->api) {
		snprintf(err, errlen, "cannot start the HTTP API");
		return -EIO;
	}
	log_info("api", "event=listening socket=%s", a->cfg->api_socket);
	if (a->cfg->api_listen[0]) {
		const char *why = "";
		char host[256];
		int port;

		/* config_check has accepted it already, with the same parser. */
		if (net_parse_hostport(a->cfg->api_listen, host, sizeof(host), &port, &why) < 0) {
			snprintf(err, errlen, "api_listen \"%s\": %s", a->cfg->api_listen, why);
			return -EINVAL;
		}
		if (link_listen_tcp(host, port, &a->api_tcp_fd) < 0) {
			snprintf(err, errlen, "cannot listen for the API on %s", a->cfg->api_listen);
			return -EADDRINUSE;
		}
		a->api_tcp.a = a;
		a->api_tcp.is_tcp = 1;
		a->api_tcp_daemon = start_daemon(&a->api_tcp, a->api_tcp_fd);
		if (!a->api_tcp_daemon) {
			snprintf(err, errlen, "cannot start the HTTP API on %s", a->cfg->api_listen);
			return -EIO;
		}
		log_info("api", "event=listening addr=%s tokens=%zu", a->cfg->api_listen, a->cfg->n_tokens);
	}
	return 0;
}

void api_stop(struct agent *a)
{
	if (a->api)
		MHD_stop_daemon(a->api);
	a->api = NULL;
	if (a->api_tcp_daemon)
		MHD_stop_daemon(a->api_tcp_daemon);
	a->api_tcp_daemon = NULL;
	if (a->api_tcp_fd >= 0)
		close(a->api_tcp_fd);
	a->api_tcp_fd = -1;
	if (a->api_fd >= 0) {
		close(a->api_fd);
		unlink(a->cfg->api_socket);
	}
	a->api_fd = -1;
}
