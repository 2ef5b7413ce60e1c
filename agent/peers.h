/* ferryd's peer listener (agent/peers.c): the front door other agents
 * reach, on listen_host:listen_port. Each accepted link gets a set-up
 * thread that authenticates it and hands it to what it asks for. ferryd.c
 * holds a struct peers beside the agent it serves. */
#ifndef FERRY_AGENT_PEERS_H
#define FERRY_AGENT_PEERS_H

#include <pthread.h>
#include <stddef.h>

#include "agent/admit.h"
#include "transport/loop.h"

struct agent;

struct peers {
	struct agent *a; /* the agent it serves; its loop runs the accepts */
	int fd;          /* the listening socket, -1 when none */
	struct loop_op accept_op, retry_op;
	pthread_mutex_t admit_mu; /* guards admit: set-up threads end handshakes */
	struct admit admit;       /* unauthenticated handshakes in flight */
};

/* Fills p (no earlier state), listens and arms the first accept on a's
 * loop; after agent_init. 0, or -errno with a message. */
int peers_start(struct peers *p, struct agent *a, char *err, size_t errlen);
/* Cancels the accept and shuts the socket down; before agent_shutdown.
 * The socket stays open until peers_close. */
void peers_stop(struct peers *p);
/* Closes the socket; after agent_shutdown, once the loop (which may still
 * hold the cancelled accept on this fd number) is gone. */
void peers_close(struct peers *p);

#endif
