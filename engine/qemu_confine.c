#include "engine/qemu_confine.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/qemu_proc.h"
#include "engine/vmspec.h"
#include "util/confine.h"
#include "util/log.h"

extern char **environ;

#define SANDBOX_FULL "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
/* A bridge NIC needs QEMU to run its setuid bridge helper. */
#define SANDBOX_SPAWN "on,obsolete=deny,elevateprivileges=deny,resourcecontrol=deny"

/* Does the binary take -sandbox? Options are parsed before -version exits,
 * so a QEMU without seccomp fails this. */
static int probe_sandbox(const char *binary)
{
	char *argv[] = {(char *)binary, "-sandbox", SANDBOX_FULL, "-version", NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st = 0, r;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	r = posix_spawnp(&pid, binary, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int qemu_confine_init(struct qemu_env *env, const char *user, char *err, size_t errlen)
{
	struct passwd *pw;

	snprintf(env->user, sizeof(env->user), "%s", user);
	pw = getpwnam(user);
	if (!pw) {
		snprintf(err, errlen,
			 "qemu.user %s does not exist: create it (scripts/setup.sh does: useradd "
			 "--system --user-group --no-create-home --shell /usr/sbin/nologin %s) or set "
			 "qemu.user: root",
			 user, user);
		return -ENOENT;
	}
	env->uid = pw->pw_uid;
	env->gid = pw->pw_gid;
	env->sandbox = probe_sandbox(env->binary);
	log_info("qemu", "event=qemu_confinement user=%s uid=%u sandbox=%d", user, (unsigned)env->uid,
		 env->sandbox);
	if (env->uid == 0)
		log_warn("qemu", "event=qemu_runs_as_root reason=\"qemu.user is root\"");
	return 0;
}

int qemu_confine_give(const struct qemu_env *env, const char *path)
{
	if (env->uid == 0)
		return 0;
	return chown(path, env->uid, env->gid) < 0 ? -errno : 0;
}

int qemu_confine_share_dir(const struct qemu_env *env, const char *path)
{
	if (env->uid == 0)
		return 0;
	if (chown(path, 0, env->gid) < 0 || chmod(path, 0710) < 0)
		return -errno;
	return 0;
}

int qemu_confine_drop(const struct qemu_env *env)
{
	gid_t g = env->gid;

	if (env->uid == 0)
		return 0;
	if (setgroups(1, &g) < 0 || setgid(env->gid) < 0 || setuid(env->uid) < 0)
		return -errno;
	return 0;
}

const char *qemu_confine_sandbox(const struct qemu_env *env, const struct vm_spec *spec)
{
	if (!env->sandbox)
		return NULL;
	for (size_t i = 0; i < spec->n_nics; i++)
		if (!strcmp(spec->nics[i].binding, "bridge"))
			return SANDBOX_SPAWN;
	return SANDBOX_FULL;
}

/* An image ferry made (under STATE/disks) belongs to the QEMU user, and so
 * do the directories on its way from STATE/disks. */
static void give_own_image(const struct qemu_env *env, const char *path)
{
	char real[PATH_MAX], dir[PATH_MAX], top[PATH_MAX];
	char *slash;

	if (env->uid == 0 || !realpath(path, real) || !realpath(env->disks_dir, top) ||
	    !confine_within(real, top))
		return;
	(void)qemu_confine_give(env, real);
	snprintf(dir, sizeof(dir), "%s", real);
	while ((slash = strrchr(dir, '/')) && slash > dir) {
		*slash = '\0';
		(void)qemu_confine_share_dir(env, dir);
		if (!strcmp(dir, top))
			break;
	}
}

/* Can the QEMU user open these? Asked in a child that has become it, so
 * every rule of the file system (modes, groups, ACLs) decides. Returns the
 * index of the first path it cannot open, or -1. */
static int first_inaccessible(const struct qemu_env *env, const char *const *paths,
			      const int *modes, size_t n, int *err_out)
{
	int pfd[2], st = 0, res[2] = {-1, 0};
	pid_t pid;

	if (env->uid == 0 || n == 0)
		return -1;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int out[2] = {-1, 0};

		close(pfd[0]);
		if (qemu_confine_drop(env) < 0) {
			out[0] = 0;
			out[1] = errno;
		}
		for (size_t i = 0; out[0] < 0 && i < n; i++) {
			if (access(paths[i], modes[i]) < 0) {
				out[0] = (int)i;
				out[1] = errno;
			}
		}
		if (write(pfd[1], out, sizeof(out)) < 0)
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	if (pid > 0) {
		if (read(pfd[0], res, sizeof(res)) != (ssize_t)sizeof(res))
			res[0] = -1;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	close(pfd[0]);
	*err_out = res[1];
	return res[0];
}

int qemu_confine_spec(const struct qemu_env *env, const struct vm_spec *spec, char *err,
		      size_t errlen)
{
	const char *paths[64], *what[64], *own_dirs[65];
	char labels[64][96], own[sizeof(env->disks_dir) + 80];
	int modes[64], own_ok[64] = {0}, e = 0, bad;
	size_t n = 0, n_own = 0;

	if (spec->kernel[0]) {
		paths[n] = spec->kernel;
		what[n] = "kernel";
		modes[n++] = R_OK;
	}
	if (spec->initrd[0]) {
		paths[n] = spec->initrd;
		what[n] = "initrd";
		modes[n++] = R_OK;
	}
	for (size_t i = 0; i < spec->n_disks && n < 64; i++) {
		const struct vm_disk *d = &spec->disks[i];

		if (!d->path[0])
			continue; /* a cdrom without media */
		snprintf(labels[n], sizeof(labels[n]), "%s %s", d->type, d->name);
		paths[n] = d->path;
		what[n] = labels[n];
		/* Only a local disk may be one of the images ferry made for this
		 * VM (a shared disk or a cdrom is never ferry's copy). */
		own_ok[n] = !strcmp(d->type, "disk") && !strcmp(d->storage, "local");
		modes[n++] = strcmp(d->type, "disk") ? R_OK : R_OK | W_OK;
	}
	/* The configured directories, plus STATE/disks/NAME for this VM. */
	for (size_t i = 0; i < env->n_allowed_dirs && n_own < 64; i++)
		own_dirs[n_own++] = env->allowed_dirs[i];
	snprintf(own, sizeof(own), "%s/%s", env->disks_dir, spec->name);
	own_dirs[n_own++] = own;
	if (env->uid != 0)
		for (size_t i = 0; i < spec->n_nics; i++)
			if (!strcmp(spec->nics[i].binding, "bridge")) {
				snprintf(err, errlen,
					 "nic %s binds to a bridge, which needs QEMU's setuid bridge "
					 "helper: QEMU runs as %s here (qemu.user)",
					 spec->nics[i].name, env->user);
				return -EACCES;
			}
	for (size_t i = 0; i < n; i++)
		if (confine_check(what[i], paths[i], own_ok[i] ? own_dirs : env->allowed_dirs,
				  own_ok[i] ? n_own : env->n_allowed_dirs, err, errlen) < 0)
			return -EACCES;
	for (size_t i = 0; i < n; i++)
		give_own_image(env, paths[i]);
	/* OVMF's code is ferry's choice, not the spec's: no containment, but
	 * the QEMU user must be able to read it. */
	if (!strcmp(spec->firmware, "uefi") && n < 64) {
		paths[n] = VM_OVMF_CODE;
		what[n] = "UEFI firmware";
		modes[n++] = R_OK;
	}
	bad = first_inaccessible(env, paths, modes, n, &e);
	if (bad >= 0) {
		snprintf(err, errlen, "%s %s is not %s by the QEMU user %s (qemu.user): %s", what[bad],
			 paths[bad], modes[bad] & W_OK ? "readable and writable" : "readable",
			 env->user, strerror(e));
		return -EACCES;
	}
	return 0;
}

int qemu_confine_is_vm_qemu(const struct qemu_env *env, pid_t pid, const char *run_dir)
{
	char path[64], exe[PATH_MAX], want[PATH_MAX], qmp[PATH_MAX], buf[8192];
	ssize_t n;
	int fd, found = 0;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return 0;
	exe[n] = '\0';
	if (n > 10 && !strcmp(exe + n - 10, " (deleted)"))
		exe[n - 10] = '\0'; /* QEMU was upgraded under a running VM */
	/* The configured binary may be a bare name (found on PATH). */
	if (strchr(env->binary, '/')) {
		if (!realpath(env->binary, want) || strcmp(exe, want))
			return 0;
	} else {
		const char *base = strrchr(exe, '/');

		if (strcmp(base ? base + 1 : exe, env->binary))
			return 0;
	}
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	snprintf(qmp, sizeof(qmp), "path=%s/qmp.sock,", run_dir);
	/* Arguments are NUL-separated: look at each. */
	for (ssize_t i = 0; i < n && !found; i += (ssize_t)strlen(buf + i) + 1)
		found = strstr(buf + i, qmp) != NULL;
	return found;
}
