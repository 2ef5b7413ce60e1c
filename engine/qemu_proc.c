#include "engine/qemu_proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "engine/qemu_cmdline.h"
#include "engine/qemu_confine.h"
#include "engine/vmspec.h"
#include "qmp/cpu_model.h"
#include "qmp/qmp.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

void qemu_vm_log_tail(const struct qemu_vm *vm, char *buf, size_t len)
{
	char tmp[4096];
	ssize_t n;
	int fd = open(vm->qemu_log, O_RDONLY | O_CLOEXEC);
	off_t sz;
	char *p;

	buf[0] = '\0';
	if (fd < 0)
		return;
	sz = lseek(fd, 0, SEEK_END);
	lseek(fd, sz > (off_t)sizeof(tmp) - 1 ? sz - (off_t)sizeof(tmp) + 1 : 0, SEEK_SET);
	n = read(fd, tmp, sizeof(tmp) - 1);
	close(fd);
	if (n <= 0)
		return;
	tmp[n] = '\0';
	while (n > 0 && (tmp[n - 1] == '\n' || tmp[n - 1] == ' '))
		tmp[--n] = '\0';
	/* The last line says most; keep it whole if it fits. */
	p = strrchr(tmp, '\n');
	snprintf(buf, len, "%s", p ? p + 1 : tmp);
	for (p = buf; *p; p++)
		if (*p == '"')
			*p = '\'';
}

static int reap(struct qemu_vm *vm, int block)
{
	int st;
	pid_t r;

	if (vm->pid <= 0)
		return 1;
	r = waitpid(vm->pid, &st, block ? 0 : WNOHANG);
	if (r < 0 && errno == ECHILD && !block && kill(vm->pid, 0) == 0)
		return 0; /* re-adopted after an agent restart: not our child */
	if (r == vm->pid || (r < 0 && errno == ECHILD)) {
		vm->pid = -1;
		return 1;
	}
	return 0;
}

int qemu_vm_alive(struct qemu_vm *vm) { return !reap(vm, 0); }

static int wait_exit(struct qemu_vm *vm, int timeout_ms)
{
	struct pollfd pfd = {.fd = vm->pidfd, .events = POLLIN};

	if (vm->pid <= 0)
		return 0;
	if (vm->pidfd >= 0) {
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return reap(vm, 0) ? 0 : -ETIMEDOUT;
		return reap(vm, 1) ? 0 : -ETIMEDOUT;
	}
	/* No pidfd (old kernel): poll the child at a coarse interval. */
	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if (reap(vm, 0))
			return 0;
		poll(NULL, 0, 20);
	}
	return -ETIMEDOUT;
}

int qemu_vm_stop(struct qemu_vm *vm, int timeout_ms)
{
	struct qmp *q = NULL;
	struct qmp_error qe;

	if (!qemu_vm_alive(vm))
		return 0;
	if (qmp_connect(vm->qmp_path, timeout_ms / 4, &q, &qe) == 0) {
		qmp_execute(q, "quit", NULL, NULL, &qe, timeout_ms / 4);
		qmp_close(q);
		if (wait_exit(vm, timeout_ms / 2) == 0)
			return 0;
	}
	kill(vm->pid, SIGTERM);
	if (wait_exit(vm, timeout_ms / 4) == 0)
		return 0;
	log_warn("qemu", "event=qemu_killed vm=%s pid=%d", vm->spec->name, vm->pid);
	kill(vm->pid, SIGKILL);
	return wait_exit(vm, 5000);
}

void qemu_run_dir_remove(const char *run_dir)
{
	/* Everything qemu_vm_start and a migration put there. nbd.sock and
	 * recover.sock: sockets a target QEMU made (storage export, post-copy
	 * recovery); QEMU leaves them behind. */
	static const char *const files[] = {"qmp.sock", "serial.sock", "serial.log", "qemu.log",
					    "qemu.pid", "incoming.sock", "incoming", "spec.json",
					    "nbd.sock", "recover.sock"};
	char path[600];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", run_dir, files[i]);
		unlink(path);
	}
	rmdir(run_dir);
}

void qemu_vm_remove_files(struct qemu_vm *vm)
{
	/* An unfinished incoming VM's variables are a template copy that may
	 * hold part of the guest's: the source keeps the real ones. */
	if (vm->incoming_marker[0] && vm->efi_vars[0])
		unlink(vm->efi_vars);
	qemu_run_dir_remove(vm->run_dir);
}

