/* Fuzzes the set-up messages between agents: the bytes after the handshake
 * on a control or data link, read with peer_recv_msg (transport/peer.h) and
 * peer_recv_json (a CONTROL frame holding a JSON object), over a socketpair
 * as the agents read them. The link is an insecure_transport one (sealed
 * frames only open with the key, which the fuzzer cannot forge; the AEAD is
 * tested in tests/unit/test_auth.c), so the parsers behind the seal are
 * reached. Frames in the input whose crc field is 0 get their real CRC
 * (fuzz.h).
 *
 * Input: byte 0 bit 0 picks the reader: peer_recv_json until it fails, or
 * peer_recv_msg into a 512-byte buffer (so that the over-capacity path is
 * hit with small inputs); the rest is the byte stream.
 * Properties: a message that is returned is NUL-terminated within the
 * buffer and came in a frame that is neither compressed nor over the cap. */
#include <errno.h>
#include <json-c/json.h>

#include "fuzz/fuzz.h"
#include "transport/peer.h"

#define STREAM_MAX (64 * 1024)

FUZZ_INIT_QUIET()

/* Puts the real CRC into every frame of buf whose crc field is 0. */
static void fix_crcs(uint8_t *buf, size_t size)
{
	size_t off = 0;

	while (size - off >= FRAME_HDR_LEN) {
		uint32_t wire_len = fuzz_be32(buf + off + 8);

		if (wire_len > size - off - FRAME_HDR_LEN)
			break;
		fuzz_fix_crc(buf + off, buf + off + FRAME_HDR_LEN, wire_len);
		off += FRAME_HDR_LEN + wire_len;
	}
}

static void read_ctl(struct peer_link *l)
{
	struct json_object *msg;
	char err[256];

	for (;;) {
		msg = NULL;
		if (peer_recv_json(l, 1000, &msg, err, sizeof(err)) < 0) {
			fuzz_assert(msg == NULL && err[0] != '\0');
			return;
		}
		fuzz_assert(json_object_is_type(msg, json_type_object));
		json_object_put(msg);
	}
}

static void read_small(struct peer_link *l)
{
	char buf[512];
	struct frame_hdr h;

	while (peer_recv_msg(l, 1000, &h, buf, sizeof(buf)) == 0) {
		fuzz_assert(h.wire_len < sizeof(buf) && buf[h.wire_len] == '\0');
		fuzz_assert(!(h.flags & FRAME_F_COMPRESSED));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;
	int fd, peer;

	if (size < 1)
		return 0;
	size = size - 1 > STREAM_MAX ? STREAM_MAX : size - 1;
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size);
	fix_crcs(copy, size);
	fd = fuzz_stream(copy, size, STREAM_MAX, &peer);
	if (fd >= 0) {
		struct peer_link l = {.fd = fd}; /* SEAL_NONE keys, sequence 0 */

		if (data[0] & 1)
			read_small(&l);
		else
			read_ctl(&l);
		close(fd);
		close(peer);
	}
	free(copy);
	return 0;
}
