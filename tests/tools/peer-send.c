/* peer-send: speak to a ferryd as a peer would, for tests of what an agent
 * accepts from its peers. Authenticates as NODE with the cluster key (lab
 * mode, TLS 1.3 with the key as PSK), expects the agent to be PEER, sends
 * one sealed message and prints the agent's answer (or "closed").
 *
 *   peer-send KEYFILE NODE PEER HOST PORT control|open 'JSON'
 *
 * Exit 0 when an answer (or a close) came, 1 on a set-up error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/auth.h"
#include "transport/peer.h"
#include "transport/tls.h"

int main(int argc, char **argv)
{
	uint8_t key[AUTH_KEY_MAX];
	size_t key_len = sizeof(key);
	const char *peers[1];
	struct tls_ident_cfg c = {0};
	struct tls_ident *id = NULL;
	struct peer_link *pl = NULL;
	struct frame_hdr h;
	char reason[256];
	static char buf[PEER_MSG_MAX + 1];
	int r;

	if (argc != 8) {
		fprintf(stderr, "usage: peer-send KEYFILE NODE PEER HOST PORT control|open JSON\n");
		return 1;
	}
	if (auth_load_key(argv[1], key, &key_len, reason, sizeof(reason)) < 0) {
		fprintf(stderr, "key: %s\n", reason);
		return 1;
	}
	peers[0] = argv[3];
	c.node = argv[2];
	c.psk = key;
	c.psk_len = key_len;
	c.peers = peers;
	c.npeers = 1;
	if (tls_ident_new(&c, &id, reason, sizeof(reason)) < 0) {
		fprintf(stderr, "identity: %s\n", reason);
		return 1;
	}
	if (peer_connect(id, argv[4], atoi(argv[5]), argv[3], 5000, &pl, reason, sizeof(reason)) < 0) {
		fprintf(stderr, "connect: %s\n", reason);
		tls_ident_free(id);
		return 1;
	}
	r = peer_send_msg(pl, strcmp(argv[6], "open") ? FRAME_CONTROL : FRAME_OPEN, argv[7], strlen(argv[7]),
			  5000);
	if (r < 0) {
		fprintf(stderr, "send failed\n");
		peer_link_close(pl);
		tls_ident_free(id);
		return 1;
	}
	r = peer_recv_msg(pl, 10000, &h, buf, sizeof(buf));
	printf("%s\n", r < 0 ? "closed" : buf);
	peer_link_close(pl);
	tls_ident_free(id);
	return 0;
}
