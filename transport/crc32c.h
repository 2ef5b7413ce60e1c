/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Every byte ferry migrates is checked with it, so it has to run at memory
 * speed: on x86-64 CPUs with SSE4.2 it uses the crc32 instruction on three
 * interleaved lanes; elsewhere a slicing-by-8 table.
 *
 * The convention is zlib's: pass 0 to start, pass the previous result to
 * continue, so crc32c(crc32c(0, a, n), b, m) == crc32c(0, a||b, n + m).
 * crc32c(0, "123456789", 9) == 0xE3069283. */
#ifndef FERRY_TRANSPORT_CRC32C_H
#define FERRY_TRANSPORT_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The portable table implementation, whatever the CPU: for tests that
 * cross-check the hardware path and for benchmarks. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* 1 if crc32c() uses the CPU's crc32 instruction. */
int crc32c_hw_available(void);

#endif
