/*
 * ferry test guest: entry point, multiboot v1 header, flat GDT and the
 * interrupt stubs. Everything else is C.
 *
 * QEMU's multiboot loader enters here in 32-bit protected mode with paging
 * off, eax = 0x2BADB002 and ebx = the multiboot info. The GDTR it leaves is
 * not ours to rely on (the first interrupt's iret reloads CS from it), so we
 * load our own flat GDT before anything else.
 */

    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0x00000003       /* bit 0: align modules, bit 1: memory map */

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .section .text
    .global _start
_start:
    cli
    cld                             /* C code (and rep ins/outs) assume DF=0 */
    mov     $stack_top, %esp
    lgdt    gdt_desc
    ljmp    $0x08, $1f
1:  mov     $0x10, %cx
    mov     %cx, %ds
    mov     %cx, %es
    mov     %cx, %fs
    mov     %cx, %gs
    mov     %cx, %ss
    push    %ebx                    /* kmain(magic, mbi) */
    push    %eax
    call    kmain
2:  cli
    hlt
    jmp     2b

/*
 * Timer (IRQ0) and serial input (IRQ4): their only job is to end the main
 * loop's hlt; the loop then reads the TSC and the UART itself. No tick
 * counting happens here (TCG may coalesce ticks). Acknowledge the PIC and
 * return.
 */
    .global irq_wake_stub
irq_wake_stub:
    push    %eax
    mov     $0x20, %al
    out     %al, $0x20
    pop     %eax
    iret

/*
 * The IDE channels' IRQ14/15 come through the slave PIC: both need an EOI.
 * Their job too is only to end a hlt (the ATA driver's wait for a block).
 */
    .global irq_wake_slave_stub
irq_wake_slave_stub:
    push    %eax
    mov     $0x20, %al
    out     %al, $0xA0
    out     %al, $0x20
    pop     %eax
    iret

/*
 * Every other PIC vector is masked; only a spurious IRQ7/IRQ15 can arrive,
 * and those must not be acknowledged.
 */
    .global irq_ignore_stub
irq_ignore_stub:
    iret

/*
 * CPU exceptions 0..31: each stub is 8-byte aligned so C can compute its
 * address as exc_stubs + 8 * vector. They never return: an exception in
 * this guest is a bug, reported on the serial port by guest_exception().
 */
    .align 8
    .global exc_stubs
exc_stubs:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .align 8
    push    $\n
    jmp     exc_common
    .endr
exc_common:
    pop     %eax                    /* the vector pushed by the stub */
    mov     $stack_top, %esp        /* the faulting stack may be the problem */
    push    %eax
    call    guest_exception         /* guest_exception(vector) */
3:  cli
    hlt
    jmp     3b

    .section .data
    .align 8
gdt:
    .quad   0                       /* null */
    .quad   0x00CF9A000000FFFF      /* 0x08: code, base 0, 4 GiB, ring 0 */
    .quad   0x00CF92000000FFFF      /* 0x10: data, base 0, 4 GiB, ring 0 */
gdt_end:
gdt_desc:
    .word   gdt_end - gdt - 1
    .long   gdt

    .section .bss
    .align 16
stack:
    .skip   16384
stack_top:

    .section .note.GNU-stack, "", @progbits
