#!/usr/bin/env bash
# js <-> js self-test of the interop peer (peer.mjs), on 127.0.0.1 only.
#
# For each muxer (yamux, mplex): a listener and dialers over Noise, checking
# connect, identify both ways, ping, echo (1 MiB x 16 concurrent streams),
# perf (100 MiB each way), refusal of a wrong /p2p/ id, a reader that stalls,
# and a clean exit on SIGTERM.  Prints TAP and a final "N passed, N failed".
#
# Environment: NODE (node binary, default node), PERF_BYTES (default 104857600),
# ECHO_BYTES (default 1048576), ECHO_STREAMS (default 16), MUXERS (default
# "yamux mplex"), KEEP_LOGS=1 keeps the log directory.
# shellcheck disable=SC2016,SC2317  # JS template strings in single quotes; trap handler
set -u

cd "$(dirname "$0")" || exit 1
NODE=${NODE:-node}
PERF_BYTES=${PERF_BYTES:-104857600}
ECHO_BYTES=${ECHO_BYTES:-1048576}
ECHO_STREAMS=${ECHO_STREAMS:-16}
MUXERS=${MUXERS:-yamux mplex}
STALL_BYTES=$((64 * 1024 * 1024))
DIAL_TIMEOUT=300      # seconds, bound for one dialer process
START_TIMEOUT=150     # tenths of a second to wait for a listener

LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/gn-js-selftest.XXXXXX")
PIDS=()
N=0
PASSED=0
FAILED=0

. ./tap_lib.sh

finish() {
	echo "1..$N"
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit $?
}

peer() {
	"$NODE" --import ./polyfill.mjs peer.mjs "$@"
}

# start_listener NAME ARGS...: sets LISTENER_PID; waits for the listening event
start_listener() {
	local name=$1
	shift
	# run node directly (not through a shell function) so $! is node itself
	"$NODE" --import ./polyfill.mjs peer.mjs --listen /ip4/127.0.0.1/tcp/0 "$@" \
		>"$LOGDIR/$name.out" 2>"$LOGDIR/$name.err" &
	LISTENER_PID=$!
	PIDS+=("$LISTENER_PID")
	local i
	for ((i = 0; i < START_TIMEOUT; i++)); do
		if "$NODE" events.mjs "$LOGDIR/$name.out" 'find("listening")' 2>/dev/null; then
			return 0
		fi
		kill -0 "$LISTENER_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# run_dialer NAME ARGS...: runs a dialer to completion (bounded); sets DIAL_RC
run_dialer() {
	local name=$1
	shift
	timeout -k 5 "$DIAL_TIMEOUT" "$NODE" --import ./polyfill.mjs peer.mjs "$@" \
		>"$LOGDIR/$name.out" 2>"$LOGDIR/$name.err"
	DIAL_RC=$?
}

# stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL; returns 0 if it exited by itself
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 1
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null
			return 0
		fi
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 1
}

echo "# js-libp2p interop peer self-test (js <-> js), logs in $LOGDIR"

if ! command -v "$NODE" >/dev/null 2>&1; then
	not_ok "node is available ($NODE)"
	finish
fi
echo "# node $("$NODE" --version)"
if [ ! -d node_modules ]; then
	echo "# node_modules missing: running npm ci"
	if ! npm ci --no-audit --no-fund >"$LOGDIR/npm-ci.log" 2>&1; then
		not_ok "npm ci" "$LOGDIR/npm-ci.log"
		finish
	fi
fi
echo "# libp2p $("$NODE" -p 'require("./node_modules/libp2p/package.json").version' 2>/dev/null)"

# key seed 1 must give this peer id (golemnet's tests rely on the same derivation)
SEED1_ID=12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X
peer --key-seed 1 --print-id >"$LOGDIR/seed1.out" 2>"$LOGDIR/seed1.err"
check "key seed 1 gives $SEED1_ID" "$LOGDIR/seed1.out" "find('peer_id')?.peer_id === '$SEED1_ID'" "$LOGDIR/seed1.err"

peer --key-seed 9 --print-id >"$LOGDIR/seed9.out" 2>/dev/null
WRONG_ID=$(get "$LOGDIR/seed9.out" 'find("peer_id").peer_id')

