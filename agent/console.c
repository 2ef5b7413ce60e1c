/* Serves the console's embedded files. "/" and "/console/" are the page;
 * everything else under /console/ is looked up in the generated table. */
#include "agent/console.h"

#include <microhttpd.h>
#include <string.h>

int console_is_path(const char *url)
{
	return !strcmp(url, "/") || !strcmp(url, "/console") || !strncmp(url, "/console/", 9);
}

static const struct console_asset *find(const char *url)
{
	if (!strcmp(url, "/") || !strcmp(url, "/console") || !strcmp(url, "/console/"))
		url = "/console/index.html";
	for (size_t i = 0; i < console_n_assets; i++)
		if (!strcmp(console_assets[i].path, url))
			return &console_assets[i];
	return NULL;
}

int console_serve(struct MHD_Connection *c, const char *url)
{
	static const char missing[] = "no such console file\n";
	const struct console_asset *f = find(url);
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = f ? MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT)
	      : MHD_create_response_from_buffer(sizeof(missing) - 1, (void *)missing, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", f ? f->type : "text/plain; charset=utf-8");
	/* The files change with the binary: revalidate, never go stale. */
	MHD_add_response_header(r, "Cache-Control", "no-cache");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	/* Own files only: no inline script, no third party, no framing. */
	MHD_add_response_header(r, "Content-Security-Policy",
				"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
				"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
	ret = MHD_queue_response(c, f ? 200 : 404, r);
	MHD_destroy_response(r);
	return ret;
}
