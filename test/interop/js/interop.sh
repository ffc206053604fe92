#!/usr/bin/env bash
# golemnet <-> js-libp2p interop, on 127.0.0.1 only.
#
#   interop.sh [PATH_TO_golemnet]      (or GN_CLI=PATH; meson passes GN_CLI)
#
# For each muxer (yamux, mplex), over Noise, in both directions:
#   golemnet listener (`golemnet node`, default components) <- js dialer
#   (peer.mjs --muxer MUX), and js listener (--muxer MUX) <- golemnet dialer
#   (`golemnet ping|echo|perf`, default components):
#   connect with the negotiated security and muxer seen on both sides,
#   identify both ways (protocols and listen addresses), ping, echo of
#   ECHO_BYTES on ECHO_STREAMS concurrent streams, perf PERF_BYTES each way,
#   a wrong /p2p/ id refused both ways; an identify push from js (yamux); a
#   js reader that stalls against
#   golemnet's echo server (golemnet's RSS stays bounded, it keeps serving
#   other connections); a clean exit on SIGTERM.
# Then golemnet <-> golemnet over ECIES only, with each muxer (ping, echo,
# perf, small), and an ECIES-only dialer against a default node.
#
# Output: TAP, one line per check, "# ..." comments with the measured figures,
# a final "N passed, N failed"; exit status non-zero on any failure. Skips
# ("1..0 # SKIP") when node or npm is missing or node is older than 20. Runs
# `npm ci` when node_modules/ is missing. Every process runs under `timeout`;
# the exit trap stops everything it started.
#
# Environment: GN_CLI, NODE (default node), PERF_BYTES (104857600),
# ECHO_BYTES (1048576), ECHO_STREAMS (16), MUXERS ("yamux mplex"),
# STALL_RSS_MAX_KB (growth bound while stalled, default 32768),
# KEEP_LOGS=1 keeps the log directory.
# shellcheck disable=SC2016,SC2317  # JS expressions in single quotes; trap handler
set -u

