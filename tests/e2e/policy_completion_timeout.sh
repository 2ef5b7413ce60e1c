#!/bin/bash
# A slow but progressing migration (16 MiB/s for 160 MiB of random pages,
# the guest dirtying 2 MB/s) runs into the completion timeout (16 s per GiB x 0.25 GiB =
# 4 s here; 800 s/GiB by default): Failed, reason names the completion
# timeout, the guest runs on the source and verifies.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

two_agents

vm_create node-a g1 256 "fill=160 profile=random dirty=2 wss=16"
out=$(ctl node-a migrate g1 --node node-b --wait --max-bandwidth 16 --completion-timeout-per-gib 16) &&
	die "the migration beat its completion timeout: $out"
echo "$out"
echo "$out" | grep -q "completion timeout: still running after 4 s" || die "reason does not name the completion timeout"
[ "$(vm_json node-a g1 | jq -r .state)" = Running ] || die "g1 is not Running on node-a"
guest_verify node-a g1
[ "$(qemu_count)" = 1 ] || die "expected one QEMU, found $(qemu_count)"
log PASS
