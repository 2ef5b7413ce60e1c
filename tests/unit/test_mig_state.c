/* The migration state table (engine/mig_state.c) against the rules it
 * exists to keep: a VM never runs on two hosts and never on none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/mig_state.h"

static int here(enum mig_state s)
{
	return mstate_info(s)->guest == GUEST_HERE;
}

/* Every state is described, and shows a phase and a name. */
static void test_every_state_described(void **state)
{
	(void)state;
	for (int s = 0; s < MS_COUNT; s++) {
		const struct mig_state_info *i = mstate_info(s);

		assert_non_null(i);
		assert_non_null(i->name);
		assert_true(i->phase <= MIG_FAILED);
		/* a terminal state shows an end phase, and only those do */
		assert_int_equal(i->terminal, i->phase == MIG_SUCCEEDED || i->phase == MIG_FAILED);
	}
	assert_null(mstate_info(MS_COUNT));
	assert_string_equal(mstate_name(MS_COUNT), "unknown");
}

/* Edges stay within a role; nothing leaves an end. */
static void test_edges_well_formed(void **state)
{
	(void)state;
	for (int a = 0; a < MS_COUNT; a++)
		for (int b = 0; b < MS_COUNT; b++) {
			if (!mstate_edge(a, b))
				continue;
			assert_int_equal(mstate_info(a)->role, mstate_info(b)->role);
			assert_false(mstate_info(a)->terminal);
			assert_int_not_equal(a, b);
		}
}

/* Once the target may run the guest (post-copy: split; after QEMU
 * stopped it here for the last copy), no edge resumes it here, except
 * on the other side's own word. Post-copy never rolls back at all. */
static void test_never_on_two_hosts(void **state)
{
	(void)state;
	for (int a = 0; a < MS_COUNT; a++)
		for (int b = 0; b < MS_COUNT; b++) {
			enum mig_guest g = mstate_info(a)->guest;

			if (!mstate_edge(a, b) || !here(b))
				continue;
			assert_int_not_equal(g, GUEST_SPLIT);
			assert_int_not_equal(g, GUEST_THERE);
			/* (the target running what it loaded is its success) */
			if (g == GUEST_STOPPED && mstate_info(a)->role == MIG_ROLE_SOURCE &&
			    a != MS_SRC_SWITCHOVER)
				assert_true(mstate_edge_needs_target_nack(a, b));
		}
	/* The one edge from QEMU's switchover back to running here is
	 * QEMU's failure before it completed: the target never got it all. */
	assert_true(mstate_edge(MS_SRC_SWITCHOVER, MS_SRC_ROLLING_BACK));
	assert_false(mstate_edge(MS_SRC_POSTCOPY, MS_SRC_ROLLING_BACK));
	assert_false(mstate_edge(MS_SRC_CONFIRMING, MS_SRC_FAILED));
}

/* The target gives up its copy only while the guest has not run there,
 * or on the source's word: post-copy ends held, never failed. */
static void test_never_on_none(void **state)
{
	(void)state;
	for (int a = MS_TGT_PREPARING; a < MS_COUNT; a++) {
		if (mstate_info(a)->guest == GUEST_SPLIT)
			assert_false(mstate_edge(a, MS_TGT_FAILED));
	}
	assert_true(mstate_edge_needs_target_nack(MS_TGT_LOADED, MS_TGT_FAILED));
	/* A held source and a held target: both keep their part. */
	assert_int_equal(mstate_info(MS_SRC_HELD)->phase, MIG_FAILED);
	assert_int_equal(mstate_info(MS_TGT_HELD)->guest, GUEST_SPLIT);
}

/* Cancels are taken only before the switchover (source) or before the
 * guest ran (target). */
static void test_cancellable(void **state)
{
	(void)state;
	for (int s = 0; s < MS_COUNT; s++) {
		const struct mig_state_info *i = mstate_info(s);

		if (i->cancellable)
			assert_true(i->guest == GUEST_HERE || i->guest == GUEST_NONE_HERE);
		/* a state that keeps the phase is a short step within one */
		if (i->keep_phase)
			assert_false(i->terminal);
	}
	assert_true(mstate_info(MS_SRC_PRECOPY)->cancellable);
	assert_false(mstate_info(MS_SRC_SWITCHOVER)->cancellable);
	assert_false(mstate_info(MS_SRC_POSTCOPY)->cancellable);
	assert_true(mstate_info(MS_TGT_INCOMING)->cancellable);
	assert_false(mstate_info(MS_TGT_POSTCOPY)->cancellable);
}

/* Every state reaches an end: no migration can be stuck by the table. */
static void test_every_state_ends(void **state)
{
	int ends[MS_COUNT] = {0}, changed = 1;

	(void)state;
	for (int s = 0; s < MS_COUNT; s++)
		ends[s] = mstate_info(s)->terminal;
	while (changed) {
		changed = 0;
		for (int a = 0; a < MS_COUNT; a++)
			for (int b = 0; b < MS_COUNT && !ends[a]; b++)
				if (mstate_edge(a, b) && ends[b])
					ends[a] = changed = 1;
	}
	for (int s = 0; s < MS_COUNT; s++)
		assert_true(ends[s]);
}

/* The public phase never goes back, but for the Pending retry; a state
 * that keeps the phase (rolling back) counts as the one it came from. */
static void test_phase_monotonic(void **state)
{
	(void)state;
	for (int a = 0; a < MS_COUNT; a++)
		for (int b = 0; b < MS_COUNT; b++) {
			if (!mstate_edge(a, b) || (a == MS_SRC_PREPARING && b == MS_SRC_PENDING) ||
			    mstate_info(a)->keep_phase || mstate_info(b)->keep_phase)
				continue;
			assert_true(mstate_info(b)->phase >= mstate_info(a)->phase);
		}
	/* a failure in Pending shows Pending until it ends Failed */
	assert_true(mstate_edge(MS_SRC_PENDING, MS_SRC_ROLLING_BACK));
	assert_true(mstate_info(MS_SRC_ROLLING_BACK)->keep_phase);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_state_described),
		cmocka_unit_test(test_edges_well_formed),
		cmocka_unit_test(test_never_on_two_hosts),
		cmocka_unit_test(test_never_on_none),
		cmocka_unit_test(test_cancellable),
		cmocka_unit_test(test_every_state_ends),
		cmocka_unit_test(test_phase_monotonic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
