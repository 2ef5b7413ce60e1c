/* The web console's static files (agent/console/), compiled into ferryd by
 * agent/embed_console.cmake and served on the API listeners without a
 * token: the pages hold no data, and every API call they make carries the
 * user's bearer token (docs/console.md). */
#ifndef FERRY_AGENT_CONSOLE_H
#define FERRY_AGENT_CONSOLE_H

#include <stddef.h>

struct MHD_Connection;

struct console_asset {
	const char *path; /* "/console/index.html" */
	const char *type; /* Content-Type */
	const unsigned char *data;
	size_t len;
};

extern const struct console_asset console_assets[];
extern const size_t console_n_assets;

/* Nonzero when url belongs to the console ("/" or "/console..."). */
int console_is_path(const char *url);
/* Queues the asset (or a 404) on c; returns an enum MHD_Result. */
int console_serve(struct MHD_Connection *c, const char *url);

#endif
