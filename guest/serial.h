/*
 * serial.h - COM1 at 115200 8N1, polled in both directions.
 *
 * Output lines end in a bare "\n" so host tools and log greps see exactly
 * the text. Input is read by the main loop; the UART raises IRQ4 on the
 * first received byte only to wake that loop from hlt, so a command is
 * answered at once even though the timer ticks slowly. QEMU holds back
 * further bytes while the receive FIFO is full, so nothing is lost.
 */
#ifndef FERRY_GUEST_SERIAL_H
#define FERRY_GUEST_SERIAL_H

#include <stdint.h>

void serial_init(void);
void serial_putc(char c);
/* The next received byte, or -1 if none is waiting. */
int serial_getc(void);
/* Is a received byte waiting? */
int serial_rx_ready(void);

/*
 * A tiny printf: %s, %c, %u (uint32_t), %llu (uint64_t), %x (uint32_t)
 * and %%. No widths or flags: the protocol does not need them.
 */
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
