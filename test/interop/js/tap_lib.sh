# Shared by selftest.sh and interop.sh: TAP lines, event checks and the
# clean-up of every process a script started. Source it after setting
# LOGDIR, PIDS, N, PASSED, FAILED and NODE.
# shellcheck shell=bash

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
