#!/bin/bash
# A short, time-boxed fuzzing run of every harness in fuzz/ (docs/fuzzing.md).
#
#   scripts/fuzz.sh [SECONDS]    seconds per harness (default 10)
#
# Builds with clang, libFuzzer, ASan and UBSan into ./build-fuzz (or
# $FERRY_FUZZ_BUILD), then runs each fuzz-NAME for SECONDS starting from the
# committed seeds in fuzz/corpus/NAME. New inputs go to BUILD/corpus/NAME
# (the committed corpus is never written), crashing inputs to
# BUILD/crashes/NAME-*. Prints the executions per harness; exits 1 if any
# harness found a crash, a leak, undefined behaviour or a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-10}"
case "$secs" in
'' | *[!0-9]*) echo "usage: $0 [seconds per harness]" >&2; exit 2 ;;
esac
build="${FERRY_FUZZ_BUILD:-build-fuzz}"

command -v clang >/dev/null || scripts/setup.sh >/dev/null # installs clang

# Every fuzz/NAME.c but the replay driver is a harness (fuzz/CMakeLists.txt).
harnesses=$(cd fuzz && ls -- *.c | sed -n 's/\.c$//p' | grep -vx replay)
targets=$(for h in $harnesses; do printf 'fuzz-%s ' "$h"; done)

echo "== building into $build (clang, libFuzzer, ASan+UBSan)"
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_FUZZ=ON >/dev/null
# shellcheck disable=SC2086 # one word per target
cmake --build "$build" -j"${FERRY_JOBS:-$(nproc)}" --target $targets >/dev/null

export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export ASAN_OPTIONS="detect_leaks=1"
mkdir -p "$build/crashes"
failed=""
printf '%-14s %12s %10s  %s\n' harness execs exec/s result > "$build/fuzz-summary.txt"
for h in $harnesses; do
	corpus="$build/corpus/$h"
	log="$build/fuzz-$h.log"
	mkdir -p "$corpus"
	echo "== fuzz-$h for ${secs}s"
	result=ok
	if ! "$build/fuzz/fuzz-$h" -max_total_time="$secs" -timeout=10 \
		-artifact_prefix="$build/crashes/$h-" -print_final_stats=1 \
		"$corpus" "fuzz/corpus/$h" >"$log" 2>&1; then
		result="FAILED (see $log and $build/crashes/)"
		failed="$failed $h"
		tail -n 30 "$log" >&2
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	printf '%-14s %12s %10s  %s\n' "$h" "${execs:-?}" "${rate:-?}" "$result" >> "$build/fuzz-summary.txt"
done
cat "$build/fuzz-summary.txt"
if [ -n "$failed" ]; then
	echo "fuzz: failures in:$failed" >&2
	exit 1
fi
