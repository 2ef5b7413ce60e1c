/* Peer links arriving at this agent: authenticate, read the first frame,
 * and hand the link to what it asks for (a migration's control channel or
 * one of its data streams). Set-up is blocking and short, so each accepted
 * link gets its own thread; the data itself then flows on the loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/drain.h"
#include "agent/peers.h"
#include "transport/link.h"
#include "transport/peer.h"
#include "util/log.h"
#include "util/ratelimit.h"
#include "util/timeutil.h"
#include "util/uuid.h"

#define HANDSHAKE_TIMEOUT_MS 5000
#define FIRST_FRAME_TIMEOUT_MS 10000

struct peer_conn {
	struct peers *p;
	int fd;
	char addr[ADMIT_ADDR_LEN]; /* the caller's address, admitted */
};

/* busy: the peer may retry later (an inbound limit), rather than give up. */
static void send_refusal_busy(struct peer_link *pl, const char *reason, int busy)
{
	struct json_object *o = json_object_new_object();
	const char *s;

	json_object_object_add(o, "op", json_object_new_string("error"));
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	if (busy)
		json_object_object_add(o, "busy", json_object_new_boolean(1));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	(void)peer_send_msg(pl, FRAME_CONTROL, s, strlen(s), 2000);
	json_object_put(o);
}

static void send_refusal(struct peer_link *pl, const char *reason)
{
	send_refusal_busy(pl, reason, 0);
}

/* Every id a peer sends names files here and appears in log lines: only a
 * canonical UUID is taken. 1 if id is one; else the link is refused with
 * the reason (and the caller closes it). */
static int peer_id_ok(struct peer_link *pl, const char *op, const char *id)
{
	char why[160];

	if (uuid_valid(id))
		return 1;
	snprintf(why, sizeof(why), "%s: the migration id must be a UUID", op);
	log_warn("peer", "event=bad_migration_id peer=%s op=%s id=\"%.40s\"", pl->peer, op,
		 log_q(id ? id : "-"));
	send_refusal(pl, why);
	return 0;
}

static void handle_prepare(struct agent *a, struct peer_link *pl, struct json_object *msg)
{
	struct json_object *spec = json_object_object_get(msg, "spec");
	const char *vm = json_object_get_string(json_object_object_get(spec, "name"));
	struct migration *m = NULL;
	int r;

	if (!peer_id_ok(pl, "prepare", json_object_get_string(json_object_object_get(msg, "mig")))) {
		peer_link_close(pl);
		return;
	}
	/* An id names one migration here: a second prepare with a known id
	 * (live or in the history) would capture the first one's channels and
	 * overwrite its record. */
	{
		struct json_object *known = agent_migration_json(a, json_object_get_string(
								  json_object_object_get(msg, "mig")));

		if (known) {
			json_object_put(known);
			log_warn("peer", "event=prepare_refused peer=%s reason=\"migration id already in use\"",
				 pl->peer);
			send_refusal(pl, "prepare: the migration id is already in use on this node");
			peer_link_close(pl);
			return;
		}
	}
	if (!vm) {
		send_refusal(pl, "prepare without a VM spec");
		peer_link_close(pl);
		return;
	}
	if (drain_cordoned(a)) {
		char why[120];

		snprintf(why, sizeof(why), "node %s is cordoned", a->cfg->node);
		log_warn("peer", "event=prepare_refused peer=%s reason=\"%s\"", pl->peer, why);
		send_refusal(pl, why);
		peer_link_close(pl);
		return;
	}
	{
		/* At the inbound limit: say "busy" before any record exists,
		 * so a source waiting in Pending retries without leaving a
		 * trail of failed migrations here. */
		char why[200];

		if (agent_inbound_full(a, why, sizeof(why))) {
			send_refusal_busy(pl, why, 1);
			peer_link_close(pl);
			return;
		}
	}
	{
		/* One name, one VM in the cluster: a third node that holds a
		 * VM of this name refuses the arrival. A node that cannot be
		 * asked does not block it: the VM exists already, moving it
		 * adds no name, and the cluster view shows any conflict. */
		char why[400];

		if (cluster_name_taken(a, vm, pl->peer, 1, why, sizeof(why)) < 0) {
			log_warn("peer", "event=prepare_refused peer=%s vm=\"%s\" reason=\"%s\"", pl->peer, log_q(vm),
				 log_q(why));
			send_refusal(pl, why);
			peer_link_close(pl);
			return;
		}
	}
	r = mig_target_start(&a->env, pl, msg, &m);
	if (r < 0) {
		log_warn("peer", "event=prepare_refused peer=%s err=%s", pl->peer, strerror(-r));
		send_refusal(pl, r == -EINVAL ? "malformed prepare request" : "target cannot start a migration now");
		peer_link_close(pl);
		return;
	}
	agent_add_migration(a, m, vm);
}

