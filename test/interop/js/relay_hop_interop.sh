#!/usr/bin/env bash
# golemnet's circuit relay v2 hop service <-> js-libp2p clients, on
# 127.0.0.1 only.
#
#   relay_hop_interop.sh [PATH_TO_relay_node]   (or GN_RELAY_NODE=PATH)
#
# relay_node (test/interop/relay/relay_node.c) runs a golemnet node with the
# `relay` component. js node A (relay_peer.mjs --role listen) reserves a slot
# on it and listens through it; js node B (--role dial) dials A's
# /p2p-circuit address: golemnet admits the reservation, opens the stop
# stream to A and splices B's hop stream to it. Checks: A's reservation and
# circuit address; B's ping and a 32 KiB echo through the relay, over a
# connection js sees as limited; an echo past the default 128 KiB data
# limit is cut off (the relay resets the circuit); the relay still serves
# a new circuit afterwards; the same echo through a relay started with
# relay.limit_data=0 goes through.
#
# Output: TAP; skips ("1..0 # SKIP") without node >= 20 and npm, runs
# `npm ci` when node_modules/ is missing. Every process runs under `timeout`;
# the exit trap stops everything it started. KEEP_LOGS=1 keeps the logs.
# shellcheck disable=SC2016  # JS expressions in single quotes
set -u

GN_RELAY_NODE=${1:-${GN_RELAY_NODE:-}}
case $GN_RELAY_NODE in
'' | /*) ;;
*) GN_RELAY_NODE=$PWD/$GN_RELAY_NODE ;;
esac
cd "$(dirname "$0")" || exit 1
NODE=${NODE:-node}
N=0
PASSED=0
FAILED=0
PIDS=()
LOGDIR=

if [ -z "$GN_RELAY_NODE" ] || [ ! -x "$GN_RELAY_NODE" ]; then
	echo "1..0 # SKIP relay_node not given (GN_RELAY_NODE or first argument): '${GN_RELAY_NODE}'"
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
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/gn-relay-interop.XXXXXX")
. ./tap_lib.sh

finish() {
	echo "1..$N"
	echo "# $PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit $?
}

# wait_for PID FILE EXPR: waits (at most 30 s) until EXPR holds on FILE; false if PID died first
wait_for() {
	local pid=$1 file=$2 expr=$3 i
	for ((i = 0; i < 300; i++)); do
		if "$NODE" events.mjs "$file" "$expr" 2>/dev/null; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

echo "TAP version 13"
echo "# golemnet relay <-> js-libp2p clients, logs in $LOGDIR"
if [ ! -d node_modules/@libp2p/circuit-relay-v2 ]; then
	echo "# node_modules incomplete: running npm ci"
	if ! timeout -k 5 300 npm ci --no-audit --no-fund >"$LOGDIR/npm-ci.log" 2>&1; then
		not_ok "npm ci" "$LOGDIR/npm-ci.log"
		finish
	fi
fi
JS=("$NODE" --import ./polyfill.mjs relay_peer.mjs)

# the relay: its one stdout line "listening MA" becomes an event for events.mjs
timeout -k 5 170 "$GN_RELAY_NODE" 41 160 >"$LOGDIR/relay.txt" 2>"$LOGDIR/relay.err" &
RPID=$!
PIDS+=("$RPID")
RADDR=
for ((i = 0; i < 100; i++)); do
	RADDR=$(sed -n 's/^listening //p' "$LOGDIR/relay.txt" | head -n 1)
	[ -n "$RADDR" ] && break
	sleep 0.1
done
if [ -z "$RADDR" ]; then
	not_ok "golemnet relay listens" "$LOGDIR/relay.txt" "$LOGDIR/relay.err"
	finish
fi
echo "# relay at $RADDR"

timeout -k 5 170 "${JS[@]}" --role listen --relay "$RADDR" --timeout 30 >"$LOGDIR/a.out" 2>"$LOGDIR/a.err" &
APID=$!
PIDS+=("$APID")
if wait_for "$APID" "$LOGDIR/a.out" 'find("reserved")'; then
	ok "js reserves a slot on golemnet's relay and listens through it"
else
	not_ok "js reserves a slot on golemnet's relay and listens through it" "$LOGDIR/a.out" "$LOGDIR/a.err" "$LOGDIR/relay.err"
	finish
fi
TARGET=$(get "$LOGDIR/a.out" 'find("reserved").addr')
check "the circuit address is the relay's address with /p2p-circuit/p2p/<A>" "$LOGDIR/a.out" \
	"find('reserved').addr === '$RADDR/p2p-circuit/p2p/' + find('reserved').peer_id"

timeout -k 5 60 "${JS[@]}" --role dial --target "$TARGET" --pings 3 --echo-bytes 32768 \
	>"$LOGDIR/b1.out" 2>"$LOGDIR/b1.err"
check "js dials js through golemnet's relay: 3 pings and a 32 KiB echo" "$LOGDIR/b1.out" \
	"find('done') && find('done').pings === 3 && find('done').echo_ok === true" "$LOGDIR/b1.err" "$LOGDIR/a.err"
check "js sees the relayed connection as limited (the relay's Limit)" "$LOGDIR/b1.out" \
	"find('done') && find('done').limited === true"

timeout -k 5 60 "${JS[@]}" --role dial --target "$TARGET" --pings 1 --echo-bytes 300000 \
	>"$LOGDIR/b2.out" 2>"$LOGDIR/b2.err"
check "an echo past the 128 KiB data limit is cut off by the relay" "$LOGDIR/b2.out" \
	"find('failed') !== undefined && find('done') === undefined" "$LOGDIR/b2.err"

timeout -k 5 60 "${JS[@]}" --role dial --target "$TARGET" --pings 1 --echo-bytes 1024 \
	>"$LOGDIR/b3.out" 2>"$LOGDIR/b3.err"
check "the relay serves a new circuit after the reset one" "$LOGDIR/b3.out" \
	"find('done') && find('done').echo_ok === true" "$LOGDIR/b3.err"

# the control: the same echo through a relay without a data limit goes through
timeout -k 5 100 "$GN_RELAY_NODE" 42 90 relay.limit_data=0 >"$LOGDIR/relay2.txt" 2>"$LOGDIR/relay2.err" &
PIDS+=("$!")
R2=
for ((i = 0; i < 100; i++)); do
	R2=$(sed -n 's/^listening //p' "$LOGDIR/relay2.txt" | head -n 1)
	[ -n "$R2" ] && break
	sleep 0.1
done
timeout -k 5 100 "${JS[@]}" --role listen --relay "$R2" --timeout 30 >"$LOGDIR/a2.out" 2>"$LOGDIR/a2.err" &
A2PID=$!
PIDS+=("$A2PID")
if [ -n "$R2" ] && wait_for "$A2PID" "$LOGDIR/a2.out" 'find("reserved")'; then
	timeout -k 5 60 "${JS[@]}" --role dial --target "$(get "$LOGDIR/a2.out" 'find("reserved").addr')" \
		--pings 1 --echo-bytes 300000 >"$LOGDIR/b4.out" 2>"$LOGDIR/b4.err"
	check "with relay.limit_data=0 the same 300000-byte echo goes through" "$LOGDIR/b4.out" \
		"find('done') && find('done').echo_ok === true" "$LOGDIR/b4.err" "$LOGDIR/a2.err"
else
	not_ok "with relay.limit_data=0 the same 300000-byte echo goes through" "$LOGDIR/relay2.err" "$LOGDIR/a2.err"
fi

finish
