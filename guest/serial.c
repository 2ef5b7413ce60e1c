/*
 * serial.c - see serial.h.
 */
#include <stdarg.h>

#include "arch.h"
#include "serial.h"

#define COM1 0x3F8
#define UART_DATA 0     /* RBR/THR, or divisor low byte when DLAB is set */
#define UART_IER 1      /* or divisor high byte when DLAB is set */
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20

void serial_init(void)
{
	outb(COM1 + UART_IER, 0x00);
	outb(COM1 + UART_LCR, 0x80);  /* DLAB on to set the divisor */
	outb(COM1 + UART_DATA, 1);    /* 115200 = 115200 / 1 */
	outb(COM1 + UART_IER, 0);
	outb(COM1 + UART_LCR, 0x03);  /* 8N1, DLAB off */
	outb(COM1 + UART_FCR, 0x07);  /* FIFOs on, cleared, IRQ at 1 byte */
	outb(COM1 + UART_MCR, 0x0B);  /* DTR, RTS, OUT2 (gates the IRQ) */
	outb(COM1 + UART_IER, 0x01);  /* IRQ on received data */
}

void serial_putc(char c)
{
	while (!(inb(COM1 + UART_LSR) & LSR_THR_EMPTY))
		;
	outb(COM1 + UART_DATA, (uint8_t)c);
}

int serial_rx_ready(void)
{
	return (inb(COM1 + UART_LSR) & LSR_DATA_READY) != 0;
}

int serial_getc(void)
{
	if (!serial_rx_ready())
		return -1;
	return inb(COM1 + UART_DATA);
}

static void put_str(const char *s)
{
	while (*s)
		serial_putc(*s++);
}

static void put_u64(uint64_t v, unsigned base)
{
	char buf[24];
	int n = 0;

	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n)
		serial_putc(buf[--n]);
}

void kprintf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			serial_putc(*fmt);
			continue;
		}
		switch (*++fmt) {
		case 's':
			put_str(va_arg(ap, const char *));
			break;
		case 'c':
			serial_putc((char)va_arg(ap, int));
			break;
		case 'u':
			put_u64(va_arg(ap, uint32_t), 10);
			break;
		case 'x':
			put_u64(va_arg(ap, uint32_t), 16);
			break;
		case 'l':
			/* only %llu is supported */
			fmt += 2;
			put_u64(va_arg(ap, uint64_t), 10);
			break;
		case '%':
			serial_putc('%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			serial_putc('?');
			break;
		}
	}
	va_end(ap);
}