/* Copy src to dst (replaced) with mode 0600. 0 or -errno. */
static int copy_file(const char *src, const char *dst)
{
	char buf[65536], tmp[480];
	int in, out, r = 0;
	ssize_t n;

	snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	unlink(tmp);
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		r = -errno;
		close(in);
		return r;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0 && r == 0)
		r = fs_write_all(out, buf, (size_t)n);
	if (n < 0 && r == 0)
		r = -errno;
	if (r == 0 && fsync(out) < 0)
		r = -errno;
	close(in);
	if (close(out) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, dst) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

/* cpu_model host-model: an ordinary start records this node's CPU in the
 * spec (it travels with it from then on); every start, a migration's
 * target too, refuses a CPU this node cannot give with the features it
 * lacks. */
static int fit_host_model(const struct qemu_env *env, struct vm_spec *spec, int incoming,
			  char *err, size_t errlen)
{
	char missing[400];
	size_t n;

	if (!env->n_host_cpu) {
		snprintf(err, errlen, "cpu_model host-model: this node's CPU is unknown (%s)",
			 env->host_cpu_err[0] ? env->host_cpu_err : "not probed");
		return -EINVAL;
	}
	if (!spec->n_cpu_host_model && incoming) {
		snprintf(err, errlen, "a host-model VM arrived without its recorded CPU");
		return -EINVAL;
	}
	if (!spec->n_cpu_host_model) {
		spec->cpu_host_model = calloc(env->n_host_cpu, sizeof(*spec->cpu_host_model));
		if (!spec->cpu_host_model)
			return -ENOMEM;
		for (size_t i = 0; i < env->n_host_cpu; i++) {
			spec->cpu_host_model[i].key = strdup(env->host_cpu[i].key);
			spec->cpu_host_model[i].value = strdup(env->host_cpu[i].value);
			spec->n_cpu_host_model = i + 1;
			if (!spec->cpu_host_model[i].key || !spec->cpu_host_model[i].value)
				return -ENOMEM; /* vmspec_free takes the half-made list */
		}
		log_info("qemu", "event=host_model_recorded vm=%s props=%zu", spec->name,
			 spec->n_cpu_host_model);
	}
	n = cpu_model_missing(spec->cpu_host_model, spec->n_cpu_host_model, env->host_cpu,
			      env->n_host_cpu, missing, sizeof(missing));
	if (n) {
		snprintf(err, errlen,
			 "this node's CPU lacks %zu feature%s of the VM's host-model CPU: %s", n,
			 n == 1 ? "" : "s", missing);
		return -EINVAL;
	}
	return 0;
}

/* firmware uefi: OVMF present, and the VM's variables file in place and the
 * QEMU user's (qemu_proc.h says when it is copied from the template). */
static int prepare_efi_vars(const struct qemu_env *env, struct qemu_vm *vm, int incoming,
			    char *err, size_t errlen)
{
	static const char *const fw[] = {VM_OVMF_CODE, VM_OVMF_VARS};
	char dir[400];
	int r;

	for (size_t i = 0; i < 2; i++)
		if (access(fw[i], R_OK) < 0) {
			snprintf(err, errlen,
				 "firmware uefi needs OVMF: %s: %s (install the ovmf package)", fw[i],
				 strerror(errno));
			return -ENOENT;
		}
	snprintf(dir, sizeof(dir), "%s/%s", env->disks_dir, vm->spec->name);
	snprintf(vm->efi_vars, sizeof(vm->efi_vars), "%s/efivars.fd", dir);
	r = fs_mkdir_p(dir);
	if (r == 0)
		r = qemu_confine_share_dir(env, dir);
	if (r == 0 && (incoming || access(vm->efi_vars, F_OK) < 0)) {
		r = copy_file(VM_OVMF_VARS, vm->efi_vars);
		if (r == 0)
			log_info("qemu", "event=efi_vars_created vm=%s path=%s incoming=%d",
				 vm->spec->name, vm->efi_vars, incoming);
	}
	if (r == 0)
		r = qemu_confine_give(env, vm->efi_vars);
	if (r < 0)
		snprintf(err, errlen, "cannot make the UEFI variables file %s: %s", vm->efi_vars,
			 strerror(-r));
	return r;
}

