/*
 * linux.c: ferry's Linux test guest as the bench's workload (--guest
 * linux; docs/guest.md, "The Linux guest"): q35, UEFI, 2 vCPUs (MTTCG),
 * booting from its own virtio disk. The disk comes from the guest's cache
 * (scripts/linux-guest.sh builds it at setup), copied into the work
 * directory once with --append as its loader entry's options. The guest
 * writes only RAM here, so the boot disk is shared by both sides (the
 * same file; `storage: shared` for ferry) and no run copies it: both modes
 * move the same thing, the RAM and the device state.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"

#define OVMF_CODE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define OVMF_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"

/* KEY's value in the guest's manifest into out; 0, or -1 if absent. */
static int manifest_get(const char *dir, const char *key, char *out, size_t len)
{
	char path[PATH_MAX + 32], line[1024];
	size_t kl = strlen(key);
	int found = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/manifest", dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (found < 0 && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == '=') {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, len, "%s", line + kl + 1);
			found = 0;
		}
	fclose(f);
	return found;
}

/* cp SRC DST (sparse); 0 on success */
static int copy_file(const char *src, const char *dst)
{
	char *argv[] = {"cp", "--sparse=always", (char *)src, (char *)dst, NULL};

	return run(argv, -1, 0, NULL, NULL, 120) ? -1 : 0;
}

int linux_guest_setup(void)
{
	char dir[PATH_MAX], img[PATH_MAX + 300], off[32], entry_name[256], base[512], file[256];
	char entry[PATH_MAX + 32], text[2048], target[PATH_MAX + 300], log[PATH_MAX + 32];
	const char *cache = getenv("FERRY_LINUX_GUEST_CACHE");
	char *mc[] = {"mcopy", "-o", "-i", target, entry, NULL, NULL};
	char dst[300];

	snprintf(dir, sizeof(dir), "%s/current", cache && *cache ? cache : "/var/cache/ferry/linux-guest");
	if (access(OVMF_CODE, R_OK) || access(OVMF_VARS, R_OK)) {
		msg("--guest linux needs OVMF (%s, %s): install the ovmf package", OVMF_CODE, OVMF_VARS);
		return -1;
	}
	if (manifest_get(dir, "image", file, sizeof(file)) || manifest_get(dir, "esp_offset", off, sizeof(off)) ||
	    manifest_get(dir, "loader_entry", entry_name, sizeof(entry_name)) ||
	    manifest_get(dir, "base_options", base, sizeof(base))) {
		msg("--guest linux: no usable Linux guest in %s (scripts/linux-guest.sh builds it)", dir);
		return -1;
	}
	snprintf(img, sizeof(img), "%s/%s", dir, file);
	snprintf(cfg.linux_boot, sizeof(cfg.linux_boot), "%s/linux-boot.img", cfg.work);
	if (copy_file(img, cfg.linux_boot) < 0) {
		msg("cannot copy %s", img);
		return -1;
	}
	/* the workload's options: the loader entry's options line */
	snprintf(entry, sizeof(entry), "%s/linux-entry.conf", cfg.work);
	snprintf(text, sizeof(text), "title ferry Linux guest\nlinux /vmlinuz\ninitrd /initrd.img\noptions %s %s\n",
		 base, cfg.append);
	snprintf(target, sizeof(target), "%s@@%s", cfg.linux_boot, off);
	snprintf(dst, sizeof(dst), "::%s", entry_name);
	mc[5] = dst;
	snprintf(log, sizeof(log), "%s/mcopy.log", cfg.work);
	if (write_text(entry, text) || run(mc, -1, 0, log, log, 60) != 0) {
		msg("cannot write the loader entry of %s (mtools installed? see %s)", cfg.linux_boot, log);
		return -1;
	}
	/* the agents' QEMU opens it as the unprivileged user */
	if (chown(cfg.linux_boot, (uid_t)cfg.qemu_uid, (gid_t)cfg.qemu_gid) < 0) {
		msg("cannot hand %s to %s: %s", cfg.linux_boot, cfg.qemu_user, strerror(errno));
		return -1;
	}
	return 0;
}

int linux_qemu_args(struct linux_args *a, const char *dir, const char *name, char **argv, int n)
{
	snprintf(a->vars, sizeof(a->vars), "%s/%s-vars.fd", dir, name);
	if (copy_file(OVMF_VARS, a->vars) < 0)
		return -1;
	snprintf(a->code, sizeof(a->code), "if=pflash,format=raw,unit=0,readonly=on,file=%s", OVMF_CODE);
	snprintf(a->vars_drive, sizeof(a->vars_drive), "if=pflash,format=raw,unit=1,file=%s", a->vars);
	/* the shape engine/qemu_cmdline.c gives a virtio disk named boot */
	snprintf(a->boot, sizeof(a->boot),
		 "driver=raw,node-name=disk-boot,file.driver=file,file.node-name=file-boot,file.filename=%s",
		 cfg.linux_boot);
	argv[n++] = "-drive";
	argv[n++] = a->code;
	argv[n++] = "-drive";
	argv[n++] = a->vars_drive;
	argv[n++] = "-blockdev";
	argv[n++] = a->boot;
	argv[n++] = "-device";
	argv[n++] = "virtio-blk-pci,drive=disk-boot,id=dev-boot,bootindex=1";
	return n;
}

void linux_spec(char *buf, size_t len)
{
	snprintf(buf, len,
		 "name: benchvm\nmemory_mib: %d\nvcpus: 2\nmachine: q35\nfirmware: uefi\nserial: true\n"
		 "disks:\n  - {name: boot, path: %s, format: raw, storage: shared, bus: virtio}\n",
		 cfg.mem_mib, cfg.linux_boot);
}
