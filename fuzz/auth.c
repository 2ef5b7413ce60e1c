/* Fuzzes the peer handshake (transport/auth.h): the HELLO parser, the
 * PROOF check and the blocking exchange on a socket.
 *
 * Input: byte 0 picks the case and our role (bit 0: we are the server),
 * the rest is the peer's bytes:
 *   case 0  HELLO (108 bytes) then PROOF (32) straight from the input;
 *   case 1  a genuine peer with the same key, whose HELLO and PROOF are
 *           XORed with the input (zero bytes leave them intact), so the
 *           fuzzer explores near-valid handshakes and the success path;
 *   case 2  the input as the peer's side of a socket for auth_handshake_fd.
 * Properties: the peer is authenticated only when its HELLO and PROOF came
 * through unchanged (case 1); the name the peer claimed is a string of at
 * most AUTH_NAME_LEN - 1 bytes. */
#include <errno.h>

#include "fuzz/fuzz.h"
#include "transport/auth.h"

static const uint8_t key[32] = "fuzz cluster key, 32 bytes long";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

/* XORs dst with up to n bytes of the input at *in, consuming them. */
static int mask(uint8_t *dst, size_t n, const uint8_t **in, size_t *left)
{
	int changed = 0;

	for (size_t i = 0; i < n && *left; i++, (*in)++, (*left)--) {
		dst[i] ^= **in;
		changed |= **in != 0;
	}
	return changed;
}

static void sans_io(int is_server, int genuine, const uint8_t *in, size_t left)
{
	uint8_t hello[AUTH_HELLO_LEN] = {0}, mine[AUTH_HELLO_LEN], proof[AUTH_PROOF_LEN] = {0};
	struct auth *me = NULL, *peer = NULL;
	int changed = 0, r;

	if (auth_new(&me, key, sizeof(key), is_server, "node-a") < 0)
		goto out;
	if (genuine) {
		if (auth_new(&peer, key, sizeof(key), !is_server, "node-b") < 0)
			goto out;
		auth_hello(peer, hello);
		auth_hello(me, mine);
		if (auth_on_peer_hello(peer, mine) < 0)
			goto out;
		auth_proof(peer, proof);
		changed |= mask(hello, sizeof(hello), &in, &left);
		changed |= mask(proof, sizeof(proof), &in, &left);
	} else {
		if (left < sizeof(hello))
			goto out;
		memcpy(hello, in, sizeof(hello));
		in += sizeof(hello);
		left -= sizeof(hello);
		if (left >= sizeof(proof))
			memcpy(proof, in, sizeof(proof));
	}
	r = auth_on_peer_hello(me, hello);
	fuzz_assert(strlen(auth_peer_name(me)) < AUTH_NAME_LEN);
	if (r < 0) {
		fuzz_assert(auth_reason(me)[0] != '\0');
		goto out;
	}
	r = auth_check_proof(me, proof);
	if (genuine)
		fuzz_assert((r == 0) == !changed);
out:
	auth_free(me);
	auth_free(peer);
}

static void over_socket(int is_server, const uint8_t *in, size_t left)
{
	char name[AUTH_NAME_LEN], reason[256];
	int peer, fd = fuzz_stream(in, left, 4096, &peer);

	if (fd < 0)
		return;
	(void)auth_handshake_fd(fd, key, sizeof(key), is_server, "node-a", 1000, name,
				sizeof(name), reason, sizeof(reason));
	close(fd);
	close(peer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch ((data[0] >> 1) % 3) {
	case 0:
		sans_io(data[0] & 1, 0, data + 1, size - 1);
		break;
	case 1:
		sans_io(data[0] & 1, 1, data + 1, size - 1);
		break;
	default:
		over_socket(data[0] & 1, data + 1, size - 1);
		break;
	}
	return 0;
}