int qemu_vm_save_spec(const struct qemu_vm *vm)
{
	struct json_object *o = vmspec_to_json(vm->spec);
	const char *txt;
	char path[480];
	int r;

	if (!o)
		return -EIO;
	txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	snprintf(path, sizeof(path), "%s/spec.json", vm->run_dir);
	r = fs_write_atomic(path, txt, strlen(txt), 0644) < 0 ? -EIO : 0;
	json_object_put(o);
	return r;
}

int qemu_vm_adopt(const char *run_dir, struct qemu_vm **out, char *err, size_t errlen)
{
	struct qemu_vm *vm = calloc(1, sizeof(*vm));
	struct json_object *j = NULL;
	struct qmp *q = NULL;
	struct qmp_error qe;
	char path[480];
	FILE *f;
	int pid = 0, r = -ENOENT;

	if (!vm)
		return -ENOMEM;
	vm->pid = -1;
	vm->pidfd = -1;
	snprintf(path, sizeof(path), "%s/spec.json", run_dir);
	j = json_object_from_file(path);
	if (!j || vmspec_from_stored_json(j, &vm->spec, err, errlen) < 0) {
		snprintf(err, errlen, "no readable spec in %s", run_dir);
		goto fail;
	}
	snprintf(vm->run_dir, sizeof(vm->run_dir), "%s", run_dir);
	snprintf(vm->qmp_path, sizeof(vm->qmp_path), "%s/qmp.sock", run_dir);
	snprintf(vm->qemu_log, sizeof(vm->qemu_log), "%s/qemu.log", run_dir);
	snprintf(vm->pidfile, sizeof(vm->pidfile), "%s/qemu.pid", run_dir);
	if (vm->spec->serial) {
		snprintf(vm->serial_path, sizeof(vm->serial_path), "%s/serial.sock", run_dir);
		snprintf(vm->serial_log, sizeof(vm->serial_log), "%s/serial.log", run_dir);
	}
	f = fopen(vm->pidfile, "r");
	if (!f || fscanf(f, "%d", &pid) != 1 || pid <= 1 || kill(pid, 0) < 0) {
		if (f)
			fclose(f);
		snprintf(err, errlen, "its QEMU is no longer running");
		r = -ESRCH;
		goto fail;
	}
	fclose(f);
	/* It must answer on its QMP socket: a recycled pid would not. */
	r = qmp_connect(vm->qmp_path, 3000, &q, &qe);
	if (r < 0) {
		snprintf(err, errlen, "its QMP socket does not answer: %s", qe.desc);
		goto fail;
	}
	qmp_close(q);
	vm->pid = pid;
	vm->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	json_object_put(j);
	*out = vm;
	return 0;
fail:
	json_object_put(j);
	qemu_vm_free(vm);
	return r;
}

void qemu_vm_incoming_done(struct qemu_vm *vm)
{
	if (vm->incoming_marker[0])
		unlink(vm->incoming_marker);
	vm->incoming_marker[0] = '\0';
}

void qemu_vm_free(struct qemu_vm *vm)
{
	if (!vm)
		return;
	if (vm->pidfd >= 0)
		close(vm->pidfd);
	vmspec_free(vm->spec);
	free(vm);
}

