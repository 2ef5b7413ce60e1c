/*
 * disks.c: the guest's local disk (--disk-mib): the template every run
 * starts from, each run's images, the data a mirror sends, and the check
 * that the target's image equals the source's.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "util/fsutil.h"

/* Fills buf[0..n) with text-like lines, numbered from *line on. */
static void text_lines(char *buf, size_t n, unsigned *line)
{
	static const char *const lines[] = {
		"the guest keeps running while the copy goes on over the link",
		"a block that is written again is sent again before the switch",
		"at the end of the mirror the target holds the same sectors",
		"the dirty rate of the disk and of the memory add up",
		"ferry relays the stream of the mirror between the two hosts",
		"if it does not converge the copy mode changes to write-blocking",
		"pages per second, sectors per second, bytes on the wire",
		"one of the disks of the virtual machine, local to this host",
	};
	size_t used = 0;

	while (used < n) {
		char l[160];
		int len = snprintf(l, sizeof(l), "%09u %s\n", *line, lines[*line % 8]);
		size_t k = (size_t)len < n - used ? (size_t)len : n - used;

		memcpy(buf + used, l, k);
		used += k;
		(*line)++;
	}
}

/*
 * The disk content every run starts from, made once per invocation: a raw
 * image of --disk-mib, whose first --disk-fill-mib hold half random bytes
 * (from /dev/urandom) and half text-like lines (a few sentences repeated
 * with a line number: LZ4 shrinks them a lot), the rest a hole. Each run
 * converts it into its own image, so every mode copies identical bytes.
 */
int disk_make_template(void)
{
	const size_t chunk = 1 << 20;
	uint64_t fill = (uint64_t)cfg.disk_fill_mib << 20, rnd = fill / 2, done = 0;
	unsigned line = 0;
	char *buf = malloc(chunk);
	int fd = -1, ur = -1, r = -1;

	snprintf(cfg.template, sizeof(cfg.template), "%s/disk-template.raw", cfg.work);
	if (!buf)
		goto out;
	fd = open(cfg.template, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ur = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ur < 0 || ftruncate(fd, (off_t)cfg.disk_mib << 20) < 0)
		goto out;
	while (done < rnd) {
		size_t n = rnd - done < chunk ? (size_t)(rnd - done) : chunk;
		ssize_t got = read(ur, buf, n);

		if (got <= 0 || fs_write_all(fd, buf, (size_t)got) < 0)
			goto out;
		done += (uint64_t)got;
	}
	while (done < fill) {
		size_t n = fill - done < chunk ? (size_t)(fill - done) : chunk;

		text_lines(buf, n, &line);
		if (fs_write_all(fd, buf, n) < 0)
			goto out;
		done += n;
	}
	r = fsync(fd);
out:
	if (r < 0)
		msg("cannot write the disk template %s: %s", cfg.template, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (ur >= 0)
		close(ur);
	free(buf);
	return r;
}

/* This run's source image (the template in --disk-format) and, for native
 * modes, a fresh target image of the same virtual size. */
int disk_prepare(const char *dir, char *src, char *dst, size_t len)
{
	char size[32], log[PATH_MAX + 32];
	char *conv[] = {"qemu-img", "convert", "-q", "-f", "raw", "-O", cfg.disk_format, cfg.template, src, NULL};
	char *create[] = {"qemu-img", "create", "-q", "-f", cfg.disk_format, dst, size, NULL};

	snprintf(src, len, "%s/src.%s", dir, cfg.disk_format);
	snprintf(size, sizeof(size), "%dM", cfg.disk_mib);
	snprintf(log, sizeof(log), "%s/qemu-img.log", dir);
	if (run(conv, -1, 0, log, log, 600) != 0)
		return -1;
	if (dst) {
		snprintf(dst, len, "%s/dst.%s", dir, cfg.disk_format);
		if (run(create, -1, 0, log, log, 60) != 0)
			return -1;
	}
	return 0;
}

/* Bytes of img that hold data (qemu-img map): what a mirror sends as data;
 * the rest reads as zeroes and goes as NBD write-zeroes. -1 on error. */
int64_t disk_data_bytes(const char *dir, const char *img)
{
	char js[PATH_MAX + 32];
	char *argv[] = {"qemu-img", "map", "--output=json", "-f", cfg.disk_format, (char *)img, NULL};
	struct json_object *a;
	int64_t sum = -1;

	snprintf(js, sizeof(js), "%s/map.json", dir);
	unlink(js);
	if (run(argv, -1, 0, js, NULL, 120) != 0)
		return -1;
	a = json_object_from_file(js);
	if (a && json_object_is_type(a, json_type_array)) {
		sum = 0;
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			struct json_object *e = json_object_array_get_idx(a, i), *d, *z;

			if (json_object_object_get_ex(e, "data", &d) && json_object_get_boolean(d) &&
			    !(json_object_object_get_ex(e, "zero", &z) && json_object_get_boolean(z)))
				sum += jint(e, "length");
		}
	}
	if (a)
		json_object_put(a);
	unlink(js);
	return sum;
}

/*
 * After a run whose QEMUs are stopped: the target's image must equal the
 * source's, unless the guest writes to its disk, in which case it went on
 * writing on the target and only its own verify (every sector it wrote)
 * says anything. 0 = fine, -1 = differ or cannot compare (why in err).
 */
int disk_check(const char *dir, const char *src, const char *dst, struct result *res, char *err,
		      size_t len)
{
	char log[PATH_MAX + 32];
	char *argv[] = {"qemu-img", "compare", "-U", "-f", cfg.disk_format, "-F", cfg.disk_format,
			(char *)src, (char *)dst, NULL};
	int r;

	if (cfg.guest_writes_disk) {
		snprintf(res->disk_check, sizeof(res->disk_check), "guest-verify");
		return 0;
	}
	snprintf(res->disk_check, sizeof(res->disk_check), "compare");
	snprintf(log, sizeof(log), "%s/compare.log", dir);
	r = run(argv, -1, 0, log, log, 600);
	if (r == 0)
		return 0;
	snprintf(err, len, r == 1 ? "disk images differ (qemu-img compare)" : "qemu-img compare failed (%d)", r);
	return -1;
}

/* Removes a run's images (before its logs are kept after a failure). */
void disk_remove_images(const char *dir)
{
	static const char *const names[] = {"src.raw", "src.qcow2", "dst.raw", "dst.qcow2"};
	char path[PATH_MAX + 64];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/node-a/state/disks", dir);
	rm_rf(path);
	snprintf(path, sizeof(path), "%s/node-b/state/disks", dir);
	rm_rf(path);
}

int64_t disk_data_sent(int64_t data0, int64_t copied, int64_t total)
{
	return data0 + (copied > total ? copied - total : 0);
}
