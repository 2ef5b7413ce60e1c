#include "util/confine.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int confine_resolve(const char *path, char *out, size_t outlen)
{
	char dir[PATH_MAX], real[PATH_MAX];
	const char *base;
	char *slash;

	if (!path || path[0] != '/')
		return -EINVAL;
	if (strlen(path) >= sizeof(dir))
		return -ENAMETOOLONG;
	if (realpath(path, real)) {
		if (strlen(real) >= outlen)
			return -ENAMETOOLONG;
		snprintf(out, outlen, "%s", real);
		return 0;
	}
	if (errno != ENOENT)
		return -errno;
	/* Not there (yet): its directory must be, and decides. */
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	base = path + (slash - dir) + 1;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return -EINVAL;
	*(slash == dir ? slash + 1 : slash) = '\0';
	if (!realpath(dir, real))
		return -errno;
	if (strlen(real) + 1 + strlen(base) >= outlen)
		return -ENAMETOOLONG;
	snprintf(out, outlen, "%s%s%s", real, strcmp(real, "/") ? "/" : "", base);
	return 0;
}

int confine_within(const char *resolved, const char *dir)
{
	size_t n = strlen(dir);

	if (!strcmp(dir, "/"))
		return resolved[0] == '/';
	return !strncmp(resolved, dir, n) && (resolved[n] == '\0' || resolved[n] == '/');
}

int confine_check(const char *what, const char *path, const char *const *dirs, size_t n_dirs,
		  char *err, size_t errlen)
{
	char real[PATH_MAX], d[PATH_MAX], list[512] = "";
	size_t used = 0;
	int r = confine_resolve(path, real, sizeof(real));

	if (r < 0) {
		snprintf(err, errlen, "%s %s cannot be checked against allowed_paths: %s", what, path,
			 strerror(-r));
		return -EACCES;
	}
	for (size_t i = 0; i < n_dirs; i++) {
		if (realpath(dirs[i], d) && confine_within(real, d))
			return 0;
		if (used < sizeof(list))
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
						 dirs[i]);
	}
	snprintf(err, errlen,
		 "%s %s resolves to %s, outside the directories VM files may be in (allowed_paths: %s)",
		 what, path, real, n_dirs ? list : "none");
	return -EACCES;
}
