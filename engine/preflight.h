/* Preflight: is this VM live-migratable, and why not.
 *
 * The seeds' restrictions, checked before anything starts: a CD-ROM with
 * media (eject it first), a container disk (remove it first), a NIC bound
 * to a bridge on the management network. Plus ferry's own: a local disk
 * would need storage migration, which this version does not do; migrating
 * without it would leave the target on another host's disk path. */
#ifndef FERRY_ENGINE_PREFLIGHT_H
#define FERRY_ENGINE_PREFLIGHT_H

#include <stddef.h>

struct vm_spec;

/* 0 if the VM may live-migrate; -EPERM with every reason, "; "-joined. */
int preflight_vm(const struct vm_spec *s, char *reason, size_t len);

#endif
