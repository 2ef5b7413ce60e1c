/* schema/vmim: KubeVirt's VirtualMachineInstanceMigration manifest, the
 * document `ferryctl create -f` reads:
 *
 *   apiVersion: kubevirt.io/v1
 *   kind: VirtualMachineInstanceMigration
 *   metadata: {name: NAME}          # namespace: only "default", if given
 *   spec: {vmiName: VM}
 *
 * Decoded by the schema decoder like every other document (YAML, or JSON
 * when the text starts with '{'): an unknown key (a misspelt vmiName, or a
 * KubeVirt field ferry does not honour) or a value of the wrong type is an
 * error naming the key and its line, never dropped. Both names are checked
 * as KubeVirt checks them (schema_check_dns_label).
 *
 * Functions return 0 or -errno (-EINVAL with "origin:line: reason" in err,
 * -ENOMEM, -errno of reading the file) and leave errno alone. Pure but for
 * vmim_manifest_load's read.
 */
#ifndef FERRY_SCHEMA_VMIM_H
#define FERRY_SCHEMA_VMIM_H

#include <stddef.h>

struct vmim_manifest {
	char api_version[64];
	char kind[64];
	char name[64];      /* metadata.name */
	char namespace_[64]; /* metadata.namespace: "" or "default" */
	char vmi_name[64];  /* spec.vmiName */
};

int vmim_manifest_parse(const char *text, size_t len, const char *origin,
			struct vmim_manifest *m, char *err, size_t errlen);
int vmim_manifest_load(const char *path, struct vmim_manifest *m, char *err, size_t errlen);

#endif
