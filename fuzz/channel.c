/* Fuzzes the classifier of QEMU's migration channels (engine/channel.h):
 * channel_classify on every prefix of the input, channel_peek on a socket
 * holding it, and channel_kind_parse on it as a name.
 *
 * Properties: once a prefix is classified, every longer prefix gets the
 * same answer; a prefix that needs n more bytes is not decided before
 * n more bytes are there; channel_peek agrees with channel_classify on
 * the whole input; a parsed name prints back as itself. */
#include <errno.h>

#include "engine/channel.h"
#include "fuzz/fuzz.h"

#define PREFIX_MAX 64

FUZZ_INIT_QUIET()

static void prefixes(const uint8_t *data, size_t size)
{
	enum channel_kind kind = CHANNEL_UNKNOWN, first_kind = CHANNEL_UNKNOWN;
	int id = -1, first_id = -1, decided = 0, r;
	unsigned need_until = 0;

	for (unsigned len = 0; len <= size && len <= PREFIX_MAX; len++) {
		r = channel_classify(data, len, &kind, &id);
		fuzz_assert(r >= -EPROTO);
		if (r > 0) {
			fuzz_assert(!decided);
			fuzz_assert(len + (unsigned)r <= CHANNEL_MULTIFD_ID_OFFSET + 1);
			need_until = len + (unsigned)r;
			continue;
		}
		fuzz_assert(len >= need_until);
		if (r == -EPROTO) {
			fuzz_assert(!decided);
			return;
		}
		fuzz_assert(r == 0);
		fuzz_assert(kind == CHANNEL_MAIN || kind == CHANNEL_MULTIFD);
		fuzz_assert(id >= 0 && id <= 255);
		if (!decided) {
			decided = 1;
			first_kind = kind;
			first_id = id;
		}
		fuzz_assert(kind == first_kind && id == first_id);
	}
}

static void peek(const uint8_t *data, size_t size)
{
	enum channel_kind kind = CHANNEL_UNKNOWN, want_kind = CHANNEL_UNKNOWN;
	int id = -1, want_id = -1, r, want, peer;
	int fd = fuzz_stream(data, size, 4096, &peer);

	if (fd < 0)
		return;
	r = channel_peek(fd, 0, &kind, &id);
	size = size > 4096 ? 4096 : size;
	want = channel_classify(data, (unsigned)size, &want_kind, &want_id);
	if (want == 0)
		fuzz_assert(r == 0 && kind == want_kind && id == want_id);
	else if (want == -EPROTO)
		fuzz_assert(r == -EPROTO);
	else
		fuzz_assert(r < 0);
	close(fd);
	close(peer);
}

static void names(const uint8_t *data, size_t size)
{
	char s[32];
	enum channel_kind k;

	if (size >= sizeof(s))
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	k = channel_kind_parse(s);
	if (k != CHANNEL_UNKNOWN)
		fuzz_assert(strcmp(channel_kind_name(k), s) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	prefixes(data, size);
	peek(data, size);
	names(data, size);
	return 0;
}
