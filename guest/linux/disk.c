/*
 * disk.c - the disk workload: runs of 1..DISK_RUN_MAX blocks written with
 * O_DIRECT at places picked by a counter's hash over a working set on the
 * data disk, at the `disk` rate, a flush (fdatasync) once a second, and a
 * generation and checksum per block in a table in guest RAM.
 *
 * The data disk is the one the test gives besides the boot disk: by name
 * (`datadev=vdb`), else the first whole disk, in name order, that has no
 * partitions (the boot disk has its ESP; a CD-ROM is sr*, never taken).
 * The first MiB is never written, so no stray partition table appears.
 *
 * A write bumps the table before the data goes out, like ferry-guest: the
 * two disagree only during one pwrite(), which verify (the writer is
 * stopped) and a migration (QEMU drains requests) never see.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#include "lguest.h"

static int whole_disk(const char *name)
{
	return !strncmp(name, "vd", 2) || !strncmp(name, "sd", 2) || !strncmp(name, "hd", 2);
}

static int has_partitions(const char *name)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *dir;
	int found = 0;

	snprintf(path, sizeof(path), "/sys/block/%s", name);
	dir = opendir(path);
	if (!dir)
		return 0;
	while (!found && (e = readdir(dir))) {
		char part[PATH_MAX + 300];
		struct stat st;

		if (strncmp(e->d_name, name, strlen(name)))
			continue;
		snprintf(part, sizeof(part), "%s/%s/partition", path, e->d_name);
		found = stat(part, &st) == 0;
	}
	closedir(dir);
	return found;
}

static const char *bus_of(const char *name)
{
	char link[PATH_MAX], path[PATH_MAX];
	ssize_t n;

	if (!strncmp(name, "vd", 2))
		return "virtio";
	snprintf(path, sizeof(path), "/sys/block/%s", name);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return "unknown";
	link[n] = 0;
	if (strstr(link, "/ata"))
		return "ata";
	if (strstr(link, "/virtio"))
		return "scsi";
	return "unknown";
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	/* vda < vdb < ... < vdz < vdaa: shorter names first */
	size_t la = strlen((*a)->d_name), lb = strlen((*b)->d_name);

	return la != lb ? (la < lb ? -1 : 1) : strcmp((*a)->d_name, (*b)->d_name);
}

int disk_open(struct disk *d, const char *want)
{
	struct dirent **list;
	char dev[PATH_MAX];
	int n, fd;

	d->fd = -1;
	n = scandir("/sys/block", &list, NULL, by_name);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		const char *name = list[i]->d_name;

		if (d->name[0] || (want[0] ? strcmp(name, want) : !whole_disk(name) || has_partitions(name)))
			continue;
		snprintf(d->name, sizeof(d->name), "%s", name);
	}
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
	if (!d->name[0])
		return 0;
	snprintf(dev, sizeof(dev), "/dev/%s", d->name);
	fd = open(dev, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, BLKGETSIZE64, &d->size) < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	d->fd = fd;
	d->bus = bus_of(d->name);
	return 0;
}

int disk_setup(struct disk *d, uint64_t ws_bytes)
{
	uint64_t room;

	d->off = DISK_SKIP;
	room = d->size > d->off ? (d->size - d->off) / LG_BLOCK : 0;
	d->blocks = ws_bytes / LG_BLOCK < room ? ws_bytes / LG_BLOCK : room;
	if (d->blocks < DISK_RUN_MAX)
		return -ENOSPC;
	d->tab = calloc(d->blocks, sizeof(*d->tab));
	if (!d->tab || posix_memalign((void **)&d->buf, LG_BLOCK, DISK_RUN_MAX * LG_BLOCK))
		return -ENOMEM;
	return 0;
}

void disk_set_rate(struct disk *d, uint64_t bytes_per_s, uint64_t now)
{
	pacer_set(&d->pacer, bytes_per_s, LG_BLOCK, now);
	if (bytes_per_s)
		d->used = 1;
}

static uint64_t lba_of(const struct disk *d, uint64_t block)
{
	return (d->off + block * LG_BLOCK) / 512;
}