int qemu_vm_start(const struct qemu_env *env, struct vm_spec *spec, const char *run_dir,
		  int incoming, int paused, struct qemu_vm **out, char *err, size_t errlen)
{
	struct qemu_launch l = {0};
	struct qemu_vm *vm = NULL;
	char **argv = NULL, **argv2 = NULL;
	struct qmp *q = NULL;
	struct qmp_error qe;
	size_t argc = 0;
	int r, logfd = -1;
	pid_t pid;

	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		vmspec_free(spec);
		return -ENOMEM;
	}
	vm->spec = spec;
	vm->pid = -1;
	vm->pidfd = -1;
	snprintf(vm->run_dir, sizeof(vm->run_dir), "%s", run_dir);
	snprintf(vm->qmp_path, sizeof(vm->qmp_path), "%s/qmp.sock", run_dir);
	snprintf(vm->qemu_log, sizeof(vm->qemu_log), "%s/qemu.log", run_dir);
	snprintf(vm->pidfile, sizeof(vm->pidfile), "%s/qemu.pid", run_dir);
	if (spec->serial) {
		snprintf(vm->serial_path, sizeof(vm->serial_path), "%s/serial.sock", run_dir);
		snprintf(vm->serial_log, sizeof(vm->serial_log), "%s/serial.log", run_dir);
	}
	if (incoming) {
		snprintf(vm->incoming_path, sizeof(vm->incoming_path), "%s/incoming.sock", run_dir);
		snprintf(vm->incoming_marker, sizeof(vm->incoming_marker), "%s/incoming", run_dir);
	}
	/* Before anything is created: a refused spec leaves no trace. */
	r = qemu_confine_spec(env, spec, err, errlen);
	if (r == 0 && !strcmp(spec->cpu_model, VM_CPU_HOST_MODEL))
		r = fit_host_model(env, spec, incoming, err, errlen);
	if (r < 0) {
		vm->run_dir[0] = '\0'; /* not ours to remove */
		goto fail;
	}
	if (!strcmp(spec->firmware, "uefi")) {
		r = prepare_efi_vars(env, vm, incoming, err, errlen);
		if (r < 0) {
			vm->run_dir[0] = '\0'; /* nothing made there yet */
			vm->efi_vars[0] = '\0';
			goto fail;
		}
	}
	r = fs_mkdir_p(run_dir);
	if (r == 0)
		r = qemu_confine_give(env, run_dir); /* QEMU makes its sockets here */
	if (r < 0) {
		snprintf(err, errlen, "cannot create run directory %s: %s", run_dir, strerror(-r));
		goto fail;
	}
	if (incoming) {
		/* If this agent dies mid-migration, its next start finds the
		 * marker and removes the half-built QEMU (agent.c). */
		int mfd = open(vm->incoming_marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

		if (mfd >= 0)
			close(mfd);
	}
	l.binary = env->binary;
	l.accel = env->accel;
	l.qmp_socket = vm->qmp_path;
	l.serial_socket = spec->serial ? vm->serial_path : NULL;
	l.serial_log = spec->serial ? vm->serial_log : NULL;
	l.incoming_defer = incoming;
	l.pidfile = vm->pidfile;
	l.sandbox = qemu_confine_sandbox(env, spec);
	l.efi_vars = vm->efi_vars[0] ? vm->efi_vars : NULL;
	r = qemu_cmdline_build(spec, &l, &argv);
	if (r < 0) {
		snprintf(err, errlen, "cannot build the QEMU command line: %s", strerror(-r));
		goto fail;
	}
	while (argv[argc])
		argc++;
	/* -S (start paused) is a launch choice, not part of the spec. */
	argv2 = calloc(argc + 2, sizeof(char *));
	if (!argv2) {
		r = -ENOMEM;
		goto fail;
	}
	memcpy(argv2, argv, argc * sizeof(char *));
	if (paused)
		argv2[argc++] = "-S";
	logfd = open(vm->qemu_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (logfd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create %s: %s", vm->qemu_log, strerror(errno));
		goto fail;
	}
	unlink(vm->qmp_path);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		snprintf(err, errlen, "fork failed: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		sigset_t none;

		/* ferryd blocks SIGTERM/SIGINT to take them with sigwait; QEMU
		 * must not inherit that, or it ignores a polite SIGTERM. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		setsid();
		dup2(nul, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		int dr = qemu_confine_drop(env);

		if (dr < 0) {
			dprintf(2, "cannot become the QEMU user %s: %s\n", env->user, strerror(-dr));
			_exit(126);
		}
		execvp(argv2[0], argv2);
		dprintf(2, "exec %s: %s\n", argv2[0], strerror(errno));
		_exit(127);
	}
	vm->pid = pid;
	vm->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	log_info("qemu", "event=qemu_started vm=%s pid=%d incoming=%d paused=%d run_dir=%s",
		 spec->name, pid, incoming, paused, run_dir);
	r = qmp_connect(vm->qmp_path, 30000, &q, &qe);
	if (r < 0) {
		char tail[256];

		qemu_vm_log_tail(vm, tail, sizeof(tail));
		snprintf(err, errlen, "QEMU did not come up (%s)%s%s", qe.desc[0] ? qe.desc : strerror(-r),
			 tail[0] ? ": " : "", tail);
		qemu_vm_stop(vm, 3000);
		goto fail;
	}
	qmp_close(q);
	*out = vm;
	vm = NULL;
	r = 0;
	goto out;
fail:
	if (vm && vm->pid > 0)
		qemu_vm_stop(vm, 3000);
	if (vm && vm->run_dir[0])
		qemu_vm_remove_files(vm);
	qemu_vm_free(vm);
out:
	if (logfd >= 0)
		close(logfd);
	free(argv2);
	qemu_cmdline_free(argv);
	return r;
}

void qemu_env_free_host_cpu(struct qemu_env *env)
{
	cpu_model_free(env->host_cpu, env->n_host_cpu);
	env->host_cpu = NULL;
	env->n_host_cpu = 0;
}

/* Asks a probe QEMU (QMP on qmp) for its CPU: "host" when KVM runs it,
 * else the named model qemu64. */
static int probe_query(const char *qmp, struct qemu_env *env, char *err, size_t errlen)
{
	struct json_object *kvm = NULL;
	struct qmp *q = NULL;
	struct qmp_error qe;
	/* Under TCG there is no host CPU. Not "max": its static expansion has
	 * family 0 (QEMU fills max's identity in only when it realizes the
	 * CPU), and a CPU built from it with -cpu base keeps family 0, which
	 * guests mishandle (ferry-guest's timer never ticks). qemu64 is what
	 * every TCG node can give. */
	const char *model = "qemu64";
	int r;

	r = qmp_connect(qmp, 15000, &q, &qe);
	if (r < 0) {
		snprintf(err, errlen, "the probe QEMU did not answer: %s", qe.desc);
		return r;
	}
	if (qmp_call(q, "query-kvm", NULL, &kvm, 5000, err, errlen) == 0 &&
	    json_object_get_boolean(json_object_object_get(kvm, "enabled")))
		model = "host";
	json_object_put(kvm);
	r = cpu_model_query(q, model, &env->host_cpu, &env->n_host_cpu, err, errlen);
	if (r == 0)
		log_info("qemu", "event=host_cpu_probed model=%s props=%zu", model, env->n_host_cpu);
	qmp_close(q);
	return r;
}

int qemu_probe_host_cpu(struct qemu_env *env, char *err, size_t errlen)
{
	char dir[] = "/tmp/ferry-cpu-probe-XXXXXX", chardev[128], qmp[64], accel[32];
	char *argv[24], *save = NULL, *t;
	size_t n = 0;
	pid_t pid;
	int r, st;

	qemu_env_free_host_cpu(env);
	if (!mkdtemp(dir) || qemu_confine_give(env, dir) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot make a probe directory: %s", strerror(errno));
		goto out_err;
	}
	snprintf(qmp, sizeof(qmp), "%s/qmp.sock", dir);
	snprintf(chardev, sizeof(chardev), "socket,id=qmp,path=%s,server=on,wait=off", qmp);
	snprintf(accel, sizeof(accel), "%s", env->accel ? env->accel : "kvm:tcg");
	argv[n++] = (char *)(env->binary ? env->binary : "qemu-system-x86_64");
	for (t = strtok_r(accel, ":", &save); t && n < 10; t = strtok_r(NULL, ":", &save)) {
		argv[n++] = "-accel";
		argv[n++] = t;
	}
	for (const char *const *a = (const char *const[]){"-machine", "none", "-nodefaults",
							    "-display", "none", "-S", "-chardev",
							    NULL};
	     *a; a++)
		argv[n++] = (char *)*a;
	argv[n++] = chardev;
	argv[n++] = "-mon";
	argv[n++] = "chardev=qmp,mode=control";
	argv[n] = NULL;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		snprintf(err, errlen, "fork failed: %s", strerror(errno));
		goto out_dir;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);

		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		if (qemu_confine_drop(env) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	r = probe_query(qmp, env, err, errlen);
	kill(pid, SIGKILL); /* a probe has nothing to save */
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
out_dir:
	unlink(qmp);
	rmdir(dir);
	if (r == 0)
		return 0;
out_err:
	snprintf(env->host_cpu_err, sizeof(env->host_cpu_err), "%s", err);
	return r;
}
