/* qemu_cmdline: the QEMU argv for a VM spec.
 *
 * Source and target of a migration must build the same machine: same
 * devices, same order, same ids, same MACs. Everything here is therefore a
 * pure function of the spec (plus host-local paths from qemu_launch that do
 * not reach the guest), and both agents call it with the spec they agreed on.
 *
 * Strings that land inside a comma-separated QEMU option (-blockdev,
 * -chardev, -netdev ...) get their commas doubled, QEMU's escape, so a
 * path like "/img/a,b.qcow2" cannot inject options. Arguments QEMU takes
 * verbatim (-kernel, -append, -pidfile) are passed as they are.
 *
 * QMP: "-chardev socket,id=qmp,path=<qmp_socket>,server=on,wait=off
 * -mon chardev=qmp,mode=control", what "-qmp unix:..." expands to, spelled
 * out because -qmp misreads a path containing '='.
 *
 * Layout:
 *   cpu    the model, or for host-model "base" with the recorded properties
 *          (vmspec.h cpu_host_model).
 *   accel  one -accel per entry of the launch's list ("kvm:tcg": -accel kvm
 *          -accel tcg, tried in order); tcg with vcpus > 1 gets
 *          thread=multi (one host thread per vCPU).
 *   uefi   -blockdev protocol nodes "fw-code" (OVMF code, read-only) and
 *          "fw-vars" (the VM's variables file, writable), given to the
 *          machine as pflash0 and pflash1.
 *   disks  one -blockdev per disk: format node "disk-<name>" over protocol
 *          node "file-<name>" (the storage mirror and NBD export use these
 *          names); a cdrom is read-only, an empty cdrom has no -blockdev.
 *          Devices, id "dev-<name>", by bus: virtio-blk-pci; scsi-hd /
 *          scsi-cd on one virtio-scsi-pci "scsi0" (scsi-id from
 *          vmspec_disk_slot()); ide-hd / ide-cd on "ide.N" for sata (q35's
 *          built-in AHCI) and ide (pc's PIIX; the test guest writes with ATA
 *          PIO). Without a kernel the first disk with media gets
 *          bootindex=1.
 *   nics   binding user and masquerade: -netdev user (slirp NAT is what
 *          masquerade means on a single host); bridge: -netdev bridge with
 *          br=<network> (needs qemu-bridge-helper). Device virtio-net-pci or
 *          e1000 with id "nic-<name>" and the MAC of qemu_nic_mac().
 *   serial the 16550 exists exactly when spec->serial, so source and target
 *          agree; its backend is serial_socket, or a null chardev when the
 *          caller gave none.
 */
#ifndef FERRY_ENGINE_QEMU_CMDLINE_H
#define FERRY_ENGINE_QEMU_CMDLINE_H

#include <stddef.h>

#include "engine/vmspec.h"

struct qemu_launch {
	const char *binary;        /* NULL: "qemu-system-x86_64" */
	const char *accel;         /* "tcg", "kvm", "kvm:tcg" (NULL: "kvm:tcg") */
	const char *qmp_socket;    /* required */
	const char *serial_socket; /* may be NULL (see above) */
	const char *serial_log;    /* may be NULL: copy of the serial output */
	int incoming_defer;        /* target side: -incoming defer */
	const char *pidfile;       /* may be NULL */
	const char *sandbox;       /* may be NULL: -sandbox value (qemu_confine_sandbox) */
	const char *efi_vars;      /* firmware uefi: the VM's own variables file (required) */
	const char *efi_code;      /* firmware uefi: NULL = VM_OVMF_CODE */
};

/* Build a NULL-terminated argv (argv[0] is the binary). 0, -EINVAL for a
 * spec or launch it cannot express (unknown enum, no slot on the bus,
 * missing qmp_socket or efi_vars, bad accel, over-long option), -ENOMEM. The spec is expected to
 * have passed vmspec_validate; this only refuses what would build a wrong
 * command line. */
int qemu_cmdline_build(const struct vm_spec *s, const struct qemu_launch *l, char ***argv_out);
void qemu_cmdline_free(char **argv);

/* The MAC of nic idx: locally administered, unicast, 52:xx:xx:xx:xx:xx with
 * 40 bits of an FNV-1a hash of the uuid and the index. Stable across
 * migrations and restarts because the uuid is. out: "52:..." + NUL. */
void qemu_nic_mac(const struct vm_spec *s, size_t idx, char out[18]);

#endif
