/* What QEMU may do on this host: which files a VM spec may name, which
 * user QEMU runs as, and its seccomp sandbox.
 *
 * A spec may come from a REST client or from a peer (prepare), and QEMU
 * opens what it names, so every host path in it (disks, cdroms, the kernel)
 * must resolve under a directory the operator allowed (`allowed_paths`;
 * ferry's own images under STATE/disks always are). QEMU itself runs as an
 * unprivileged user: ferryd drops to it in the forked child before exec,
 * so QEMU never holds root, and with seccomp it also runs under
 * `-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,
 * resourcecontrol=deny`. (QEMU's own `-run-with user=` drops after the
 * sandbox is installed, and elevateprivileges=deny then kills it with
 * SIGSYS: measured with QEMU 10.0.2.) Files QEMU opens or creates must then
 * be reachable by that user: ferry gives it the run dirs, the migration
 * dirs, the sockets QEMU connects to and the images it creates; images a
 * user names must be readable (and for disks writable) by it, or the start
 * is refused with the reason. */
#ifndef FERRY_ENGINE_QEMU_CONFINE_H
#define FERRY_ENGINE_QEMU_CONFINE_H

#include <stddef.h>
#include <sys/types.h>

struct qemu_env;
struct vm_spec;

/* Fills env's user fields for user ("root": no drop) and probes env->binary
 * for seccomp support. -ENOENT with the reason in err when the user does not
 * exist. */
int qemu_confine_init(struct qemu_env *env, const char *user, char *err, size_t errlen);

/* Every path of spec resolves under env's allowed dirs, and the QEMU user
 * can open it (read; read-write for disks). Images under STATE/disks are
 * given to the QEMU user first. 0, or -EACCES with the path and the rule in
 * err. Called before every QEMU start. */
int qemu_confine_spec(const struct qemu_env *env, const struct vm_spec *spec, char *err,
		      size_t errlen);

/* chown path to the QEMU user (mode kept). No-op when QEMU runs as root.
 * 0 or -errno. */
int qemu_confine_give(const struct qemu_env *env, const char *path);
/* A directory QEMU must pass through but not list: group of the QEMU user,
 * mode 0710. No-op when QEMU runs as root. 0 or -errno. */
int qemu_confine_share_dir(const struct qemu_env *env, const char *path);

/* In the forked child, before exec: become the QEMU user (groups, gid,
 * uid). 0 or -errno; only async-signal-safe calls. */
int qemu_confine_drop(const struct qemu_env *env);

/* The -sandbox value for spec, or NULL when QEMU has no seccomp. */
const char *qemu_confine_sandbox(const struct qemu_env *env, const struct vm_spec *spec);

/* 1 when pid is a QEMU of this agent for run_dir: its executable is
 * env's binary and its command line names run_dir/qmp.sock. A stale
 * qemu.pid may name any process once the pid is reused. */
int qemu_confine_is_vm_qemu(const struct qemu_env *env, pid_t pid, const char *run_dir);

#endif
