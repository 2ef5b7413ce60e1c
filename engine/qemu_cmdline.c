#include "engine/qemu_cmdline.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for one escaped option value: a 511-character path with every
 * character a comma doubles to 1022. */
#define OPT_MAX 1100

struct argv_buf {
	char **v;
	size_t n, cap;
	int err; /* first failure; later adds are no-ops so callers check once */
};

static void argv_add(struct argv_buf *b, const char *s)
{
	char *dup;

	if (b->err)
		return;
	if (b->n + 2 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		char **v = realloc(b->v, cap * sizeof(*v));

		if (!v) {
			b->err = -ENOMEM;
			return;
		}
		b->v = v;
		b->cap = cap;
	}
	if (!(dup = strdup(s))) {
		b->err = -ENOMEM;
		return;
	}
	b->v[b->n++] = dup;
	b->v[b->n] = NULL;
}

static void argv_addf(struct argv_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void argv_addf(struct argv_buf *b, const char *fmt, ...)
{
	char buf[4 * OPT_MAX];
	va_list ap;
	int n;

	if (b->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		b->err = -EINVAL;
		return;
	}
	argv_add(b, buf);
}

/* QEMU's option parsers (QemuOpts and keyval) split on ',' and read ",," as
 * a literal comma. Doubling is the only escape there is, so every value we
 * do not control goes through here. */
static const char *esc(struct argv_buf *b, const char *s, char out[OPT_MAX])
{
	size_t o = 0;

	for (; *s; s++) {
		if (o + 3 > OPT_MAX) {
			if (!b->err)
				b->err = -EINVAL;
			out[0] = '\0';
			return out;
		}
		out[o++] = *s;
		if (*s == ',')
			out[o++] = ',';
	}
	out[o] = '\0';
	return out;
}

void qemu_nic_mac(const struct vm_spec *s, size_t idx, char out[18])
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
	const char *p;
	size_t i;

	for (p = s->uuid; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
	for (i = 0; i < sizeof(idx); i++)
		h = (h ^ ((idx >> (8 * i)) & 0xff)) * 0x100000001b3ull;
	/* 0x52: locally administered (bit 1) and unicast (bit 0 clear), and the
	 * first octet of QEMU's own 52:54:00 range, so it reads as a VM MAC. */
	snprintf(out, 18, "52:%02x:%02x:%02x:%02x:%02x", (unsigned)(h >> 32) & 0xff,
		 (unsigned)(h >> 24) & 0xff, (unsigned)(h >> 16) & 0xff, (unsigned)(h >> 8) & 0xff,
		 (unsigned)h & 0xff);
}

static int accel_ok(const char *a)
{
	/* kvm, tcg, or a ':'-separated fallback list of them. */
	char buf[32];
	char *save = NULL, *t;

	if (!*a || strlen(a) >= sizeof(buf))
		return 0;
	snprintf(buf, sizeof(buf), "%s", a);
	for (t = strtok_r(buf, ":", &save); t; t = strtok_r(NULL, ":", &save))
		if (strcmp(t, "kvm") && strcmp(t, "tcg"))
			return 0;
	return a[strlen(a) - 1] != ':' && a[0] != ':' && !strstr(a, "::");
}

/* The guest device of disk i: controller, slot, and the boot order mark. */
static void add_disk_device(struct argv_buf *b, const struct vm_disk *d, int bus, int unit,
			    const char *drive, const char *name, int boot)
{
	int cd = !strcmp(d->type, "cdrom");
	const char *bi = boot ? ",bootindex=1" : "";

	argv_add(b, "-device");
	if (!strcmp(d->bus, "virtio"))
		argv_addf(b, "virtio-blk-pci%s,id=dev-%s%s", drive, name, bi);
	else if (!strcmp(d->bus, "scsi"))
		argv_addf(b, "%s%s,bus=scsi0.0,channel=0,scsi-id=%d,lun=0,id=dev-%s%s",
			  cd ? "scsi-cd" : "scsi-hd", drive, unit, name, bi);
	else /* ide on pc, sata on q35: both are "ide.N" buses */
		argv_addf(b, "%s%s,bus=ide.%d,unit=%d,id=dev-%s%s", cd ? "ide-cd" : "ide-hd", drive,
			  bus, unit, name, bi);
}

static int disk_ok(const struct vm_spec *s, size_t i, int *bus, int *unit)
{
	const struct vm_disk *d = &s->disks[i];
	int cd = !strcmp(d->type, "cdrom");

	if (vmspec_disk_slot(s, i, bus, unit) ||
	    (strcmp(d->type, "disk") && !cd && strcmp(d->type, "containerdisk")) ||
	    (strcmp(d->format, "qcow2") && strcmp(d->format, "raw")) || (!d->path[0] && !cd) ||
	    (cd && !strcmp(d->bus, "virtio")))
		return 0;
	return 1;
}

/* A host-model CPU as recorded: "base,<prop>=<value>,..." (qmp/cpu_model.h).
 * Unrecorded, it cannot be built: the caller fills it in first. */
static void add_host_model(struct argv_buf *b, const struct vm_spec *s)
{
	size_t len = 5, used;
	char e1[OPT_MAX], e2[OPT_MAX], *buf;

	if (b->err)
		return;
	if (!s->n_cpu_host_model) {
		b->err = -EINVAL;
		return;
	}
	for (size_t i = 0; i < s->n_cpu_host_model; i++) /* escaping at most doubles */
		len += 2 * (strlen(s->cpu_host_model[i].key) + strlen(s->cpu_host_model[i].value)) + 2;
	buf = malloc(len);
	if (!buf) {
		b->err = -ENOMEM;
		return;
	}
	used = (size_t)snprintf(buf, len, "base");
	for (size_t i = 0; i < s->n_cpu_host_model && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, ",%s=%s",
					 esc(b, s->cpu_host_model[i].key, e1),
					 esc(b, s->cpu_host_model[i].value, e2));
	argv_add(b, buf);
	free(buf);
}

/* One -accel per entry of the fallback list, tried in order; TCG with
 * several vCPUs gets a thread each (MTTCG). */
static void add_accels(struct argv_buf *b, const char *accel, int vcpus)
{
	char buf[32];
	char *save = NULL, *t;

	snprintf(buf, sizeof(buf), "%s", accel);
	for (t = strtok_r(buf, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
		argv_add(b, "-accel");
		if (!strcmp(t, "tcg") && vcpus > 1)
			argv_add(b, "tcg,thread=multi");
		else
			argv_add(b, t);
	}
}

static void add_disks(struct argv_buf *b, const struct vm_spec *s)
{
	char e1[OPT_MAX], e2[OPT_MAX], drive[OPT_MAX + 16];
	int boot_done = s->kernel[0] != '\0'; /* a kernel boots; no disk needs the mark */
	size_t i;

	for (i = 0; i < s->n_disks; i++)
		if (!strcmp(s->disks[i].bus, "scsi")) {
			/* One controller for every scsi disk, before them. */
			argv_add(b, "-device");
			argv_add(b, "virtio-scsi-pci,id=scsi0");
			break;
		}
	for (i = 0; i < s->n_disks && !b->err; i++) {
		const struct vm_disk *d = &s->disks[i];
		int cd = !strcmp(d->type, "cdrom");
		int bus, unit;

		if (!disk_ok(s, i, &bus, &unit)) {
			b->err = -EINVAL;
			return;
		}
		esc(b, d->name, e1);
		if (!d->path[0]) {
			/* An empty tray: the device exists (so source and target
			 * match) but no block node backs it. */
			add_disk_device(b, d, bus, unit, "", e1, 0);
			continue;
		}
		/* One -blockdev, two explicit node names: the format node is what
		 * the guest device, the mirror job and the NBD export address;
		 * naming the protocol node too keeps query-named-block-nodes
		 * readable instead of showing "#block123". */
		argv_add(b, "-blockdev");
		argv_addf(b,
			  "driver=%s,node-name=disk-%s,file.driver=file,file.node-name=file-%s,"
			  "file.filename=%s%s",
			  d->format, e1, e1, esc(b, d->path, e2), cd ? ",read-only=on" : "");
		snprintf(drive, sizeof(drive), ",drive=disk-%s", e1);
		add_disk_device(b, d, bus, unit, drive, e1, !boot_done);
		boot_done = 1;
	}
}

static void add_nics(struct argv_buf *b, const struct vm_spec *s)
{
	char e1[OPT_MAX], e2[OPT_MAX], mac[18];
	size_t i;

	for (i = 0; i < s->n_nics && !b->err; i++) {
		const struct vm_nic *n = &s->nics[i];

		argv_add(b, "-netdev");
		if (!strcmp(n->binding, "user") || !strcmp(n->binding, "masquerade")) {
			argv_addf(b, "user,id=%s", esc(b, n->name, e1));
		} else if (!strcmp(n->binding, "bridge")) {
			argv_addf(b, "bridge,id=%s,br=%s", esc(b, n->name, e1),
				  esc(b, n->network, e2));
		} else {
			b->err = -EINVAL;
			return;
		}
		if (strcmp(n->model, "virtio") && strcmp(n->model, "e1000")) {
			b->err = -EINVAL;
			return;
		}
		qemu_nic_mac(s, i, mac);
		argv_add(b, "-device");
		argv_addf(b, "%s,netdev=%s,mac=%s,id=nic-%s",
			  strcmp(n->model, "virtio") ? "e1000" : "virtio-net-pci", e1, mac, e1);
	}
}

int qemu_cmdline_build(const struct vm_spec *s, const struct qemu_launch *l, char ***argv_out)
{
	struct argv_buf b = {0};
	const char *accel = l->accel ? l->accel : "kvm:tcg";
	char e1[OPT_MAX], e2[OPT_MAX];
	int rc, uefi;

	*argv_out = NULL;
	if (!l->qmp_socket || !accel_ok(accel)) {
		rc = -EINVAL;
		goto out;
	}
	argv_add(&b, l->binary ? l->binary : "qemu-system-x86_64");
	argv_add(&b, "-name");
	argv_addf(&b, "guest=%s", esc(&b, s->name, e1));
	argv_add(&b, "-uuid");
	argv_add(&b, s->uuid);
	uefi = !strcmp(s->firmware, "uefi");
	if ((!uefi && strcmp(s->firmware, "bios")) || (uefi && !l->efi_vars)) {
		rc = -EINVAL;
		goto out;
	}
	argv_add(&b, "-machine");
	argv_addf(&b, "%s%s", esc(&b, s->machine, e1), uefi ? ",pflash0=fw-code,pflash1=fw-vars" : "");
	add_accels(&b, accel, s->vcpus);
	argv_add(&b, "-cpu");
	if (!strcmp(s->cpu_model, VM_CPU_HOST_MODEL))
		add_host_model(&b, s);
	else /* -cpu is "model,feature=..": a comma would add CPU features. */
		argv_add(&b, esc(&b, s->cpu_model, e1));
	argv_add(&b, "-m");
	argv_addf(&b, "%d", s->memory_mib);
	argv_add(&b, "-smp");
	argv_addf(&b, "%d", s->vcpus);
	argv_add(&b, "-nodefaults");
	argv_add(&b, "-no-user-config");
	argv_add(&b, "-display");
	argv_add(&b, "none");
	/* The long form of "-qmp unix:<path>,server=on,wait=off": -qmp takes
	 * the path as an implied first key, so a path with '=' in it would be
	 * read as "key=value" and QEMU refuses to start. path= has no such
	 * ambiguity. */
	argv_add(&b, "-chardev");
	argv_addf(&b, "socket,id=qmp,path=%s,server=on,wait=off", esc(&b, l->qmp_socket, e1));
	argv_add(&b, "-mon");
	argv_add(&b, "chardev=qmp,mode=control");
	if (s->serial) {
		argv_add(&b, "-chardev");
		if (l->serial_socket)
			argv_addf(&b, "socket,id=ser0,path=%s,server=on,wait=off%s%s",
				  esc(&b, l->serial_socket, e1), l->serial_log ? ",logfile=" : "",
				  l->serial_log ? esc(&b, l->serial_log, e2) : "");
		else
			argv_addf(&b, "null,id=ser0%s%s", l->serial_log ? ",logfile=" : "",
				  l->serial_log ? esc(&b, l->serial_log, e2) : "");
		argv_add(&b, "-serial");
		argv_add(&b, "chardev:ser0");
	}
	if (uefi) {
		/* OVMF: the code read-only and shared, the variables this VM's
		 * own file (pflash writes go straight to it). */
		argv_add(&b, "-blockdev");
		argv_addf(&b, "driver=file,node-name=fw-code,filename=%s,read-only=on",
			  esc(&b, l->efi_code ? l->efi_code : VM_OVMF_CODE, e1));
		argv_add(&b, "-blockdev");
		argv_addf(&b, "driver=file,node-name=fw-vars,filename=%s", esc(&b, l->efi_vars, e1));
	}
	if (s->kernel[0]) {
		argv_add(&b, "-kernel");
		argv_add(&b, s->kernel);
		if (s->initrd[0]) {
			argv_add(&b, "-initrd");
			argv_add(&b, s->initrd);
		}
		if (s->append[0]) {
			argv_add(&b, "-append");
			argv_add(&b, s->append);
		}
	}
	add_disks(&b, s);
	add_nics(&b, s);
	if (l->sandbox) {
		argv_add(&b, "-sandbox");
		argv_add(&b, l->sandbox);
	}
	if (l->pidfile) {
		argv_add(&b, "-pidfile");
		argv_add(&b, l->pidfile);
	}
	if (l->incoming_defer) {
		argv_add(&b, "-incoming");
		argv_add(&b, "defer");
	}
	rc = b.err;
	if (!rc) {
		*argv_out = b.v;
		b.v = NULL;
	}
out:
	qemu_cmdline_free(b.v);
	return rc;
}

void qemu_cmdline_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}
