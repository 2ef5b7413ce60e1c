#!/bin/bash
# ferry-bench itself works: `--quick` runs native-unix and ferry on loopback,
# writes every output, and each run's guest verified OK on the target. This
# checks the instrument, not the speed.
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
echo "PASS"
