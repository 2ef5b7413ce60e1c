#!/bin/bash
# e2e: the test guest survives a plain QEMU live migration: it keeps running
# on the target, its own verify passes there, and the TSC jump across the
# pause does not make it burst.
#
#   guest_migrate.sh GUEST_ELF GUEST_SERIAL
#
# Source and target are two local QEMUs, migrating over a unix socket with
# QEMU's own migration (no ferry involved): this tests the guest, not ferry.
. "$(dirname "$0")/guest_lib.sh"
guest_lib_init "$@"

APPEND="fill=192 profile=mix mix=10,45,45 dirty=20 wss=128"

# hb VM N FIELD: FIELD of the N-th last heartbeat in VM's serial log
hb() {
	guest_log "$1" | grep '^HB ' | tail -n "$2" | head -n1 |
		grep -o "$3=[0-9]*" | cut -d= -f2
}

guest_start src 256 "$APPEND"
ready=$(guest_wait_log src '^FERRY-GUEST READY' 60) || exit 1
log "src: $ready"
guest_wait_log src '^HB seq=2 ' 30 >/dev/null || exit 1

guest_start dst 256 "$APPEND" -incoming defer
qmp dst "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"unix:$WORK/mig.sock\"}}" >/dev/null
for i in $(seq 50); do
	[ -S "$WORK/mig.sock" ] && break
	sleep 0.1
done
qmp src "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:$WORK/mig.sock\"}}" >/dev/null
r=$(qmp_wait_status src query-migrate completed 120 setup active device) || exit 1
log "migrated: total-time $(json_num total-time <<<"$r") ms, downtime $(json_num downtime <<<"$r") ms"
qmp_wait_status dst query-status running 30 >/dev/null || exit 1
guest_stop src

# The target's log starts empty: whatever is in it was printed after the
# switch-over, by the migrated guest.
guest_wait_log dst '^HB ' 10 >/dev/null || exit 1
out=$(guest_cmd dst verify "VERIFY " 60) || exit 1
log "dst: $out"
[ "$out" = "VERIFY OK pages=49152" ] || die "verify on the target: $out"

# Dirtying goes on at its rate, with no catch-up burst after the pause.
seq0=$(hb dst 1 seq)
guest_wait_log dst "^HB seq=$((seq0 + 2)) " 10 >/dev/null || exit 1
d1=$(hb dst 2 dirtied) u1=$(hb dst 2 uptime_ms)
d2=$(hb dst 1 dirtied) u2=$(hb dst 1 uptime_ms)
rate=$(( (d2 - d1) * 1000 / (u2 - u1) ))
log "dst: dirtying at $rate pages/s (want ~4883), uptime_ms $u2"
[ "$rate" -gt 4400 ] && [ "$rate" -lt 5400 ] || die "target dirties at $rate pages/s"

guest_stop dst
log "PASS"
