/* Sockets: TCP peer links and local unix sockets.
 *
 * Peer links get TCP_NODELAY (a postcopy page request must not wait for
 * Nagle), keepalive, and TCP_NOTSENT_LOWAT: bytes queued but unsent are
 * bytes QEMU believes are gone, which skews its bandwidth estimate and
 * stretches the guest's pause; the low-water mark bounds them while the
 * kernel still autotunes the window for long, fast links. */

#define LINK_NOTSENT_LOWAT (512 * 1024)
#ifndef FERRY_TRANSPORT_LINK_H
#define FERRY_TRANSPORT_LINK_H

#include <stddef.h>

/* Listening sockets, close-on-exec, non-blocking (for the loop's accept). */
int link_listen_tcp(const char *host, int port, int *fd_out);
int link_listen_unix(const char *path, int *fd_out); /* unlinks a stale file first */

/* Blocking connects with a deadline; the returned fd is blocking,
 * close-on-exec. Unix connects retry while the socket does not exist yet or
 * refuses (a QEMU that is still starting): net_connect_unix(). */
int link_connect_tcp(const char *host, int port, int timeout_ms, int *fd_out);
int link_connect_unix(const char *path, int timeout_ms, int *fd_out);

/* Tunes an established peer link (nodelay, buffers, keepalive). */
void link_tune_peer(int fd);

/* Blocking exact I/O with a deadline (poll-based; no sleeps). */
int link_send_all(int fd, const void *buf, size_t len, int timeout_ms);
int link_recv_all(int fd, void *buf, size_t len, int timeout_ms);

#endif
