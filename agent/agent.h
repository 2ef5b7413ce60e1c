/* ferryd's state: the VMs this host owns, the migrations it takes part in,
 * and the loop, workers and peer identity they share.
 *
 * Locking: agent.mu guards the VM and migration tables. Engine callbacks
 * take it; API handlers take it briefly and never across a blocking call. */
#ifndef FERRY_AGENT_AGENT_H
#define FERRY_AGENT_AGENT_H

#include <pthread.h>

#include "agent/config.h"
#include "engine/migration.h"
#include "transport/loop.h"

/* STARTING and INCOMING hold the name while a QEMU comes up, so two
 * creates (or a create and an arriving migration) cannot collide; PAUSED
 * is a guest a migration left stopped here because the target never
 * confirmed it runs there (see mig_status.guest_paused_on_source).
 * No row stays for what is not here: a VM that migrated away, a create
 * that failed and an arrival that failed leave none (their history is in
 * the migration records). DEPARTED is no longer given to a row; the name
 * stays for the states /metrics lists. */
enum vm_state { VM_RUNNING, VM_MIGRATING, VM_DEPARTED, VM_STOPPED, VM_STARTING, VM_INCOMING, VM_PAUSED };

struct agent_vm {
	char name[64];
	enum vm_state state;
	struct qemu_vm *q;     /* NULL once departed */
	struct vm_spec *spec;  /* a Stopped VM's spec (its blockers, its candidates), or NULL */
	struct migration *active;
	char last_mig[40];
	int fresh; /* STARTING/INCOMING: the row was made for it (a failure removes it) */
	struct agent_vm *next;
};

struct agent_mig {
	struct migration *m;
	char vm[64];
	struct agent_mig *next;
};

/* A finished migration known from the state dir (an earlier run of this
 * agent): its record, read-only. */
struct agent_record {
	char id[40];
	char vm[64];
	struct json_object *j;
	struct agent_record *next;
};

struct agent {
	struct ferry_config *cfg;
	struct loop *lp;
	struct workers *w;
	struct mig_env env;
	pthread_mutex_t mu;
	struct agent_vm *vms;
	struct agent_mig *migs;
	struct agent_record *records; /* history from before this start */
	unsigned mig_seq;
	int outbound;            /* source migrations holding a slot */
	pthread_cond_t slot_cv;  /* a slot was released */
	const char **allowed_dirs; /* allowed_paths + STATE/disks, for env.qemu */
	struct drain *drain;     /* the cordon and the drain (drain.h) */
};

/* The core: tables, loop, workers, identity, and what an earlier run left
 * (recovery.c). Its front doors, the peer listener (peers.h) and the HTTP
 * API (api.h), are ferryd.c's: started after agent_init, stopped before
 * agent_shutdown. */
int agent_init(struct agent *a, struct ferry_config *cfg, char *err, size_t errlen);
void agent_shutdown(struct agent *a);
/* SIGHUP: re-reads the TLS certificate, key and CA for new links (running
 * migrations keep theirs). 0, or -errno with the old ones kept (logged). */
int agent_reload_tls(struct agent *a);

/* VM operations (called by the API). Errors: -errno with a message. */
int agent_vm_create(struct agent *a, struct vm_spec *spec, char *err, size_t errlen);
int agent_vm_delete(struct agent *a, const char *name, char *err, size_t errlen);
/* Shuts the VM's QEMU down; the name stays listed as Stopped. */
int agent_vm_stop(struct agent *a, const char *name, char *err, size_t errlen);
/* Lets a Paused VM run (one that arrived paused as asked, or one kept
 * paused after a broken switchover, by an operator's decision). */
int agent_vm_resume(struct agent *a, const char *name, char *err, size_t errlen);
struct json_object *agent_vm_json(struct agent *a, const char *name); /* NULL: unknown */
struct json_object *agent_vms_json(struct agent *a);

/* Starts migrating req->vm to req->target_node ("": the eligible peer
 * chosen here), named req->name, with req's flags; settings is the
 * request's layer of the migration settings, resolved here against the
 * VM's spec, its policy and this agent's defaults (mset_resolve). The id,
 * target address, resolved settings and policy are filled here; both come
 * from the API (api_migration_request). */
int agent_migrate(struct agent *a, const struct mig_request *req, const struct mset_request *settings,
		  char *id_out, size_t idlen, char *err, size_t errlen);
/* Cancels the migration named by its id, VMIM name, or its VM's name (the
 * one in progress); by is who asked, kept in the record (NULL: unknown). */
int agent_migration_cancel(struct agent *a, const char *id_or_vm, const char *by, char *err,
			   size_t errlen);
struct json_object *agent_migration_json(struct agent *a, const char *id);
/* One server-sent event for migration status m ("event: migration\ndata:
 * {...}\n\n", malloc'ed, NULL on allocation failure); *final set when m's
 * phase ends the stream (Succeeded, Failed). Shared by this node's stream
 * and the one relayed from a peer. */
char *agent_migration_event(struct json_object *m, int *final);
struct json_object *agent_migration_samples_json(struct agent *a, const char *id);
/* Prometheus text exposition of this agent (malloc'd). */
char *agent_metrics_text(struct agent *a);
/* Each peer as a target for this VM: eligible or why not. */
struct json_object *agent_vm_candidates_json(struct agent *a, const char *name);
struct json_object *agent_migrations_json(struct agent *a, const char *vm);
struct json_object *agent_node_json(struct agent *a);
void agent_add_migration(struct agent *a, struct migration *m, const char *vm);
/* Nonzero (with why) when limits.parallel_inbound migrations are arriving. */
int agent_inbound_full(struct agent *a, char *why, size_t len);
struct migration *agent_find_migration(struct agent *a, const char *id);

#endif
