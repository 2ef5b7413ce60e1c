/* The VM operations the API calls: create, stop, resume, delete. */
#include "agent/agent_int.h"
#include "agent/drain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/qemu_confine.h"
#include "engine/storage.h"
#include "qmp/qmp.h"
#include "util/log.h"

int agent_vm_create(struct agent *a, struct vm_spec *spec, char *err, size_t errlen)
{
	struct qemu_vm *q = NULL;
	struct agent_vm *v;
	char run_dir[512], spec_name[64];
	int r;

	if (drain_cordoned(a)) {
		snprintf(err, errlen, "node %s is cordoned", a->cfg->node);
		log_warn("agent", "event=vm_refused vm=%s reason=\"%s\"", spec->name, log_q(err));
		vmspec_free(spec);
		return -EBUSY;
	}
	/* Its files must be where this node allows VM files, before the name
	 * is taken (qemu_vm_start checks again). */
	if (qemu_confine_spec(&a->env.qemu, spec, err, errlen) < 0) {
		log_warn("agent", "event=vm_refused vm=%s reason=\"%s\"", spec->name, log_q(err));
		vmspec_free(spec);
		return -EINVAL;
	}

	pthread_mutex_lock(&a->mu);
	v = find_vm(a, spec->name);
	if (!name_free(v)) {
		pthread_mutex_unlock(&a->mu);
		snprintf(err, errlen, "VM %s already exists on node %s", spec->name, a->cfg->node);
		vmspec_free(spec);
		return -EEXIST;
	}
	/* Reserve the name while QEMU starts. */
	v = hold_name(a, spec->name, VM_STARTING);
	if (!v) {
		pthread_mutex_unlock(&a->mu);
		vmspec_free(spec);
		return -ENOMEM;
	}
	pthread_mutex_unlock(&a->mu);

	snprintf(run_dir, sizeof(run_dir), "%s/vms/%s", a->cfg->state_dir, spec->name);
	snprintf(spec_name, sizeof(spec_name), "%s", spec->name); /* qemu_vm_start takes spec */
	r = qemu_vm_start(&a->env.qemu, spec, run_dir, 0, 0, &q, err, errlen);
	pthread_mutex_lock(&a->mu);
	if (r == 0) {
		v->q = q;
		v->state = VM_RUNNING;
		v->fresh = 0;
	} else {
		/* Nothing runs: no row is left for it (nor a run dir:
		 * qemu_vm_start removed what it made). */
		release_name(a, v);
		log_warn("agent", "event=vm_create_failed vm=%s reason=\"%s\"", spec_name, log_q(err));
	}
	pthread_mutex_unlock(&a->mu);
	if (r == 0) {
		qemu_vm_save_spec(q);
		log_info("agent", "event=vm_created vm=%s pid=%d", q->spec->name, q->pid);
	}
	return r;
}

int agent_vm_stop(struct agent *a, const char *name, char *err, size_t errlen)
{
	struct agent_vm *v;
	struct qemu_vm *q;

	pthread_mutex_lock(&a->mu);
	v = find_vm(a, name);
	if (v && v->state == VM_STOPPED) {
		pthread_mutex_unlock(&a->mu);
		snprintf(err, errlen, "VM %s is stopped", name);
		return -EBUSY;
	}
	if (!v || !v->q) {
		pthread_mutex_unlock(&a->mu);
		snprintf(err, errlen, "no VM named %s runs on node %s", name, a->cfg->node);
		return -ENOENT;
	}
	if (v->state != VM_RUNNING && v->state != VM_PAUSED) {
		pthread_mutex_unlock(&a->mu);
		snprintf(err, errlen, "VM %s is %s; wait or cancel first", name, vm_state_name(v->state));
		return -EBUSY;
	}
	q = v->q;
	v->q = NULL;
	v->state = VM_STOPPED;
	vmspec_free(v->spec);
	v->spec = vmspec_dup(q->spec);
	pthread_mutex_unlock(&a->mu);
	qemu_vm_stop(q, 10000);
	qemu_vm_remove_files(q);
	qemu_vm_free(q);
	log_info("agent", "event=vm_stopped vm=%s", name);
	return 0;
}

int agent_vm_resume(struct agent *a, const char *name, char *err, size_t errlen)
{
	struct agent_vm *v;
	struct qmp *q = NULL;
	struct qmp_error qe;
	char path[420];
	int r;

	pthread_mutex_lock(&a->mu);
	v = find_vm(a, name);
	if (v && v->state == VM_STOPPED) {
		snprintf(err, errlen, "VM %s is stopped", name);
		pthread_mutex_unlock(&a->mu);
		return -EBUSY;
	}
	if (!v || !v->q || v->state != VM_PAUSED) {
		snprintf(err, errlen, "no paused VM named %s on node %s", name, a->cfg->node);
		pthread_mutex_unlock(&a->mu);
		return v && v->q ? -EBUSY : -ENOENT;
	}
	snprintf(path, sizeof(path), "%s", v->q->qmp_path);
	pthread_mutex_unlock(&a->mu);
	r = qmp_connect(path, 10000, &q, &qe);
	if (r == 0)
		r = qmp_call(q, "cont", NULL, NULL, 10000, err, errlen);
	else
		snprintf(err, errlen, "cannot reach the VM's QEMU: %s", qe.desc);
	qmp_close(q);
	if (r < 0)
		return r;
	pthread_mutex_lock(&a->mu);
	v = find_vm(a, name);
	if (v && v->state == VM_PAUSED)
		v->state = VM_RUNNING;
	pthread_mutex_unlock(&a->mu);
	log_info("agent", "event=vm_resumed vm=%s", name);
	return 0;
}

int agent_vm_delete(struct agent *a, const char *name, char *err, size_t errlen)
{
	struct agent_vm *v, **pp;
	struct qemu_vm *q;

	pthread_mutex_lock(&a->mu);
	v = find_vm(a, name);
	if (!v) {
		pthread_mutex_unlock(&a->mu);
		snprintf(err, errlen, "no VM named %s on node %s", name, a->cfg->node);
		return -ENOENT;
	}
	if (v->state == VM_MIGRATING || v->state == VM_STARTING || v->state == VM_INCOMING) {
		pthread_mutex_unlock(&a->mu);
		snprintf(err, errlen, "VM %s is %s; wait or cancel first", name, vm_state_name(v->state));
		return -EBUSY;
	}
	for (pp = &a->vms; *pp != v; pp = &(*pp)->next)
		;
	*pp = v->next;
	q = v->q;
	pthread_mutex_unlock(&a->mu);
	if (q) {
		qemu_vm_stop(q, 10000);
		qemu_vm_remove_files(q);
		qemu_vm_free(q);
	}
	/* Disk copies ferry made for this VM go with it. */
	stor_remove_vm_images(a->cfg->state_dir, name);
	vmspec_free(v->spec);
	free(v);
	log_info("agent", "event=vm_deleted vm=%s", name);
	return 0;
}
