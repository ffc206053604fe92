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
