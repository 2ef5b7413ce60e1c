#!/bin/bash
# e2e: the test guest's rewrite modes. rewrite=sparse changes a few dozen
# bytes per dirtied page, rewrite=page the whole page; either way the
# guest dirties pages at the set rate, verify recomputes every page, and
# verify catches a corrupted byte.
#
#   guest_sparse.sh GUEST_ELF GUEST_SERIAL
#
# How many bytes a dirtying changes is read from guest RAM itself: two
# pmemsave dumps taken 1 s apart (the VM stopped for each), compared page
# by page. At 20 MB/s a second dirties ~4900 pages of a 16384-page working
# set, so no page is dirtied twice in between.
. "$(dirname "$0")/guest_lib.sh"
guest_lib_init "$@"
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }

# last_hb VM FIELD, wait_hb_after VM SEQ: as in guest_boot.sh
last_hb() {
	guest_log "$1" | grep '^HB ' | tail -n1 | grep -o "$2=[0-9]*" | cut -d= -f2
}

wait_hb_after() {
	local deadline=$((SECONDS + 10)) seq

	while :; do
		seq=$(last_hb "$1" seq)
		[ -n "$seq" ] && [ "$seq" -gt "$2" ] && return 0
		[ $SECONDS -lt $deadline ] || die "$1: no heartbeat after seq=$2"
		sleep 0.1
	done
}

# dump VM FILE: guest RAM 0..160 MiB (kernel, generation table, the region)
dump() {
	qmp "$1" '{"execute":"stop"}' >/dev/null || exit 1
	qmp "$1" "{\"execute\":\"pmemsave\",\"arguments\":{\"val\":0,\"size\":$((160 << 20)),\"filename\":\"$2\"}}" >/dev/null || exit 1
	qmp "$1" '{"execute":"cont"}' >/dev/null || exit 1
}

# changed_bytes A B: "PAGES MEDIAN MAX" over the 4 KiB pages that differ
changed_bytes() {
	python3 - "$1" "$2" <<'PY'
import sys
a = open(sys.argv[1], 'rb').read()
b = open(sys.argv[2], 'rb').read()
n = []
for off in range(0, len(a), 4096):
    x, y = a[off:off + 4096], b[off:off + 4096]
    if x != y:
        d = (int.from_bytes(x, 'little') ^ int.from_bytes(y, 'little')).to_bytes(4096, 'little')
        n.append(4096 - d.count(0))
n.sort()
print(len(n), n[len(n) // 2] if n else 0, n[-1] if n else 0)
PY
}

# one_mode MODE MIN_MEDIAN MAX_MEDIAN: boot, measure, verify, corrupt
one_mode() {
	local mode=$1 vm=$1 ready out seq1 dirt1 up1 seq2 dirt2 up2 rate pages med max

	guest_start "$vm" 256 "fill=128 profile=mix mix=20,40,40 dirty=20 wss=64 hb=500 rewrite=$mode"
	ready=$(guest_wait_log "$vm" '^FERRY-GUEST READY' 60)
	log "$ready"
	case $ready in
	*" fill=128 pages=32768 profile=mix dirty=20 wss=64 "*" rewrite=$mode"*) ;;
	*) die "unexpected READY line: $ready" ;;
	esac

	# The dirty rate counts pages, whatever a dirtying writes in them.
	wait_hb_after "$vm" 0
	seq1=$(last_hb "$vm" seq) dirt1=$(last_hb "$vm" dirtied) up1=$(last_hb "$vm" uptime_ms)
	wait_hb_after "$vm" $((seq1 + 3))
	seq2=$(last_hb "$vm" seq) dirt2=$(last_hb "$vm" dirtied) up2=$(last_hb "$vm" uptime_ms)
	rate=$(( (dirt2 - dirt1) * 1000 / (up2 - up1) ))
	log "$mode: dirtying at $rate pages/s (heartbeats $seq1 -> $seq2)"
	[ "$rate" -gt 3900 ] && [ "$rate" -lt 5900 ] ||
		die "$mode: dirtying at $rate pages/s, want ~4883"

	dump "$vm" "$WORK/a.bin"
	sleep 1   # the interval measured, not a synchronization
	dump "$vm" "$WORK/b.bin"
	read -r pages med max < <(changed_bytes "$WORK/a.bin" "$WORK/b.bin")
	rm -f "$WORK/a.bin" "$WORK/b.bin"
	log "$mode: $pages pages changed in 1 s, bytes changed per page: median $med, max $max"
	[ "$pages" -gt 1000 ] || die "$mode: only $pages pages changed"
	[ "$med" -ge "$2" ] && [ "$med" -le "$3" ] ||
		die "$mode: median $med bytes changed per page, want $2..$3"

	out=$(guest_cmd "$vm" verify "VERIFY " 60) || exit 1
	log "$mode: $out"
	[ "$out" = "VERIFY OK pages=32768" ] || die "$mode verify: $out"

	# Outside the working set (30000) and inside it (1000). A whole-page
	# rewrite would repair page 1000 at its next dirtying: stop first.
	[ "$mode" = page ] && { guest_cmd "$vm" "dirty 0" "OK dirty=0" >/dev/null || exit 1; }
	guest_cmd "$vm" "corrupt 30000" "OK corrupt=30000" >/dev/null || exit 1
	guest_cmd "$vm" "corrupt 1000" "OK corrupt=1000" >/dev/null || exit 1
	# Otherwise the walk goes once round the working set (16384 pages):
	# dirtying page 1000 again must not write over the corrupted byte.
	if [ "$mode" != page ]; then
		seq1=$(last_hb "$vm" seq) dirt1=$(last_hb "$vm" dirtied)
		while :; do
			wait_hb_after "$vm" "$seq1"
			seq1=$(last_hb "$vm" seq)
			[ "$(last_hb "$vm" dirtied)" -gt $((dirt1 + 16384 + 2500)) ] && break
		done
	fi
	out=$("$GUEST_SERIAL" --socket "$WORK/$vm/serial.sock" --timeout 60 \
		--send verify --expect "VERIFY ") || die "verify: no reply"
	log "$mode: after corrupting 2 pages: $out"
	case $out in
	"VERIFY FAIL page=1000 reason=body bad=2") ;;
	*) die "$mode: verify missed the corruption: $out" ;;
	esac
	guest_stop "$vm"
}

# The default rewrites the stamp: its generation and checksum differ, 5-8
# bytes. Sparse, the stamp plus three 8-byte words: at most 40 bytes
# written, ~28 of them differ. A whole page: nearly all 4096 (text pages
# share some bytes by chance).
one_mode stamp 3 8
one_mode sparse 16 40
one_mode page 2000 4096

# A mode the guest does not know is refused, and the default stays.
guest_start bad 64 "fill=16 rewrite=bytes"
ready=$(guest_wait_log bad '^FERRY-GUEST READY' 60)
guest_log bad | grep -q '^FERRY-GUEST WARN bad option rewrite$' ||
	die "rewrite=bytes not refused"
case $ready in
*" rewrite=stamp"*) ;;
*) die "unexpected READY line: $ready" ;;
esac
guest_stop bad
log "PASS"
