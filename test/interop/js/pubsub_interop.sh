#!/usr/bin/env bash
# golemnet <-> js-libp2p pubsub (issue 18), on 127.0.0.1 only.
#
#   pubsub_interop.sh [PATH_TO_golemnet]      (or GN_CLI=PATH; meson passes GN_CLI)
#
# js side: pubsub_peer.mjs (@libp2p/gossipsub or @libp2p/floodsub over TCP,
# Noise, yamux; StrictSign). golemnet side: `golemnet pubsub sub|pub TOPIC`
# (the pubsub component, a multicast channel on /pubsub/TOPIC). For each
# router, gossipsub and floodsub:
#   - js publishes 3 messages, golemnet receives each exactly once, with the
#     js peer as the signed publisher (golemnet verified the signatures:
#     StrictSign refuses anything else);
#   - golemnet publishes 3 messages, js receives each exactly once, signed
#     ("type":"signed") by the golemnet peer.
# Then a mixed gossipsub mesh of 5 golemnet and 5 js nodes, started one
# after the other, each dialling the one before (G0 J0 G1 J1 ... G4 J4) and
# each golemnet node also the golemnet node before it: G4 and J4 publish 3
# messages each, and every node gets every message of the others exactly
# once, signed by its publisher.
#
# Output: TAP. Skips ("1..0 # SKIP") without node >= 20, without the js
# packages in node_modules/ (run `npm ci` here) or without `golemnet pubsub`
# (built without the pubsub component). Every process runs under
# `timeout -k` (those stopped early: tap_lib.sh stop_pid);
# the exit trap stops what it started. KEEP_LOGS=1 keeps the logs.
set -u

GN_CLI=${1:-${GN_CLI:-}}
case $GN_CLI in
'' | /*) ;;
*) GN_CLI=$PWD/$GN_CLI ;;
esac
cd "$(dirname "$0")" || exit 1
NODE=${NODE:-node}
N=0
PASSED=0
FAILED=0
PIDS=()
LOGDIR=

. ./tap_lib.sh
tap_require_js @libp2p/gossipsub @libp2p/floodsub
if ! "$GN_CLI" help pubsub >/dev/null 2>&1; then
	echo "1..0 # SKIP golemnet built without the pubsub component (no 'golemnet pubsub')"
	exit 0
fi

LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/gn-pubsub-interop.XXXXXX")
JS=("$NODE" --no-warnings --import ./polyfill.mjs pubsub_peer.mjs)
COUNT=3

# wait_addr FILE PATTERN: the first match in FILE (15 s at most)
wait_addr() {
	local i a
	for i in $(seq 1 150); do
		a=$(grep -o "$2" "$1" 2>/dev/null | head -1)
		if [ -n "$a" ]; then
			echo "$a"
			return 0
		fi
		sleep 0.1
	done
	return 1
}

ADDR_RE='/ip4/127\.0\.0\.1/tcp/[0-9]*/p2p/[A-Za-z0-9]*'

echo "TAP version 13"
echo "1..19"