static void handle_open(struct agent *a, struct peer_link *pl, struct json_object *msg)
{
	const char *id = json_object_get_string(json_object_object_get(msg, "mig"));
	const char *kind_s = json_object_get_string(json_object_object_get(msg, "kind"));
	int chan = json_object_get_int(json_object_object_get(msg, "channel"));
	int64_t stream = json_object_get_int64(json_object_object_get(msg, "stream"));
	/* Page cache slots of a page-coded channel; mig_target_attach checks them. */
	int64_t pages = json_object_get_int64(json_object_object_get(msg, "pages"));
	enum channel_kind kind = kind_s ? channel_kind_parse(kind_s) : CHANNEL_UNKNOWN;
	struct migration *m;
	char reason[256];

	if (!peer_id_ok(pl, "open", id)) {
		peer_link_close(pl);
		return;
	}
	m = agent_find_migration(a, id);
	if (!m || kind == CHANNEL_UNKNOWN || stream <= 0 || stream > 0xffff || pages < 0 ||
	    pages > UINT32_MAX) {
		snprintf(reason, sizeof(reason), "%s", !m ? "unknown migration" : "bad stream open");
		log_warn("peer", "event=open_refused mig=%s reason=\"%s\"", id ? id : "-", log_q(reason));
		send_refusal(pl, reason);
		peer_link_close(pl);
		return;
	}
	log_set_migration(id);
	if (mig_target_attach(m, pl, kind, chan, (uint32_t)stream, (uint32_t)pages, reason,
			      sizeof(reason)) < 0)
		log_warn("peer", "event=attach_failed kind=%s channel=%d reason=\"%s\"", kind_s, chan, log_q(reason));
	log_set_migration(NULL);
}

static void *peer_thread(void *arg)
{
	struct peer_conn *pc = arg;
	struct peers *ps = pc->p;
	struct agent *a = ps->a;
	struct json_object *msg = NULL;
	struct peer_link *pl = NULL;
	struct frame_hdr h;
	char reason[300] = "";
	char *buf = NULL;
	const char *peer;
	int fd = pc->fd, r;
	char addr[ADMIT_ADDR_LEN];

	snprintf(addr, sizeof(addr), "%s", pc->addr);
	free(pc);
	/* Refuses nodes outside peers:, whichever side connected. */
	r = peer_accept(a->env.ident, fd, HANDSHAKE_TIMEOUT_MS, &pl, reason, sizeof(reason));
	/* Authenticated or not, this handshake is over: its place is free. */
	pthread_mutex_lock(&ps->admit_mu);
	admit_put(&ps->admit, addr);
	pthread_mutex_unlock(&ps->admit_mu);
	if (r < 0) {
		/* tls_handshake has logged the reason; nothing starts. */
		goto drop;
	}
	/* The message buffer only for a peer that proved who it is. */
	buf = malloc(PEER_MSG_MAX + 1 + FRAME_TAG_LEN);
	if (!buf)
		goto drop;
	peer = pl->peer;
	r = peer_recv_msg(pl, FIRST_FRAME_TIMEOUT_MS, &h, buf, PEER_MSG_MAX + 1 + FRAME_TAG_LEN);
	if (r < 0) {
		log_warn("peer", "event=peer_dropped peer=%s reason=\"no valid first frame: %s\"", peer,
			 strerror(-r));
		goto drop;
	}
	msg = json_tokener_parse(buf);
	if (!msg || !json_object_is_type(msg, json_type_object)) {
		log_warn("peer", "event=peer_dropped peer=%s reason=\"first frame is not a JSON object\"", peer);
		goto drop;
	}
	if (h.type == FRAME_OPEN) {
		handle_open(a, pl, msg);
		pl = NULL;
	} else if (h.type == FRAME_CONTROL) {
		const char *op = json_object_get_string(json_object_object_get(msg, "op"));

		if (op && !strcmp(op, "prepare")) {
			handle_prepare(a, pl, msg);
			pl = NULL;
		} else if (op && !strcmp(op, "resume")) {
			const char *id = json_object_get_string(json_object_object_get(msg, "mig"));
			struct migration *m = uuid_valid(id) ? agent_find_migration(a, id) : NULL;
			char why[256] = "unknown migration";

			if (!peer_id_ok(pl, "resume", id)) {
				/* refused above */
			} else if (m && mig_target_resume(m, pl, why, sizeof(why)) == 0) {
				pl = NULL; /* the target thread owns it now */
			} else {
				log_warn("peer", "event=resume_refused peer=%s reason=\"%s\"", peer, log_q(why));
				send_refusal(pl, why);
			}
		} else if (op && !strcmp(op, "facts")) {
			struct json_object *n = agent_node_json(a);
			const char *s = json_object_to_json_string_ext(n, JSON_C_TO_STRING_PLAIN);

			(void)peer_send_msg(pl, FRAME_CONTROL, s, strlen(s), 2000);
			json_object_put(n);
		} else if (op && (!strcmp(op, "vms") || !strcmp(op, "api"))) {
			/* The cluster view and the gateway's forwarded calls. */
			cluster_peer_serve(a, pl, op, msg);
		} else {
			log_warn("peer", "event=peer_dropped peer=%s reason=\"unknown op %s\"", peer, op ? op : "-");
			send_refusal(pl, "unknown op");
		}
	} else {
		log_warn("peer", "event=peer_dropped peer=%s reason=\"unexpected %s frame\"", peer,
			 frame_type_name(h.type));
	}
drop:
	json_object_put(msg);
	free(buf);
	peer_link_close(pl);
	return NULL;
}

