#!/bin/bash
# Installs what ferry needs on Debian 12 (idempotent) and builds it into
# ./build (or $FERRY_BUILD). Usage: scripts/setup.sh [extra cmake args]
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS="build-essential cmake pkg-config gcc-multilib qemu-system-x86 qemu-utils
      liburing-dev liblz4-dev libzstd-dev libjson-c-dev libssl-dev libyaml-dev libcmocka-dev
      libmicrohttpd-dev libcurl4-openssl-dev jq socat iproute2 curl gnuplot-nox"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "== installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq $missing >/dev/null
fi

# ---- web console browser test (tests/e2e/console_browser.sh) ---------------
# Debian's chromium, driven by playwright-core from the npm registry (pinned
# in tests/console/package-lock.json); Playwright never downloads a browser.
# npm only when none is there: a nodejs from elsewhere may ship its own.
console_missing=""
for p in chromium nodejs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || console_missing="$console_missing $p"
done
command -v npm >/dev/null || console_missing="$console_missing npm"
if [ -n "$console_missing" ]; then
	echo "== installing:$console_missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq $console_missing >/dev/null
fi
want=$(sed -n 's/.*"playwright-core": "\(.*\)".*/\1/p' tests/console/package.json)
have=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' tests/console/node_modules/playwright-core/package.json 2>/dev/null || true)
if [ "$want" != "$have" ]; then
	echo "== installing playwright-core $want into tests/console"
	(cd tests/console && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
# ---- end of the web console block ---------------------------------------------

BUILD=${FERRY_BUILD:-build}
echo "== building into $BUILD"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
