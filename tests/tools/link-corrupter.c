/* link-corrupter: a TCP forwarder on 127.0.0.1 that flips one bit in the
 * client-to-server direction of every connection once BYTES have passed.
 * Tests put it between two agents to prove a damaged frame is caught (CRC)
 * and ends the migration cleanly, never delivered to QEMU.
 *
 *   link-corrupter LISTEN_PORT TARGET_PORT BYTES [CAPTURE_FILE]
 * With CAPTURE_FILE, every client-to-server byte it forwards is appended
 * there too (what a passive eavesdropper would see), so a test can check that
 * guest memory does not cross the link in clear.
 * Prints "ready" once listening; runs until killed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int target_port;
static unsigned long long flip_at;
static int capture_fd = -1;

struct pair {
	int c, s;
};

static void *forward(void *arg)
{
	struct pair *p = arg;
	unsigned long long up = 0;
	int flipped = 0;
	char buf[65536];

	for (;;) {
		struct pollfd pf[2] = {{p->c, POLLIN, 0}, {p->s, POLLIN, 0}};

		if (poll(pf, 2, 60000) <= 0)
			break;
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(p->c, buf, sizeof(buf));

			if (n <= 0)
				break;
			if (!flipped && up + (unsigned long long)n > flip_at) {
				buf[flip_at - up] ^= 0x10;
				flipped = 1;
				fprintf(stderr, "link-corrupter: flipped a bit at offset %llu\n", flip_at);
			}
			up += (unsigned long long)n;
			/* O_APPEND: chunks of concurrent links interleave whole. */
			if (capture_fd >= 0 && write(capture_fd, buf, (size_t)n) != n)
				fprintf(stderr, "link-corrupter: capture write failed\n");
			if (write(p->s, buf, (size_t)n) != n)
				break;
		}
		if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(p->s, buf, sizeof(buf));

			if (n <= 0 || write(p->c, buf, (size_t)n) != n)
				break;
		}
	}
	close(p->c);
	close(p->s);
	free(p);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {0};
	int lfd, one = 1;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: link-corrupter LISTEN_PORT TARGET_PORT BYTES [CAPTURE_FILE]\n");
		return 64;
	}
	if (argc == 5) {
		capture_fd = open(argv[4], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (capture_fd < 0) {
			perror("link-corrupter: capture file");
			return 1;
		}
	}
	target_port = atoi(argv[2]);
	flip_at = strtoull(argv[3], NULL, 10);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0) {
		perror("link-corrupter: listen");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		struct sockaddr_in ta = sa;
		struct pair *p = malloc(sizeof(*p));
		pthread_t t;

		p->c = accept(lfd, NULL, NULL);
		if (p->c < 0) {
			free(p);
			continue;
		}
		p->s = socket(AF_INET, SOCK_STREAM, 0);
		ta.sin_port = htons((uint16_t)target_port);
		if (connect(p->s, (struct sockaddr *)&ta, sizeof(ta)) < 0) {
			close(p->c);
			close(p->s);
			free(p);
			continue;
		}
		pthread_create(&t, NULL, forward, p);
		pthread_detach(t);
	}
}
