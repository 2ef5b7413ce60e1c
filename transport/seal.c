#include "transport/seal.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

int seal_cpu_has_aes(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul");
#elif defined(__aarch64__)
	return (getauxval(AT_HWCAP) & HWCAP_AES) != 0;
#else
	return 0;
#endif
}

const char *seal_aead_name(int aead)
{
	switch (aead) {
	case SEAL_AES256GCM: return "aes-256-gcm";
	case SEAL_CHACHA20: return "chacha20-poly1305";
	default: return "none";
	}
}

/* Fetched once: implicit fetches by name cost a lock per frame. */
static EVP_CIPHER *g_ciphers[3];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void fetch_ciphers(void)
{
	g_ciphers[SEAL_AES256GCM] = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	g_ciphers[SEAL_CHACHA20] = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
}

static const EVP_CIPHER *cipher_of(int aead)
{
	pthread_once(&g_once, fetch_ciphers);
	return aead == SEAL_AES256GCM || aead == SEAL_CHACHA20 ? g_ciphers[aead] : NULL;
}

static void make_nonce(const struct seal_key *k, uint64_t seq, uint8_t nonce[SEAL_IV_LEN])
{
	memcpy(nonce, k->iv, SEAL_IV_LEN);
	for (int i = 0; i < 8; i++)
		nonce[SEAL_IV_LEN - 1 - i] ^= (uint8_t)(seq >> (8 * i));
}

/* One AEAD pass over payload (in place) with the header as additional data.
 * enc: 1 seal (tag out), 0 open (tag in, verified). 0 or -1. */
static int aead_run(const struct seal_key *k, uint64_t seq, const uint8_t hdr[FRAME_HDR_LEN],
		    uint8_t *payload, size_t len, uint8_t tag[FRAME_TAG_LEN], int enc)
{
	const EVP_CIPHER *c = cipher_of(k->aead);
	EVP_CIPHER_CTX *ctx;
	uint8_t nonce[SEAL_IV_LEN];
	int outl, ok = 0;

	if (!c || len > FRAME_MAX_RAW)
		return -1;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -1;
	make_nonce(k, seq, nonce);
	if (!EVP_CipherInit_ex2(ctx, c, k->key, nonce, enc, NULL))
		goto out_free_ctx;
	if (!EVP_CipherUpdate(ctx, NULL, &outl, hdr, FRAME_HDR_LEN))
		goto out_free_ctx;
	if (len && !EVP_CipherUpdate(ctx, payload, &outl, payload, (int)len))
		goto out_free_ctx;
	if (!enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, FRAME_TAG_LEN, tag))
		goto out_free_ctx;
	if (!EVP_CipherFinal_ex(ctx, payload + len, &outl))
		goto out_free_ctx;
	if (enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, FRAME_TAG_LEN, tag))
		goto out_free_ctx;
	ok = 1;
out_free_ctx:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(nonce, sizeof(nonce));
	return ok ? 0 : -1;
}

ssize_t seal_frame(const struct seal_key *k, uint64_t seq, uint8_t *frame)
{
	struct frame_hdr h;

	if (frame_hdr_decode(frame, FRAME_HDR_LEN, &h) < 0)
		return -EPROTO;
	if (k->aead == SEAL_NONE)
		return FRAME_HDR_LEN + (ssize_t)h.wire_len;
	if (h.stream_id != k->stream_id)
		return -EPROTO;
	h.flags |= FRAME_F_SEALED;
	h.crc = (uint32_t)seq; /* the seq field: diagnostics only, the nonce binds it */
	frame_hdr_encode(&h, frame);
	if (aead_run(k, seq, frame, frame + FRAME_HDR_LEN, h.wire_len,
		     frame + FRAME_HDR_LEN + h.wire_len, 1) < 0)
		return -EIO;
	return FRAME_HDR_LEN + (ssize_t)h.wire_len + FRAME_TAG_LEN;
}

int seal_open(const struct seal_key *k, uint64_t seq, const struct frame_hdr *h,
	      const uint8_t hdr[FRAME_HDR_LEN], uint8_t *payload)
{
	if (k->aead == SEAL_NONE) {
		if (h->flags & FRAME_F_SEALED) {
			frame_set_error("sealed %s frame on an insecure_transport link",
					frame_type_name(h->type));
			return -EBADMSG;
		}
		return frame_check(h, hdr, payload);
	}
	if (!(h->flags & FRAME_F_SEALED)) {
		frame_set_error("unsealed %s frame on a sealed link", frame_type_name(h->type));
		return -EBADMSG;
	}
	if (aead_run(k, seq, hdr, payload, h->wire_len, payload + h->wire_len, 0) < 0) {
		frame_set_error("frame failed authentication (%s stream %u, expected sequence %llu, "
				"header says %u%s): modified, replayed, reordered or from another stream",
				frame_type_name(h->type), h->stream_id, (unsigned long long)seq, h->crc,
				h->stream_id != k->stream_id ? ", wrong stream" : "");
		return -EBADMSG;
	}
	return 0;
}

void seal_stream_wipe(struct seal_stream *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
}