/* One run: table first, then the data, at a place a counter's hash picks. */
static int write_run(struct disk *d, uint64_t len)
{
	uint64_t h = mix64(++d->seq), start = h % (d->blocks - len + 1);
	size_t bytes = len * LG_BLOCK;
	ssize_t w;

	for (uint64_t j = 0; j < len; j++) {
		struct disk_slot *s = &d->tab[start + j];

		s->gen = s->gen + 1 ? s->gen + 1 : 1;
		s->csum = content_fill(d->buf + j * LG_WORDS, LG_MAGIC_BLOCK, lba_of(d, start + j), s->gen);
	}
	w = pwrite(d->fd, d->buf, bytes, (off_t)(d->off + start * LG_BLOCK));
	if (w != (ssize_t)bytes) {
		int err = w < 0 ? errno : EIO;

		say("FERRY-GUEST WARN disk write error lba=%llu err=%d: disk workload stopped",
		    (unsigned long long)lba_of(d, start), err);
		return -err;
	}
	d->written += len;
	d->unsynced += len;
	return 0;
}

int64_t disk_write(struct disk *d, uint64_t now, uint64_t deadline)
{
	int64_t done = 0;
	int r;

	if (d->fd < 0 || d->failed)
		return 0;
	d->due += pacer_take(&d->pacer, now);
	/* what could not be written by the deadline stays due, but only as
	 * much as the pacer's gap limit allows */
	if (d->pacer.rate && d->due > d->pacer.rate / 10 / LG_BLOCK + DISK_RUN_MAX)
		d->due = d->pacer.rate / 10 / LG_BLOCK + DISK_RUN_MAX;
	if (!d->pacer.rate)
		d->due = 0;
	while (d->due && now_ns() < deadline) {
		uint64_t len = 1 + mix64(d->seq ^ 0xd15c) % DISK_RUN_MAX;

		if (len > d->due)
			len = d->due;
		r = write_run(d, len);
		if (r < 0) {
			d->failed = 1;
			return r;
		}
		d->due -= len;
		done += (int64_t)len;
	}
	if (d->unsynced && now - d->last_sync >= 1000000000ull) {
		if (fdatasync(d->fd) < 0) {
			say("FERRY-GUEST WARN disk flush error err=%d: disk workload stopped", errno);
			d->failed = 1;
			return -EIO;
		}
		d->unsynced = 0;
		d->last_sync = now;
	}
	return done;
}

static uint64_t verify_run(struct disk *d, uint64_t start, uint64_t len, uint64_t *first,
			   const char **why, uint64_t bad)
{
	ssize_t r = pread(d->fd, d->buf, len * LG_BLOCK, (off_t)(d->off + start * LG_BLOCK));

	for (uint64_t j = 0; j < len; j++) {
		const uint64_t *w = d->buf + j * LG_WORDS;
		const struct disk_slot *s = &d->tab[start + j];

		if (r == (ssize_t)(len * LG_BLOCK) && content_csum(w) == s->csum)
			continue;
		if (!bad++) {
			*first = lba_of(d, start + j);
			*why = r != (ssize_t)(len * LG_BLOCK) ? "io"
				: content_why(w, LG_MAGIC_BLOCK, lba_of(d, start + j), s->gen);
		}
	}
	return bad;
}

/* Every written block, read back in runs of consecutive written blocks. */
uint64_t disk_verify(struct disk *d, uint64_t *first_lba, const char **why, uint64_t *sectors)
{
	uint64_t bad = 0, i = 0;

	*sectors = 0;
	if (d->fd < 0)
		return 0;
	while (i < d->blocks) {
		uint64_t len = 0;

		while (i + len < d->blocks && d->tab[i + len].gen && len < DISK_RUN_MAX)
			len++;
		if (!len) {
			i++;
			continue;
		}
		bad = verify_run(d, i, len, first_lba, why, bad);
		*sectors += len * (LG_BLOCK / 512);
		i += len;
	}
	return bad;
}

/* Test hook: rewrites a written block (the first one if lba < 0) with one
 * body byte flipped, the table untouched. */
int disk_corrupt(struct disk *d, int64_t lba, uint64_t *done_lba)
{
	uint64_t b = 0;

	if (d->fd < 0)
		return -ENODEV;
	if (lba < 0) {
		while (b < d->blocks && !d->tab[b].gen)
			b++;
	} else if ((uint64_t)lba * 512 < d->off || ((uint64_t)lba * 512 - d->off) % LG_BLOCK) {
		return -EINVAL;
	} else {
		b = ((uint64_t)lba * 512 - d->off) / LG_BLOCK;
	}
	if (b >= d->blocks || !d->tab[b].gen)
		return -ENOENT;
	content_fill(d->buf, LG_MAGIC_BLOCK, lba_of(d, b), d->tab[b].gen);
	((uint8_t *)d->buf)[100] ^= 0x5a;
	if (pwrite(d->fd, d->buf, LG_BLOCK, (off_t)(d->off + b * LG_BLOCK)) != LG_BLOCK)
		return -EIO;
	*done_lba = lba_of(d, b);
	return 0;
}
