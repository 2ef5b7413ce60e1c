/* ferryd's REST API: HTTP/JSON (libmicrohttpd) on a unix socket.
 *
 * Routes: the table in routes.c (docs/api.md lists the same rows). Here:
 * the caller's role (root on the unix socket, or a bearer token), the
 * dispatch of a request to its row, here or through the gateway
 * (/v1/nodes/NODE/...) on the peer that owns the VM (cluster.c), and the
 * handlers, which answer a row whichever transport carries it. The web
 * console's files (GET /, /console/...) need no token (console.c).
 * Errors: {"error":{"code":"not_found","message":"..."}} with a fitting status. */
#include <errno.h>
#include <json-c/json.h>
#include <stddef.h>
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
#include "agent/api.h"
#include "agent/cluster.h"
#include "agent/console.h"
#include "agent/routes.h"
#include "transport/link.h"
#include "schema/check.h"
#include "schema/input.h"
#include "schema/schema.h"
#include "util/log.h"
#include "util/net.h"

#define API_BODY_MAX (1u << 20)

struct req_body {
	char *buf;
	size_t len;
	int too_big;
	enum route_role role; /* decided from the headers, before any body byte is read */
	const char *who;      /* the token's name, root@unix, or "-" */
};

/* The status of the response this thread queued last (for the audit line);
 * MHD runs one connection per thread here. */
static __thread unsigned t_status;

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r)
{
	t_status = status;
	return MHD_queue_response(c, status, r);
}

/* Queues o (and drops it), with an Allow header when allow is given. */
static enum MHD_Result queue_json(struct MHD_Connection *c, unsigned status, struct json_object *o,
				  const char *allow)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), (void *)s, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", "application/json");
	if (allow)
		MHD_add_response_header(r, "Allow", allow);
	ret = queue(c, status, r);
	MHD_destroy_response(r);
	json_object_put(o);
	return ret;
}

