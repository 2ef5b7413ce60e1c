/* ferryd's REST API: HTTP/JSON (libmicrohttpd) on a unix socket.
 *
 * Routes (docs/api.md):
 *   GET    /v1/node
 *   GET    /v1/vms                  POST /v1/vms (VM spec as JSON)
 *   GET    /v1/vms/NAME             DELETE /v1/vms/NAME
 *   GET    /v1/vms/NAME/candidates  each peer as a target: eligible or why not
 *   GET    /v1/migrations[?vm=NAME] POST /v1/migrations {"vm","node",...}
 *   GET    /v1/migrations/ID        DELETE /v1/migrations/ID-or-VM (cancel)
 *   GET    /v1/migrations/ID/samples  the monitor's time series
 * Errors: {"error":{"code":"not_found","message":"..."}} with a fitting status. */
#include <errno.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "transport/link.h"
#include "util/log.h"

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
	if (!strcmp(url, "/v1/node") && !strcmp(method, "GET")) {
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
	log_debug("api", "event=request method=%s url=%s", method, url);
	return route(cls, c, method, url, b);
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
	a->api = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
				  0, NULL, NULL, handler, a, MHD_OPTION_LISTEN_SOCKET, a->api_fd,
				  MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
	if (!a->api) {
		snprintf(err, errlen, "cannot start the HTTP API");
		return -EIO;
	}
	log_info("api", "event=listening socket=%s", a->cfg->api_socket);
	return 0;
}

void api_stop(struct agent *a)
{
	if (a->api)
		MHD_stop_daemon(a->api);
	a->api = NULL;
	if (a->api_fd >= 0) {
		close(a->api_fd);
		unlink(a->cfg->api_socket);
	}
	a->api_fd = -1;
}
