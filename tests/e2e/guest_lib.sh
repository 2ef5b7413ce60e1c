# Shared helpers for the test-guest e2e scripts (guest_*.sh); sourced, not run.
#
#   guest_lib_init GUEST_ELF GUEST_SERIAL   checks tools (exit 77), makes $WORK
#   guest_start MEM_MIB "APPEND"            boots the guest in the background
#   guest_wait_log REGEX SEC                waits for a line in the serial log
#   guest_cmd LINE EXPECT [SEC]             sends a serial command, prints reply
#   qmp JSON                                one QMP command, prints the reply
#                                           (or fails: use r=$(qmp ..) || exit 1)
#   json_num FIELD <<<"$reply"              the number after "FIELD":
#
# QMP goes through one socat coprocess per QEMU: a command is written as a
# line and the reply is the next line holding "return" or "error" (events
# are skipped). Every wait has a deadline; the EXIT trap kills QEMU and
# removes the temp dir whatever happens.

set -u

die() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*"; }

guest_lib_init() {
	GUEST_ELF=$1
	GUEST_SERIAL=$2
	for tool in qemu-system-x86_64 socat; do
		if ! command -v "$tool" >/dev/null; then
			echo "SKIP: $tool not installed"
			exit 77
		fi
	done
	[ -r "$GUEST_ELF" ] || die "guest kernel $GUEST_ELF missing"
	[ -x "$GUEST_SERIAL" ] || die "guest-serial $GUEST_SERIAL missing"
	WORK=$(mktemp -d /tmp/ferry-guest-test.XXXXXX)
	QEMU_PID=
	trap guest_cleanup EXIT
	trap 'exit 130' INT TERM
}

guest_cleanup() {
	local rc=$?

	if [ -n "${QMP_PID:-}" ]; then
		kill "$QMP_PID" 2>/dev/null
		wait "$QMP_PID" 2>/dev/null
	fi
	if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
		kill "$QEMU_PID" 2>/dev/null
		wait "$QEMU_PID" 2>/dev/null
	fi
	if [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ -f "$WORK/serial.log" ]; then
		echo "--- guest serial log (tail) ---" >&2
		tail -n 20 "$WORK/serial.log" >&2
		[ -s "$WORK/qemu.err" ] && { echo "--- qemu stderr ---" >&2; cat "$WORK/qemu.err" >&2; }
	fi
	rm -rf "$WORK"
	exit $rc
}

# guest_start MEM_MIB "APPEND": QEMU under TCG with the serial port on a
# unix socket (and a logfile, which keeps what is printed while no client
# is connected) and QMP on another.
guest_start() {
	local mem=$1 append=$2 i

	qemu-system-x86_64 -accel tcg -machine pc -m "$mem" -display none \
		-kernel "$GUEST_ELF" -append "$append" \
		-chardev socket,id=ser0,path="$WORK/serial.sock",server=on,wait=off,logfile="$WORK/serial.log" \
		-serial chardev:ser0 \
		-qmp unix:"$WORK/qmp.sock",server=on,wait=off \
		-no-reboot 2>"$WORK/qemu.err" &
	QEMU_PID=$!
	for i in $(seq 100); do
		[ -S "$WORK/qmp.sock" ] && break
		kill -0 "$QEMU_PID" 2>/dev/null || die "QEMU exited at start"
		sleep 0.1
	done
	qmp_open
}

# guest_wait_log REGEX SEC: prints the first matching log line.
guest_wait_log() {
	local re=$1 deadline=$((SECONDS + $2)) line

	while [ $SECONDS -lt $deadline ]; do
		line=$(grep -E -m1 "$re" "$WORK/serial.log" 2>/dev/null) && {
			echo "$line"
			return 0
		}
		kill -0 "$QEMU_PID" 2>/dev/null || die "QEMU exited"
		sleep 0.2
	done
	die "no '$re' in the serial log after $2 s"
}

# guest_cmd LINE EXPECT_PREFIX [SEC]: replies starting with ERR or
# "VERIFY FAIL" fail the test.
guest_cmd() {
	local out

	out=$("$GUEST_SERIAL" --socket "$WORK/serial.sock" --timeout "${3:-30}" \
		--send "$1" --expect "$2" --fail ERR --fail "VERIFY FAIL") ||
		die "guest command '$1': ${out:-no reply}"
	echo "$out"
}

qmp_open() {
	local greeting

	coproc QMP { exec socat - UNIX-CONNECT:"$WORK/qmp.sock"; }
	read -r -t 10 -u "${QMP[0]}" greeting || die "no QMP greeting"
	qmp '{"execute":"qmp_capabilities"}' >/dev/null
}

qmp() {
	local line

	# bash unsets QMP when socat exits, i.e. when QEMU has gone away
	[ -n "${QMP[1]:-}" ] || die "QMP connection lost (QEMU exited?)"
	printf '%s\n' "$1" >&"${QMP[1]}" || die "QMP connection lost"
	while read -r -t 60 -u "${QMP[0]}" line; do
		case $line in
		*'"return"'*) echo "$line"; return 0 ;;
		*'"error"'*) die "QMP $1: $line" ;;
		esac
	done
	die "no QMP reply to $1"
}

# json_num FIELD: reads JSON on stdin, prints the integer value of FIELD.
json_num() {
	grep -o "\"$1\": *[0-9]*" | head -n1 | grep -o '[0-9]*$'
}

json_str() {
	grep -o "\"$1\": *\"[^\"]*\"" | head -n1 | sed 's/.*: *"\(.*\)"/\1/'
}
