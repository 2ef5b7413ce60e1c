/*
 * tty.c - the serial console the harness talks to: raw mode (no echo, no
 * output processing, so every line ends in a bare \n as ferry-guest's do),
 * one write() per line under a lock so the threads' lines never mix.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "lguest.h"

#define CMD_MAX 80

static int out_fd = 2;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

int tty_open(const char *path)
{
	struct termios t;
	int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	int in;

	if (fd < 0)
		return -errno;
	/* Reads must not block the main loop (it polls); writes may wait. */
	in = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (in < 0) {
		in = -errno;
		close(fd);
		return in;
	}
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		cfsetispeed(&t, B115200);
		cfsetospeed(&t, B115200);
		(void)tcsetattr(fd, TCSANOW, &t);
	}
	out_fd = fd;
	return in;
}

void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	size_t n, off = 0;
	ssize_t w;

	va_start(ap, fmt);
	n = (size_t)vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	pthread_mutex_lock(&out_lock);
	while (off < n) {
		w = write(out_fd, line + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	pthread_mutex_unlock(&out_lock);
}

char *tty_line(int fd, int *eof)
{
	static char buf[CMD_MAX + 1];
	static size_t len;
	static int overlong;
	static char line[CMD_MAX + 1];
	char c;
	ssize_t r;

	*eof = 0;
	for (;;) {
		r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return NULL;
		if (r <= 0) {
			*eof = 1;
			return NULL;
		}
		if (c == '\n' || c == '\r') {
			if (!len && !overlong)
				continue;
			memcpy(line, buf, len);
			line[len] = 0;
			len = 0;
			if (overlong) {
				overlong = 0;
				strcpy(line, "\x01"); /* main says ERR line too long */
			}
			return line;
		}
		if (len < CMD_MAX)
			buf[len++] = c;
		else
			overlong = 1;
	}
}
