#!/bin/bash
# e2e: the test guest boots under QEMU/TCG, fills and verifies its memory,
# beats, answers its serial commands, and its verify catches corruption.
#
#   guest_boot.sh GUEST_ELF GUEST_SERIAL
. "$(dirname "$0")/guest_lib.sh"
guest_lib_init "$@"

# last_hb FIELD: that field of the newest heartbeat in the serial log
last_hb() {
	guest_log g | grep '^HB ' | tail -n1 | grep -o "$1=[0-9]*" | cut -d= -f2
}

# wait_hb_after SEQ: waits (up to 10 s) for a heartbeat newer than SEQ
wait_hb_after() {
	local deadline=$((SECONDS + 10)) seq

	while :; do
		seq=$(last_hb seq)
		[ -n "$seq" ] && [ "$seq" -gt "$1" ] && return 0
		[ $SECONDS -lt $deadline ] || die "no heartbeat after seq=$1"
		sleep 0.1
	done
}

# refused LINE: the guest must answer ERR (guest-serial exits 1)
refused() {
	"$GUEST_SERIAL" --socket "$WORK/g/serial.sock" --timeout 10 \
		--send "$1" --expect OK --fail ERR >/dev/null
	[ $? -eq 1 ] || die "'$1' was not refused"
}

# All three profiles, and zero pages in the working set that dirtying turns
# into stamped ones: verify must tell them apart.
guest_start g 256 "fill=128 profile=mix mix=20,40,40 dirty=20 wss=64 hb=500"
ready=$(guest_wait_log g '^FERRY-GUEST READY' 60)
log "$ready"
case $ready in
*" fill=128 pages=32768 profile=mix dirty=20 wss=64 "*) ;;
*) die "unexpected READY line: $ready" ;;
esac

out=$(guest_cmd g verify "VERIFY " 60) || exit 1
log "$out"
[ "$out" = "VERIFY OK pages=32768" ] || die "verify: $out"

# Heartbeats advance, and so does the dirty count while dirty=20.
wait_hb_after 0
seq1=$(last_hb seq) dirt1=$(last_hb dirtied) up1=$(last_hb uptime_ms)
wait_hb_after $((seq1 + 3))
seq2=$(last_hb seq) dirt2=$(last_hb dirtied) up2=$(last_hb uptime_ms)
log "heartbeat seq $seq1 -> $seq2, dirtied $dirt1 -> $dirt2, uptime_ms $up1 -> $up2"
[ "$up2" -gt "$up1" ] || die "uptime does not advance"
# 20 MB/s is 4883 pages/s; heartbeats are only 20 ms exact (one tick),
# and on a loaded host TCG delivers timer ticks late, so the guest's uptime
# lags its pacer's clock: three heartbeats, and 20 %.
rate=$(( (dirt2 - dirt1) * 1000 / (up2 - up1) ))
[ "$rate" -gt 3900 ] && [ "$rate" -lt 5900 ] ||
	die "dirtying at $rate pages/s, want ~4883"

out=$(guest_cmd g ping "PONG seq=") || exit 1
log "$out"
[ "${out#PONG seq=}" -ge "$seq2" ] || die "ping: $out"

# The rate changes at run time; 0 stops dirtying.
guest_cmd g "dirty 0" "OK dirty=0" >/dev/null || exit 1
seq3=$(last_hb seq)
wait_hb_after "$seq3"
dirt3=$(last_hb dirtied)
wait_hb_after "$((seq3 + 1))"
[ "$(last_hb dirtied)" -eq "$dirt3" ] || die "still dirtying at dirty=0"
guest_cmd g "dirty 5" "OK dirty=5" >/dev/null || exit 1

refused "dirty fast"
refused "frobnicate"
refused "corrupt 32768"

out=$(guest_cmd g verify "VERIFY " 60) || exit 1
log "after more dirtying: $out"
[ "$out" = "VERIFY OK pages=32768" ] || die "verify: $out"

# A verify that cannot fail proves nothing: damage one page inside the
# working set (still being re-stamped) and one outside it.
guest_cmd g "corrupt 30000" "OK corrupt=30000" >/dev/null || exit 1
guest_cmd g "corrupt 1000" "OK corrupt=1000" >/dev/null || exit 1
out=$("$GUEST_SERIAL" --socket "$WORK/g/serial.sock" --timeout 60 \
	--send verify --expect "VERIFY ") || die "verify: no reply"
log "after corrupting 2 pages: $out"
case $out in
"VERIFY FAIL page=1000 reason="*" bad=2") ;;
*) die "verify missed the corruption: $out" ;;
esac

guest_stop g
log "PASS"
