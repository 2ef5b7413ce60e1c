#!/bin/bash
# ferry-bench itself works: `--quick` runs native-unix and ferry on loopback,
# writes every output, and each run's guest verified OK on the target; then a
# small disk scenario, whose images must compare equal. This checks the
# instrument, not the speed.
#   bench_smoke.sh BUILD_DIR
set -u
BUILD=$1
BENCH=$BUILD/bench/ferry-bench
for tool in qemu-system-x86_64 socat; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done
for f in "$BENCH" "$BUILD/agent/ferryd" "$BUILD/cli/ferryctl" "$BUILD/guest/ferry-guest.elf" "$BUILD/guest/guest-serial"; do
	[ -e "$f" ] || { echo "FAIL: $f missing (build first)" >&2; exit 1; }
done
OUT=$(mktemp -d /tmp/ferry-bench-smoke.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
die() {
	echo "FAIL: $*" >&2
	for f in "$OUT"/bench.log "$OUT"/summary.md; do [ -f "$f" ] && { echo "--- $f ---" >&2; tail -n 40 "$f" >&2; }; done
	exit 1
}

timeout 240 "$BENCH" --quick --out "$OUT" > "$OUT/bench.log" 2>&1 || die "ferry-bench --quick exited $?"
for f in results.jsonl results.csv summary.md; do
	[ -s "$OUT/$f" ] || die "$f missing or empty"
done
if command -v gnuplot >/dev/null; then
	for f in time.png pause.png; do
		[ -s "$OUT/$f" ] || die "$f missing although gnuplot is installed"
	done
fi
for m in native-unix ferry; do
	grep -q "^| $m | 1/1 |" "$OUT/summary.md" || die "summary has no successful $m row"
done
[ "$(wc -l < "$OUT/results.jsonl")" -eq 2 ] || die "expected 2 result lines"
[ "$(wc -l < "$OUT/results.csv")" -eq 3 ] || die "expected a header and 2 CSV rows"
if command -v jq >/dev/null; then
	jq -e -s 'all(.ok and .verified and .pauseMs >= 0 and .e2eMs > 0 and .wireBytes > 0)' \
		"$OUT/results.jsonl" >/dev/null || die "a run did not verify: $(cat "$OUT/results.jsonl")"
else
	[ "$(grep -c '"ok":true,"verified":true' "$OUT/results.jsonl")" -eq 2 ] || die "a run did not verify"
fi
cat "$OUT/summary.md"

# The disk workload: a small local disk (raw, 64 MiB, 16 MiB filled) through
# the native NBD mirror and through ferry; the guest does not write to it,
# so each run must end with qemu-img compare finding the images identical.
if command -v qemu-img >/dev/null; then
	D=$OUT/disk
	timeout 240 "$BENCH" --modes native-unix,ferry --mem 128 --append "fill=32 profile=mix" \
		--disk-mib 64 --disk-fill-mib 16 --repeats 1 --out "$D" > "$OUT/bench.log" 2>&1 ||
		die "ferry-bench with a disk exited $?"
	for m in native-unix ferry; do
		grep -q "^| $m | 1/1 |" "$D/summary.md" || die "disk summary has no successful $m row"
	done
	grep -q "disk MiB" "$D/summary.md" || die "disk summary has no disk column"
	if command -v jq >/dev/null; then
		jq -e -s 'length == 2 and all(.ok and .verified and .diskCheck == "compare" and
			.diskTotal == 67108864 and .diskDataBytes == 16777216 and .wireBytes > .diskDataBytes)' \
			"$D/results.jsonl" >/dev/null || die "a disk run did not check out: $(cat "$D/results.jsonl")"
	else
		[ "$(grep -c '"diskCheck":"compare"' "$D/results.jsonl")" -eq 2 ] || die "a disk run was not compared"
	fi
	cat "$D/summary.md"
else
	echo "qemu-img not installed: disk scenario skipped"
fi
echo "PASS"
