/*
 * ata.c - see ata.h.
 */
#include "arch.h"
#include "ata.h"
#include "cpu.h"
#include "lib.h"
#include "timer.h"

/* Command block registers, offsets from the channel's base port. */
#define REG_DATA 0
#define REG_ERROR 1
#define REG_COUNT 2
#define REG_LBA0 3
#define REG_LBA1 4
#define REG_LBA2 5
#define REG_DEVICE 6
#define REG_STATUS 7         /* reading it also clears a pending IRQ */
#define REG_COMMAND 7

#define ST_ERR 0x01
#define ST_DRQ 0x08
#define ST_DF 0x20
#define ST_BSY 0x80

#define CTL_NIEN 0x02        /* device control: no interrupts */
#define DEV_LBA 0x40
#define DEV_OBS 0xA0         /* obsolete bits, set by convention */

#define CMD_READ_SECTORS 0x20
#define CMD_READ_SECTORS_EXT 0x24
#define CMD_READ_MULTIPLE_EXT 0x29
#define CMD_WRITE_SECTORS 0x30
#define CMD_WRITE_SECTORS_EXT 0x34
#define CMD_WRITE_MULTIPLE_EXT 0x39
#define CMD_READ_MULTIPLE 0xC4
#define CMD_WRITE_MULTIPLE 0xC5
#define CMD_SET_MULTIPLE 0xC6
#define CMD_FLUSH_CACHE 0xE7
#define CMD_IDENTIFY 0xEC

#define PROBE_TIMEOUT_MS 1000    /* a present device answers in microseconds */
#define IO_TIMEOUT_MS 30000      /* generous: a mirror may hold writes back */

static const uint16_t io_base[2] = { 0x1F0, 0x170 };
static const uint16_t ctl_base[2] = { 0x3F6, 0x376 };

static struct ata_info disk;
static uint16_t io, ctl;         /* the chosen disk's channel */
static uint8_t last_status, last_error;
static int irq_on;               /* the chosen disk's IRQ ends waits */

/* The 400 ns a device may take to show a new status: four status reads. */
static void delay400(uint16_t ctl_port)
{
	for (int i = 0; i < 4; i++)
		(void)inb(ctl_port);
}

/*
 * Wait until BSY clears; 0 with the status in *st, or -ETIMEDOUT.
 *
 * The probe polls (nIEN set, no disk chosen yet). Once a disk is chosen
 * its channel's IRQ is on and the wait halts until it comes: QEMU raises
 * it when a block's request completes. Polling instead cost ~700 status
 * reads per 8 KiB block, each one a device access that takes QEMU's big
 * lock, against the main loop that has to complete the request: +50% host
 * CPU at 2 MB/s, +60% at 10 MB/s. The alternate status port is read
 * first (it does not acknowledge the IRQ), the status port last (it does).
 */
static int wait_idle(uint16_t base, uint32_t timeout_ms, uint8_t *st)
{
	uint64_t start = rdtsc(), limit = tsc_hz * timeout_ms / 1000;

	for (;;) {
		uint8_t s = inb(irq_on ? ctl : base + REG_STATUS);

		if (!(s & ST_BSY)) {
			*st = irq_on ? inb(base + REG_STATUS) : s;
			return 0;
		}
		if (rdtsc() - start > limit) {
			*st = s;
			return -ETIMEDOUT;
		}
		if (irq_on) {
			/* the IRQ, or the timer tick, at the latest */
			wait_for_interrupt();
			__asm__ volatile("cli");
		}
	}
}

static int fail(int err, uint8_t st)
{
	last_status = st;
	last_error = inb(io + REG_ERROR);
	return err;
}

/* Wait for the next DRQ block of a data command. */
static int wait_drq(void)
{
	uint8_t st;
	int r = wait_idle(io, IO_TIMEOUT_MS, &st);

	if (r)
		return fail(r, st);
	if ((st & (ST_ERR | ST_DF)) || !(st & ST_DRQ))
		return fail(-EIO, st);
	return 0;
}

/* Wait for the end of a command: idle, no error, no data left. */
static int wait_done(uint32_t timeout_ms)
{
	uint8_t st;
	int r = wait_idle(io, timeout_ms, &st);

	if (r)
		return fail(r, st);
	if (st & (ST_ERR | ST_DF | ST_DRQ))
		return fail(-EIO, st);
	return 0;
}

/*
 * Load the task file and issue cmd. LBA48 registers are two-deep FIFOs:
 * the "previous" (high) byte is written first.
 */
static void issue(uint8_t cmd, uint64_t lba, uint32_t count)
{
	if (disk.lba48) {
		outb(io + REG_DEVICE, DEV_OBS | DEV_LBA | disk.unit << 4);
		outb(io + REG_COUNT, (uint8_t)(count >> 8));
		outb(io + REG_LBA0, (uint8_t)(lba >> 24));
		outb(io + REG_LBA1, (uint8_t)(lba >> 32));
		outb(io + REG_LBA2, (uint8_t)(lba >> 40));
	} else {
		outb(io + REG_DEVICE, DEV_OBS | DEV_LBA | disk.unit << 4 |
		     (uint8_t)((lba >> 24) & 0x0F));
	}
	outb(io + REG_COUNT, (uint8_t)count);      /* 0 means the maximum */
	outb(io + REG_LBA0, (uint8_t)lba);
	outb(io + REG_LBA1, (uint8_t)(lba >> 8));
	outb(io + REG_LBA2, (uint8_t)(lba >> 16));
	outb(io + REG_COMMAND, cmd);
	(void)inb(ctl);                            /* let BSY show */
}

