/*
 * arch.h - the few x86 instructions the guest needs, as inline functions.
 */
#ifndef FERRY_GUEST_ARCH_H
#define FERRY_GUEST_ARCH_H

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/*
 * String port I/O for the ATA data port. Under TCG each element is one
 * device access either way; "rep" only saves the guest's loop. The
 * 32-bit forms move twice the data per access.
 */
static inline void insw(uint16_t port, void *buf, uint32_t count)
{
	__asm__ volatile("rep insw" : "+D"(buf), "+c"(count) : "d"(port)
			 : "memory");
}

static inline void outsw(uint16_t port, const void *buf, uint32_t count)
{
	__asm__ volatile("rep outsw" : "+S"(buf), "+c"(count) : "d"(port)
			 : "memory");
}

static inline void insl(uint16_t port, void *buf, uint32_t count)
{
	__asm__ volatile("rep insl" : "+D"(buf), "+c"(count) : "d"(port)
			 : "memory");
}

static inline void outsl(uint16_t port, const void *buf, uint32_t count)
{
	__asm__ volatile("rep outsl" : "+S"(buf), "+c"(count) : "d"(port)
			 : "memory");
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/*
 * sti takes effect after the next instruction, so an interrupt arriving
 * between the two cannot be lost before hlt starts waiting.
 */
static inline void wait_for_interrupt(void)
{
	__asm__ volatile("sti; hlt" : : : "memory");
}

static inline __attribute__((noreturn)) void halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

#endif
