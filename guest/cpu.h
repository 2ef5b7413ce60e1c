/*
 * cpu.h - interrupt plumbing: IDT, the 8259 PIC, and exception reports.
 */
#ifndef FERRY_GUEST_CPU_H
#define FERRY_GUEST_CPU_H

#include <stdint.h>

/*
 * Install the IDT (exceptions 0..31, PIC vectors 0x20..0x2F) and remap the
 * PIC there with every line masked except IRQ0 (timer) and IRQ4 (serial
 * input). Interrupts stay disabled until the main loop's first
 * wait_for_interrupt().
 */
void cpu_init(void);

/* Let IRQ irq (0..15) through the PIC; it ends a hlt and nothing else. */
void cpu_unmask_irq(unsigned irq);

/* Called from boot.S for CPU exceptions; prints and halts. */
void guest_exception(uint32_t vector) __attribute__((noreturn));

#endif