for R in gossipsub floodsub; do
	T="golemnet-interop-$R"
	# ---- js publishes, golemnet receives
	timeout -k 5 40 "$GN_CLI" pubsub sub "$T" --router "$R" --listen /ip4/127.0.0.1/tcp/0 \
		--count $COUNT --timeout 30 --option pubsub.heartbeat_ms=300 \
		>"$LOGDIR/gn_sub_$R.out" 2>"$LOGDIR/gn_sub_$R.err" &
	GN_PID=$!
	PIDS+=($GN_PID)
	GN_ADDR=$(wait_addr "$LOGDIR/gn_sub_$R.out" "$ADDR_RE")
	if [ -z "$GN_ADDR" ]; then
		not_ok "$R: golemnet subscriber listens" "$LOGDIR/gn_sub_$R.err"
		not_ok "$R: js -> golemnet skipped"
	else
		timeout -k 5 40 "${JS[@]}" --router "$R" --dial "$GN_ADDR" --key-seed 7 --topic "$T" \
			--publish $COUNT --wait-peers 1 --run-ms 7000 \
			>"$LOGDIR/js_pub_$R.out" 2>"$LOGDIR/js_pub_$R.err"
		wait "$GN_PID"
		GN_RC=$?
		JS_ID=$("$NODE" events.mjs --print "$LOGDIR/js_pub_$R.out" 'find("listening").peer_id')
		check "$R: js published $COUNT messages" "$LOGDIR/js_pub_$R.out" \
			"all('published').length === $COUNT" "$LOGDIR/js_pub_$R.err"
		if [ "$GN_RC" = 0 ] && "$NODE" events.mjs "$LOGDIR/gn_sub_$R.out" "
			(() => { const m = all('message');
			  if (m.length !== $COUNT) return false;
			  for (let i = 0; i < $COUNT; i++)
			    if (m.filter(x => x.data === 'js-7-' + i && x.from === '$JS_ID' && x.topic === '$T').length !== 1) return false;
			  return true })()"; then
			ok "$R: golemnet received each js message exactly once, signed by $JS_ID"
		else
			not_ok "$R: golemnet received each js message exactly once (exit $GN_RC)" \
				"$LOGDIR/gn_sub_$R.out" "$LOGDIR/gn_sub_$R.err" "$LOGDIR/js_pub_$R.out"
		fi
	fi

	# ---- golemnet publishes, js receives
	timeout -k 5 40 "${JS[@]}" --router "$R" --listen /ip4/127.0.0.1/tcp/0 --key-seed 8 --topic "$T" \
		--run-ms 12000 >"$LOGDIR/js_sub_$R.out" 2>"$LOGDIR/js_sub_$R.err" &
	JS_PID=$!
	PIDS+=($JS_PID)
	JS_ADDR=$(wait_addr "$LOGDIR/js_sub_$R.out" "$ADDR_RE")
	if [ -z "$JS_ADDR" ]; then
		not_ok "$R: js subscriber listens" "$LOGDIR/js_sub_$R.err"
		not_ok "$R: golemnet -> js skipped"
		continue
	fi
	timeout -k 5 40 "$GN_CLI" pubsub pub "$T" --router "$R" --dial "$JS_ADDR" --count $COUNT \
		--data gn --linger-ms 1500 --timeout 30 --option pubsub.heartbeat_ms=300 \
		>"$LOGDIR/gn_pub_$R.out" 2>"$LOGDIR/gn_pub_$R.err"
	GN_RC=$?
	GN_ID=$("$NODE" events.mjs --print "$LOGDIR/gn_pub_$R.out" 'find("started").peer_id')
	if [ "$GN_RC" = 0 ] && "$NODE" events.mjs "$LOGDIR/gn_pub_$R.out" \
		"all('published').length === $COUNT"; then
		ok "$R: golemnet published $COUNT messages"
	else
		not_ok "$R: golemnet published $COUNT messages (exit $GN_RC)" \
			"$LOGDIR/gn_pub_$R.out" "$LOGDIR/gn_pub_$R.err"
	fi
	stop_pid "$JS_PID"
	check "$R: js received each golemnet message exactly once, signed by $GN_ID" \
		"$LOGDIR/js_sub_$R.out" "
		(() => { const m = all('message');
		  if (m.length !== $COUNT) return false;
		  for (let i = 0; i < $COUNT; i++)
		    if (m.filter(x => x.data === 'gn-' + i && x.from === '$GN_ID' && x.type === 'signed').length !== 1) return false;
		  return true })()" "$LOGDIR/js_sub_$R.err" "$LOGDIR/gn_pub_$R.err"
done

