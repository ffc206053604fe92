#!/usr/bin/env bash
# golemnet <-> js-libp2p circuit relay v2 interop (issue 12), on 127.0.0.1 only.
#
#   relay_interop.sh [PATH_TO_golemnet]      (or GN_CLI=PATH)
#
# Registered in test/interop/meson.build (interop_js_relay). js peers are
# relay_peer.mjs (@libp2p/circuit-relay-v2, pinned in package-lock.json);
# golemnet peers are `golemnet node` (listening through a relay with
# --listen <relay>/p2p-circuit) and one-shot `golemnet echo` / `ping`.
#
# What it checks:
#   A. a js relay carries golemnet: golemnet A reserves at js relay R; golemnet
#      B echoes 50 KB byte-exact through R to A and pings it; a js peer dials
#      A through R (a limited connection) and echoes; golemnet dials a js peer
#      J listening through R and echoes;
#   B. a CONNECT to a peer without a reservation fails, and golemnet names
#      the relay's status (NO_RESERVATION);
#   C. the js relay's data limit ends a circuit: an echo larger than the
#      limit fails, a smaller one through the same relay still works;
#   D. a golemnet relay (the `relay` hop component) carries two js peers and
#      golemnet: js J2 reserves at golemnet relay G, js dials J2 through G
#      and echoes; golemnet dials J2 through G and echoes; (skipped when the
#      hop component is not built);
#   E. relay routing: a golemnet node whose autorelay router names R reserves
#      there by itself, and a golemnet node routing through R reaches it by
#      its bare peer ID.
#
# Output: TAP and a final "N passed, N failed". Skips ("1..0 # SKIP") without
# GN_CLI, node >= 20 and npm. Environment: GN_CLI, NODE, KEEP_LOGS=1.
# shellcheck disable=SC2016,SC2317  # JS expressions in single quotes; trap handler
set -u
GN_CLI=${1:-${GN_CLI:-}}
case $GN_CLI in
'' | /*) ;;
*) GN_CLI=$PWD/$GN_CLI ;;
esac
cd "$(dirname "$0")" || exit 1
NODE=${NODE:-node}
LIFE=240          # seconds, bound for one long-running node
RUN_TIMEOUT=30    # seconds, bound for one one-shot command
START_TIMEOUT=150 # tenths of a second to wait for a node's event
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
if [ ! -d node_modules/@libp2p/circuit-relay-v2 ]; then
	npm ci --no-audit --no-fund >/dev/null 2>&1 || {
		echo "1..0 # SKIP npm ci failed"
		exit 0
	}
fi

LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/gn-relay-interop.XXXXXX")
. ./tap_lib.sh

finish() {
	echo "1..$N"
	echo "# $PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit $?
}

# wait_for FILE EXPR: waits (bounded) until events.mjs EXPR holds on FILE
wait_for() {
	local i
	for ((i = 0; i < START_TIMEOUT; i++)); do
		"$NODE" events.mjs "$1" "$2" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# js_start NAME ARGS...: a long-running relay_peer.mjs (stdin held open)
js_start() {
	local name=$1
	shift
	mkfifo "$LOGDIR/$name.in"
	timeout -k 5 "$LIFE" "$NODE" --import ./polyfill.mjs relay_peer.mjs --timeout "$LIFE" "$@" \
		<"$LOGDIR/$name.in" >"$LOGDIR/$name.out" 2>"$LOGDIR/$name.err" &
	PIDS+=("$!")
	exec {fd}>"$LOGDIR/$name.in"
}

# gn_start NAME ARGS...: a long-running golemnet node
gn_start() {
	local name=$1
	shift
	timeout -k 5 "$LIFE" "$GN_CLI" node --json --log info "$@" \
		>"$LOGDIR/$name.out" 2>"$LOGDIR/$name.err" &
	PIDS+=("$!")
}

# ---- A. a js relay carries golemnet

js_start R --relay-server --listen /ip4/127.0.0.1/tcp/0 --key-seed 1
if ! wait_for "$LOGDIR/R.out" 'find("listening")'; then
	not_ok "js relay starts" "$LOGDIR/R.err"
	finish
fi
R_ADDR=$(get "$LOGDIR/R.out" 'find("listening").addrs[0]')
R_ID=$(get "$LOGDIR/R.out" 'find("listening").peer_id')
ok "js relay R listens at $R_ADDR"

gn_start A --listen /ip4/127.0.0.1/tcp/0 --listen "$R_ADDR/p2p-circuit" --echo
if wait_for "$LOGDIR/A.out" 'find("listening")' &&
	grep -q "circuit: reserved at relay $R_ID" "$LOGDIR/A.err" 2>/dev/null ||
	{ sleep 3 && grep -q "circuit: reserved at relay $R_ID" "$LOGDIR/A.err"; }; then
	ok "golemnet A reserves a slot at js relay R"
else
	not_ok "golemnet A reserves a slot at js relay R" "$LOGDIR/A.err" "$LOGDIR/R.err"
fi
A_ID=$(get "$LOGDIR/A.out" 'find("listening").peer_id')
A_VIA_R="$R_ADDR/p2p-circuit/p2p/$A_ID"
check "golemnet A lists its relayed address" "$LOGDIR/A.out" \
	"find(\"listening\").addrs.includes(\"$A_VIA_R\")"

timeout -k 5 "$RUN_TIMEOUT" "$GN_CLI" echo "$A_VIA_R" --bytes 50000 --json \
	>"$LOGDIR/B_echo.out" 2>"$LOGDIR/B_echo.err"
check "golemnet B echoes 50000 bytes through js relay to golemnet A" "$LOGDIR/B_echo.out" \
	'find("echo")?.ok === true && find("echo").bytes === 50000' "$LOGDIR/B_echo.err" "$LOGDIR/A.err"

timeout -k 5 "$RUN_TIMEOUT" "$GN_CLI" ping "$A_VIA_R" --count 2 --json \
	>"$LOGDIR/B_ping.out" 2>"$LOGDIR/B_ping.err"
check "golemnet B pings golemnet A through js relay" "$LOGDIR/B_ping.out" \
	'find("ping_summary")?.received === 2' "$LOGDIR/B_ping.err"

timeout -k 5 "$RUN_TIMEOUT" "$NODE" --import ./polyfill.mjs relay_peer.mjs --dial "$A_VIA_R" \
	--echo-bytes 20000 --exit-after-actions --timeout 20 >"$LOGDIR/JD.out" 2>"$LOGDIR/JD.err"
check "a js peer dials golemnet A through the relay (limited) and echoes" "$LOGDIR/JD.out" \
	'find("dialed")?.limited === true && find("echo")?.ok === true' "$LOGDIR/JD.err" "$LOGDIR/A.err"

js_start J --listen-relay "$R_ADDR" --key-seed 7
if wait_for "$LOGDIR/J.out" 'all("addrs").some(e => e.relayed.length > 0)'; then
	J_VIA_R=$(get "$LOGDIR/J.out" 'all("addrs").find(e => e.relayed.length > 0).relayed[0]')
	timeout -k 5 "$RUN_TIMEOUT" "$GN_CLI" echo "$J_VIA_R" --bytes 20000 --json \
		>"$LOGDIR/B_echo_j.out" 2>"$LOGDIR/B_echo_j.err"
	check "golemnet echoes through js relay to a js peer listening there" "$LOGDIR/B_echo_j.out" \
		'find("echo")?.ok === true' "$LOGDIR/B_echo_j.err" "$LOGDIR/J.err"
else
	not_ok "js peer J reserves at js relay R" "$LOGDIR/J.err"
fi

# ---- B. no reservation

X_ID=$("$GN_CLI" id --key-seed 4242)
timeout -k 5 "$RUN_TIMEOUT" "$GN_CLI" ping "$R_ADDR/p2p-circuit/p2p/$X_ID" --json \
	>"$LOGDIR/nores.out" 2>"$LOGDIR/nores.err"
if grep -q '"event":"error"' "$LOGDIR/nores.out" && grep -q "NO_RESERVATION" "$LOGDIR/nores.err"; then
	ok "a dial to a peer without a reservation fails with the relay's NO_RESERVATION"
else
	not_ok "a dial to a peer without a reservation fails with the relay's NO_RESERVATION" \
		"$LOGDIR/nores.out" "$LOGDIR/nores.err"
fi

# ---- C. the relay's data limit

js_start RL --relay-server --listen /ip4/127.0.0.1/tcp/0 --key-seed 2 --max-data 32768
if wait_for "$LOGDIR/RL.out" 'find("listening")'; then
	RL_ADDR=$(get "$LOGDIR/RL.out" 'find("listening").addrs[0]')
	gn_start A2 --listen /ip4/127.0.0.1/tcp/0 --listen "$RL_ADDR/p2p-circuit" --echo
	wait_for "$LOGDIR/A2.out" 'find("listening")'
	sleep 1
	A2_ID=$(get "$LOGDIR/A2.out" 'find("listening").peer_id')
	timeout -k 5 "$RUN_TIMEOUT" "$GN_CLI" echo "$RL_ADDR/p2p-circuit/p2p/$A2_ID" --bytes 200000 \
		--json >"$LOGDIR/lim_big.out" 2>"$LOGDIR/lim_big.err"
	check "an echo past the relay's data limit (32 KiB) fails" "$LOGDIR/lim_big.out" \
		'find("echo")?.ok !== true' "$LOGDIR/lim_big.err"
	timeout -k 5 "$RUN_TIMEOUT" "$GN_CLI" echo "$RL_ADDR/p2p-circuit/p2p/$A2_ID" --bytes 2000 \
		--json >"$LOGDIR/lim_small.out" 2>"$LOGDIR/lim_small.err"
	check "... and one within it through the same relay works" "$LOGDIR/lim_small.out" \
		'find("echo")?.ok === true' "$LOGDIR/lim_small.err" "$LOGDIR/A2.err"
else
	not_ok "js relay RL (data limit) starts" "$LOGDIR/RL.err"
fi

# ---- E. relay routing: the autorelay router reserves and routes by peer ID

gn_start AR --listen /ip4/127.0.0.1/tcp/0 --router autorelay \
	--option "autorelay.relay=$R_ADDR" --option autorelay.reserve=always --option autorelay.discover=false
if wait_for "$LOGDIR/AR.out" 'find("listening")' && sleep 2 &&
	grep -q "circuit: reserved at relay $R_ID" "$LOGDIR/AR.err"; then
	ok "the autorelay router reserves at a configured relay by itself"
else
	not_ok "the autorelay router reserves at a configured relay by itself" "$LOGDIR/AR.err"
fi
AR_ID=$(get "$LOGDIR/AR.out" 'find("listening").peer_id')
timeout -k 5 "$RUN_TIMEOUT" "$GN_CLI" ping "$AR_ID" --count 1 --json --router autorelay \
	--option "autorelay.relay=$R_ADDR" --option autorelay.reserve=never \
	--option autorelay.discover=false >"$LOGDIR/AR_ping.out" 2>"$LOGDIR/AR_ping.err"
check "a bare peer ID is reached through the relay the autorelay router names" \
	"$LOGDIR/AR_ping.out" 'find("ping_summary")?.received === 1' "$LOGDIR/AR_ping.err" "$LOGDIR/AR.err"

# ---- D. a golemnet relay carries js peers

if "$GN_CLI" node --help 2>&1 | grep -q -- '--relay'; then
	gn_start G --listen /ip4/127.0.0.1/tcp/0 --relay
	if wait_for "$LOGDIR/G.out" 'find("listening")'; then
		G_ADDR=$(get "$LOGDIR/G.out" 'find("listening").addrs[0]')
		js_start J2 --listen-relay "$G_ADDR" --key-seed 8
		if wait_for "$LOGDIR/J2.out" 'all("addrs").some(e => e.relayed.length > 0)'; then
			ok "a js peer reserves at the golemnet relay"
			J2_VIA_G=$(get "$LOGDIR/J2.out" 'all("addrs").find(e => e.relayed.length > 0).relayed[0]')
			timeout -k 5 "$RUN_TIMEOUT" "$NODE" --import ./polyfill.mjs relay_peer.mjs \
				--dial "$J2_VIA_G" --echo-bytes 20000 --exit-after-actions --timeout 20 \
				>"$LOGDIR/JG.out" 2>"$LOGDIR/JG.err"
			check "a js peer echoes through the golemnet relay to a js peer" "$LOGDIR/JG.out" \
				'find("dialed")?.limited === true && find("echo")?.ok === true' \
				"$LOGDIR/JG.err" "$LOGDIR/G.err" "$LOGDIR/J2.err"
			timeout -k 5 "$RUN_TIMEOUT" "$GN_CLI" echo "$J2_VIA_G" --bytes 20000 --json \
				>"$LOGDIR/BG.out" 2>"$LOGDIR/BG.err"
			check "golemnet echoes through the golemnet relay to a js peer" "$LOGDIR/BG.out" \
				'find("echo")?.ok === true' "$LOGDIR/BG.err" "$LOGDIR/G.err"
			timeout -k 5 "$RUN_TIMEOUT" "$NODE" --import ./polyfill.mjs relay_peer.mjs \
				--dial "$J2_VIA_G" --echo-bytes 200000 --exit-after-actions --timeout 20 \
				>"$LOGDIR/JG_big.out" 2>"$LOGDIR/JG_big.err"
			check "an echo past the golemnet relay's default data limit (128 KiB) is cut off" \
				"$LOGDIR/JG_big.out" 'find("echo")?.ok !== true' "$LOGDIR/JG_big.err" "$LOGDIR/G.err"
			timeout -k 5 "$RUN_TIMEOUT" "$GN_CLI" ping "$J2_VIA_G" --count 1 --json \
				>"$LOGDIR/BG_after.out" 2>"$LOGDIR/BG_after.err"
			check "... and the golemnet relay serves new circuits afterwards" "$LOGDIR/BG_after.out" \
				'find("ping_summary")?.received === 1' "$LOGDIR/BG_after.err" "$LOGDIR/G.err"
		else
			not_ok "a js peer reserves at the golemnet relay" "$LOGDIR/J2.err" "$LOGDIR/G.err"
		fi
	else
		not_ok "golemnet relay G starts" "$LOGDIR/G.err"
	fi
else
	echo "# golemnet has no --relay (hop component not built): part D skipped"
fi

finish
