/* Small file-system helpers shared by the engine and the agent. */
#ifndef FERRY_UTIL_FSUTIL_H
#define FERRY_UTIL_FSUTIL_H

/* mkdir -p with mode 0700 for every directory it creates (ferry's state is
 * private to root). 0 or -errno; paths longer than 511 bytes: -ENAMETOOLONG. */
int fs_mkdir_p(const char *path);

#endif
