/* The drain's decisions (agent/drain.h): how many migrations may start,
 * which VM goes next and its place in the queue, which node it goes to,
 * a failure retried elsewhere or given up, and the drain's outcome. Pure:
 * no agent, no peers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/drain.h"

static struct drain_vm vms[5];
static struct drain_run run;

static void reset(void)
{
	static const char *const names[] = {"g1", "g2", "g3", "g4", "g5"};

	memset(vms, 0, sizeof(vms));
	memset(&run, 0, sizeof(run));
	for (size_t i = 0; i < 5; i++)
		snprintf(vms[i].vm, sizeof(vms[i].vm), "%s", names[i]);
	run.vms = vms;
	run.n = 5;
	run.max_attempts = 3;
}

/* The node's own limit and the cluster's, whichever is tighter. */
static void slots_follow_the_limits(void **state)
{
	(void)state;
	assert_int_equal(drain_slots(2, 5, 0, 0), 2);
	assert_int_equal(drain_slots(2, 5, 1, 0), 1);
	assert_int_equal(drain_slots(2, 5, 2, 0), 0);
	assert_int_equal(drain_slots(2, 5, 0, 4), 1);
	assert_int_equal(drain_slots(2, 1, 0, 1), 0);
	/* Over a limit (someone else's migrations): none, never negative. */
	assert_int_equal(drain_slots(2, 5, 3, 0), 0);
	assert_int_equal(drain_slots(2, 5, 0, 9), 0);
}

/* The queue is the run's order; its place counts Pending VMs only. */
static void next_and_place(void **state)
{
	(void)state;
	reset();
	vms[0].state = DV_NOT_MOVABLE;
	vms[1].state = DV_MIGRATING;
	assert_int_equal(drain_next(&run), 2);
	assert_int_equal(drain_place(&run, 0), 0);
	assert_int_equal(drain_place(&run, 1), 0);
	assert_int_equal(drain_place(&run, 2), 1);
	assert_int_equal(drain_place(&run, 4), 3);
	assert_int_equal(drain_place(&run, 9), 0);
	/* A VM retried after a failure takes its place again in order. */
	vms[1].state = DV_PENDING;
	assert_int_equal(drain_next(&run), 1);
	assert_int_equal(drain_place(&run, 2), 2);
	/* Interrupted: nothing new starts. */
	run.interrupted = 1;
	assert_int_equal(drain_next(&run), -1);
	assert_int_equal(drain_place(&run, 2), 0);
	run.interrupted = 0;
	for (size_t i = 0; i < 5; i++)
		vms[i].state = DV_MOVED;
	assert_int_equal(drain_next(&run), -1);
}

/* Eligible, not failed there before; most free memory, then least load. */
static void pick_target(void **state)
{
	struct drain_cand c[3] = {
		{.name = "node-b", .eligible = 1, .free_mib = 1000, .load = 2},
		{.name = "node-c", .eligible = 1, .free_mib = 1000, .load = 0},
		{.name = "node-d", .eligible = 0, .reason = "cordoned", .free_mib = 9000},
	};
	char why[512];

	(void)state;
	reset();
	assert_int_equal(drain_pick(&vms[0], c, 3, why, sizeof(why)), 1);
	c[0].free_mib = 2000;
	assert_int_equal(drain_pick(&vms[0], c, 3, why, sizeof(why)), 0);
	/* node-b failed it once: node-c now. */
	snprintf(vms[0].tried[0], sizeof(vms[0].tried[0]), "node-b");
	vms[0].n_tried = 1;
	assert_int_equal(drain_pick(&vms[0], c, 3, why, sizeof(why)), 1);
	/* None left: every node's reason. */
	c[1].eligible = 0;
	snprintf(c[1].reason, sizeof(c[1].reason), "%s", "512 MiB free, the VM needs 1088 MiB");
	assert_int_equal(drain_pick(&vms[0], c, 3, why, sizeof(why)), -1);
	assert_string_equal(why, "no eligible node: node-b: its migration there failed; node-c: 512 MiB free, "
				 "the VM needs 1088 MiB; node-d: cordoned");
	assert_int_equal(drain_pick(&vms[0], c, 0, why, sizeof(why)), -1);
	assert_string_equal(why, "no eligible node: no peers configured");
}

