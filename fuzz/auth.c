/* Fuzzes the peer handshake (transport/tls.h) and the cluster key decoder
 * (transport/auth.h).
 *
 * Input: byte 0 picks the case and our role (bit 0: we are the server),
 * the rest is the peer's bytes:
 *   case 0  the input as a cluster key file's text for auth_decode_key;
 *   case 1  the input as the peer's side of a socket for tls_handshake in
 *           lab (PSK) mode: a ClientHello or ServerHello and what follows.
 * Properties: a decoded key is AUTH_KEY_MIN..cap bytes; a handshake against
 * bytes that do not know the key never succeeds. */
#include <errno.h>

#include "fuzz/fuzz.h"
#include "transport/auth.h"
#include "transport/tls.h"

static const uint8_t key[32] = "fuzz cluster key, 32 bytes long";
static struct tls_ident *g_id;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const peers[] = {"node-b"};
	struct tls_ident_cfg c = {.node = "node-a", .psk = key, .psk_len = sizeof(key),
				  .peers = peers, .npeers = 1};
	char reason[256];

	(void)argc;
	(void)argv;
	fuzz_quiet();
	fuzz_assert(tls_ident_new(&c, &g_id, reason, sizeof(reason)) == 0);
	return 0;
}

static void decode(const uint8_t *in, size_t left)
{
	uint8_t out[AUTH_KEY_MAX];
	size_t n = 0;

	if (auth_decode_key(in, left, out, &n, sizeof(out)) == 0)
		fuzz_assert(n >= AUTH_KEY_MIN && n <= sizeof(out));
}

static void over_socket(int is_server, const uint8_t *in, size_t left)
{
	struct tls_session s;
	char reason[300];
	int peer, fd = fuzz_stream(in, left, 4096, &peer);

	if (fd < 0)
		return;
	fuzz_assert(tls_handshake(g_id, fd, is_server, NULL, 200, &s, reason, sizeof(reason)) < 0);
	close(fd);
	close(peer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!g_id)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size < 1)
		return 0;
	if ((data[0] >> 1) % 2 == 0)
		decode(data + 1, size - 1);
	else
		over_socket(data[0] & 1, data + 1, size - 1);
	return 0;
}
