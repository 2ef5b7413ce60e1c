/* ferryctl's plumbing shared by its subcommand files: the connection to
 * ferryd, one request, JSON helpers and the output formats. */
#ifndef FERRY_CLI_CTL_H
#define FERRY_CLI_CTL_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

struct ctl {
	const char *server; /* unix socket of ferryd's API, or http(s)://host:port */
	const char *token;  /* bearer token, or NULL */
	const char *output; /* table | json */
	const char *cacert; /* CA bundle that signs ferryd's HTTPS certificate, or NULL (system CAs) */
	char token_buf[512];
};

/* A token comes from a file (never the command line). 0, or -1 with a message. */
int read_token_file(struct ctl *c, const char *path);
/* One request; *out gets the parsed JSON body. Returns the HTTP status, or
 * -1 when ferryd could not be reached (message printed). */
long call(struct ctl *c, const char *method, const char *path, struct json_object *body,
	  struct json_object **out);
const char *jstr(struct json_object *o, const char *k);
int64_t jint(struct json_object *o, const char *k);
/* Prints ferryd's error and returns the exit code for it. */
int api_failed(long status, struct json_object *o);
extern int g_yaml; /* -o yaml */
/* Nonzero when -o json or -o yaml asks for the answer as a document
 * (print_json) rather than a table. */
int ctl_document(const struct ctl *c);
void yaml_emit(struct json_object *o, int indent);
void print_json(struct json_object *o);
void human_bytes(uint64_t b, char *out, size_t len);
/* One request that must answer want: 0 with *out (the caller frees it),
 * else ferryd's error printed and the exit code for it. body is taken
 * (freed here) in every case. */
int call_expect(struct ctl *c, const char *method, const char *path, struct json_object *body, long want,
		struct json_object **out);
/* One request that answers with a status and nothing to show: print what
 * was done (done_fmt with the name) or ferryd's error. */
int simple_call(struct ctl *c, const char *method, const char *path, long want,
		const char *done_fmt, const char *name);

#endif
