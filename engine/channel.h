/* QEMU migration channels as they arrive at the source agent.
 *
 * QEMU before 8.0 maps incoming channels by accept order: the main channel
 * first, then the multifd channels (8.0+ reads each one's magic, and the
 * same order suits it). The source agent therefore looks
 * at the first bytes of each connection QEMU opens to learn what it is, and
 * the target agent connects them to the target QEMU in that order. */
#ifndef FERRY_ENGINE_CHANNEL_H
#define FERRY_ENGINE_CHANNEL_H

#include <stdint.h>

/* CHANNEL_NBD: a storage mirror's NBD connection. The NBD server speaks
 * first, so it is never peeked at: QEMU's NBD client reaches the source
 * agent on a socket of its own. */
enum channel_kind { CHANNEL_UNKNOWN, CHANNEL_MAIN, CHANNEL_MULTIFD, CHANNEL_NBD };

#define CHANNEL_MAIN_MAGIC 0x5145564du    /* "QEVM" */
#define CHANNEL_MULTIFD_MAGIC 0x11223344u
/* A multifd channel's initial packet: magic, version, uuid[16], id. */
#define CHANNEL_MULTIFD_ID_OFFSET 24

/* Classifies from a prefix of the stream. Returns the bytes it still needs
 * (> 0), 0 when decided (kind and, for multifd, id set), or -EPROTO. */
int channel_classify(const uint8_t *buf, unsigned len, enum channel_kind *kind, int *id);

/* Peeks (MSG_PEEK, nothing consumed) at fd until classified or timeout. */
int channel_peek(int fd, int timeout_ms, enum channel_kind *kind, int *id);

const char *channel_kind_name(enum channel_kind k);
enum channel_kind channel_kind_parse(const char *s);

#endif
