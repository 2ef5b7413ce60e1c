#!/bin/bash
# A guest dirtying faster than the link: both agents in a network namespace
# whose loopback is a 100 Mbit/s tbf link, the guest dirtying 40 MB/s of
# random (incompressible) pages over 96 MiB, each rewritten whole with new
# random bytes (rewrite=page): with the default stamp rewrite only a few
# bytes change, which page coding sends as deltas, and it converges. The progress timeout (set to
# 4 s here; 150 s by default) fires, the migration is Failed with a reason
# naming progress, and the guest still runs on the source and verifies.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
cluster_netns 100mbit

two_agents

vm_create node-a g1 256 "fill=96 profile=random dirty=40 wss=96 rewrite=page"
start=$(date +%s)
out=$(ctl node-a migrate g1 --node node-b --wait --progress-timeout 4) &&
	die "a migration that cannot converge succeeded: $out"
echo "$out"
echo "$out" | grep -q "no progress for 4 s" || die "failure does not name the progress timeout"
[ $(($(date +%s) - start)) -lt 120 ] || die "took too long to give up"
[ "$(vm_json node-a g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-a"
guest_verify node-a g1
id=$(vm_json node-a g1 | jq -r .lastMigration)
mig_wait_phase node-b "$id" Failed 30
[ "$(qemu_count)" = 1 ] || die "expected one QEMU, found $(qemu_count)"
log PASS
