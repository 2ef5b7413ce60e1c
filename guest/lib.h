/*
 * lib.h - the freestanding odds and ends: mem* (gcc may emit calls to them
 * even with -ffreestanding) and string parsing for the command line.
 */
#ifndef FERRY_GUEST_LIB_H
#define FERRY_GUEST_LIB_H

#include <stddef.h>
#include <stdint.h>

/* errno values (Linux numbers) for the -errno returns of guest modules. */
#define EIO 5
#define ENODEV 19
#define EINVAL 22
#define ETIMEDOUT 110

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* Does s[0..len) equal the NUL-terminated word? */
int str_eq(const char *s, size_t len, const char *word);

/*
 * Parse a decimal number from s[0..len); 0 on success, -1 if it is empty,
 * not a number or larger than max.
 */
int parse_u32(const char *s, size_t len, uint32_t max, uint32_t *out);

#endif
