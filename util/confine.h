/* Path confinement: the host paths a VM spec names (disk images, the
 * kernel) must lie under directories the operator allowed, because a spec
 * may come from a peer or a REST client and QEMU opens what it names.
 *
 * A path is judged by where it really is: symlinks, "." and ".." are
 * resolved first (realpath), so a link inside an allowed directory that
 * points outside it is outside. A file that does not exist yet is judged by
 * its directory. */
#ifndef FERRY_UTIL_CONFINE_H
#define FERRY_UTIL_CONFINE_H

#include <stddef.h>

/* The real absolute path of path into out (PATH_MAX bytes): realpath(3),
 * or when path does not exist, realpath of its directory plus its last
 * component (which must not be "." or ".."). 0 or -errno (-ENOENT when the
 * directory does not exist either, -EINVAL for a relative path). */
int confine_resolve(const char *path, char *out, size_t outlen);

/* 1 when the resolved path equals dir or lies below it ("/a/bc" is not
 * below "/a/b"), else 0. Both must be resolved. Pure. */
int confine_within(const char *resolved, const char *dir);

/* 0 when path resolves under one of dirs (each resolved here; one that
 * does not exist allows nothing). Else -EACCES with the reason in err:
 * "WHAT PATH resolves to REAL, outside the allowed directories (A, B)", or
 * the resolve error. what names the path's role ("disk data"). */
int confine_check(const char *what, const char *path, const char *const *dirs, size_t n_dirs,
		  char *err, size_t errlen);

#endif
