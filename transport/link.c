#include "transport/link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/net.h"
#include "util/timeutil.h"

static int resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = {0}, *res = NULL;
	char ps[16];
	int r;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(ps, sizeof(ps), "%d", port);
	r = getaddrinfo(host, ps, &hints, &res);
	if (r != 0 || !res)
		return -EHOSTUNREACH;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int link_listen_tcp(const char *host, int port, int *fd_out)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, r;

	r = resolve(host, port, &ss, &sl);
	if (r < 0)
		return r;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 64) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*fd_out = fd;
	return 0;
}

int link_listen_unix(const char *path, int *fd_out)
{
	struct sockaddr_un sa;
	int fd, r;

	r = net_unix_addr(path, &sa);
	if (r < 0)
		return r;
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*fd_out = fd;
	return 0;
}

int link_connect_tcp(const char *host, int port, int timeout_ms, int *fd_out)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	uint64_t deadline = time_mono_ms() + (uint64_t)timeout_ms;
	int fd, r;

	r = resolve(host, port, &ss, &sl);
	if (r < 0)
		return r;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	link_tune_peer(fd);
	r = net_connect_deadline(fd, (struct sockaddr *)&ss, sl, deadline);
	if (r < 0) {
		close(fd);
		return r;
	}
	*fd_out = fd;
	return 0;
}

int link_connect_unix(const char *path, int timeout_ms, int *fd_out)
{
	return net_connect_unix(path, timeout_ms, fd_out);
}

void link_tune_peer(int fd)
{
	int one = 1, lowat = LINK_NOTSENT_LOWAT;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	/* A send blocks while this much is still unsent, so the kernel holds
	 * little that QEMU already counted as sent, without capping the
	 * congestion window the way a small SO_SNDBUF would. */
	setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
}

int link_send_all(int fd, const void *buf, size_t len, int timeout_ms)
{
	const char *p = buf;
	uint64_t deadline = time_mono_ms() + (uint64_t)timeout_ms;

	while (len > 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (poll(&pfd, 1, time_remaining_ms(deadline)) == 0)
			return -ETIMEDOUT;
	}
	return 0;
}

int link_recv_all(int fd, void *buf, size_t len, int timeout_ms)
{
	char *p = buf;
	uint64_t deadline = time_mono_ms() + (uint64_t)timeout_ms;

	while (len > 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n = recv(fd, p, len, MSG_DONTWAIT);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (poll(&pfd, 1, time_remaining_ms(deadline)) == 0)
			return -ETIMEDOUT;
	}
	return 0;
}
