/*
 * The KVM probe guest (see accel.go): a 64 KiB "BIOS" that writes R to the
 * serial port in real mode, P once in 32-bit protected mode and "L\n" once
 * in 64-bit long mode, then halts. A KVM that cannot run a guest stops
 * before the L (or qemu fails outright). accel.go carries the assembled
 * bytes; TestProbeImageMatchesSource assembles this file with GNU as and
 * compares.
 *
 *   as --32 -o probe.o probe.S && objcopy -O binary -j .text probe.o probe.bin
 */
	.code16
	.org 0
start16:
	mov $0x3f8, %dx
	mov $'R', %al
	out %al, %dx
	cli
	mov $0xf000, %ax
	mov %ax, %ds
	lgdtl gdtr
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x08, $(0xf0000 + pm32)

	.code32
pm32:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $'P', %al
	out %al, %dx
	/* page tables at 0x1000: identity-map the first 2 MiB */
	mov $0x1000, %edi
	xor %eax, %eax
	mov $0xc00, %ecx
	rep stosl
	movl $0x2003, 0x1000
	movl $0x3003, 0x2000
	movl $0x83, 0x3000
	mov $0x1000, %eax
	mov %eax, %cr3
	mov %cr4, %eax
	or $0x20, %eax
	mov %eax, %cr4
	mov $0xc0000080, %ecx
	rdmsr
	or $0x100, %eax
	wrmsr
	mov %cr0, %eax
	or $0x80000000, %eax
	mov %eax, %cr0
	ljmp $0x18, $(0xf0000 + lm64)

	.code64
lm64:
	mov $0x3f8, %dx /* rdmsr clobbered it */
	mov $'L', %al
	out %al, %dx
	mov $'\n', %al
	out %al, %dx
1:	hlt
	jmp 1b

	.p2align 3
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff /* 0x08: 32-bit code */
	.quad 0x00cf92000000ffff /* 0x10: data */
	.quad 0x00af9a000000ffff /* 0x18: 64-bit code */
gdtr:
	.word gdtr - gdt - 1
	.long 0xf0000 + gdt

	.org 0xfff0
	.code16
reset:
	ljmp $0xf000, $start16
	.org 0x10000