static void arm(void *arg);

/* The caller's address as text ("?" when unknown): the admission key. */
static void peer_addr(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const void *ip = NULL;

	snprintf(buf, len, "?");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET)
		ip = &((struct sockaddr_in *)&ss)->sin_addr;
	else if (ss.ss_family == AF_INET6)
		ip = &((struct sockaddr_in6 *)&ss)->sin6_addr;
	if (ip)
		inet_ntop(ss.ss_family, ip, buf, (socklen_t)len);
}

static void peer_retry_cb(struct loop_op *op, int res)
{
	(void)res;
	arm((char *)op - offsetof(struct peers, retry_op));
}

static void peer_accept_cb(struct loop_op *op, int res)
{
	struct peers *p = (struct peers *)((char *)op - offsetof(struct peers, accept_op));
	struct agent *a = p->a;
	struct peer_conn *pc;
	const char *why = "";
	int admitted;
	pthread_t t;

	if (res < 0) {
		if (res == -ECANCELED)
			return;
		/* Out of fds or similar: keep serving peers, but do not spin. */
		log_error("peer", "event=accept_failed err=%s action=retry_in_200ms", strerror(-res));
		p->retry_op.cb = peer_retry_cb;
		if (loop_timeout(a->lp, &p->retry_op, 200) < 0)
			log_error("peer", "event=peer_listener_stopped reason=\"cannot queue a retry\"");
		return;
	}
	pc = malloc(sizeof(*pc));
	if (!pc) {
		close(res);
		return;
	}
	pc->p = p;
	pc->fd = res;
	peer_addr(res, pc->addr, sizeof(pc->addr));
	pthread_mutex_lock(&p->admit_mu);
	admitted = admit_take(&p->admit, pc->addr, &why);
	pthread_mutex_unlock(&p->admit_mu);
	if (!admitted) {
		static struct ratelimit busy_rl = RATELIMIT_INIT(5, 1000);
		unsigned suppressed = 0;

		if (ratelimit_allow(&busy_rl, time_mono_ms(), &suppressed))
			log_warn("peer", "event=handshake_refused peer_addr=%s suppressed=%u reason=\"%s\"",
				 pc->addr, suppressed, why);
		free(pc);
		close(res);
		return;
	}
	if (pthread_create(&t, NULL, peer_thread, pc) != 0) {
		pthread_mutex_lock(&p->admit_mu);
		admit_put(&p->admit, pc->addr);
		pthread_mutex_unlock(&p->admit_mu);
		free(pc);
		close(res);
		return;
	}
	pthread_detach(t);
}

static void arm(void *arg)
{
	struct peers *p = arg;

	int r;

	p->accept_op.cb = peer_accept_cb;
	r = loop_accept(p->a->lp, &p->accept_op, p->fd);
	if (r < 0)
		peer_accept_cb(&p->accept_op, r); /* retried after a pause */
}

int peers_start(struct peers *p, struct agent *a, char *err, size_t errlen)
{
	int r;

	memset(p, 0, sizeof(*p));
	p->a = a;
	p->fd = -1;
	pthread_mutex_init(&p->admit_mu, NULL);
	r = link_listen_tcp(a->cfg->listen_host, a->cfg->listen_port, &p->fd);

	/* A ferryd that was just killed may still hold the port for a moment:
	 * the kernel tears its io_uring (and the accept it had armed on the
	 * listener) down asynchronously after the process is gone. */
	for (int i = 0; r == -EADDRINUSE && i < 50; i++) {
		poll(NULL, 0, 100);
		r = link_listen_tcp(a->cfg->listen_host, a->cfg->listen_port, &p->fd);
	}

	if (r < 0) {
		snprintf(err, errlen, "cannot listen for peers on %s:%d: %s", a->cfg->listen_host,
			 a->cfg->listen_port, strerror(-r));
		return r;
	}
	r = loop_post(a->lp, arm, p);
	if (r < 0) {
		snprintf(err, errlen, "cannot start the peer listener: %s", strerror(-r));
		close(p->fd);
		p->fd = -1;
		return r;
	}
	log_info("peer", "event=listening addr=%s:%d", a->cfg->listen_host, a->cfg->listen_port);
	return 0;
}

static void cancel(void *arg)
{
	struct peers *p = arg;

	loop_cancel_fd(p->a->lp, p->fd);
}

void peers_stop(struct peers *p)
{
	if (p->fd < 0)
		return;
	loop_post_must(p->a->lp, cancel, p);
	/* The loop stops later; closing now only makes pending accepts fail. */
	shutdown(p->fd, SHUT_RDWR);
}

void peers_close(struct peers *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}
