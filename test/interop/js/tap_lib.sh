# Shared by the js interop scripts: TAP lines, event checks and the
# clean-up of every process a script started. Source it after setting
# LOGDIR, PIDS, N, PASSED, FAILED and NODE. tap_require_js may be called
# before (it only needs NODE and GN_CLI).
# shellcheck shell=bash

# tap_require_js MODULE...: exits with a TAP skip line ("1..0 # SKIP ...")
# unless GN_CLI is an executable, NODE is node >= 20 and each MODULE (for
# example @libp2p/tls) is installed in node_modules/ (run from this directory).
tap_require_js() {
	if [ -z "${GN_CLI:-}" ] || [ ! -x "$GN_CLI" ]; then
		echo "1..0 # SKIP golemnet binary not given (GN_CLI or first argument): '${GN_CLI:-}'"
		exit 0
	fi
	if ! command -v "$NODE" >/dev/null 2>&1; then
		echo "1..0 # SKIP node not found"
		exit 0
	fi
	local major m
	major=$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null)
	if ! [ "${major:-0}" -ge 20 ] 2>/dev/null; then
		echo "1..0 # SKIP node >= 20 needed (found $("$NODE" --version 2>/dev/null))"
		exit 0
	fi
	for m in "$@"; do
		if [ ! -d "node_modules/$m" ]; then
			echo "1..0 # SKIP node_modules/$m missing (run npm ci in $(pwd))"
			exit 0
		fi
	done
}

tap_cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	PIDS=()
	if [ "${KEEP_LOGS:-0}" = 1 ]; then
		echo "# logs kept in $LOGDIR"
	else
		rm -rf "$LOGDIR"
	fi
}
trap tap_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ok() {
	N=$((N + 1))
	PASSED=$((PASSED + 1))
	echo "ok $N - $1"
}

# not_ok NAME [LOG...]: a failed check, with the tail of each log
not_ok() {
	N=$((N + 1))
	FAILED=$((FAILED + 1))
	echo "not ok $N - $1"
	shift
	local f
	for f in "$@"; do
		[ -f "$f" ] || continue
		echo "#   --- last lines of $(basename "$f")"
		tail -n 8 "$f" | cut -c1-400 | sed 's/^/#   /'
	done
}

# check NAME FILE EXPR [LOGS...]: one TAP line from an events.mjs query
check() {
	local name=$1 file=$2 expr=$3
	shift 3
	if "$NODE" events.mjs "$file" "$expr"; then
		ok "$name"
	else
		not_ok "$name" "$file" "$@"
	fi
}

# get FILE EXPR: print a value from an event log
get() {
	"$NODE" events.mjs --print "$1" "$2" 2>/dev/null
}

# ---- processes (need LOGDIR, PIDS, RUN_TIMEOUT, LONG_TIMEOUT, START_TIMEOUT)

# finish: the TAP plan and totals; exits 0 when nothing failed
finish() {
	echo "1..$N"
	echo "# $PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit $?
}

remove_pid() {
	local p new=()
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || new+=("$p")
	done
	PIDS=("${new[@]}")
}

# stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL; sets STOP_RC (the exit status)
stop_pid() {
	local pid=$1 i
	STOP_RC=255
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null
			STOP_RC=$?
			remove_pid "$pid"
			return 0
		fi
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	remove_pid "$pid"
	return 1
}

# wait_event PID FILE EXPR [WORD]: waits (START_TIMEOUT tenths of a second at
# most) until EXPR holds on FILE; false if PID died first. With WORD, node
# (events.mjs) runs only once FILE contains WORD: a node start-up per poll
# costs about 2 s of CPU while js-libp2p loads beside it.
wait_event() {
	local pid=$1 file=$2 expr=$3 word=${4:-} i
	for ((i = 0; i < START_TIMEOUT; i++)); do
		if { [ -z "$word" ] || grep -q -- "$word" "$file" 2>/dev/null; } &&
			"$NODE" events.mjs "$file" "$expr" 2>/dev/null; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# start_bg NAME CMD...: runs CMD in the background under timeout; sets BG_PID
start_bg() {
	local name=$1
	shift
	timeout -k 5 "$LONG_TIMEOUT" "$@" >"$LOGDIR/$name.out" 2>"$LOGDIR/$name.err" &
	BG_PID=$!
	PIDS+=("$BG_PID")
}

# run NAME CMD...: runs CMD to completion (bounded); sets RC
run() {
	local name=$1
	shift
	timeout -k 5 "$RUN_TIMEOUT" "$@" >"$LOGDIR/$name.out" 2>"$LOGDIR/$name.err"
	RC=$?
}
