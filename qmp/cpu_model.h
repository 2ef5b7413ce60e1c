/* cpu_model: a host-model CPU as QEMU describes it, and whether another
 * host can run it.
 *
 * A host-model VM gets the CPU of the host it was created on, written out:
 * QEMU's static expansion (`query-cpu-model-expansion` type "static") of
 * "host" under KVM, or of a named model under TCG (which has no host CPU;
 * engine/qemu_proc.c says why not "max"), is the
 * static model "base" plus properties. ferry keeps the enabled features
 * ("aes": "on") and every non-boolean property ("family": "6",
 * "model-id": "...") as sorted key/value pairs; "-cpu base,<k>=<v>,..."
 * builds that CPU again on any host that has the features. Features off
 * are left out: "base" has none.
 *
 * Whether a host can run it is asked the same way on that host: its own
 * expansion must have every feature the VM's has. (QEMU's
 * query-cpu-model-comparison exists only for s390x.)
 *
 * Conventions: 0 or -errno; the parse and compare functions are pure. */
#ifndef FERRY_QMP_CPU_MODEL_H
#define FERRY_QMP_CPU_MODEL_H

#include <stddef.h>

#include "schema/schema.h" /* struct ferry_kv */

struct json_object;
struct qmp;

/* At most this many properties are kept (QEMU 10's x86 "max" has ~600,
 * of which ~150 on). */
#define CPU_MODEL_PROPS_MAX 1024

/* The "return" of a query-cpu-model-expansion into sorted pairs (malloc'd,
 * cpu_model_free). -EPROTO when it is not an expansion of model "base"
 * with props; -E2BIG beyond CPU_MODEL_PROPS_MAX; -ENOMEM. */
int cpu_model_parse(struct json_object *ret, struct ferry_kv **out, size_t *n);

/* The features on in vm but not on in host, ", "-joined into buf (always
 * NUL-terminated, cut at len). Returns how many. */
size_t cpu_model_missing(const struct ferry_kv *vm, size_t n_vm, const struct ferry_kv *host,
			 size_t n_host, char *buf, size_t len);

/* Asks q for the static expansion of model ("host", or a named one). */
int cpu_model_query(struct qmp *q, const char *model, struct ferry_kv **out, size_t *n,
		    char *err, size_t errlen);

void cpu_model_free(struct ferry_kv *kv, size_t n);

#endif
