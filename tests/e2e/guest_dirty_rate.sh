#!/bin/bash
# e2e: is the test guest's dirty rate what QEMU measures?
#
#   guest_dirty_rate.sh GUEST_ELF GUEST_SERIAL
#
# One 512 MiB guest (440 MiB filled, 420 MiB working set) is set to 200,
# 20 and 1 MB/s in turn over its serial port; each rate must be within 10%
# of what QEMU itself measures.
#
# How QEMU measures (QEMU 7.2, TCG):
#  * calc-dirty-rate, page-sampling mode, for 200 and 20 MB/s. It hashes
#    4096 random pages per GiB before and after calc-time seconds and
#    reports an integer in MiB/s. The estimate is only as good as the
#    number of sampled pages that changed, so calc-time is picked to let
#    the guest dirty ~380 MiB (3/4 of RAM, just under the working set;
#    beyond it pages would be dirtied twice and counted once): sampling
#    noise is then ~1.3%.
#  * 1 MB/s is 0.95 MiB/s, which calc-dirty-rate's integer MiB/s always
#    reports as 0. It is measured instead from a real migration to
#    "exec:cat > /dev/null" with pause-before-switchover: at the end of the
#    first pass QEMU syncs the dirty bitmap and sets ram.dirty-pages-rate
#    (pages/s, exact, not sampled) from every page dirtied during the pass;
#    the migration then waits in pre-switchover, is read and cancelled,
#    and the guest runs on. 20 MB/s is measured this way too.
#  * calc-dirty-rate mode=dirty-bitmap crashes QEMU 7.2 under TCG
#    (segfault), so it is not used.
. "$(dirname "$0")/guest_lib.sh"
guest_lib_init "$@"

TOLERANCE=10   # percent

# check NAME SET_MBPS MEASURED_BYTES_PER_S
check() {
	local verdict
	verdict=$(awk -v set="$2" -v got="$3" -v tol="$TOLERANCE" 'BEGIN {
		mb = got / 1e6; err = (mb - set) / set * 100
		printf "%s %.2f MB/s (%+.1f%%)", (err <= tol && err >= -tol) ? "ok" : "BAD", mb, err }')
	log "rate $2 MB/s, $1: measured ${verdict#* }"
	[ "${verdict%% *}" = ok ] || FAILED="$FAILED $2/$1"
}

set_rate() {
	guest_cmd g "dirty $1" "OK dirty=$1" >/dev/null || exit 1
	sleep 1   # let a cycle of the pacer pass before measuring
}

# by_sampling RATE CALC_TIME
by_sampling() {
	local rate=$1 secs=$2 r

	set_rate "$rate"
	qmp g "{\"execute\":\"calc-dirty-rate\",\"arguments\":{\"calc-time\":$secs,\"sample-pages\":4096,\"mode\":\"page-sampling\"}}" >/dev/null || exit 1
	sleep "$secs"
	r=$(qmp_wait_status g query-dirty-rate measured 30) || exit 1
	check "calc-dirty-rate ${secs}s" "$rate" \
		$(( $(json_num dirty-rate <<<"$r") * 1048576 ))
}

# by_migration RATE
by_migration() {
	local rate=$1 r pages psize

	set_rate "$rate"
	qmp g '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"pause-before-switchover","state":true}]}}' >/dev/null || exit 1
	# ~100 MB/s makes the first pass last ~4.5 s: long enough for a
	# precise count, short enough that the working set is not lapped.
	qmp g '{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":100000000}}' >/dev/null || exit 1
	qmp g '{"execute":"migrate","arguments":{"uri":"exec:cat > /dev/null"}}' >/dev/null || exit 1
	r=$(qmp_wait_status g query-migrate pre-switchover 60 setup active) || exit 1
	pages=$(json_num dirty-pages-rate <<<"$r")
	psize=$(json_num page-size <<<"$r")
	qmp g '{"execute":"migrate_cancel"}' >/dev/null || exit 1
	qmp_wait_status g query-migrate cancelled 30 >/dev/null || exit 1
	r=$(qmp g '{"execute":"query-status"}') || exit 1
	[ "$(json_str status <<<"$r")" = running ] ||
		die "guest not running after the cancelled migration: $r"
	check "migration dirty-pages-rate" "$rate" $((pages * psize))
}

FAILED=
guest_start g 512 "fill=440 wss=420 profile=mix dirty=0"
ready=$(guest_wait_log g '^FERRY-GUEST READY' 120) || exit 1
log "$ready"

by_sampling 200 2
by_sampling 20 20
by_migration 20
by_migration 1

guest_cmd g "dirty 0" "OK dirty=0" >/dev/null || exit 1
out=$(guest_cmd g verify "VERIFY OK" 120) || exit 1
log "$out"
guest_stop g

[ -z "$FAILED" ] || die "rates off by more than $TOLERANCE%:$FAILED"
log "PASS"
