/* Sealed frames: every frame on a peer link after the TLS handshake is
 * encrypted and authenticated with an AEAD (AES-256-GCM, or
 * ChaCha20-Poly1305 where either node lacks AES instructions).
 *
 * One key per (stream, direction), exported from the link's TLS session
 * (transport/tls.h). The nonce is the key's IV XOR the frame's 64-bit
 * sequence number; sender and receiver count frames per key from 0, so the
 * receiver opens each frame with exactly the number it expects next: a
 * modified, replayed, reordered, dropped or cross-stream frame fails the tag.
 * The 20-byte header is the additional data; the 16-byte tag follows the
 * payload (docs/protocol.md, "Sealed frames").
 *
 * On an insecure_transport link the keys are off (aead SEAL_NONE): frames
 * carry CRC32C as before and seal/open only set or check it. Everything
 * here is pure and thread-safe for distinct frames. */
#ifndef FERRY_TRANSPORT_SEAL_H
#define FERRY_TRANSPORT_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "transport/frame.h"

enum seal_aead {
	SEAL_NONE = 0,     /* insecure_transport: CRC32C only */
	SEAL_AES256GCM = 1,
	SEAL_CHACHA20 = 2, /* ChaCha20-Poly1305 */
};

#define SEAL_KEY_LEN 32
#define SEAL_IV_LEN 12

/* One direction of one stream. */
struct seal_key {
	int aead; /* enum seal_aead */
	uint32_t stream_id;
	uint8_t key[SEAL_KEY_LEN];
	uint8_t iv[SEAL_IV_LEN];
};

/* Both directions of a stream, plus the next sequence number of each for
 * callers that seal and open one frame at a time (the set-up path). */
struct seal_stream {
	struct seal_key tx, rx;
	uint64_t tx_seq, rx_seq;
};

/* 1 when this CPU has AES instructions (AES-NI + PCLMUL, ARMv8 AES). */
int seal_cpu_has_aes(void);
const char *seal_aead_name(int aead);

/* Frame bytes beyond header + payload that sealing adds. */
static inline size_t seal_overhead(const struct seal_key *k)
{
	return k->aead == SEAL_NONE ? 0 : FRAME_TAG_LEN;
}

/* Finishes a frame built by codec_pack (header + wire_len payload bytes, crc
 * filled): with a key, sets FRAME_F_SEALED and the sequence field in the
 * header, encrypts the payload in place and appends the tag (frame must have
 * room for FRAME_TAG_LEN more bytes). Without one, leaves it as it is.
 * Returns the frame's new total length, or -EIO (crypto library failure),
 * -EPROTO (not a frame of this key's stream). */
ssize_t seal_frame(const struct seal_key *k, uint64_t seq, uint8_t *frame);

/* Checks a received frame whose header hdr decoded into h, and whose payload
 * (h->wire_len bytes, then the tag if sealed) is in payload: with a key,
 * the frame must be sealed, for this stream, and open with sequence number
 * seq; the payload is decrypted in place. Without a key it must be unsealed
 * with a matching CRC. 0, or -EBADMSG with the reason in
 * frame_strerror_last() ("frame failed authentication ..."). */
int seal_open(const struct seal_key *k, uint64_t seq, const struct frame_hdr *h,
	      const uint8_t hdr[FRAME_HDR_LEN], uint8_t *payload);

/* Wipes key material. */
void seal_stream_wipe(struct seal_stream *s);

#endif
