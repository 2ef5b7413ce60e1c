/* admit: see admit.h. */
#include "agent/admit.h"

#include <stdio.h>
#include <string.h>

static int find(const struct admit *ad, const char *addr)
{
	for (int i = 0; i < ADMIT_MAX; i++)
		if (ad->slot[i].n && !strcmp(ad->slot[i].addr, addr))
			return i;
	return -1;
}

int admit_take(struct admit *ad, const char *addr, const char **why)
{
	int i = find(ad, addr);

	if (ad->total >= ADMIT_MAX) {
		if (why)
			*why = "too many handshakes in flight";
		return 0;
	}
	if (i >= 0 && ad->slot[i].n >= ADMIT_PER_ADDR) {
		if (why)
			*why = "too many handshakes in flight from this address";
		return 0;
	}
	if (i < 0) {
		/* total < ADMIT_MAX, so a free slot exists */
		for (i = 0; ad->slot[i].n; i++)
			;
		snprintf(ad->slot[i].addr, sizeof(ad->slot[i].addr), "%s", addr);
	}
	ad->slot[i].n++;
	ad->total++;
	return 1;
}

void admit_put(struct admit *ad, const char *addr)
{
	int i = find(ad, addr);

	if (i < 0)
		return;
	ad->slot[i].n--;
	ad->total--;
}
