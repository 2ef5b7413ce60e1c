/* admit: how many unauthenticated peer handshakes may run at once.
 *
 * Anyone who can reach the peer port can open connections; each costs a
 * set-up thread and buffers until its handshake ends (at most 5 s). The
 * listener admits at most ADMIT_MAX handshakes in flight, ADMIT_PER_ADDR
 * of them from one address, and closes the rest at once: a flood from one
 * address cannot starve the others, and none can exhaust threads or
 * descriptors. Pure bookkeeping (the caller locks); unit-tested. */
#ifndef FERRY_AGENT_ADMIT_H
#define FERRY_AGENT_ADMIT_H

#include <stddef.h>

#define ADMIT_MAX 64
#define ADMIT_PER_ADDR 8
#define ADMIT_ADDR_LEN 48 /* an IPv6 address as text */

struct admit {
	unsigned total;
	struct {
		char addr[ADMIT_ADDR_LEN];
		unsigned n;
	} slot[ADMIT_MAX]; /* n == 0: free */
};

/* 1 when a handshake from addr may start (then counted), 0 when it must
 * be refused; why (if given) says which cap. */
int admit_take(struct admit *ad, const char *addr, const char **why);
/* A handshake from addr ended (authenticated or not). */
void admit_put(struct admit *ad, const char *addr);

#endif
