/* peer-send: speak to a ferryd as a peer would, for tests of what an agent
 * accepts from its peers. Authenticates with the cluster key, sends one
 * framed message and prints the agent's answer (or "closed").
 *
 *   peer-send KEYFILE NODE HOST PORT control|open 'JSON'
 *
 * Exit 0 when an answer (or a close) came, 1 on a set-up error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/auth.h"
#include "transport/peer.h"

int main(int argc, char **argv)
{
	struct peer_key k = {0};
	struct frame_hdr h;
	char peer[64], reason[256];
	static char buf[PEER_MSG_MAX + 1];
	int fd, r;

	if (argc != 7) {
		fprintf(stderr, "usage: peer-send KEYFILE NODE HOST PORT control|open JSON\n");
		return 1;
	}
	k.len = sizeof(k.key);
	if (auth_load_key(argv[1], k.key, &k.len, reason, sizeof(reason)) < 0) {
		fprintf(stderr, "key: %s\n", reason);
		return 1;
	}
	snprintf(k.node, sizeof(k.node), "%s", argv[2]);
	if (peer_connect(&k, argv[3], atoi(argv[4]), 5000, &fd, peer, sizeof(peer), reason,
			 sizeof(reason)) < 0) {
		fprintf(stderr, "connect: %s\n", reason);
		return 1;
	}
	r = peer_send_msg(fd, strcmp(argv[5], "open") ? FRAME_CONTROL : FRAME_OPEN, 0, argv[6],
			  strlen(argv[6]), 5000);
	if (r < 0) {
		fprintf(stderr, "send failed\n");
		return 1;
	}
	r = peer_recv_msg(fd, 10000, &h, buf, sizeof(buf));
	printf("%s\n", r < 0 ? "closed" : buf);
	close(fd);
	return 0;
}
