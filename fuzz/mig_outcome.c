/* Fuzzes the control message "outcome" (docs/protocol.md): what a source
 * agent tells the target at the end of a migration, taken into the
 * target's record by mig_outcome_apply (engine/migration.h). The input is
 * the message's JSON text, as peer_recv_json hands it over.
 *
 * Properties: a refusal says why and leaves the status as it was; an
 * accepted outcome leaves every string NUL-terminated within its field,
 * and the status still prints as the API's JSON. */
#include <json-c/json.h>
#include <string.h>

#include "engine/migration.h"
#include "fuzz/fuzz.h"

FUZZ_INIT_QUIET()

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *msg, *out;
	struct mig_status st, before;
	char err[256] = "";
	int r;

	if (!tok)
		return 0;
	msg = json_tokener_parse_ex(tok, (const char *)data, (int)(size > 65536 ? 65536 : size));
	json_tokener_free(tok);
	if (!msg || !json_object_is_type(msg, json_type_object)) {
		json_object_put(msg);
		return 0;
	}
	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "before");
	st.pause_ms = -1;
	before = st;
	r = mig_outcome_apply(&st, msg, data[0] & 1, err, sizeof(err));
	if (r < 0) {
		fuzz_assert(err[0] != '\0');
		fuzz_assert(!memcmp(&st, &before, sizeof(st)));
	} else {
		fuzz_assert(memchr(st.name, '\0', sizeof(st.name)) != NULL);
		fuzz_assert(memchr(st.target_addr, '\0', sizeof(st.target_addr)) != NULL);
		fuzz_assert(memchr(st.failure_reason, '\0', sizeof(st.failure_reason)) != NULL);
		fuzz_assert(memchr(st.cancelled_by, '\0', sizeof(st.cancelled_by)) != NULL);
		fuzz_assert(memchr(st.policy, '\0', sizeof(st.policy)) != NULL);
		out = mig_status_to_json(&st);
		fuzz_assert(json_object_to_json_string(out) != NULL);
		json_object_put(out);
	}
	json_object_put(msg);
	return 0;
}
