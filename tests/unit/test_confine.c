/* Hostile input from peers and clients: the path confinement of VM spec
 * files (util/confine.c) and the migration id check (uuid_valid). */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/confine.h"
#include "util/uuid.h"

/* A scratch tree: ROOT/allowed/{disk.raw, escape -> ROOT/outside/secret,
 * inner -> ROOT/allowed/sub}, ROOT/outside/secret, ROOT/allowed-not/x. */
static char root[256];

static void touch(const char *rel)
{
	char p[PATH_MAX + 64];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	f = fopen(p, "w");
	assert_non_null(f);
	fclose(f);
}

static void sub(char *out, const char *rel) { snprintf(out, PATH_MAX, "%s/%s", root, rel); }

static int setup(void **state)
{
	char a[PATH_MAX], b[PATH_MAX];
	char tmpl[] = "/tmp/ferry-confine.XXXXXX", real[PATH_MAX];

	(void)state;
	if (!mkdtemp(tmpl) || !realpath(tmpl, real) || strlen(real) >= sizeof(root))
		return -1;
	snprintf(root, sizeof(root), "%s", real);
	sub(a, "allowed");
	mkdir(a, 0700);
	sub(a, "allowed/sub");
	mkdir(a, 0700);
	sub(a, "outside");
	mkdir(a, 0700);
	sub(a, "allowed-not");
	mkdir(a, 0700);
	touch("allowed/disk.raw");
	touch("outside/secret");
	touch("allowed-not/x");
	sub(a, "outside/secret");
	sub(b, "allowed/escape");
	if (symlink(a, b) < 0)
		return -1;
	sub(a, "allowed/sub");
	sub(b, "allowed/inner");
	if (symlink(a, b) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static int check(const char *rel_path, char *err, size_t len)
{
	char dir[PATH_MAX], p[PATH_MAX];
	const char *dirs[] = {dir, "/nonexistent-ferry-dir"};

	sub(dir, "allowed");
	if (rel_path[0] == '/')
		snprintf(p, sizeof(p), "%s", rel_path);
	else
		sub(p, rel_path);
	return confine_check("disk d", p, dirs, 2, err, len);
}

static void test_inside(void **state)
{
	char err[512] = "";

	(void)state;
	assert_int_equal(check("allowed/disk.raw", err, sizeof(err)), 0);
	/* A link that stays inside is fine. */
	assert_int_equal(check("allowed/inner/new.qcow2", err, sizeof(err)), 0);
}

static void test_outside(void **state)
{
	char err[512] = "";

	(void)state;
	assert_int_equal(check("/etc/shadow", err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "/etc/shadow"));
	assert_non_null(strstr(err, "allowed_paths"));
	/* A sibling whose name starts like the allowed dir is not inside it. */
	assert_int_equal(check("allowed-not/x", err, sizeof(err)), -EACCES);
}

static void test_dotdot(void **state)
{
	char err[512] = "";

	(void)state;
	assert_int_equal(check("allowed/../outside/secret", err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "outside/secret"));
	/* Not existing, but its directory climbs out. */
	assert_int_equal(check("allowed/../outside/new.raw", err, sizeof(err)), -EACCES);
	assert_int_equal(check("allowed/..", err, sizeof(err)), -EACCES);
}

static void test_symlink_escape(void **state)
{
	char err[512] = "", real[PATH_MAX];

	(void)state;
	assert_int_equal(check("allowed/escape", err, sizeof(err)), -EACCES);
	sub(real, "outside/secret");
	assert_non_null(strstr(err, real)); /* says where it really points */
}

static void test_missing_under_allowed(void **state)
{
	char err[512] = "", out[PATH_MAX], want[PATH_MAX];

	(void)state;
	assert_int_equal(check("allowed/not-yet.qcow2", err, sizeof(err)), 0);
	sub(want, "allowed/not-yet.qcow2");
	assert_int_equal(confine_resolve(want, out, sizeof(out)), 0);
	assert_string_equal(out, want);
	/* Its directory must exist to be judged. */
	assert_int_equal(check("allowed/nodir/x.raw", err, sizeof(err)), -EACCES);
	assert_int_equal(confine_resolve("relative/x", out, sizeof(out)), -EINVAL);
}

static void test_within_pure(void **state)
{
	(void)state;
	assert_true(confine_within("/a/b", "/a/b"));
	assert_true(confine_within("/a/b/c", "/a/b"));
	assert_false(confine_within("/a/bc", "/a/b"));
	assert_false(confine_within("/a", "/a/b"));
	assert_true(confine_within("/x", "/"));
}

static void test_uuid_valid(void **state)
{
	char u[37];

	(void)state;
	assert_int_equal(uuid_v4(u), 0);
	assert_true(uuid_valid(u));
	assert_true(uuid_valid("123E4567-E89B-12D3-A456-426614174000"));
	assert_false(uuid_valid(NULL));
	assert_false(uuid_valid(""));
	assert_false(uuid_valid("../../../etc/cron.d/x"));
	assert_false(uuid_valid("123e4567-e89b-12d3-a456-42661417400"));   /* short */
	assert_false(uuid_valid("123e4567-e89b-12d3-a456-4266141740000")); /* long */
	assert_false(uuid_valid("123e4567-e89b-12d3-a456-42661417400/"));
	assert_false(uuid_valid("123e4567xe89b-12d3-a456-426614174000"));
	assert_false(uuid_valid("123e4567-e89b-12d3-a456-42661417400\n"));
	assert_false(uuid_valid("../e4567-e89b-12d3-a456-426614174000"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inside),
		cmocka_unit_test(test_outside),
		cmocka_unit_test(test_dotdot),
		cmocka_unit_test(test_symlink_escape),
		cmocka_unit_test(test_missing_under_allowed),
		cmocka_unit_test(test_within_pure),
		cmocka_unit_test(test_uuid_valid),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
