#include "util/net.h"

#include <ctype.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/timeutil.h"

/* Sets *why when the caller asked for it; returns -EINVAL for a tail call. */
static int bad(const char **why, const char *sentence)
{
	if (why)
		*why = sentence;
	return -EINVAL;
}

int net_parse_hostport(const char *s, char *host, size_t hostlen, int *port,
		       const char **why)
{
	const char *h, *colon, *end;
	size_t hl;
	char *ep;
	long p;

	if (*s == '[') {
		/* IPv6 literal: the brackets keep its colons apart from the port. */
		h = s + 1;
		end = strchr(h, ']');
		if (!end)
			return bad(why, "'[' without a closing ']'");
		if (end[1] != ':')
			return bad(why, "no \":port\" after the ']'");
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		h = s;
		colon = strrchr(s, ':');
		if (!colon)
			return bad(why, "no \":port\"");
		if (memchr(s, ':', (size_t)(colon - s)))
			return bad(why, "an IPv6 address needs brackets: [addr]:port");
		hl = (size_t)(colon - s);
	}
	if (!hl)
		return bad(why, "the host is empty");
	if (hl >= hostlen)
		return bad(why, "the host is too long");
	if (memchr(h, ',', hl) || memchr(h, ' ', hl))
		return bad(why, "the host holds a ',' or a space");
	if (!isdigit((unsigned char)colon[1]))
		return bad(why, "the port is not a number");
	errno = 0;
	p = strtol(colon + 1, &ep, 10);
	if (*ep)
		return bad(why, "the port is not a number");
	if (errno || p < 1 || p > 65535)
		return bad(why, "the port is not in 1..65535");
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (int)p;
	return 0;
}

/* Non-blocking connect, wait for writability, then back to blocking. */
int net_connect_deadline(int fd, const struct sockaddr *sa, socklen_t sl, uint64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	int err = 0, fl;
	socklen_t el = sizeof(err);

	fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (connect(fd, sa, sl) < 0) {
		if (errno != EINPROGRESS)
			return -errno;
		for (;;) {
			int n = poll(&pfd, 1, time_remaining_ms(deadline));

			if (n < 0 && errno == EINTR)
				continue;
			if (n == 0)
				return -ETIMEDOUT;
			if (n < 0)
				return -errno;
			break;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			return -errno;
		if (err)
			return -err;
	}
	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return 0;
}

int net_unix_addr(const char *path, struct sockaddr_un *sa)
{
	size_t plen = strlen(path);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (plen >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, plen + 1);
	return 0;
}

int net_connect_unix(const char *path, int timeout_ms, int *fd_out)
{
	struct sockaddr_un sa;
	uint64_t deadline = time_deadline_ms(timeout_ms);
	int fd, r, wait;

	r = net_unix_addr(path, &sa);
	if (r < 0)
		return r;
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		r = net_connect_deadline(fd, (struct sockaddr *)&sa, sizeof(sa), deadline);
		if (r == 0) {
			*fd_out = fd;
			return 0;
		}
		close(fd);
		if (r == -EINTR)
			continue;
		if (r != -ENOENT && r != -ECONNREFUSED && r != -EAGAIN)
			return r;
		wait = time_remaining_ms(deadline);
		if (wait == 0)
			return r;
		/* The socket's creator has not bound or listened yet and offers
		 * nothing to wait on; back off briefly within the deadline. */
		if (wait < 0 || wait > NET_UNIX_RETRY_MS)
			wait = NET_UNIX_RETRY_MS;
		poll(NULL, 0, wait);
	}
}

int net_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (!strcmp(host, "localhost"))
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}
