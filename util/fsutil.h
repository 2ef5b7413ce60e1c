/* Small file-system helpers shared by the engine and the agent. */
#ifndef FERRY_UTIL_FSUTIL_H
#define FERRY_UTIL_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p with mode 0700 for every directory it creates (ferry's state is
 * private to root). 0 or -errno; paths longer than 511 bytes: -ENAMETOOLONG. */
int fs_mkdir_p(const char *path);

/* write() all len bytes, retrying short writes and EINTR. 0 or -errno
 * (-EIO if write() returns 0). */
int fs_write_all(int fd, const void *buf, size_t len);

/* Replaces path with len bytes of data so that a reader sees the old file
 * or the new one, never a part, and the new one survives a crash once this
 * returns 0: writes "<path>.tmp" (created with mode, less the umask), fsyncs
 * it, renames it over path and fsyncs the directory. 0 or -errno; the temp
 * file is removed on failure. A failure of the directory's fsync is
 * returned although path already holds the new data. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
	__attribute__((warn_unused_result));

#endif
