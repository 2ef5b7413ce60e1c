#!/bin/bash
# docs/log-events.md lists every log event of the sources (scripts/log-events.py).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
want=$(python3 "$root/scripts/log-events.py" "$root") || exit 1
have=$(sed -n '/^<!-- BEGIN GENERATED/,/^<!-- END GENERATED/p' "$root/docs/log-events.md" | sed '1d;$d')
if [ "$want" != "$have" ]; then
	echo "FAIL: docs/log-events.md is out of date with the sources:" >&2
	diff <(echo "$have") <(echo "$want") >&2
	echo "regenerate it: scripts/log-events.py --write" >&2
	exit 1
fi
echo "PASS: $(echo "$want" | tail -n +3 | wc -l) events documented"
