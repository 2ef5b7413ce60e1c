# Shared helpers for the test-guest e2e scripts (guest_*.sh); sourced, not run.
#
#   guest_lib_init GUEST_ELF GUEST_SERIAL  checks tools (exit 77), makes $WORK
#   guest_start VM MEM_MIB "APPEND" [QEMU ARGS...]
#                                  boots a guest named VM in the background
#   guest_stop VM                  quits QEMU over QMP and reaps it
#   guest_log VM                   complete lines of VM's serial log
#   guest_wait_log VM REGEX SEC    waits for a line in the serial log
#   guest_cmd VM LINE EXPECT [SEC] sends a serial command, prints the reply
#   qmp VM JSON                    one QMP command, prints the reply line
#   json_num FIELD, json_str FIELD  a field of the JSON on stdin
#
# Failures print "FAIL: ..." and exit. Inside $(...) that exits only the
# subshell, so write r=$(qmp vm ...) || exit 1.
#
# QMP goes through one socat per VM, joined to the shell by two FIFOs (not
# a bash coproc: bash keeps only one coproc at a time). A command is one
# line out; its reply is the next line in holding "return" or "error",
# events are skipped. Every wait has a deadline; the EXIT trap kills every
# QEMU and socat started here and removes $WORK whatever happens.

set -u

declare -A QEMU_PID SOCAT_PID QMP_IN QMP_OUT

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
	trap guest_cleanup EXIT
	trap 'exit 130' INT TERM
}

guest_cleanup() {
	local rc=$? vm pid

	for pid in "${SOCAT_PID[@]}" "${QEMU_PID[@]}"; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
		for vm in "${!QEMU_PID[@]}"; do
			echo "--- $vm: serial log (tail) ---" >&2
			tail -n 20 "$WORK/$vm/serial.log" >&2 2>/dev/null
			if [ -s "$WORK/$vm/qemu.err" ]; then
				echo "--- $vm: qemu stderr ---" >&2
				cat "$WORK/$vm/qemu.err" >&2
			fi
		done
	fi
	rm -rf "$WORK"
	exit $rc
}

# guest_start VM MEM_MIB "APPEND" [QEMU ARGS...]: QEMU under TCG with the
# serial port on a unix socket (plus a logfile, which keeps what is printed
# while no client is connected) and QMP on another.
guest_start() {
	local vm=$1 mem=$2 append=$3 dir=$WORK/$1 i
	shift 3

	mkdir -p "$dir"
	qemu-system-x86_64 -accel tcg -machine pc -m "$mem" -display none \
		-kernel "$GUEST_ELF" -append "$append" \
		-chardev socket,id=ser0,path="$dir/serial.sock",server=on,wait=off,logfile="$dir/serial.log" \
		-serial chardev:ser0 \
		-qmp unix:"$dir/qmp.sock",server=on,wait=off \
		-no-reboot "$@" 2>"$dir/qemu.err" &
	QEMU_PID[$vm]=$!
	for i in $(seq 100); do
		[ -S "$dir/qmp.sock" ] && break
		kill -0 "${QEMU_PID[$vm]}" 2>/dev/null || die "$vm: QEMU exited at start"
		sleep 0.1
	done
	qmp_open "$vm"
}

guest_stop() {
	qmp "$1" '{"execute":"quit"}' >/dev/null || exit 1
	wait "${QEMU_PID[$1]}" 2>/dev/null
	unset "QEMU_PID[$1]"
}

# guest_log VM: the guest writes a byte at a time, so the last line may
# still be growing: it is left out.
guest_log() {
	local data

	data=$(cat "$WORK/$1/serial.log" 2>/dev/null; echo .)
	data=${data%.}
	case $data in
	*$'\n') ;;
	*$'\n'*) data=${data%$'\n'*}$'\n' ;;
	*) data= ;;
	esac
	printf '%s' "$data"
}

# guest_wait_log VM REGEX SEC: prints the first matching line.
guest_wait_log() {
	local vm=$1 re=$2 deadline=$((SECONDS + $3)) line

	while [ $SECONDS -lt $deadline ]; do
		line=$(guest_log "$vm" | grep -E -m1 "$re") && {
			echo "$line"
			return 0
		}
		kill -0 "${QEMU_PID[$vm]}" 2>/dev/null || die "$vm: QEMU exited"
		sleep 0.2
	done
	die "$vm: no '$re' in the serial log after $3 s"
}

# guest_cmd VM LINE EXPECT_PREFIX [SEC]: replies starting with ERR or
# "VERIFY FAIL" fail the test.
guest_cmd() {
	local out

	out=$("$GUEST_SERIAL" --socket "$WORK/$1/serial.sock" --timeout "${4:-30}" \
		--send "$2" --expect "$3" --fail ERR --fail "VERIFY FAIL") ||
		die "$1: guest command '$2': ${out:-no reply}"
	echo "$out"
}

qmp_open() {
	local vm=$1 dir=$WORK/$1 fd greeting

	mkfifo "$dir/qmp.in" "$dir/qmp.out"
	socat - UNIX-CONNECT:"$dir/qmp.sock" <"$dir/qmp.in" >"$dir/qmp.out" &
	SOCAT_PID[$vm]=$!
	# opening a FIFO waits for its other end: socat opens qmp.in first
	exec {fd}>"$dir/qmp.in"
	QMP_IN[$vm]=$fd
	exec {fd}<"$dir/qmp.out"
	QMP_OUT[$vm]=$fd
	read -r -t 10 -u "${QMP_OUT[$vm]}" greeting || die "$vm: no QMP greeting"
	qmp "$vm" '{"execute":"qmp_capabilities"}' >/dev/null || exit 1
}

qmp() {
	local vm=$1 line rc

	# if socat is gone, fail on EPIPE instead of dying of SIGPIPE untrapped
	trap '' PIPE
	printf '%s\n' "$2" >&"${QMP_IN[$vm]}" 2>/dev/null
	rc=$?
	trap - PIPE
	[ $rc -eq 0 ] || die "$vm: QMP connection lost (QEMU exited?)"
	while read -r -t 60 -u "${QMP_OUT[$vm]}" line; do
		case $line in
		*'"return"'*) echo "$line"; return 0 ;;
		*'"error"'*) die "$vm: QMP $2: $line" ;;
		esac
	done
	die "$vm: no QMP reply to $2"
}

# qmp_wait_status VM QUERY WANT SEC [OK_STATES...]: polls QUERY (a command
# name) until its "status" is WANT; any status not in OK_STATES fails.
# Prints the last reply.
qmp_wait_status() {
	local vm=$1 query=$2 want=$3 deadline=$((SECONDS + $4)) r status
	shift 4

	while :; do
		r=$(qmp "$vm" "{\"execute\":\"$query\"}") || exit 1
		status=$(json_str status <<<"$r")
		[ "$status" = "$want" ] && { echo "$r"; return 0; }
		if [ $# -gt 0 ] && [[ " $* " != *" $status "* ]]; then
			die "$vm: $query status $status: $r"
		fi
		[ $SECONDS -lt $deadline ] || die "$vm: $query not $want after $4 s: $r"
		sleep 0.2
	done
}

json_num() {
	grep -o "\"$1\": *[0-9]*" | sed -n '1s/.*: *//p'
}

json_str() {
	grep -o "\"$1\": *\"[^\"]*\"" | sed -n '1s/.*: *"\(.*\)"/\1/p'
}
