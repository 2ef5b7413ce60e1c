#include "transport/crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define CRC32C_HAVE_HW 1
#else
#define CRC32C_HAVE_HW 0
#endif

/* Reflected form of the Castagnoli polynomial 0x1EDC6F41. */
#define CRC32C_POLY 0x82f63b78u

/*
 * Internally everything works on the raw CRC register ("state"): the public
 * functions invert on the way in and out. The state update is linear over
 * GF(2) in (state, data), which is what makes the lane combining below work.
 */

/* sw_table[k][b]: state after feeding byte b followed by k zero bytes into a
 * zero register; slicing-by-8 consumes 8 bytes with 8 lookups. */
static uint32_t sw_table[8][256];

#if CRC32C_HAVE_HW
/*
 * The crc32 instruction has a latency of 3 cycles but a throughput of 1 per
 * cycle, so one dependent chain runs at a third of what the CPU can do. We cut
 * a block into three lanes of equal length, run them as three independent
 * chains (lanes 2 and 3 starting from a zero register) and join them:
 *
 *   state(A||B) = shift_len(state(A)) ^ state_from_zero(B)
 *
 * where shift_len(s) is the register after feeding len zero bytes from s.
 * shift_len is linear in s, so it is four 256-entry table lookups, one per
 * byte of s. Two lane sizes: long lanes for the bulk of a chunk, short ones
 * so the tail of a chunk is not left to a single chain.
 */
#define LANE_LONG 8192
#define LANE_SHORT 256
static uint32_t shift_long[4][256];
static uint32_t shift_short[4][256];
#endif

static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static uint32_t sw_zeros(uint32_t st, size_t n)
{
	while (n--)
		st = sw_table[0][st & 0xff] ^ (st >> 8);
	return st;
}

#if CRC32C_HAVE_HW
static void shift_table_init(uint32_t tab[4][256], size_t len)
{
	uint32_t basis[32];
	int i, b, bit;

	/* Shift each single-bit register once, then every table entry is the
	 * XOR of the shifted bits it contains: 32 * len steps instead of
	 * 1024 * len. */
	for (bit = 0; bit < 32; bit++)
		basis[bit] = sw_zeros(1u << bit, len);
	for (i = 0; i < 4; i++) {
		for (b = 0; b < 256; b++) {
			uint32_t v = 0;

			for (bit = 0; bit < 8; bit++)
				if (b & (1 << bit))
					v ^= basis[i * 8 + bit];
			tab[i][b] = v;
		}
	}
}
#endif

static void tables_init(void)
{
	uint32_t n, c;
	int k;

	for (n = 0; n < 256; n++) {
		c = n;
		for (k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		sw_table[0][n] = c;
	}
	for (n = 0; n < 256; n++) {
		c = sw_table[0][n];
		for (k = 1; k < 8; k++) {
			c = sw_table[0][c & 0xff] ^ (c >> 8);
			sw_table[k][n] = c;
		}
	}
#if CRC32C_HAVE_HW
	shift_table_init(shift_long, LANE_LONG);
	shift_table_init(shift_short, LANE_SHORT);
#endif
}

static uint32_t sw_update(uint32_t st, const uint8_t *p, size_t len)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		w ^= st;
		st = sw_table[7][w & 0xff] ^ sw_table[6][(w >> 8) & 0xff] ^
		     sw_table[5][(w >> 16) & 0xff] ^ sw_table[4][(w >> 24) & 0xff] ^
		     sw_table[3][(w >> 32) & 0xff] ^ sw_table[2][(w >> 40) & 0xff] ^
		     sw_table[1][(w >> 48) & 0xff] ^ sw_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
#endif
	while (len--)
		st = sw_table[0][(st ^ *p++) & 0xff] ^ (st >> 8);
	return st;
}

#if CRC32C_HAVE_HW
static inline uint32_t shift(const uint32_t tab[4][256], uint32_t s)
{
	return tab[0][s & 0xff] ^ tab[1][(s >> 8) & 0xff] ^
	       tab[2][(s >> 16) & 0xff] ^ tab[3][s >> 24];
}

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t w;

	memcpy(&w, p, 8);
	return w;
}

__attribute__((target("sse4.2")))
static uint32_t hw_lanes(uint32_t st, const uint8_t **pp, size_t *lenp, size_t lane,
			 const uint32_t tab[4][256])
{
	const uint8_t *p = *pp;
	size_t len = *lenp;

	while (len >= 3 * lane) {
		uint64_t c0 = st, c1 = 0, c2 = 0;
		size_t i;

		for (i = 0; i < lane; i += 8) {
			c0 = _mm_crc32_u64(c0, load64(p + i));
			c1 = _mm_crc32_u64(c1, load64(p + lane + i));
			c2 = _mm_crc32_u64(c2, load64(p + 2 * lane + i));
		}
		st = shift(tab, (uint32_t)c0) ^ (uint32_t)c1;
		st = shift(tab, st) ^ (uint32_t)c2;
		p += 3 * lane;
		len -= 3 * lane;
	}
	*pp = p;
	*lenp = len;
	return st;
}

__attribute__((target("sse4.2")))
static uint32_t hw_update(uint32_t st, const uint8_t *p, size_t len)
{
	uint64_t c;

	/* Align so the 8-byte loads of the lanes never straddle a line more
	 * than they must. */
	while (len && ((uintptr_t)p & 7)) {
		st = _mm_crc32_u8(st, *p++);
		len--;
	}
	st = hw_lanes(st, &p, &len, LANE_LONG, shift_long);
	st = hw_lanes(st, &p, &len, LANE_SHORT, shift_short);
	c = st;
	while (len >= 8) {
		c = _mm_crc32_u64(c, load64(p));
		p += 8;
		len -= 8;
	}
	st = (uint32_t)c;
	while (len--)
		st = _mm_crc32_u8(st, *p++);
	return st;
}
#endif

int crc32c_hw_available(void)
{
#if CRC32C_HAVE_HW
	return __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
	return 0;
#endif
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&tables_once, tables_init);
	return ~sw_update(~crc, buf, len);
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&tables_once, tables_init);
#if CRC32C_HAVE_HW
	if (__builtin_cpu_supports("sse4.2"))
		return ~hw_update(~crc, buf, len);
#endif
	return ~sw_update(~crc, buf, len);
}
