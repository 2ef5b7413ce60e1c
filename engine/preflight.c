#include "engine/preflight.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/vmspec.h"

static void add(char *buf, size_t len, size_t *used, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*used >= len)
		return;
	if (*used) {
		n = snprintf(buf + *used, len - *used, "; ");
		*used += n > 0 ? (size_t)n : 0;
		if (*used >= len)
			return;
	}
	va_start(ap, fmt);
	n = vsnprintf(buf + *used, len - *used, fmt, ap);
	va_end(ap);
	*used += n > 0 ? (size_t)n : 0;
}

int preflight_vm(const struct vm_spec *s, char *reason, size_t len)
{
	size_t used = 0;

	reason[0] = '\0';
	for (size_t i = 0; i < s->n_disks; i++) {
		const struct vm_disk *d = &s->disks[i];

		if (!strcmp(d->type, "cdrom") && d->path[0])
			add(reason, len, &used, "CD-ROM %s has media: eject it before live migration", d->name);
		else if (!strcmp(d->type, "containerdisk"))
			add(reason, len, &used, "container disk %s: remove it before live migration", d->name);
	}
	for (size_t i = 0; i < s->n_nics; i++) {
		const struct vm_nic *n = &s->nics[i];

		if (n->management && !strcmp(n->binding, "bridge"))
			add(reason, len, &used,
			    "NIC %s binds a bridge on the management network: live migration is not allowed",
			    n->name);
	}
	return used ? -EPERM : 0;
}
