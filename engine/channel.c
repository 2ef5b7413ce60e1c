#include "engine/channel.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "util/timeutil.h"

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int channel_classify(const uint8_t *buf, unsigned len, enum channel_kind *kind, int *id)
{
	uint32_t magic;

	if (len < 4)
		return (int)(4 - len);
	magic = be32(buf);
	if (magic == CHANNEL_MAIN_MAGIC) {
		*kind = CHANNEL_MAIN;
		*id = 0;
		return 0;
	}
	if (magic != CHANNEL_MULTIFD_MAGIC)
		return -EPROTO;
	if (len <= CHANNEL_MULTIFD_ID_OFFSET)
		return (int)(CHANNEL_MULTIFD_ID_OFFSET + 1 - len);
	*kind = CHANNEL_MULTIFD;
	*id = buf[CHANNEL_MULTIFD_ID_OFFSET];
	return 0;
}

int channel_peek(int fd, int timeout_ms, enum channel_kind *kind, int *id)
{
	uint8_t buf[CHANNEL_MULTIFD_ID_OFFSET + 1];
	uint64_t deadline = time_mono_ms() + (uint64_t)timeout_ms;
	int need;

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int left = time_remaining_ms(deadline);
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		need = channel_classify(buf, n > 0 ? (unsigned)n : 0, kind, id);
		if (need <= 0)
			return need;
		if (left == 0)
			return -ETIMEDOUT;
		/* POLLIN stays set while unread data is queued, so a partial
		 * prefix would spin: wait for more with a short poll instead. */
		if (n > 0)
			poll(NULL, 0, 1);
		else
			poll(&pfd, 1, left);
	}
}

const char *channel_kind_name(enum channel_kind k)
{
	return k == CHANNEL_MAIN ? "main" : k == CHANNEL_MULTIFD ? "multifd" : k == CHANNEL_NBD ? "nbd" : "unknown";
}

enum channel_kind channel_kind_parse(const char *s)
{
	if (!strcmp(s, "main"))
		return CHANNEL_MAIN;
	if (!strcmp(s, "multifd"))
		return CHANNEL_MULTIFD;
	if (!strcmp(s, "nbd"))
		return CHANNEL_NBD;
	return CHANNEL_UNKNOWN;
}
