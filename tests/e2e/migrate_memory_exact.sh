#!/bin/bash
# With the target started paused, guest RAM of the stopped source and of the
# target hash identically (pmemsave on both sides); single channel and
# multifd with 2 channels; a guest rewriting pages sparsely; and post-copy
# (from the first pass) of a guest dirtying 100 MB/s. The guest dirties its working set throughout, so the
# migrations take many dirty syncs: every byte of every pass must arrive.
# Page coding (the default) is on in every run but one, which has it off:
# the sparse guest's pages must go as deltas, and every case match.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

two_agents

vm_create node-a g1 256 "fill=160 profile=mix dirty=20 wss=32"
out=$(ctl node-a migrate g1 --node node-b --wait --verify-memory) || die "migration failed: $out"
echo "$out"
echo "$out" | grep -q "memory:      match" || die "memory not verified identical"
echo "$out" | grep -Eq "page coding: [1-9][0-9]* pages" || die "page coding was not used"
guest_verify node-b g1

out=$(ctl node-b migrate g1 --node node-a --wait --verify-memory --multifd 2) || die "multifd migration failed: $out"
echo "$out"
echo "$out" | grep -q "memory:      match" || die "memory not identical after multifd"
echo "$out" | grep -q "2 multifd" || die "multifd was not used"
echo "$out" | grep -Eq "page coding: [1-9][0-9]* pages" || die "page coding was not used on multifd"
guest_verify node-a g1

out=$(ctl node-a migrate g1 --node node-b --wait --verify-memory --page-cache 0) ||
	die "migration without page coding failed: $out"
echo "$out" | grep -q "memory:      match" || die "memory not identical without page coding"
echo "$out" | grep -q "page coding: off" || die "page coding was not off"
guest_verify node-b g1

# A guest that rewrites a few bytes per page (rewrite=sparse): every pass
# resends pages that differ from the target's copy in ~29 bytes only.
vm_create node-a g3 256 "fill=160 profile=mix dirty=20 wss=32 rewrite=sparse"
out=$(ctl node-a migrate g3 --node node-b --wait --verify-memory) || die "sparse migration failed: $out"
echo "$out"
echo "$out" | grep -q "memory:      match" || die "memory not identical (rewrite=sparse)"
echo "$out" | grep -Eq "duplicate, [1-9][0-9]* delta" || die "no page went as a delta (rewrite=sparse)"
guest_verify node-b g3

# Post-copy, started during the first pass, of a guest that dirties hard:
# RAM of the stopped source and of the paused target hash identically.
vm_create node-a g2 256 "fill=64 profile=random dirty=100 wss=64"
out=$(ctl node-a migrate g2 --node node-b --wait --verify-memory --post-copy-now --max-bandwidth 16) ||
	die "post-copy migration failed: $out"
echo "$out"
echo "$out" | grep -q "mode:        post-copy" || die "post-copy was not used"
echo "$out" | grep -q "memory:      match" || die "memory not identical after post-copy"
guest_verify node-b g2
log PASS
