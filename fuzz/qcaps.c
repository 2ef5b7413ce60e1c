/* Fuzzes qcaps_parse (qmp/qemu_caps.h), which turns QEMU's replies to
 * query-version, query-commands, query-migrate-capabilities and
 * query-migrate-parameters into the features ferry uses. The input is up to
 * four JSON texts separated by newlines, one per reply (missing or invalid
 * ones are passed as NULL, which the parser allows for all but the first).
 *
 * Properties: on success no part of the version is negative;
 * qcaps_describe always NUL-terminates, even in a tiny buffer. */
#include <errno.h>
#include <json-c/json.h>

#include "fuzz/fuzz.h"
#include "qmp/qemu_caps.h"

FUZZ_INIT_QUIET()

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *reply[4] = {0};
	struct qemu_caps caps;
	char small[8], big[256];
	size_t start = 0;
	int n = 0, r;

	for (size_t i = 0; i <= size && n < 4; i++) {
		struct json_tokener *tok;

		if (i < size && data[i] != '\n')
			continue;
		tok = json_tokener_new();
		if (tok) {
			reply[n] = json_tokener_parse_ex(tok, (const char *)data + start,
							 (int)(i - start));
			json_tokener_free(tok);
		}
		n++;
		start = i + 1;
	}
	r = qcaps_parse(reply[0], reply[1], reply[2], reply[3], &caps);
	fuzz_assert(r == 0 || r == -EPROTO);
	if (r == 0) {
		fuzz_assert(caps.major >= 0 && caps.minor >= 0 && caps.micro >= 0);
		(void)qcaps_supported(&caps);
		qcaps_describe(&caps, small, sizeof(small));
		fuzz_assert(memchr(small, '\0', sizeof(small)) != NULL);
		qcaps_describe(&caps, big, sizeof(big));
		fuzz_assert(memchr(big, '\0', sizeof(big)) != NULL);
	}
	for (int i = 0; i < 4; i++)
		json_object_put(reply[i]);
	return 0;
}