GN_CLI=${1:-${GN_CLI:-}}
case $GN_CLI in
'' | /*) ;;
*) GN_CLI=$PWD/$GN_CLI ;;
esac
cd "$(dirname "$0")" || exit 1
NODE=${NODE:-node}
PERF_BYTES=${PERF_BYTES:-104857600}
ECHO_BYTES=${ECHO_BYTES:-1048576}
ECHO_STREAMS=${ECHO_STREAMS:-16}
MUXERS=${MUXERS:-yamux mplex}
STALL_BYTES=$((64 * 1024 * 1024))
STALL_RSS_MAX_KB=${STALL_RSS_MAX_KB:-32768}
RUN_TIMEOUT=120   # seconds, bound for one dial-side process
LONG_TIMEOUT=400  # seconds, bound for a listener
START_TIMEOUT=150 # tenths of a second to wait for a listener

N=0
PASSED=0
FAILED=0
PIDS=()
LOGDIR=

if [ -z "$GN_CLI" ] || [ ! -x "$GN_CLI" ]; then
	echo "1..0 # SKIP golemnet binary not given (GN_CLI or first argument): '${GN_CLI}'"
	exit 0
fi
if ! command -v "$NODE" >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "1..0 # SKIP node or npm not found"
	exit 0
fi
NODE_MAJOR=$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null)
if ! [ "${NODE_MAJOR:-0}" -ge 20 ] 2>/dev/null; then
	echo "1..0 # SKIP node >= 20 needed (found $("$NODE" --version 2>/dev/null))"
	exit 0
fi

LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/gn-interop.XXXXXX")

. ./tap_lib.sh

# check_rc NAME GOT WANT [LOGS...]
check_rc() {
	local name=$1 got=$2 want=$3
	shift 3
	if [ "$got" = "$want" ]; then
		ok "$name"
	else
		not_ok "$name (exit $got, want $want)" "$@"
	fi
}

JS=("$NODE" --import ./polyfill.mjs peer.mjs)
GN=("$GN_CLI" --json)

# The golemnet process under a `timeout` process.
child_of() {
	local c
	c=$(ps -o pid= --ppid "$1" 2>/dev/null | head -n 1 | tr -d ' ')
	echo "${c:-$1}"
}

rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

mux_id() {
	case $1 in
	yamux) echo /yamux/1.0.0 ;;
	mplex) echo /mplex/6.7.0 ;;
	*) echo unknown ;;
	esac
}

echo "TAP version 13"
echo "# golemnet <-> js-libp2p interop, logs in $LOGDIR"
echo "# golemnet: $GN_CLI ($("$GN_CLI" version 2>/dev/null)); node $("$NODE" --version)"
if [ ! -d node_modules ]; then
	echo "# node_modules missing: running npm ci"
	if ! timeout -k 5 300 npm ci --no-audit --no-fund >"$LOGDIR/npm-ci.log" 2>&1; then
		not_ok "npm ci" "$LOGDIR/npm-ci.log"
		finish
	fi
fi
echo "# libp2p $("$NODE" -p 'require("./node_modules/libp2p/package.json").version' 2>/dev/null)"

JS_PROTOS='["/echo/1.0.0","/ipfs/id/1.0.0","/ipfs/ping/1.0.0","/perf/1.0.0"]'
GN_PROTOS='["/echo/1.0.0","/ipfs/id/1.0.0","/ipfs/ping/1.0.0","/perf/1.0.0"]'
GN_DIAL_PROTOS='["/ipfs/id/1.0.0","/ipfs/ping/1.0.0"]'

# ids of the fixed key seeds (golemnet and peer.mjs derive the same keys)
run seed-ids "$GN_CLI" id --key-seed 9
WRONG_ID=$(head -n 1 "$LOGDIR/seed-ids.out")
run seed-js "$GN_CLI" id --key-seed 1
SEED1_ID=$(head -n 1 "$LOGDIR/seed-js.out")
run seed1-js "${JS[@]}" --key-seed 1 --print-id
check "key seed 1: golemnet and js derive the same peer id" "$LOGDIR/seed1-js.out" \
	"find('peer_id')?.peer_id === '$SEED1_ID'"

for MUX in $MUXERS; do
	MUX_ID=$(mux_id "$MUX")

	# ================= golemnet listener <- js dialer =================
	G=gn-listener-$MUX
	# its RSS is measured: keep an ASan build's quarantine of freed memory small
	start_bg "$G" env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8" \
		"${GN[@]}" node --listen /ip4/127.0.0.1/tcp/0 --key-seed 11 --echo --perf
	GPID=$BG_PID
	if ! wait_event "$GPID" "$LOGDIR/$G.out" 'find("listening")'; then
		not_ok "$MUX: golemnet node listens" "$LOGDIR/$G.out" "$LOGDIR/$G.err"
		stop_pid "$GPID"
		continue
	fi
	check "$MUX: golemnet node prints one listening line with /p2p/ addresses" "$LOGDIR/$G.out" \
		"ev[0].event === 'listening' && all('listening').length === 1 && ev[0].addrs.length === 1 && ev[0].addrs.every(a => a.startsWith('/ip4/127.0.0.1/tcp/') && a.endsWith('/p2p/' + ev[0].peer_id))"
	GADDR=$(get "$LOGDIR/$G.out" 'find("listening").addrs[0]')
	GID=$(get "$LOGDIR/$G.out" 'find("listening").peer_id')
	GBARE=${GADDR%/p2p/*}
	GN_PROC=$(child_of "$GPID")

	D=js-dialer-$MUX
	run "$D" "${JS[@]}" --listen /ip4/127.0.0.1/tcp/0 --key-seed 2 --muxer "$MUX" --dial "$GADDR" \
		--identify --ping 3 --echo-bytes "$ECHO_BYTES" --echo-streams "$ECHO_STREAMS" \
		--perf-upload "$PERF_BYTES" --perf-download "$PERF_BYTES" --exit-after-actions --timeout 100
	DOUT=$LOGDIR/$D.out
	DERR=$LOGDIR/$D.err
	DID=$(get "$DOUT" 'find("listening")?.peer_id')
	DBARE=$(get "$DOUT" 'find("listening")?.addrs[0]')
	DBARE=${DBARE%/p2p/*}
	check "$MUX: js -> golemnet: js connects over /noise with $MUX_ID" "$DOUT" \
		"ev.some(e => e.event === 'connected' && e.peer_id === '$GID' && e.muxer === '$MUX_ID' && e.encryption === '/noise')" "$DERR"
	check "$MUX: js -> golemnet: golemnet reports the inbound channel (/noise, $MUX_ID, addresses)" "$LOGDIR/$G.out" \
		"ev.some(e => e.event === 'channel_opened' && e.direction === 'inbound' && e.peer_id === '$DID' && e.security === '/noise' && e.muxer === '$MUX_ID' && e.local_addr === '$GBARE' && e.remote_addr.startsWith('/ip4/127.0.0.1/tcp/'))"
	check "$MUX: js -> golemnet: js identifies golemnet (protocols, listen addrs, a signed peer record js verified)" "$DOUT" \
		"(r => r != null && r.peer_id === '$GID' && $GN_PROTOS.every(p => r.protocols.includes(p)) && r.listen_addrs.includes('$GBARE') && r.agent_version.startsWith('golemnet/') && r.signed_peer_record === true)(find('identify'))" "$DERR"
	check "$MUX: js -> golemnet: golemnet identifies js (protocols, listen addrs)" "$LOGDIR/$G.out" \
		"ev.some(r => r.event === 'identify' && r.ok === true && r.peer_id === '$DID' && $JS_PROTOS.every(p => r.protocols.includes(p)) && r.addrs.includes('$DBARE') && r.agent_version.startsWith('js-libp2p/'))"
	check "$MUX: js -> golemnet: ping x3" "$DOUT" \
		"all('ping').length === 3 && all('ping').every(e => e.peer_id === '$GID' && e.rtt_ms >= 0)" "$DERR"
	check "$MUX: js -> golemnet: echo $ECHO_BYTES bytes on $ECHO_STREAMS concurrent streams" "$DOUT" \
		"ev.some(e => e.event === 'echo' && e.ok === true && e.bytes === $ECHO_BYTES && e.streams === $ECHO_STREAMS)" "$DERR"
	check "$MUX: js -> golemnet: perf $PERF_BYTES bytes up and down" "$DOUT" \
		"ev.some(e => e.event === 'perf' && e.upload_bytes === $PERF_BYTES && e.download_bytes === $PERF_BYTES && e.upload_s > 0 && e.download_s > 0)" "$DERR"
	if get "$DOUT" 'find("perf")' >/dev/null; then
		echo "# perf js -> golemnet $MUX: $(get "$DOUT" '(p => `upload ${p.upload_bytes} B in ${p.upload_s} s = ${p.upload_mbit_s} Mbit/s, download ${p.download_bytes} B in ${p.download_s} s = ${p.download_mbit_s} Mbit/s`)(find("perf"))')"
		echo "# echo js -> golemnet $MUX: $(get "$DOUT" '(e => `${e.streams} x ${e.bytes} B in ${e.seconds} s`)(find("echo"))')"
	fi
	if [ "$RC" -eq 0 ] && get "$DOUT" 'find("actions_done")' >/dev/null; then
		ok "$MUX: js -> golemnet: js dialer finishes its actions and exits 0"
	else
		not_ok "$MUX: js -> golemnet: js dialer finishes its actions and exits 0 (rc=$RC)" "$DOUT" "$DERR"
	fi

	# --- a wrong /p2p/ id is refused (js dials golemnet under another id)
	W=js-wrongid-$MUX
	run "$W" "${JS[@]}" --key-seed 3 --muxer "$MUX" --dial "$GBARE/p2p/$WRONG_ID" --expect-fail --timeout 30
	run seed3 "${JS[@]}" --key-seed 3 --print-id
	W3ID=$(get "$LOGDIR/seed3.out" 'find("peer_id").peer_id')
	if [ "$RC" -eq 0 ] && get "$LOGDIR/$W.out" 'find("dial_failed")' >/dev/null &&
		! get "$LOGDIR/$W.out" 'find("connection_open")' >/dev/null; then
		ok "$MUX: js -> golemnet: a dial with a wrong /p2p/ id is refused"
		echo "# $(get "$LOGDIR/$W.out" 'find("dial_failed").error' | cut -c1-200)"
	else
		not_ok "$MUX: js -> golemnet: a dial with a wrong /p2p/ id is refused (rc=$RC)" "$LOGDIR/$W.out" "$LOGDIR/$W.err"
	fi
	check "$MUX: js -> golemnet: golemnet opened no channel for the refused dialer" "$LOGDIR/$G.out" \
		"!ev.some(e => e.event === 'channel_opened' && e.peer_id === '$W3ID')"

	# --- identify push, js -> golemnet: js starts handling a protocol after
	# the connection was identified and pushes its new protocol list on
	# /ipfs/id/push/1.0.0 (golemnet announces it); golemnet's peer store
	# takes it on the same channel (one channel_opened for that peer)
	if [ "$MUX" = yamux ]; then
		Q=js-push-$MUX
		run "$Q" "${JS[@]}" --key-seed 6 --muxer "$MUX" --dial "$GADDR" --identify --identify-push \
			--late-protocol /golemnet-test/late/1.0.0 --late-wait-ms 3000 --exit-after-actions --timeout 30
		run seed6 "${JS[@]}" --key-seed 6 --print-id
		QID=$(get "$LOGDIR/seed6.out" 'find("peer_id").peer_id')
		check "$MUX: js -> golemnet: golemnet's identify announces /ipfs/id/push/1.0.0" "$LOGDIR/$Q.out" \
			"(r => r != null && r.protocols.includes('/ipfs/id/push/1.0.0'))(find('identify'))" "$LOGDIR/$Q.err"
		check "$MUX: js -> golemnet: golemnet takes js's identify push (a protocol added after connecting)" "$LOGDIR/$G.out" \
			"ev.some(r => r.event === 'identify' && r.ok === true && r.peer_id === '$QID' && r.protocols.includes('/golemnet-test/late/1.0.0') && r.protocols.includes('/ipfs/id/push/1.0.0') && $JS_PROTOS.every(p => r.protocols.includes(p))) && all('channel_opened').filter(e => e.peer_id === '$QID').length === 1" "$LOGDIR/$Q.out" "$LOGDIR/$Q.err"
	fi

	# --- a js reader that stalls against golemnet's echo server
	RSS0=$(rss_kb "$GN_PROC")
	S=js-stall-$MUX
	start_bg "$S" "${JS[@]}" --key-seed 4 --muxer "$MUX" --dial "$GADDR" \
		--stall-read --stall-bytes "$STALL_BYTES" --stall-wait-ms 2000 --stall-hold-ms 6000 \
		--exit-after-actions --timeout 60
	SPID=$BG_PID
	if wait_event "$SPID" "$LOGDIR/$S.out" 'find("stall")'; then
		RSS_MAX=$(rss_kb "$GN_PROC")
		# another connection is served while the stalled stream is held open
		P=js-during-stall-$MUX
		run "$P" "${JS[@]}" --key-seed 5 --muxer "$MUX" --dial "$GADDR" --ping 1 --echo-bytes 65536 --exit-after-actions --timeout 30
		R=$(rss_kb "$GN_PROC")
		[ "${R:-0}" -gt "${RSS_MAX:-0}" ] && RSS_MAX=$R
		check "$MUX: stalled js reader: golemnet still serves another connection" "$LOGDIR/$P.out" \
			"all('ping').length === 1 && find('echo')?.ok === true" "$LOGDIR/$P.err"
		if [ "$MUX" = yamux ]; then
			check "$MUX: stalled js reader: js's writes block (flow control) or the stream resets before $STALL_BYTES bytes" "$LOGDIR/$S.out" \
				"(s => s != null && (s.blocked === true || s.reset != null) && s.accepted < $STALL_BYTES)(find('stall'))" "$LOGDIR/$S.err"
		else
			check "$MUX: stalled js reader: the stream is reset (no flow control in mplex)" "$LOGDIR/$S.out" \
				"(s => s != null && s.reset != null)(find('stall'))" "$LOGDIR/$S.err"
		fi
		echo "# stall $MUX: $(get "$LOGDIR/$S.out" '(s => `js wrote ${s.written} B, golemnet accepted ${s.accepted} B, blocked=${s.blocked}, reset=${s.reset} (${s.reset_by})`)(find("stall"))' | cut -c1-300)"
		GROWTH=$((${RSS_MAX:-0} - ${RSS0:-0}))
		echo "# stall $MUX: golemnet VmRSS ${RSS0:-?} kB before, at most ${RSS_MAX:-?} kB while stalled (growth $GROWTH kB, bound $STALL_RSS_MAX_KB kB)"
		if [ -n "$RSS0" ] && [ -n "$RSS_MAX" ] && [ "$GROWTH" -lt "$STALL_RSS_MAX_KB" ]; then
			ok "$MUX: stalled js reader: golemnet's memory stays bounded (+$GROWTH kB < $STALL_RSS_MAX_KB kB for $STALL_BYTES bytes offered)"
		else
			not_ok "$MUX: stalled js reader: golemnet's memory stays bounded (+$GROWTH kB)"
		fi
	else
		not_ok "$MUX: stalled js reader reports" "$LOGDIR/$S.out" "$LOGDIR/$S.err"
	fi
	wait "$SPID" 2>/dev/null
	remove_pid "$SPID"

	# --- clean exit on SIGTERM
	if stop_pid "$GPID" && [ "$STOP_RC" -eq 0 ]; then
		ok "$MUX: golemnet node exits 0 on SIGTERM"
	else
		not_ok "$MUX: golemnet node exits 0 on SIGTERM (rc=$STOP_RC)" "$LOGDIR/$G.out" "$LOGDIR/$G.err"
	fi
	check "$MUX: golemnet node: no error lines, every channel line complete" "$LOGDIR/$G.out" \
		"!ev.some(e => e.event === 'error') && all('channel_opened').every(e => e.security && e.muxer && e.direction && e.local_addr && e.remote_addr)"

	# ================= js listener <- golemnet dialer =================
	L=js-listener-$MUX
	start_bg "$L" "${JS[@]}" --listen /ip4/127.0.0.1/tcp/0 --key-seed 1 --muxer "$MUX"
	LPID=$BG_PID
	if ! wait_event "$LPID" "$LOGDIR/$L.out" 'find("listening")'; then
		not_ok "$MUX: js listener starts" "$LOGDIR/$L.out" "$LOGDIR/$L.err"
		stop_pid "$LPID"
		continue
	fi
	LOUT=$LOGDIR/$L.out
	LADDR=$(get "$LOUT" 'find("listening").addrs[0]')
	LID=$(get "$LOUT" 'find("listening").peer_id')
	LBARE=${LADDR%/p2p/*}

	# ping (after identify), with a listen address of its own for js's identify
	P=gn-ping-$MUX
	run "$P" "${GN[@]}" ping "$LADDR" --count 3 --identify --listen /ip4/127.0.0.1/tcp/0 --key-seed 12 --timeout 60
	POUT=$LOGDIR/$P.out
	PID12=$(get "$POUT" 'find("listening")?.peer_id')
	PBARE=$(get "$POUT" 'find("listening")?.addrs[0]')
	PBARE=${PBARE%/p2p/*}
	check_rc "$MUX: golemnet -> js: golemnet ping exits 0" "$RC" 0 "$POUT" "$LOGDIR/$P.err"
	check "$MUX: golemnet -> js: golemnet reports the outbound channel (/noise, $MUX_ID, addresses)" "$POUT" \
		"ev.some(e => e.event === 'channel_opened' && e.direction === 'outbound' && e.peer_id === '$LID' && e.security === '/noise' && e.muxer === '$MUX_ID' && e.remote_addr === '$LBARE')"
	check "$MUX: golemnet -> js: js sees the inbound connection with $MUX_ID" "$LOUT" \
		"ev.some(e => e.event === 'connection_open' && e.direction === 'inbound' && e.peer_id === '$PID12' && e.muxer === '$MUX_ID' && e.encryption === '/noise')"
	check "$MUX: golemnet -> js: golemnet identifies js (protocols, listen addrs)" "$POUT" \
		"ev.some(r => r.event === 'identify' && r.ok === true && r.peer_id === '$LID' && $JS_PROTOS.every(p => r.protocols.includes(p)) && r.addrs.includes('$LBARE'))"
	check "$MUX: golemnet -> js: js identifies golemnet (protocols, listen addrs)" "$LOUT" \
		"ev.some(r => r.event === 'peer_identify' && r.peer_id === '$PID12' && $GN_DIAL_PROTOS.every(p => r.protocols.includes(p)) && r.listen_addrs.includes('$PBARE'))" "$LOGDIR/$L.err"
	check "$MUX: golemnet -> js: ping x3" "$POUT" \
		"all('ping').length === 3 && all('ping').every(e => e.peer_id === '$LID' && e.rtt_ms > 0)"

	E=gn-echo-$MUX
	run "$E" "${GN[@]}" echo "$LADDR" --bytes "$ECHO_BYTES" --streams "$ECHO_STREAMS" --key-seed 12 --timeout 60
	check_rc "$MUX: golemnet -> js: golemnet echo exits 0" "$RC" 0 "$LOGDIR/$E.out" "$LOGDIR/$E.err"
	check "$MUX: golemnet -> js: echo $ECHO_BYTES bytes on $ECHO_STREAMS concurrent streams" "$LOGDIR/$E.out" \
		"ev.some(e => e.event === 'echo' && e.ok === true && e.bytes === $ECHO_BYTES && e.streams === $ECHO_STREAMS)" "$LOGDIR/$E.err"
	echo "# echo golemnet -> js $MUX: $(get "$LOGDIR/$E.out" '(e => `${e.streams} x ${e.bytes} B in ${e.seconds} s`)(find("echo"))')"

	F=gn-perf-$MUX
	run "$F" "${GN[@]}" perf "$LADDR" --upload-bytes "$PERF_BYTES" --download-bytes "$PERF_BYTES" --key-seed 12 --timeout 100
	check_rc "$MUX: golemnet -> js: golemnet perf exits 0" "$RC" 0 "$LOGDIR/$F.out" "$LOGDIR/$F.err"
	check "$MUX: golemnet -> js: perf $PERF_BYTES bytes up and down" "$LOGDIR/$F.out" \
		"ev.some(e => e.event === 'perf' && e.upload_bytes === $PERF_BYTES && e.download_bytes === $PERF_BYTES && e.upload_s > 0 && e.download_s > 0)" "$LOGDIR/$F.err"
	if get "$LOGDIR/$F.out" 'find("perf")' >/dev/null; then
		echo "# perf golemnet -> js $MUX: $(get "$LOGDIR/$F.out" '(p => `upload ${p.upload_bytes} B in ${p.upload_s} s = ${p.upload_mbit_s} Mbit/s, download ${p.download_bytes} B in ${p.download_s} s = ${p.download_mbit_s} Mbit/s`)(find("perf"))')"
	fi

	W=gn-wrongid-$MUX
	run "$W" "${GN[@]}" ping "$LBARE/p2p/$WRONG_ID" --key-seed 13 --timeout 30
	WRC=$RC
	run seed13 "$GN_CLI" id --key-seed 13
	G13=$(head -n 1 "$LOGDIR/seed13.out")
	RC=$WRC
	check_rc "$MUX: golemnet -> js: a dial with a wrong /p2p/ id fails (exit 1)" "$RC" 1 "$LOGDIR/$W.out" "$LOGDIR/$W.err"
	check "$MUX: golemnet -> js: the wrong /p2p/ id is reported (GN_EPEERID), no channel opened" "$LOGDIR/$W.out" \
		"ev.some(e => e.event === 'error' && e.what === 'dial' && e.error === 'GN_EPEERID') && !ev.some(e => e.event === 'channel_opened')"
	check "$MUX: golemnet -> js: js opened no connection for the refused dialer" "$LOUT" \
		"!ev.some(e => e.event === 'connection_open' && e.peer_id === '$G13')"

	stop_pid "$LPID"

	# ================= golemnet <-> golemnet, ECIES only =================
	G=gn-ecies-$MUX
	start_bg "$G" "${GN[@]}" node --security ecies --muxer "$MUX" --key-seed 21 --echo --perf
	GPID=$BG_PID
	if ! wait_event "$GPID" "$LOGDIR/$G.out" 'find("listening")'; then
		not_ok "$MUX: ECIES-only golemnet node listens" "$LOGDIR/$G.out" "$LOGDIR/$G.err"
		stop_pid "$GPID"
		continue
	fi
	GADDR=$(get "$LOGDIR/$G.out" 'find("listening").addrs[0]')
	E_SEC=/golem/ecies/1.0.0
	run gn-ecies-ping-$MUX "${GN[@]}" ping "$GADDR" --count 3 --security ecies --muxer "$MUX" --key-seed 22 --timeout 30
	check "$MUX: ECIES: golemnet -> golemnet ping x3 over $E_SEC with $MUX_ID" "$LOGDIR/gn-ecies-ping-$MUX.out" \
		"all('ping').length === 3 && ev.some(e => e.event === 'channel_opened' && e.security === '$E_SEC' && e.muxer === '$MUX_ID')" "$LOGDIR/gn-ecies-ping-$MUX.err"
	run gn-ecies-echo-$MUX "${GN[@]}" echo "$GADDR" --bytes 262144 --streams 4 --security ecies --muxer "$MUX" --key-seed 22 --timeout 30
	check "$MUX: ECIES: echo 256 KiB on 4 streams" "$LOGDIR/gn-ecies-echo-$MUX.out" \
		"ev.some(e => e.event === 'echo' && e.ok === true && e.streams === 4)" "$LOGDIR/gn-ecies-echo-$MUX.err"
	run gn-ecies-perf-$MUX "${GN[@]}" perf "$GADDR" --upload-bytes 4194304 --download-bytes 4194304 --security ecies --muxer "$MUX" --key-seed 22 --timeout 30
	check "$MUX: ECIES: perf 4 MiB up and down" "$LOGDIR/gn-ecies-perf-$MUX.out" \
		"ev.some(e => e.event === 'perf' && e.upload_bytes === 4194304 && e.download_bytes === 4194304)" "$LOGDIR/gn-ecies-perf-$MUX.err"
	check "$MUX: ECIES: the listener saw every channel over $E_SEC with $MUX_ID" "$LOGDIR/$G.out" \
		"all('channel_opened').length >= 3 && all('channel_opened').every(e => e.security === '$E_SEC' && e.muxer === '$MUX_ID' && e.direction === 'inbound')"
	stop_pid "$GPID"
done

# An ECIES-only dialer against a node offering its defaults (Noise preferred)
G=gn-default
start_bg "$G" "${GN[@]}" node --key-seed 31 --echo
GPID=$BG_PID
if wait_event "$GPID" "$LOGDIR/$G.out" 'find("listening")'; then
	GADDR=$(get "$LOGDIR/$G.out" 'find("listening").addrs[0]')
	run gn-ecies-to-default "${GN[@]}" echo "$GADDR" --bytes 65536 --streams 2 --security ecies --muxer mplex --key-seed 32 --timeout 30
	check "defaults: an ECIES + mplex only dialer connects to a default node and echoes" "$LOGDIR/gn-ecies-to-default.out" \
		"ev.some(e => e.event === 'echo' && e.ok === true) && ev.some(e => e.event === 'channel_opened' && e.security === '/golem/ecies/1.0.0' && e.muxer === '/mplex/6.7.0')" "$LOGDIR/gn-ecies-to-default.err"
	run gn-default-dial "${GN[@]}" ping "$GADDR" --key-seed 33 --timeout 30
	check "defaults: two default golemnet peers pick Noise and yamux" "$LOGDIR/gn-default-dial.out" \
		"ev.some(e => e.event === 'channel_opened' && e.security === '/noise' && e.muxer === '/yamux/1.0.0') && all('ping').length === 1"
else
	not_ok "defaults: golemnet node listens" "$LOGDIR/$G.out" "$LOGDIR/$G.err"
fi
stop_pid "$GPID"

finish
