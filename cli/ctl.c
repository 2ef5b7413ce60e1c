/* ferryctl's plumbing: the connection to ferryd, JSON helpers, output. */
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ctl.h"

/* A token comes from a file or the environment, never from the command
 * line (where `ps` shows it to every user). 0, or -1 with a message. */
int read_token_file(struct ctl *c, const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f) {
		fprintf(stderr, "ferryctl: cannot read the token file %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = fread(c->token_buf, 1, sizeof(c->token_buf) - 1, f);
	fclose(f);
	c->token_buf[n] = '\0';
	while (n && (c->token_buf[n - 1] == '\n' || c->token_buf[n - 1] == '\r' || c->token_buf[n - 1] == ' '))
		c->token_buf[--n] = '\0';
	if (!n) {
		fprintf(stderr, "ferryctl: the token file %s is empty\n", path);
		return -1;
	}
	c->token = c->token_buf;
	return 0;
}

struct buf {
	char *p;
	size_t n;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *u)
{
	struct buf *b = u;
	char *np = realloc(b->p, b->n + sz * nm + 1);

	if (!np)
		return 0;
	b->p = np;
	memcpy(b->p + b->n, d, sz * nm);
	b->n += sz * nm;
	b->p[b->n] = '\0';
	return sz * nm;
}

/* One request; *out gets the parsed JSON body. Returns the HTTP status, or
 * -1 when ferryd could not be reached (message printed). */
long call(struct ctl *c, const char *method, const char *path, struct json_object *body,
		 struct json_object **out)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hd = NULL;
	struct buf b = {NULL, 0};
	char url[512];
	long status = -1;
	CURLcode rc;

	if (!strncmp(c->server, "http://", 7) || !strncmp(c->server, "https://", 8)) {
		snprintf(url, sizeof(url), "%s%s", c->server, path);
		/* curl verifies the certificate and the host name by default;
		 * --cacert names the cluster's own CA. */
		if (c->cacert)
			curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
	} else {
		snprintf(url, sizeof(url), "http://ferryd%s", path);
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->server);
	}
	if (c->token) {
		char auth[400];

		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
		hd = curl_slist_append(hd, auth);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L);
	if (body) {
		hd = curl_slist_append(hd, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS,
				 json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
	}
	if (hd)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		fprintf(stderr, "ferryctl: cannot reach ferryd at %s: %s\n", c->server, curl_easy_strerror(rc));
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		*out = b.p ? json_tokener_parse(b.p) : NULL;
	}
	free(b.p);
	curl_slist_free_all(hd);
	curl_easy_cleanup(h);
	return status;
}

const char *jstr(struct json_object *o, const char *k)
{
	const char *s = json_object_get_string(json_object_object_get(o, k));

	return s ? s : "";
}

int64_t jint(struct json_object *o, const char *k)
{
	return json_object_get_int64(json_object_object_get(o, k));
}

/* Prints ferryd's error and returns the exit code for it. */
int api_failed(long status, struct json_object *o)
{
	struct json_object *e = json_object_object_get(o, "error");

	if (status < 0)
		return 1;
	fprintf(stderr, "ferryctl: %s\n", e ? jstr(e, "message") : "unexpected answer from ferryd");
	return status == 404 ? 3 : 1;
}

int g_yaml; /* -o yaml */

/* YAML from JSON: scalars as JSON text (a JSON string is a valid YAML
 * double-quoted scalar), maps and lists in block style. */
void yaml_emit(struct json_object *o, int indent)
{
	if (json_object_is_type(o, json_type_object) && json_object_object_length(o)) {
		json_object_object_foreach(o, k, v) {
			int nested = (json_object_is_type(v, json_type_object) && json_object_object_length(v)) ||
				     (json_object_is_type(v, json_type_array) && json_object_array_length(v));

			printf("%*s%s:%s", indent, "", k, nested ? "\n" : " ");
			if (nested)
				yaml_emit(v, indent + 2);
			else
				printf("%s\n", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		}
	} else if (json_object_is_type(o, json_type_array) && json_object_array_length(o)) {
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			struct json_object *v = json_object_array_get_idx(o, i);

			if ((json_object_is_type(v, json_type_object) && json_object_object_length(v)) ||
			    (json_object_is_type(v, json_type_array) && json_object_array_length(v))) {
				printf("%*s-\n", indent, "");
				yaml_emit(v, indent + 2);
			} else {
				printf("%*s- %s\n", indent, "",
				       json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
			}
		}
	} else {
		printf("%*s%s\n", indent, "", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	}
}

void print_json(struct json_object *o)
{
	if (g_yaml)
		yaml_emit(o, 0);
	else
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

void human_bytes(uint64_t b, char *out, size_t len)
{
	if (b >= (1ull << 30))
		snprintf(out, len, "%.2f GiB", b / (double)(1ull << 30));
	else if (b >= (1ull << 20))
		snprintf(out, len, "%.1f MiB", b / (double)(1ull << 20));
	else
		snprintf(out, len, "%llu B", (unsigned long long)b);
}

/* One request that answers with a status and nothing to show: print what
 * was done (done_fmt with the name) or ferryd's error. */
int simple_call(struct ctl *c, const char *method, const char *path, long want,
		       const char *done_fmt, const char *name)
{
	struct json_object *out = NULL;
	long st = call(c, method, path, NULL, &out);
	int r = 0;

	if (st != want)
		r = api_failed(st, out);
	else
		printf(done_fmt, name);
	json_object_put(out);
	return r;
}

int ctl_document(const struct ctl *c)
{
	return strcmp(c->output, "table") != 0;
}

int call_expect(struct ctl *c, const char *method, const char *path, struct json_object *body, long want,
		struct json_object **out)
{
	long st = call(c, method, path, body, out);
	int r = 0;

	json_object_put(body);
	if (st != want) {
		r = api_failed(st, *out);
		json_object_put(*out);
		*out = NULL;
	}
	return r;
}
