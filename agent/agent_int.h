/* What the files of ferryd's core (agent.c, engine_glue.c, recovery.c,
 * vm_ops.c, migrations.c, placement.c, present.c, metrics.c) share with
 * each other and nobody else: the table helpers, the engine callbacks agent_init
 * installs, the restart steps it runs, and the placement that migrations
 * and the slots ask. Other modules use agent.h. */
#ifndef FERRY_AGENT_AGENT_INT_H
#define FERRY_AGENT_AGENT_INT_H

#include "agent/agent.h"

struct json_object;

/* agent.c: the VM table. Callers hold agent.mu. */
/* The state's name as the API shows it ("Running", ...). */
const char *vm_state_name(enum vm_state s);
/* The VM named name, or NULL. */
struct agent_vm *find_vm(struct agent *a, const char *name);
/* A new entry for name at the head of the table (state Running, no QEMU):
 * NULL when out of memory. */
struct agent_vm *add_vm(struct agent *a, const char *name);
/* Nonzero when a new or arriving VM may take v's name (v may be NULL). */
int name_free(const struct agent_vm *v);
/* Holds name for a VM coming up here (state, STARTING or INCOMING): the
 * existing row (a Stopped one) or a new one. NULL when out of memory. */
struct agent_vm *hold_name(struct agent *a, const char *name, enum vm_state state);
/* A hold that came to nothing: a row made for it goes, an older one is
 * Stopped again. */
void release_name(struct agent *a, struct agent_vm *v);
/* Unlinks v and frees it (its QEMU, if any, too). */
void remove_vm(struct agent *a, struct agent_vm *v);

/* engine_glue.c: the struct mig_env callbacks, agent points at the agent.
 * They take agent.mu themselves. */
void on_target_failed(void *agent, const char *name);
void on_source_done(void *agent, struct migration *m, int succeeded);
int on_target_arrived(void *agent, struct migration *m, struct qemu_vm *q);
int acquire_slot(void *agent, struct migration *m, char *why, size_t len);
void release_slot(void *agent, struct migration *m);
int target_admit(void *agent, const char *name, char *reason, size_t len);

/* present.c: a record's RFC 3339 timestamp in µs since the epoch (0: not
 * one), whole seconds or with a fraction. Pure. */
uint64_t record_time_us(const char *ts);

/* recovery.c: what an earlier run left, taken over by agent_init in this
 * order (stale incoming VMs removed, running QEMUs adopted, then the
 * records, which name the adopted VMs' last migrations). */
void cleanup_stale_incoming(struct agent *a);
void adopt_vms(struct agent *a);
void load_records(struct agent *a);

/* placement.c: the peers as targets. Blocking (each peer is asked over a
 * link); called without agent.mu. */
/* A JSON array with one {name, eligible, reason, ...} per peer. */
struct json_object *judge_peers(struct agent *a, const struct vm_spec *spec);
/* The eligible peer for spec into node, or -ENOENT with every reason in err. */
int pick_node(struct agent *a, const struct vm_spec *spec, char *node, size_t len, char *err,
	      size_t errlen);
/* The outbound migrations on the peers, summed from their facts. */
int peers_outbound(struct agent *a);

#endif
