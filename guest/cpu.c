/*
 * cpu.c - see cpu.h.
 */
#include "arch.h"
#include "cpu.h"
#include "serial.h"

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xA0
#define PIC2_DATA 0xA1
#define IRQ_BASE 0x20
#define IDT_ENTRIES 0x30
#define KERNEL_CS 0x08
#define GATE_INTR32 0x8E  /* present, ring 0, 32-bit interrupt gate */

struct idt_entry {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t zero;
	uint8_t type;
	uint16_t off_hi;
} __attribute__((packed));

struct idt_desc {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed));

extern char exc_stubs[];
extern char irq_wake_stub[];
extern char irq_ignore_stub[];
extern char irq_wake_slave_stub[];

static struct idt_entry idt[IDT_ENTRIES];

static void idt_set(unsigned vec, void *handler)
{
	uint32_t a = (uint32_t)handler;

	idt[vec] = (struct idt_entry){
		.off_lo = a & 0xFFFF, .sel = KERNEL_CS, .type = GATE_INTR32,
		.off_hi = a >> 16,
	};
}

/*
 * The BIOS leaves the PIC's IRQs on vectors 0x08..0x0F, on top of CPU
 * exceptions; move them to 0x20..0x2F.
 */
static void pic_init(void)
{
	outb(PIC1_CMD, 0x11);         /* ICW1: init, ICW4 follows */
	outb(PIC2_CMD, 0x11);
	outb(PIC1_DATA, IRQ_BASE);    /* ICW2: vector base */
	outb(PIC2_DATA, IRQ_BASE + 8);
	outb(PIC1_DATA, 0x04);        /* ICW3: slave on IRQ2 */
	outb(PIC2_DATA, 0x02);
	outb(PIC1_DATA, 0x01);        /* ICW4: 8086 mode */
	outb(PIC2_DATA, 0x01);
	outb(PIC1_DATA, 0xEE);        /* only IRQ0 (PIT) and IRQ4 (COM1) */
	outb(PIC2_DATA, 0xFF);
}

void cpu_init(void)
{
	struct idt_desc d = { sizeof(idt) - 1, (uint32_t)idt };

	for (unsigned v = 0; v < 32; v++)
		idt_set(v, exc_stubs + 8 * v);
	for (unsigned v = IRQ_BASE; v < IDT_ENTRIES; v++)
		idt_set(v, irq_ignore_stub);
	idt_set(IRQ_BASE + 0, irq_wake_stub);   /* PIT */
	idt_set(IRQ_BASE + 4, irq_wake_stub);   /* COM1 received data */
	idt_set(IRQ_BASE + 14, irq_wake_slave_stub);  /* IDE primary */
	idt_set(IRQ_BASE + 15, irq_wake_slave_stub);  /* IDE secondary */
	__asm__ volatile("lidt %0" : : "m"(d));
	pic_init();
}

void cpu_unmask_irq(unsigned irq)
{
	if (irq >= 8) {
		outb(PIC2_DATA, inb(PIC2_DATA) & ~(1u << (irq - 8)));
		irq = 2;                            /* the cascade */
	}
	outb(PIC1_DATA, inb(PIC1_DATA) & ~(1u << irq));
}

void guest_exception(uint32_t vector)
{
	kprintf("FERRY-GUEST PANIC exception=%u\n", vector);
	halt_forever();
}