static enum MHD_Result respond_json(struct MHD_Connection *c, unsigned status, struct json_object *o)
{
	return queue_json(c, status, o, NULL);
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

/* {"error": {"code": code, "message": msg}} with status (and Allow). */
static enum MHD_Result respond_status(struct MHD_Connection *c, unsigned status, const char *code,
				      const char *msg, const char *allow)
{
	struct json_object *o = json_object_new_object(), *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(o, "error", e);
	return queue_json(c, status, o, allow);
}

static enum MHD_Result respond_error(struct MHD_Connection *c, int err, const char *msg)
{
	return respond_status(c, status_of(err), code_of(err), msg, NULL);
}

/* Who is asking: root on the unix socket is admin (it could run QEMU
 * itself); anyone else shows a bearer token from the config. Tokens are
 * compared in constant time and never logged. */
static enum route_role caller_role(struct agent *a, struct MHD_Connection *c, int is_tcp, int *had_token,
				   const char **who)
{
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	const union MHD_ConnectionInfo *ci;

	*had_token = 0;
	*who = "-";
	if (!is_tcp) {
		struct ucred cred;
		socklen_t len = sizeof(cred);

		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
		    cred.uid == 0) {
			*who = "root@unix";
			return ROLE_ADMIN;
		}
	}
	/* RFC 7235: the scheme is case-insensitive, and one or more spaces
	 * separate it from the credentials. */
	if (!auth || strncasecmp(auth, "Bearer ", 7))
		return ROLE_NONE;
	*had_token = 1;
	auth += 7;
	auth += strspn(auth, " ");
	for (size_t i = 0; i < a->cfg->n_tokens; i++) {
		const struct ferry_token_cfg *t = &a->cfg->tokens[i];
		size_t n = strlen(t->token);

		if (strlen(auth) != n || CRYPTO_memcmp(auth, t->token, n) != 0)
			continue;
		*who = t->name;
		return !strcmp(t->role, "admin") ? ROLE_ADMIN
			       : !strcmp(t->role, "migrator") ? ROLE_MIGRATOR : ROLE_VIEWER;
	}
	return ROLE_NONE;
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
	ret = queue(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- the handlers (routes.c's table) -------------------------------------- *
 * Each answers one row for whichever transport carries it: HTTP here, or
 * the peer op "api" (cluster.c) when a gateway forwarded the call. */

/* A request that takes no body may have none, or an empty object: a key
 * there would be an option the route silently ignores. */
static int body_none(struct json_object *body, char *err, size_t errlen)
{
	static const struct schema_field none[] = {{0}};
	char why[400];

	if (!body || schema_decode(body, none, NULL, NULL, why, sizeof(why)) == 0)
		return 0;
	snprintf(err, errlen, "%s: this request takes no body", why);
	return -EINVAL;
}

static int no_body(const struct route_call *c, char *err, size_t errlen)
{
	return body_none(c->body, err, errlen);
}

int api_node(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	out->body = agent_node_json(c->a);
	return 0;
}

int api_vms(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	out->body = agent_vms_json(c->a);
	return 0;
}

int api_vm_create(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	struct vm_spec *spec = NULL;
	char name[64];
	int r;

	r = c->body ? vmspec_from_json(c->body, &spec, err, errlen) : -EINVAL;
	if (r == 0)
		r = vmspec_validate(spec, err, errlen);
	if (r < 0) {
		vmspec_free(spec);
		if (!err[0])
			snprintf(err, errlen, "missing VM spec");
		return -EINVAL;
	}
	snprintf(name, sizeof(name), "%s", spec->name);
	/* One name, one VM in the cluster. */
	r = cluster_name_taken(c->a, name, NULL, c->force, err, errlen);
	if (r == 0)
		r = agent_vm_create(c->a, spec, err, errlen);
	else
		vmspec_free(spec);
	if (r < 0)
		return r;
	out->status = 201;
	out->body = agent_vm_json(c->a, name);
	return 0;
}

/* A VM or migration by name: its JSON, or "no such ... on <where>". */
static int found(const struct route_call *c, struct route_reply *out, struct json_object *o, const char *what,
		 char *err, size_t errlen)
{
	if (!o) {
		snprintf(err, errlen, "no such %s on %s", what, c->where);
		return -ENOENT;
	}
	out->body = o;
	return 0;
}

int api_vm(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	return found(c, out, agent_vm_json(c->a, c->p->v[0]), "VM", err, errlen);
}

int api_vm_candidates(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	return found(c, out, agent_vm_candidates_json(c->a, c->p->v[0]), "VM", err, errlen);
}

int api_vm_delete(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	int r = no_body(c, err, errlen);

	if (r == 0)
		r = agent_vm_delete(c->a, c->p->v[0], err, errlen);

	if (r < 0)
		return r;
	out->body = json_object_new_object();
	return 0;
}

int api_vm_stop(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	int r = no_body(c, err, errlen);

	if (r == 0)
		r = agent_vm_stop(c->a, c->p->v[0], err, errlen);

	if (r < 0)
		return r;
	out->body = agent_vm_json(c->a, c->p->v[0]);
	return 0;
}

int api_vm_resume(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	int r = no_body(c, err, errlen);

	if (r == 0)
		r = agent_vm_resume(c->a, c->p->v[0], err, errlen);

	if (r < 0)
		return r;
	out->body = agent_vm_json(c->a, c->p->v[0]);
	return 0;
}

int api_migrations(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	out->body = agent_migrations_json(c->a, c->vm);
	return 0;
}

/* POST /v1/migrations's body, decoded by the schema decoder like every
 * other document: an unknown key or a value of the wrong type is refused
 * with its name. */
struct migration_body {
	char vm[64], node[64], name[64];
	int verify_memory, paused;
	struct mset_request set;
};

#define BOFF(f) offsetof(struct migration_body, f)
#define BSZ(f) sizeof(((struct migration_body *)0)->f)

static const struct schema_field migration_body_fields[] = {
	{"vm", SCHEMA_STR, BOFF(vm), BSZ(vm), 0, NULL, NULL, 0},
	{"node", SCHEMA_STR, BOFF(node), BSZ(node), 0, NULL, NULL, 0},
	{"name", SCHEMA_STR, BOFF(name), BSZ(name), 0, NULL, NULL, 0},
	{"verifyMemory", SCHEMA_BOOL, BOFF(verify_memory), 0, 0, NULL, NULL, 0},
	{"paused", SCHEMA_BOOL, BOFF(paused), 0, 0, NULL, NULL, 0},
	{NULL, SCHEMA_INLINE, BOFF(set), 0, 0, mset_request_fields, NULL, 0},
	{0},
};

/* The names in a migration request: the VM's and the VMIM's as KubeVirt
 * takes them, the node's as ferryd.yaml does. */
static int migration_body_check(const struct migration_body *b, char *err, size_t errlen)
{
	struct schema_err e;

	if (!b->vm[0]) {
		snprintf(err, errlen, "a migration needs \"vm\"");
		return -EINVAL;
	}
	if (schema_check_dns_label(&e, "vm", b->vm) ||
	    (b->node[0] && schema_check_name(&e, "node", b->node, 63)) ||
	    (b->name[0] && schema_check_dns_label(&e, "name", b->name))) {
		snprintf(err, errlen, "%s", e.msg);
		return -EINVAL;
	}
	return mset_request_check(&b->set, err, errlen);
}

int api_migration_request(struct json_object *body, struct mig_request *req,
			  struct mset_request *settings, char *err, size_t errlen)
{
	struct migration_body b = {0};
	int r;

	memset(req, 0, sizeof(*req));
	mset_request_init(&b.set);
	if (body) {
		r = schema_decode(body, migration_body_fields, &b, NULL, err, errlen);
		if (r < 0)
			return r;
	}
	r = migration_body_check(&b, err, errlen);
	if (r < 0)
		return r;
	snprintf(req->vm, sizeof(req->vm), "%s", b.vm);
	snprintf(req->target_node, sizeof(req->target_node), "%s", b.node);
	snprintf(req->name, sizeof(req->name), "%s", b.name);
	req->verify_memory = b.verify_memory;
	req->keep_paused = b.paused;
	*settings = b.set;
	return 0;
}

int api_migrate(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	struct mset_request settings;
	struct mig_request req;
	char id[64];
	int r;

	r = api_migration_request(c->body, &req, &settings, err, errlen);
	if (r == 0)
		r = agent_migrate(c->a, &req, &settings, id, sizeof(id), err, errlen);
	if (r < 0)
		return r;
	out->status = 201;
	out->body = agent_migration_json(c->a, id);
	return 0;
}

int api_migration(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	return found(c, out, agent_migration_json(c->a, c->p->v[0]), "migration", err, errlen);
}

int api_migration_samples(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	return found(c, out, agent_migration_samples_json(c->a, c->p->v[0]), "migration", err, errlen);
}

int api_migration_cancel(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	char by[96];
	int r = no_body(c, err, errlen);

	if (r < 0)
		return r;

	/* Who asked, as the audit line names them, with their role (and the
	 * gateway they came through); an older gateway does not say. */
	if (c->who && c->who[0])
		snprintf(by, sizeof(by), "%s", c->who);
	else
		snprintf(by, sizeof(by), "a %s through the cluster gateway", route_role_name(c->role));
	r = agent_migration_cancel(c->a, c->p->v[0], by, err, errlen);
	if (r < 0)
		return r;
	out->status = 202;
	out->body = json_object_new_object();
	return 0;
}

/* The console shows the Migrate action to everyone and says "not
 * permitted" up front to a viewer. */
int api_whoami(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	out->body = json_object_new_object();
	json_object_object_add(out->body, "role", json_object_new_string(route_role_name(c->role)));
	json_object_object_add(out->body, "node", json_object_new_string(c->a->cfg->node));
	json_object_object_add(out->body, "canMigrate", json_object_new_boolean(c->role >= ROLE_MIGRATOR));
	return 0;
}

int api_metrics(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	out->text = agent_metrics_text(c->a);
	out->type = "text/plain; version=0.0.4";
	return 0;
}

int api_cluster_vms(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	out->body = cluster_vms_json(c->a);
	return 0;
}

int api_cluster_nodes(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	out->body = cluster_nodes_json(c->a);
	return 0;
}

int api_cluster_migrations(const struct route_call *c, struct route_reply *out, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	out->body = cluster_migrations_json(c->a, c->vm);
	return 0;
}

/* ---- routing --------------------------------------------------------------- */

/* 404 or 405 (with the Allow header) for a path no row takes as asked. */
static enum MHD_Result respond_unrouted(struct MHD_Connection *c, unsigned status, const char *method,
					const char *allow)
{
	char msg[200];

	if (status != 405)
		return respond_error(c, -ENOENT, "no such route");
	snprintf(msg, sizeof(msg), "this route does not take %s, only %s", method, allow);
	return respond_status(c, 405, "method_not_allowed", msg, allow);
}

/* The reply of a handler that ran on this node. */
static enum MHD_Result respond_reply(struct MHD_Connection *c, struct route_reply *rep)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!rep->text)
		return respond_json(c, rep->status, rep->body);
	r = MHD_create_response_from_buffer(strlen(rep->text), rep->text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", rep->type);
	ret = queue(c, rep->status, r);
	MHD_destroy_response(r);
	return ret;
}

/* A forwardable row through the gateway, run on peer node. */
static enum MHD_Result forward(struct agent *a, struct MHD_Connection *c, const char *node,
			       const struct route *rt, const struct route_params *p, const char *path,
			       const char *vm, struct json_object *body, const char *who)
{
	struct json_object *o = NULL;
	char err[600] = "", via[240];
	unsigned status;
	int r;

	if (!(rt->flags & ROUTE_FORWARD)) {
		snprintf(err, sizeof(err), "%s %s is not a route peers forward (docs/api.md)", rt->method, path);
		return respond_error(c, -ENOENT, err);
	}
	if (rt->flags & ROUTE_EVENTS) {
		struct MHD_Response *resp;
		enum MHD_Result ret;

		r = cluster_events(a, node, p->v[0], &resp, err, sizeof(err));
		if (r < 0)
			return respond_error(c, r, err);
		MHD_add_response_header(resp, "Content-Type", "text/event-stream");
		MHD_add_response_header(resp, "Cache-Control", "no-cache");
		ret = queue(c, 200, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	/* The peer keeps who asked in what it records (a cancel's cancelledBy). */
	snprintf(via, sizeof(via), "%s via %s", who, a->cfg->node);
	r = cluster_forward(a, node, rt->method, path, vm, body, via, &status, &o, err, sizeof(err));
	return r < 0 ? respond_error(c, r, err) : respond_json(c, status, o);
}

/* A row on this node. */
static enum MHD_Result run(struct agent *a, struct MHD_Connection *c, const struct route *rt,
			   const struct route_params *p, const char *vm, struct json_object *body,
			   enum route_role have, const char *who)
{
	const char *force = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "force");
	struct route_call call = {.a = a, .p = p, .vm = vm, .body = body, .role = have, .who = who,
				  .where = "this node", .force = force && !strcmp(force, "true")};
	struct route_reply rep = {.status = 200};
	char err[600] = "";
	int r;

	if (rt->flags & ROUTE_EVENTS)
		return serve_events(a, c, p->v[0]);
	r = rt->fn(&call, &rep, err, sizeof(err));
	return r < 0 ? respond_error(c, r, err) : respond_reply(c, &rep);
}

/* Finds the row (through the gateway: the row of the route on NODE),
 * checks the caller's role against it, and runs it here or on NODE. */
static enum MHD_Result dispatch(struct agent *a, struct MHD_Connection *c, const char *method,
				const char *url, struct req_body *b, enum route_role have)
{
	const char *vm = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "vm");
	char node[64] = "", path[512], allow[64], msg[200], who[160];
	struct json_object *body = NULL;
	const struct route *rt;
	struct route_params p;
	enum MHD_Result ret;
	unsigned status;

	if (!strncmp(url, "/v1/nodes/", 10)) {
		if (cluster_split_url(url, node, sizeof(node), path, sizeof(path)) < 0)
			return respond_error(c, -ENOENT, "no such route");
		url = path;
	}
	rt = route_find(method, url, &p, &status, allow, sizeof(allow));
	if (!rt)
		return respond_unrouted(c, status, method, allow);
	if (have < rt->role) {
		snprintf(msg, sizeof(msg), "role %s may not do this: it needs the %s role or higher",
			 route_role_name(have), route_role_name(rt->role));
		return respond_status(c, 403, "forbidden", msg, NULL);
	}
	if (b->len) {
		/* Exactly one JSON value, nothing after it (schema/input.h). */
		if (schema_json_parse(b->buf, b->len, "request body", &body, msg, sizeof(msg)) < 0)
			return respond_error(c, -EINVAL, msg);
		if (!json_object_is_type(body, json_type_object)) {
			json_object_put(body);
			return respond_error(c, -EINVAL, "request body is not a JSON object");
		}
	}
	/* A body where none belongs is refused here, before the owner is
	 * looked for: bad input is named, whatever node it was meant for. */
	if (rt->flags & ROUTE_NO_BODY) {
		char err[500];
		int r = body_none(body, err, sizeof(err));

		if (r < 0) {
			json_object_put(body);
			return respond_error(c, r, err);
		}
	}
	/* Asked plainly about a VM or migration another node owns: there. */
	if (!node[0] && (rt->flags & (ROUTE_OWNED_VM | ROUTE_OWNED_MIG))) {
		char err[1200];
		int r = cluster_locate(a, rt, &p, body, node, sizeof(node), err, sizeof(err));

		if (r < 0) {
			json_object_put(body);
			return respond_error(c, r, err);
		}
	}
	snprintf(who, sizeof(who), "%.100s (%s)", b->who, route_role_name(have));
	if (node[0] && strcmp(node, a->cfg->node))
		ret = forward(a, c, node, rt, &p, url, vm, body, who);
	else
		ret = run(a, c, rt, &p, vm, body, have, who);
	json_object_put(body);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	struct api_listener *l = cls;
	struct req_body *b = *con_cls;
	enum MHD_Result ret;

	(void)version;
	if (!b) {
		int had_token;

		b = calloc(1, sizeof(*b));
		if (!b)
			return MHD_NO;
		*con_cls = b;
		/* The console's files are public; its API calls carry the token. */
		if (!strcmp(method, "GET") && console_is_path(url))
			return MHD_YES;
		/* Who asks is known from the headers: a caller without a valid
		 * token is answered now, before a byte of its body is read. */
		b->role = caller_role(l->a, c, l->is_tcp, &had_token, &b->who);
		if (b->role == ROLE_NONE)
			return respond_status(c, 401, "unauthorized",
					      had_token ? "the bearer token is not valid"
							: "a bearer token is required (ferryctl --token-file)",
					      NULL);
		return MHD_YES;
	}
	if (*upload_size) {
		/* A caller without a role (a console file's GET) gets no body
		 * buffered: nothing is held for someone without a token. */
		if (b->role == ROLE_NONE) {
			b->too_big = 1;
			*upload_size = 0;
			return MHD_YES;
		}
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
	if (!strcmp(method, "GET") && console_is_path(url))
		return (enum MHD_Result)console_serve(c, url);
	log_debug("api", "event=request method=%s url=%s role=%s", method, log_q(url), route_role_name(b->role));
	t_status = 0;
	ret = dispatch(l->a, c, method, url, b, b->role);
	/* One audit line per call that would change something, refused ones
	 * included: who, what, the answer. */
	if (strcmp(method, "GET"))
		log_info("audit", "event=api_call who=%s role=%s method=%s path=%s status=%u", log_q(b->who),
			 route_role_name(b->role), method, log_q(url), t_status);
	return ret;
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

/* The unix socket is root's (and ferryctl's on this host): no caps. */
static struct MHD_Daemon *start_unix_daemon(struct api_listener *l, int fd)
{
	return MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
				NULL, NULL, handler, l, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
}

/* The network listener is bounded, so that nobody without a token can
 * take the agent's descriptors or threads: API_TCP_MAX connections in all,
 * API_TCP_PER_IP from one address, and API_TCP_IDLE_S to send the next
 * byte of a request (slow headers). The event stream and a --wait keep a
 * connection busy, not idle. HTTPS when api_tls is configured. */
#define API_TCP_MAX 128
#define API_TCP_PER_IP 16
#define API_TCP_IDLE_S 10

static struct MHD_Daemon *start_tcp_daemon(struct api_listener *l, int fd, const char *cert,
					   const char *key)
{
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;

	if (!cert)
		return MHD_start_daemon(flags, 0, NULL, NULL, handler, l, MHD_OPTION_LISTEN_SOCKET, fd,
					MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
					MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_TCP_IDLE_S,
					MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_TCP_MAX,
					MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)API_TCP_PER_IP, MHD_OPTION_END);
	return MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, handler, l, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_TCP_IDLE_S,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_TCP_MAX,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)API_TCP_PER_IP,
				MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
				MHD_OPTION_HTTPS_PRIORITIES, "SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
				MHD_OPTION_END);
}

/* A PEM file into memory (NUL-terminated), at most 1 MiB. */
static char *read_pem(const char *path, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;

	if (schema_read_file(path, &text, &len, err, errlen) < 0)
		return NULL;
	return text;
}

int api_start(struct api *api, struct agent *a, char *err, size_t errlen)
{
	char dir[300];
	char *slash;
	int r;

	memset(api, 0, sizeof(*api));
	api->a = a;
	api->unix_fd = api->tcp_fd = -1;
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
	r = link_listen_unix(a->cfg->api_socket, &api->unix_fd);
	if (r < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", a->cfg->api_socket, strerror(-r));
		return r;
	}
	/* Only root (the admin) reaches the unix socket for now. */
	chmod(a->cfg->api_socket, 0600);
	api->unix_listener.a = a;
	api->unix_listener.is_tcp = 0;
	api->unix_daemon = start_unix_daemon(&api->unix_listener, api->unix_fd);
	if (!api->unix_daemon) {
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
		if (link_listen_tcp(host, port, &api->tcp_fd) < 0) {
			snprintf(err, errlen, "cannot listen for the API on %s", a->cfg->api_listen);
			return -EADDRINUSE;
		}
		api->tcp_listener.a = a;
		api->tcp_listener.is_tcp = 1;
		if (a->cfg->api_tls_cert[0]) {
			char *cert = read_pem(a->cfg->api_tls_cert, err, errlen), *key = NULL;

			if (cert)
				key = read_pem(a->cfg->api_tls_key, err, errlen);
			if (cert && key)
				api->tcp_daemon = start_tcp_daemon(&api->tcp_listener, api->tcp_fd, cert, key);
			/* MHD copies neither: keep them as long as the daemon. */
			api->tls_mem[0] = cert;
			api->tls_mem[1] = key;
			if (!cert || !key)
				return -EINVAL;
		} else {
			api->tcp_daemon = start_tcp_daemon(&api->tcp_listener, api->tcp_fd, NULL, NULL);
		}
		if (!api->tcp_daemon) {
			snprintf(err, errlen, "cannot start the %s API on %s (a bad certificate or key?)",
				 a->cfg->api_tls_cert[0] ? "HTTPS" : "HTTP", a->cfg->api_listen);
			return -EIO;
		}
		log_info("api", "event=listening addr=%s tokens=%zu tls=%d max_conns=%d per_ip=%d", a->cfg->api_listen,
			 a->cfg->n_tokens, a->cfg->api_tls_cert[0] != 0, API_TCP_MAX, API_TCP_PER_IP);
	}
	return 0;
}

void api_stop(struct api *api)
{
	if (api->unix_daemon)
		MHD_stop_daemon(api->unix_daemon);
	api->unix_daemon = NULL;
	if (api->tcp_daemon)
		MHD_stop_daemon(api->tcp_daemon);
	api->tcp_daemon = NULL;
	if (api->tcp_fd >= 0)
		close(api->tcp_fd);
	api->tcp_fd = -1;
	for (int i = 0; i < 2; i++) {
		free(api->tls_mem[i]);
		api->tls_mem[i] = NULL;
	}
	if (api->unix_fd >= 0) {
		close(api->unix_fd);
		unlink(api->a->cfg->api_socket);
	}
	api->unix_fd = -1;
}
