/* Helpers the harnesses share (header-only: each harness is one program).
 *
 * Conventions of the harnesses in this folder:
 *  - LLVMFuzzerTestOneInput never keeps state between inputs except what
 *    LLVMFuzzerInitialize set up once (replay.c calls it too).
 *  - A property the code promises (a round trip, a documented bound) is
 *    checked with fuzz_assert, which aborts so libFuzzer records a crash.
 *  - Frames in fuzz input whose crc field is 0 get their real CRC32C put in
 *    by the harness before they are parsed, so the fuzzer reaches what lies
 *    behind the CRC check; any other crc value is passed on as written. */
#ifndef FERRY_FUZZ_FUZZ_H
#define FERRY_FUZZ_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/frame.h"
#include "util/log.h"

#define fuzz_assert(cond)                                                          \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__,  \
				__LINE__, #cond);                                  \
			abort();                                                   \
		}                                                                  \
	} while (0)

/* Warnings about refused input are the expected outcome here; errors and
 * sanitizer reports still print. */
static inline void fuzz_quiet(void)
{
	log_set_level(LOG_ERROR);
}

/* The LLVMFuzzerInitialize of a harness that needs nothing but fuzz_quiet. */
#define FUZZ_INIT_QUIET()                                          \
	int LLVMFuzzerInitialize(int *argc, char ***argv)          \
	{                                                          \
		(void)argc;                                        \
		(void)argv;                                        \
		fuzz_quiet();                                      \
		return 0;                                          \
	}

/* A connected unix stream pair. The returned end reads up to max bytes of
 * data and then end of file; *peer is the other end, shut down for writing
 * but still open, so what the code under test sends there is accepted (and
 * never read) rather than raising EPIPE. What does not fit the socket buffer
 * without blocking is dropped. The caller closes both; -1 on failure. */
static inline int fuzz_stream(const uint8_t *data, size_t size, size_t max, int *peer)
{
	int sv[2];
	size_t off = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	if (size > max)
		size = max;
	while (off < size) {
		ssize_t n = send(sv[1], data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	shutdown(sv[1], SHUT_WR);
	*peer = sv[1];
	return sv[0];
}

/* Replaces a zero crc field (bytes 16..19) of the header in hdr by the CRC
 * of hdr and payload (wire_len bytes). */
static inline void fuzz_fix_crc(uint8_t hdr[FRAME_HDR_LEN], const void *payload, size_t wire_len)
{
	uint32_t crc;

	if (hdr[16] | hdr[17] | hdr[18] | hdr[19])
		return;
	crc = frame_crc(hdr, payload, wire_len);
	hdr[16] = (uint8_t)(crc >> 24);
	hdr[17] = (uint8_t)(crc >> 16);
	hdr[18] = (uint8_t)(crc >> 8);
	hdr[19] = (uint8_t)crc;
}

/* Reads a big-endian 32-bit field (the frame header's byte order). */
static inline uint32_t fuzz_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
