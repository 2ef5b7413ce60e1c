/* Socket helpers shared by the transport, the QMP client, the agent and the
 * tools: host:port parsing and connects bounded by a deadline. */
#ifndef FERRY_UTIL_NET_H
#define FERRY_UTIL_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/* A unix connect that finds no socket (ENOENT) or no listener yet
 * (ECONNREFUSED, EAGAIN: backlog full) tries again after this long. */
#define NET_UNIX_RETRY_MS 10

/* Splits "host:port" or "[v6addr]:port" into host (brackets dropped) and
 * port. The host is non-empty, shorter than hostlen, holds no ',' or ' ',
 * and a host without brackets holds no ':'; the port is decimal, 1..65535.
 * Returns 0 or -EINVAL; on -EINVAL, *why (if why is not NULL) points to a
 * static sentence saying what is wrong. host and *port are written only on
 * success. Pure: no I/O, no name lookup. */
int net_parse_hostport(const char *s, char *host, size_t hostlen, int *port,
		       const char **why);

/* 1 when host (as parse_hostport gives it) is a loopback address or
 * "localhost": traffic to it never leaves the machine. Pure. */
int net_is_loopback(const char *host);

/* Fills sa with an AF_UNIX address for path. 0, or -ENAMETOOLONG when path
 * does not fit in sun_path (with its NUL). */
int net_unix_addr(const char *path, struct sockaddr_un *sa);

/* connect() on fd, waiting until deadline (a time_mono_ms() value) when the
 * connect is in progress. fd is made blocking before a successful return;
 * on failure its flags are unspecified (the caller closes it). 0, -ETIMEDOUT
 * or the connect's -errno. */
int net_connect_deadline(int fd, const struct sockaddr *sa, socklen_t sl, uint64_t deadline);

/* Connects to the SOCK_STREAM unix socket at path. While the socket does not
 * exist yet or refuses (its creator, say a QEMU, is still starting), tries
 * again every NET_UNIX_RETRY_MS until timeout_ms has passed (0: one attempt;
 * negative: no limit). On success *fd_out is a blocking, close-on-exec fd.
 * Returns 0; -ENAMETOOLONG; once the time is up, the last attempt's
 * -ENOENT, -ECONNREFUSED or -EAGAIN; or another -errno at once. */
int net_connect_unix(const char *path, int timeout_ms, int *fd_out);

#endif
