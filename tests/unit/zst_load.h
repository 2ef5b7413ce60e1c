/* Test data: the QEMU 10 recordings in tests/data/qemu10-streams are zstd
 * files; the unit tests that read them decompress them whole. Included by
 * each test program (one cmocka program per file, no shared library). */
#ifndef FERRY_TESTS_UNIT_ZST_LOAD_H
#define FERRY_TESTS_UNIT_ZST_LOAD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <zstd.h>

/* The whole decompressed file, malloc'd; fails the test (cmocka, included
 * before this) on any error. */
static inline uint8_t *load_zst(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ZSTD_DStream *z = ZSTD_createDStream();
	uint8_t in[65536], *out = NULL;
	size_t cap = 0, n, r = 1;

	assert_non_null(f);
	assert_non_null(z);
	*len = 0;
	while ((n = fread(in, 1, sizeof(in), f)) > 0) {
		ZSTD_inBuffer ib = { in, n, 0 };

		while (ib.pos < ib.size) {
			ZSTD_outBuffer ob;

			if (cap - *len < 1 << 20) {
				cap = cap ? cap * 2 : 4 << 20;
				out = realloc(out, cap);
				assert_non_null(out);
			}
			ob = (ZSTD_outBuffer){ out + *len, cap - *len, 0 };
			r = ZSTD_decompressStream(z, &ob, &ib);
			assert_false(ZSTD_isError(r));
			*len += ob.pos;
		}
	}
	assert_int_equal(r, 0); /* the last frame was complete */
	ZSTD_freeDStream(z);
	fclose(f);
	return out;
}

#endif
