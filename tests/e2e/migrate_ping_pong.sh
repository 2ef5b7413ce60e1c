#!/bin/bash
# There and back three times (alternating single channel and multifd), the
# guest verified on every arrival.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

two_agents

vm_create node-a g1 256 "fill=128 profile=text dirty=10 wss=64"
from=node-a
to=node-b
for i in 1 2 3 4 5 6; do
	extra=""
	[ $((i % 2)) -eq 0 ] && extra="--multifd 2"
	out=$(ctl $from migrate g1 --node $to --wait $extra) || die "hop $i $from->$to failed: $out"
	guest_verify $to g1
	[ "$(qemu_count)" = 1 ] || die "hop $i left $(qemu_count) QEMUs"
	log "hop $i $from -> $to ok"
	t=$from
	from=$to
	to=$t
done
log PASS