static uint8_t rw_command(int write)
{
	static const uint8_t cmds[2][2][2] = {
		/* [lba48][multiple][write] */
		{ { CMD_READ_SECTORS, CMD_WRITE_SECTORS },
		  { CMD_READ_MULTIPLE, CMD_WRITE_MULTIPLE } },
		{ { CMD_READ_SECTORS_EXT, CMD_WRITE_SECTORS_EXT },
		  { CMD_READ_MULTIPLE_EXT, CMD_WRITE_MULTIPLE_EXT } },
	};

	return cmds[disk.lba48 != 0][disk.mult > 1][write];
}

static int transfer(uint64_t lba, uint32_t count, uint8_t *buf, int write)
{
	if (!io)
		return -ENODEV;
	if (!count || count > ATA_MAX_COUNT || lba + count > disk.sectors)
		return -EINVAL;
	issue(rw_command(write), lba, count);
	for (uint32_t done = 0; done < count;) {
		uint32_t n = count - done < disk.mult ? count - done : disk.mult;
		uint8_t *p = buf + done * 512;
		int r = wait_drq();

		if (r)
			return r;
		if (disk.io32 && write)
			outsl(io + REG_DATA, p, n * 128);
		else if (disk.io32)
			insl(io + REG_DATA, p, n * 128);
		else if (write)
			outsw(io + REG_DATA, p, n * 256);
		else
			insw(io + REG_DATA, p, n * 256);
		done += n;
	}
	/* A write's last block is on the disk only once BSY clears. */
	return wait_done(IO_TIMEOUT_MS);
}

int ata_read(uint64_t lba, uint32_t count, void *buf)
{
	return transfer(lba, count, buf, 0);
}

int ata_write(uint64_t lba, uint32_t count, const void *buf)
{
	return transfer(lba, count, (uint8_t *)buf, 1);
}

int ata_flush(void)
{
	if (!io)
		return -ENODEV;
	outb(io + REG_DEVICE, DEV_OBS | disk.unit << 4);
	outb(io + REG_COMMAND, CMD_FLUSH_CACHE);
	(void)inb(ctl);
	return wait_done(IO_TIMEOUT_MS);
}

void ata_last_error(uint32_t *status, uint32_t *error)
{
	*status = last_status;
	*error = last_error;
}

/*
 * IDENTIFY DEVICE the unit on channel ch into id[256]. An ATAPI device
 * (a CD-ROM) aborts it and shows its signature in LBA1/LBA2 (0x14/0xEB);
 * an absent slave reads status 0 and ignores commands.
 */
static int identify(int ch, int unit, uint16_t id[256])
{
	uint16_t base = io_base[ch];
	uint8_t st;

	outb(base + REG_DEVICE, DEV_OBS | unit << 4);
	delay400(ctl_base[ch]);
	st = inb(base + REG_STATUS);
	if (st == 0 || st == 0xFF)
		return -ENODEV;     /* nobody there, or a floating bus */
	outb(base + REG_COMMAND, CMD_IDENTIFY);
	delay400(ctl_base[ch]);
	if (wait_idle(base, PROBE_TIMEOUT_MS, &st) || (st & ST_ERR) ||
	    !(st & ST_DRQ))
		return -ENODEV;     /* ATAPI, or no drive behind the status */
	insw(base + REG_DATA, id, 256);
	if (id[0] & 0x8000)
		return -ENODEV;     /* not an ATA device */
	if (!(id[49] & (1u << 9)))
		return -ENODEV;     /* no LBA: not worth supporting */
	return 0;
}

/* SET MULTIPLE MODE to the largest power of two the disk offers. */
static uint32_t set_multiple(const uint16_t id[256])
{
	uint32_t max = id[47] & 0xFF, m = 1;
	uint8_t st;

	while (m * 2 <= max && m * 2 <= 128)
		m *= 2;
	if (m < 2)
		return 1;
	outb(io + REG_DEVICE, DEV_OBS | disk.unit << 4);
	outb(io + REG_COUNT, (uint8_t)m);
	outb(io + REG_COMMAND, CMD_SET_MULTIPLE);
	(void)inb(ctl);
	if (wait_idle(io, PROBE_TIMEOUT_MS, &st) || (st & (ST_ERR | ST_DF)))
		return 1;
	return m;
}

int ata_probe(int io32, struct ata_info *info)
{
	static uint16_t id[256];

	for (int ch = 0; ch < 2; ch++)
		outb(ctl_base[ch], CTL_NIEN);
	for (int slot = 0; slot < 4; slot++) {
		int ch = slot / 2, unit = slot % 2;

		if (identify(ch, unit, id))
			continue;
		io = io_base[ch];
		ctl = ctl_base[ch];
		disk.channel = (uint32_t)ch;
		disk.unit = (uint32_t)unit;
		disk.lba48 = (id[83] & (1u << 10)) != 0;
		disk.sectors = disk.lba48 ?
			(uint64_t)id[100] | (uint64_t)id[101] << 16 |
			(uint64_t)id[102] << 32 | (uint64_t)id[103] << 48 :
			(uint64_t)id[60] | (uint64_t)id[61] << 16;
		disk.io32 = io32 && (id[48] & 1);
		disk.mult = set_multiple(id);
		outb(ctl, 0);                      /* nIEN off */
		cpu_unmask_irq(14 + (unsigned)ch);
		irq_on = 1;
		*info = disk;
		return 0;
	}
	return -ENODEV;
}
