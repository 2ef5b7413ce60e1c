/* A QEMU process for one VM on this host: its run directory (QMP socket,
 * serial socket and log, QEMU's own log, pidfile), start and stop.
 *
 * QEMU runs in its own session so a signal to ferryd's terminal does not
 * reach the guest. */
#ifndef FERRY_ENGINE_QEMU_PROC_H
#define FERRY_ENGINE_QEMU_PROC_H

#include <sys/types.h>

struct vm_spec;
struct ferry_kv;

/* How this host runs QEMU (engine/qemu_confine.h for the confinement). */
struct qemu_env {
	const char *binary; /* qemu-system-x86_64 */
	const char *accel;  /* tcg | kvm | kvm:tcg */
	/* Directories the files of a VM spec may be in (STATE/disks among
	 * them); none means nothing is allowed. */
	const char *const *allowed_dirs;
	size_t n_allowed_dirs;
	char disks_dir[300]; /* STATE/disks: ferry's own images */
	/* qemu_confine_init: the user QEMU runs as; uid 0 = root, no drop. */
	char user[64];
	uid_t uid;
	gid_t gid;
	int sandbox; /* the binary has seccomp (-sandbox) */
	/* qemu_probe_host_cpu: what a host-model VM gets here (qmp/cpu_model.h),
	 * or none with the reason in host_cpu_err. */
	struct ferry_kv *host_cpu;
	size_t n_host_cpu;
	char host_cpu_err[256];
};

struct qemu_vm {
	struct vm_spec *spec; /* owned */
	char run_dir[400];
	char qmp_path[420];
	char serial_path[420];
	char serial_log[420];
	char qemu_log[420];
	char pidfile[420];
	char incoming_path[420]; /* target only: where QEMU listens for the migration */
	char incoming_marker[420]; /* exists while an incoming migration is unfinished */
	char efi_vars[420];        /* firmware uefi: STATE/disks/NAME/efivars.fd, else "" */
	pid_t pid;
	int pidfd;
};

/* Starts QEMU for spec (ownership taken, also on failure) in run_dir, which
 * is created (0700). incoming: -incoming defer; paused: -S. Waits until its
 * QMP socket answers.
 *
 * firmware uefi: the OVMF files must be there (else a clear error naming
 * the ovmf package), and the VM's variables file is
 * STATE/disks/NAME/efivars.fd, given to the QEMU user. An ordinary start
 * keeps an existing one (the VM's NVRAM outlives a stop) and copies the
 * template otherwise; an incoming start always copies the template: the
 * source's variables arrive with the migration (QEMU migrates the flash
 * as RAM and writes it to this file when the guest runs here). */
int qemu_vm_start(const struct qemu_env *env, struct vm_spec *spec, const char *run_dir,
		  int incoming, int paused, struct qemu_vm **out, char *err, size_t errlen);

/* Starts a QEMU without a machine (as the QEMU user, the env's accel list)
 * and records the static expansion of its "host" CPU (KVM), or of the
 * named model qemu64 (TCG has no host CPU), in env->host_cpu. 0, or -errno with the reason in err and
 * env->host_cpu_err; host-model VMs are then refused here. */
int qemu_probe_host_cpu(struct qemu_env *env, char *err, size_t errlen);
void qemu_env_free_host_cpu(struct qemu_env *env);

/* Still running? (reaps it if it exited) */
int qemu_vm_alive(struct qemu_vm *vm);

/* QMP quit, then SIGTERM, then SIGKILL, each with a deadline; reaps. */
int qemu_vm_stop(struct qemu_vm *vm, int timeout_ms);

/* Writes run_dir/spec.json (atomically): what a restarted agent reads to
 * take the VM back. */
int qemu_vm_save_spec(const struct qemu_vm *vm);

/* Takes back a QEMU that outlived its agent: its run dir's spec.json, a
 * live pid from qemu.pid and a QMP socket that answers. */
int qemu_vm_adopt(const char *run_dir, struct qemu_vm **out, char *err, size_t errlen);

/* Removes the run directory's files (QEMU must be stopped), and the UEFI
 * variables file of an incoming migration that did not finish. */
void qemu_vm_remove_files(struct qemu_vm *vm);
/* The same for a run dir without a qemu_vm (a stale incoming one). */
void qemu_run_dir_remove(const char *run_dir);

/* Last lines of QEMU's log, for error messages. */
void qemu_vm_log_tail(const struct qemu_vm *vm, char *buf, size_t len);

/* The incoming migration finished: the VM is an ordinary one now. */
void qemu_vm_incoming_done(struct qemu_vm *vm);

void qemu_vm_free(struct qemu_vm *vm);

#endif
