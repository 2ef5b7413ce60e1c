#!/bin/bash
# The same non-converging migration (QEMU's bandwidth capped at 32 MiB/s,
# the guest dirtying 100 MB/s over 16 MiB) finishes once an escalation is
# allowed: post-copy (switched to after 2 s without progress), and
# auto-converge together with the stepped downtime limit. Auto-converge
# alone stalls at a floor with this guest: it paces itself by the TSC and
# catches up after every throttle slice (measured: 6.8 MB/s dirtied at 99 %
# throttle, 3.5 MiB left, QEMU never stopping for 300 ms). The guest
# verifies on the target each time, after many dirty syncs.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

two_agents

vm_create node-a g1 256 "fill=96 profile=random dirty=100 wss=16"

# Without an escalation it does not converge: the progress timeout fires.
out=$(ctl node-a migrate g1 --node node-b --wait --max-bandwidth 32 --progress-timeout 4) &&
	die "the scenario converged without help: $out"
echo "$out" | grep -q "no progress" || die "expected a progress timeout: $out"
# Pause tuning starts QEMU's downtime limit at 50 ms and raises it: doubled
# once the remaining data stops setting clear new lows, or straight to the
# configured 300 ms when the measured dirty rate reaches the copy rate
# (QEMU's dirty rate hovers near the copy rate here, so either comes first).
grep -Eq "event=pause_tuning from_ms=50 to_ms=(100|300)" "$WORK/node-a.log" ||
	die "pause tuning did not raise the limit of a migration that does not converge"
guest_verify node-a g1

out=$(ctl node-a migrate g1 --node node-b --wait --max-bandwidth 32 --progress-timeout 60 \
	--post-copy --escalate-after 2) || die "post-copy migration failed: $out"
echo "$out"
echo "$out" | grep -q "mode:        post-copy" || die "post-copy was not used"
guest_verify node-b g1
[ "$(qemu_count)" = 1 ] || die "expected one QEMU, found $(qemu_count)"

out=$(ctl node-b migrate g1 --node node-a --wait --max-bandwidth 32 --progress-timeout 60 \
	--auto-converge --downtime-step 500 --escalate-after 3) || die "auto-converge migration failed: $out"
echo "$out"
echo "$out" | grep -q "mode:        pre-copy" || die "auto-converge run left pre-copy"
guest_verify node-a g1
[ "$(qemu_count)" = 1 ] || die "expected one QEMU, found $(qemu_count)"
log PASS
