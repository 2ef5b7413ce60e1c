#!/bin/bash
# The README's second command: install, build, run the whole suite (unit and
# end-to-end with real QEMU and agents), then under ASan+UBSan the unit tests,
# the fuzz corpora and the e2e tests labelled sanitize (an agent's sanitizer
# report fails them), then a short libFuzzer run of every harness.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
(cd "${FERRY_BUILD:-build}" && ctest --output-on-failure -j2 --timeout 900)
# Sanitizer build: everything that runs host code under ASan+UBSan.
FERRY_BUILD=build-asan scripts/setup.sh -DFERRY_SANITIZE=address,undefined
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j2 --timeout 900 -L sanitize)
# A short, time-boxed fuzz run of every parser of outside input (clang,
# libFuzzer); the committed corpora already ran above as fuzz.replay_*.
scripts/fuzz.sh "${FERRY_FUZZ_SECONDS:-5}"
