# Shared by dht_selftest.sh and dht_interop.sh (sourced after tap_lib.sh):
# dht_peer.mjs nodes driven through FIFOs, one JSON command line at a time.
# Needs NODE, NODE_TIMEOUT, START_TIMEOUT, LOGDIR and tap_lib.sh's counters.
# shellcheck shell=bash

declare -A NODE_PID NODE_FD NODE_ID NODE_ADDR
SEQ=0

finish() {
	echo "1..$N"
	echo "# $PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit $?
}

# js_launch NAME ARGS...: starts dht_peer.mjs with its stdin on a FIFO held
# open by this shell (js_wait NAME then waits for its listening event).
js_launch() {
	local name=$1 fd
	shift
	mkfifo "$LOGDIR/$name.in" || return 1
	timeout -k 5 "$NODE_TIMEOUT" "$NODE" --import ./polyfill.mjs dht_peer.mjs "$@" \
		<"$LOGDIR/$name.in" >"$LOGDIR/$name.out" 2>"$LOGDIR/$name.err" &
	NODE_PID[$name]=$!
	PIDS+=("$!")
	exec {fd}>"$LOGDIR/$name.in"
	NODE_FD[$name]=$fd
}

# js_wait NAME: waits (bounded) for NAME's listening event; sets NODE_ID, NODE_ADDR
js_wait() {
	local name=$1 i
	[ -n "${NODE_PID[$name]:-}" ] || return 1
	for ((i = 0; i < START_TIMEOUT; i++)); do
		if grep -q '^{"event":"listening"' "$LOGDIR/$name.out" 2>/dev/null; then
			NODE_ID[$name]=$(get "$LOGDIR/$name.out" 'find("listening").peer_id')
			NODE_ADDR[$name]=$(get "$LOGDIR/$name.out" 'find("listening").addrs[0]')
			return 0
		fi
		kill -0 "${NODE_PID[$name]}" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# cmd NAME TIMEOUT_MS 'JSON FIELDS': sends {"id":K,"timeout_ms":T,FIELDS} to
# NAME and waits (bounded by T + 5 s) for the reply with id K; the reply line
# is left in $REPLY_FILE (empty if none came).
cmd() {
	local name=$1 tmo=$2 fields=$3 i fd=${NODE_FD[$1]}
	SEQ=$((SEQ + 1))
	REPLY_FILE=$LOGDIR/$name.reply$SEQ
	: >"$REPLY_FILE"
	{ printf '{"id":%d,"timeout_ms":%d,%s}\n' "$SEQ" "$tmo" "$fields" 1>&"$fd"; } 2>/dev/null || return 1
	for ((i = 0; i < tmo / 100 + 50; i++)); do
		if grep -m 1 "^{\"reply\":\"[^\"]*\",\"id\":$SEQ," "$LOGDIR/$name.out" >"$REPLY_FILE" 2>/dev/null; then
			return 0
		fi
		kill -0 "${NODE_PID[$name]}" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# check_reply NAME EXPR [LOGS...]: a TAP line from EXPR over the last reply (r)
check_reply() {
	local name=$1 expr=$2
	shift 2
	check "$name" "$REPLY_FILE" "(r => r != null && ($expr))(ev[0])" "$@"
}

# js_start NAME ARGS...: js_launch, then js_wait
js_start() { js_launch "$@" && js_wait "$1"; }

bare() { echo "${1%/p2p/*}"; }