for MUX in $MUXERS; do
	case $MUX in
	yamux) MUX_ID=/yamux/1.0.0 ;;
	mplex) MUX_ID=/mplex/6.7.0 ;;
	*)
		not_ok "$MUX: known muxer"
		continue
		;;
	esac
	L=listener-$MUX
	if ! start_listener "$L" --key-seed 1 --muxer "$MUX"; then
		not_ok "$MUX: listener starts" "$LOGDIR/$L.out" "$LOGDIR/$L.err"
		continue
	fi
	ok "$MUX: listener starts"
	LPID=$LISTENER_PID
	LADDR=$(get "$LOGDIR/$L.out" 'find("listening").addrs[0]')
	LID=$(get "$LOGDIR/$L.out" 'find("listening").peer_id')
	LBARE=${LADDR%/p2p/*}

	# --- main dialer: also listens, so the listener can see its listen address
	D=dialer-$MUX
	run_dialer "$D" --listen /ip4/127.0.0.1/tcp/0 --key-seed 2 --muxer "$MUX" --dial "$LADDR" \
		--identify --ping 3 --echo-bytes "$ECHO_BYTES" --echo-streams "$ECHO_STREAMS" \
		--perf-upload "$PERF_BYTES" --perf-download "$PERF_BYTES" --exit-after-actions
	DOUT=$LOGDIR/$D.out
	DERR=$LOGDIR/$D.err
	DID=$(get "$DOUT" 'find("listening")?.peer_id')
	DBARE=$(get "$DOUT" 'find("listening")?.addrs[0]')
	DBARE=${DBARE%/p2p/*}
	PROTOS='["/echo/1.0.0","/ipfs/id/1.0.0","/ipfs/ping/1.0.0","/perf/1.0.0"]'

	check "$MUX: dialer connects over /noise with $MUX_ID" "$DOUT" \
		"ev.some(e => e.event === 'connected' && e.peer_id === '$LID' && e.muxer === '$MUX_ID' && e.encryption === '/noise')" "$DERR"
	check "$MUX: listener sees the inbound connection with $MUX_ID" "$LOGDIR/$L.out" \
		"ev.some(e => e.event === 'connection_open' && e.direction === 'inbound' && e.peer_id === '$DID' && e.muxer === '$MUX_ID' && e.encryption === '/noise')"
	check "$MUX: dialer identifies listener (protocols, listen addrs)" "$DOUT" \
		"(() => { const r = find('identify'); return r != null && r.peer_id === '$LID' && $PROTOS.every(p => r.protocols.includes(p)) && r.listen_addrs.includes('$LBARE') && typeof r.agent_version === 'string' })()" "$DERR"
	check "$MUX: listener identifies dialer (protocols, listen addrs)" "$LOGDIR/$L.out" \
		"ev.some(r => r.event === 'peer_identify' && r.peer_id === '$DID' && $PROTOS.every(p => r.protocols.includes(p)) && r.listen_addrs.includes('$DBARE'))" "$LOGDIR/$L.err"
	check "$MUX: ping x3" "$DOUT" \
		"all('ping').length === 3 && all('ping').every(e => e.peer_id === '$LID' && e.rtt_ms >= 0)" "$DERR"
	check "$MUX: echo $ECHO_BYTES bytes on $ECHO_STREAMS concurrent streams" "$DOUT" \
		"ev.some(e => e.event === 'echo' && e.ok === true && e.bytes === $ECHO_BYTES && e.streams === $ECHO_STREAMS)" "$DERR"
	check "$MUX: perf $PERF_BYTES bytes up and down" "$DOUT" \
		"ev.some(e => e.event === 'perf' && e.upload_bytes === $PERF_BYTES && e.download_bytes === $PERF_BYTES && e.upload_s > 0 && e.download_s > 0)" "$DERR"
	PERF=$(get "$DOUT" 'find("perf")')
	if [ -n "$PERF" ]; then
		echo "# perf js->js $MUX: $(get "$DOUT" '(p => `upload ${p.upload_bytes} B in ${p.upload_s} s = ${p.upload_mbit_s} Mbit/s, download ${p.download_bytes} B in ${p.download_s} s = ${p.download_mbit_s} Mbit/s`)(find("perf"))')"
		echo "# echo js->js $MUX: $(get "$DOUT" '(e => `${e.streams} x ${e.bytes} B in ${e.seconds} s`)(find("echo"))')"
	fi
	if [ "$DIAL_RC" -eq 0 ] && get "$DOUT" 'find("actions_done")' >/dev/null; then
		ok "$MUX: dialer finishes its actions and exits 0"
	else
		not_ok "$MUX: dialer finishes its actions and exits 0 (rc=$DIAL_RC)" "$DOUT" "$DERR"
	fi

	# --- a wrong /p2p/ id is refused
	W=wrongid-$MUX
	run_dialer "$W" --key-seed 3 --muxer "$MUX" --dial "$LBARE/p2p/$WRONG_ID" --expect-fail
	WID=$(get "$LOGDIR/$W.out" 'find("connection_open")?.peer_id')
	if [ "$DIAL_RC" -eq 0 ] && get "$LOGDIR/$W.out" 'find("dial_failed")' >/dev/null && [ -z "$WID" ]; then
		ok "$MUX: dial with a wrong /p2p/ id is refused"
		echo "# $(get "$LOGDIR/$W.out" 'find("dial_failed").error')"
	else
		not_ok "$MUX: dial with a wrong /p2p/ id is refused (rc=$DIAL_RC)" "$LOGDIR/$W.out" "$LOGDIR/$W.err"
	fi
	peer --key-seed 3 --print-id >"$LOGDIR/seed3.out" 2>/dev/null
	W3ID=$(get "$LOGDIR/seed3.out" 'find("peer_id").peer_id')
	check "$MUX: listener opened no connection for the refused dialer" "$LOGDIR/$L.out" \
		"!ev.some(e => e.event === 'connection_open' && e.peer_id === '$W3ID')"

	# --- a reader that stalls: bounded buffering, then the listener still serves
	S=stall-$MUX
	run_dialer "$S" --key-seed 4 --muxer "$MUX" --dial "$LADDR" --stall-read \
		--stall-bytes "$STALL_BYTES" --stall-wait-ms 2000 --exit-after-actions
	if [ "$MUX" = yamux ]; then
		# flow control: the writer blocks (or a side resets) before STALL_BYTES
		check "$MUX: stalled reader: writer blocked or stream reset before $STALL_BYTES bytes" "$LOGDIR/$S.out" \
			"(s => s != null && (s.blocked === true || s.reset != null) && s.accepted < $STALL_BYTES)(find('stall'))" "$LOGDIR/$S.err"
	else
		# mplex has no flow control: a bounded read buffer resets the stream
		check "$MUX: stalled reader: stream reset (no flow control in mplex)" "$LOGDIR/$S.out" \
			"(s => s != null && s.reset != null)(find('stall'))" "$LOGDIR/$S.err"
	fi
	echo "# stall $MUX: $(get "$LOGDIR/$S.out" '(s => `accepted ${s.accepted} B, blocked=${s.blocked}, reset=${s.reset} (${s.reset_by}), read_buffered=${s.read_buffered}`)(find("stall"))')"
	P=after-stall-$MUX
	run_dialer "$P" --key-seed 5 --muxer "$MUX" --dial "$LADDR" --ping 1 --echo-bytes 65536 --exit-after-actions
	check "$MUX: listener still serves after the stall" "$LOGDIR/$P.out" \
		"all('ping').length === 1 && find('echo')?.ok === true" "$LOGDIR/$P.err"

	# --- clean exit on SIGTERM
	if stop_pid "$LPID" && get "$LOGDIR/$L.out" 'find("stopped")' >/dev/null; then
		ok "$MUX: listener exits cleanly on SIGTERM"
	else
		not_ok "$MUX: listener exits cleanly on SIGTERM" "$LOGDIR/$L.out" "$LOGDIR/$L.err"
	fi
	NEW=()
	for p in "${PIDS[@]}"; do
		[ "$p" = "$LPID" ] || NEW+=("$p")
	done
	PIDS=("${NEW[@]}")
done

finish