# ---- a mixed mesh: 5 golemnet + 5 js nodes (gossipsub)
T=golemnet-interop-mixed
MIXED=()   # "kind index" per started node, in order
PREV=      # the address of the node started last
PREV_G=    # the address of the golemnet node started last
STARTED=0
for i in 0 1 2 3 4; do
	# golemnet node Gi: a subscriber, G4 the golemnet publisher: it waits for
	# its three peers (J3, G3 and J4, which starts after it): a peer that
	# subscribes later than the gossip window (3 heartbeats) misses a message
	DIALS=()
	[ -n "$PREV" ] && DIALS+=(--dial "$PREV")
	[ -n "$PREV_G" ] && [ "$PREV_G" != "$PREV" ] && DIALS+=(--dial "$PREV_G")
	if [ $i = 4 ]; then
		timeout -k 5 60 "$GN_CLI" pubsub pub "$T" --listen /ip4/127.0.0.1/tcp/0 "${DIALS[@]}" \
			--count $COUNT --data gn --wait-peers 3 --delay-ms 2000 --linger-ms 6000 \
			--timeout 45 --seed 604 --option pubsub.heartbeat_ms=300 \
			>"$LOGDIR/mixed_g$i.out" 2>"$LOGDIR/mixed_g$i.err" &
	else
		timeout -k 5 60 "$GN_CLI" pubsub sub "$T" --listen /ip4/127.0.0.1/tcp/0 "${DIALS[@]}" \
			--count $((2 * COUNT)) --timeout 45 --seed $((600 + i)) \
			--option pubsub.heartbeat_ms=300 \
			>"$LOGDIR/mixed_g$i.out" 2>"$LOGDIR/mixed_g$i.err" &
	fi
	PIDS+=($!)
	eval "MIXED_PID_g$i=$!"
	A=$(wait_addr "$LOGDIR/mixed_g$i.out" "$ADDR_RE") && STARTED=$((STARTED + 1))
	PREV=$A
	PREV_G=$A
	# js node Ji: a subscriber, J4 the js publisher (key seed 9)
	JSARGS=(--router gossipsub --listen /ip4/127.0.0.1/tcp/0 --key-seed $((20 + i)) --topic "$T"
		--run-ms 40000)
	[ -n "$PREV" ] && JSARGS+=(--dial "$PREV")
	if [ $i = 4 ]; then
		JSARGS=(--router gossipsub --listen /ip4/127.0.0.1/tcp/0 --key-seed 9 --topic "$T"
			--run-ms 40000 --dial "$PREV" --publish $COUNT --wait-peers 1
			--publish-delay-ms 3000)
	fi
	timeout -k 5 60 "${JS[@]}" "${JSARGS[@]}" >"$LOGDIR/mixed_j$i.out" 2>"$LOGDIR/mixed_j$i.err" &
	PIDS+=($!)
	eval "MIXED_PID_j$i=$!"
	A=$(wait_addr "$LOGDIR/mixed_j$i.out" "$ADDR_RE") && STARTED=$((STARTED + 1))
	PREV=$A
done
if [ "$STARTED" = 10 ]; then
	ok "mixed: 5 golemnet and 5 js nodes started and dialled in a line"
else
	not_ok "mixed: only $STARTED of 10 nodes started" "$LOGDIR"/mixed_*.err
fi
# the golemnet subscribers exit after 6 messages, the publisher after its linger
for i in 0 1 2 3 4; do
	eval "wait \$MIXED_PID_g$i"
done
sleep 1
for i in 0 1 2 3 4; do
	eval "stop_pid \$MIXED_PID_j$i"
done
G4_ID=$("$NODE" events.mjs --print "$LOGDIR/mixed_g4.out" 'find("listening").peer_id')
J4_ID=$("$NODE" events.mjs --print "$LOGDIR/mixed_j4.out" 'find("listening").peer_id')
# once_each FILE PREFIX ID: every PREFIX-<i> message from ID exactly once
once_each() {
	echo "(() => { for (let i = 0; i < $COUNT; i++) if (all('message').filter(x => x.data === '$1-' + i && x.from === '$2').length !== 1) return false; return true })()"
}
for i in 0 1 2 3 4; do
	if [ $i = 4 ]; then
		EXPR="$(once_each js-9 "$J4_ID") && all('message').length === $COUNT"
	else
		EXPR="$(once_each js-9 "$J4_ID") && $(once_each gn "$G4_ID") && all('message').length === $((2 * COUNT))"
	fi
	check "mixed: golemnet node G$i got every other publisher's message exactly once" \
		"$LOGDIR/mixed_g$i.out" "$EXPR" "$LOGDIR/mixed_g$i.err"
done
for i in 0 1 2 3 4; do
	if [ $i = 4 ]; then
		EXPR="$(once_each gn "$G4_ID") && all('message').length === $COUNT"
	else
		EXPR="$(once_each js-9 "$J4_ID") && $(once_each gn "$G4_ID") && all('message').length === $((2 * COUNT))"
	fi
	check "mixed: js node J$i got every other publisher's message exactly once, signed" \
		"$LOGDIR/mixed_j$i.out" "$EXPR && all('message').every(x => x.type === 'signed')" \
		"$LOGDIR/mixed_j$i.err"
done

[ "$FAILED" = 0 ]
