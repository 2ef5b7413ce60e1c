/*
 * serial.h - COM1 at 115200 8N1, polled in both directions.
 *
 * Output lines end in a bare "\n" so host tools and log greps see exactly
 * the text. Input is polled from the main loop (woken by the timer at least
 * every few ms); QEMU holds back further bytes while the receive FIFO is
 * full, so polling loses nothing.
 */
#ifndef FERRY_GUEST_SERIAL_H
#define FERRY_GUEST_SERIAL_H

#include <stdint.h>

void serial_init(void);
void serial_putc(char c);
/* The next received byte, or -1 if none is waiting. */
int serial_getc(void);

/*
 * A tiny printf: %s, %c, %u (uint32_t), %llu (uint64_t), %x (uint32_t)
 * and %%. No widths or flags: the protocol does not need them.
 */
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