/* Memory the drain's running migrations will take counts as taken: two
 * VMs started together spread over two equal nodes. */
static void reserve_spreads(void **state)
{
	struct drain_cand c[2] = {
		{.name = "node-b", .eligible = 1, .free_mib = 1000},
		{.name = "node-c", .eligible = 1, .free_mib = 990},
	};
	char why[256];

	(void)state;
	reset();
	vms[0].state = DV_MIGRATING;
	vms[0].memory_mib = 64;
	snprintf(vms[0].target, sizeof(vms[0].target), "node-b");
	vms[1].state = DV_MOVED; /* arrived: the node's own figure has it */
	vms[1].memory_mib = 512;
	snprintf(vms[1].target, sizeof(vms[1].target), "node-c");
	drain_reserve(&run, c, 2);
	assert_int_equal(c[0].free_mib, 936);
	assert_int_equal(c[1].free_mib, 990);
	assert_int_equal(drain_pick(&vms[2], c, 2, why, sizeof(why)), 1);
}

/* A failure is retried elsewhere up to max_attempts, then the VM fails
 * with the count and the last reason; a timed-out VM is not retried. */
static void failure_retried_then_given_up(void **state)
{
	struct drain_vm *v = &vms[0];

	(void)state;
	reset();
	v->state = DV_MIGRATING;
	v->attempts = 1;
	snprintf(v->target, sizeof(v->target), "node-b");
	snprintf(v->mig, sizeof(v->mig), "id-1");
	drain_failed(v, 2, "target refused: node node-b is cordoned");
	assert_int_equal(v->state, DV_PENDING);
	assert_int_equal(v->n_tried, 1);
	assert_string_equal(v->tried[0], "node-b");
	assert_string_equal(v->mig, "");
	assert_string_equal(v->reason, "attempt 1 to node-b failed: target refused: node node-b is cordoned");
	v->attempts = 2;
	snprintf(v->target, sizeof(v->target), "node-c");
	drain_failed(v, 2, "the target QEMU exited");
	assert_int_equal(v->state, DV_FAILED);
	assert_int_equal(v->n_tried, 2);
	assert_string_equal(v->reason, "2 attempts failed, the last to node-c: the target QEMU exited");
	/* The same node twice is listed once. */
	v->attempts = 1;
	drain_failed(v, 3, "again");
	assert_int_equal(v->n_tried, 2);

	reset();
	v->attempts = 1;
	v->timed_out = 1;
	snprintf(v->reason, sizeof(v->reason), "timed out");
	drain_failed(v, 3, "cancelled by request");
	assert_int_equal(v->state, DV_FAILED);
	assert_string_equal(v->reason, "timed out");
}

static void outcome(void **state)
{
	(void)state;
	reset();
	assert_int_equal(drain_outcome(&run), DS_RUNNING);
	for (size_t i = 0; i < 5; i++)
		vms[i].state = DV_MOVED;
	assert_int_equal(drain_outcome(&run), DS_COMPLETED);
	vms[3].state = DV_NOT_MOVABLE;
	assert_int_equal(drain_outcome(&run), DS_FAILED);
	/* Interrupted: running migrations are waited for, Pending ones not. */
	vms[2].state = DV_MIGRATING;
	vms[4].state = DV_PENDING;
	run.interrupted = 1;
	assert_int_equal(drain_outcome(&run), DS_RUNNING);
	vms[2].state = DV_MOVED;
	assert_int_equal(drain_outcome(&run), DS_INTERRUPTED);
	run.n = 0;
	run.interrupted = 0;
	assert_int_equal(drain_outcome(&run), DS_COMPLETED);
	assert_string_equal(drain_state_name(DS_INTERRUPTED), "Interrupted");
	assert_string_equal(drain_vm_state_name(DV_NOT_MOVABLE), "NotMovable");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(slots_follow_the_limits),
		cmocka_unit_test(next_and_place),
		cmocka_unit_test(pick_target),
		cmocka_unit_test(reserve_spreads),
		cmocka_unit_test(failure_retried_then_given_up),
		cmocka_unit_test(outcome),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
