#!/usr/bin/env bash
# golemnet <-> js-libp2p over /tls/1.0.0 (issue 17), on 127.0.0.1 only.
#
#   tls_interop.sh        (GN_CLI from meson: tools/golemnet)
#
# For an Ed25519 and a secp256k1 identity on both sides (RSA too with
# TLS_INTEROP_KEYS="ed25519 secp256k1 rsa"), over TCP + TLS +
# yamux (muxer agreed through ALPN: no multistream round for it):
#   1. a js dialer (tls_peer.mjs) pings a golemnet node (`golemnet node
#      --security tls`): js sees golemnet's peer ID over /tls/1.0.0;
#   2. golemnet pings the same js process, now only listening (one js-libp2p
#      start-up per identity type: `--listen --dial --stay`)
#      (`golemnet ping --security tls`):
#      golemnet's channel is to js's peer ID, security /tls/1.0.0, yamux;
#   3. golemnet dialling the js listener with a wrong /p2p/ ID fails.
#
# Output: TAP. Skips without node >= 20 or node_modules (symlink or
# `npm ci` it: README.md). Every process runs under `timeout`.
set -u

cd "$(dirname "$0")" || exit 1
NODE=${NODE:-node}
RUN_TIMEOUT=60
LONG_TIMEOUT=120
START_TIMEOUT=150
N=0
PASSED=0
FAILED=0
PIDS=()
LOGDIR=

. ./tap_lib.sh
tap_require_js @libp2p/tls
if "$GN_CLI" ping /ip4/127.0.0.1/tcp/9 --security tls --timeout 1 2>&1 | grep -q "not a built-in"; then
	echo "1..0 # SKIP golemnet built without the tls component (-Dtls)"
	exit 0
fi
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/gn-tls-interop.XXXXXX")

GN=("$GN_CLI" --json)
JS=("$NODE" --import ./polyfill.mjs tls_peer.mjs)
echo "TAP version 13"
echo "# golemnet: $GN_CLI; node $("$NODE" --version)"

# TLS_INTEROP_KEYS="ed25519 secp256k1 rsa" adds RSA-2048 identities (~12 s more)
for T in ${TLS_INTEROP_KEYS:-ed25519 secp256k1}; do
	case $T in ed25519) JT=Ed25519 ;; secp256k1) JT=secp256k1 ;; rsa) JT=RSA ;; *) continue ;; esac
	GK=$LOGDIR/gn-$T.key
	run "keygen-$T" "$GN_CLI" keygen --out "$GK" --key-type "$T"
	GID=$("$GN_CLI" id --key "$GK" 2>/dev/null)

	# 1. golemnet node <- js dialer; the same js process then stays as the
	# listener of 2 and 3 (one js-libp2p start-up per identity type, not two)
	G=gn-node-$T
	L=js-$T
	LPID=
	start_bg "$G" "${GN[@]}" node --listen /ip4/127.0.0.1/tcp/0 --key "$GK" --security tls
	GPID=$BG_PID
	if wait_event "$GPID" "$LOGDIR/$G.out" 'find("listening")' listening; then
		GADDR=$(get "$LOGDIR/$G.out" 'find("listening").addrs[0]')
		start_bg "$L" "${JS[@]}" --listen /ip4/127.0.0.1/tcp/0 --dial "$GADDR" --stay \
			--key-type "$JT"
		LPID=$BG_PID
		wait_event "$LPID" "$LOGDIR/$L.out" 'find("done")' done
		check "$T: js -> golemnet: 3 pings over /tls/1.0.0 + yamux, golemnet's peer ID $GID" \
			"$LOGDIR/$L.out" \
			"ev.some(e => e.event === 'connection_open' && e.peer_id === '$GID' && e.encryption === '/tls/1.0.0' && e.muxer === '/yamux/1.0.0') && all('ping').length === 3 && find('done').ok === true" \
			"$LOGDIR/$L.err" "$LOGDIR/$G.err"
		DID=$(get "$LOGDIR/$L.out" 'find("listening")?.peer_id')
		check "$T: js -> golemnet: golemnet's channel is from js's peer ID, early muxer yamux" \
			"$LOGDIR/$G.out" \
			"ev.some(e => e.event === 'channel_opened' && e.direction === 'inbound' && e.peer_id === '$DID' && e.security === '/tls/1.0.0' && e.muxer === '/yamux/1.0.0')" \
			"$LOGDIR/$G.err"
	else
		not_ok "$T: golemnet node with --security tls listens" "$LOGDIR/$G.out" "$LOGDIR/$G.err"
	fi
	stop_pid "$GPID"

	# 2. js listener <- golemnet ping
	if [ -n "$LPID" ] && wait_event "$LPID" "$LOGDIR/$L.out" 'find("listening")' listening; then
		LADDR=$(get "$LOGDIR/$L.out" 'find("listening").addrs[0]')
		LID=$(get "$LOGDIR/$L.out" 'find("listening").peer_id')
		P=gn-ping-$T
		run "$P" "${GN[@]}" ping "$LADDR" --count 3 --key "$GK" --security tls --timeout 30
		if [ "$RC" -eq 0 ]; then
			ok "$T: golemnet -> js: ping exits 0"
		else
			not_ok "$T: golemnet -> js: ping exits 0 (rc=$RC)" "$LOGDIR/$P.out" "$LOGDIR/$P.err" "$LOGDIR/$L.err"
		fi
		check "$T: golemnet -> js: channel to js's peer ID over /tls/1.0.0 + yamux, 3 pings" \
			"$LOGDIR/$P.out" \
			"ev.some(e => e.event === 'channel_opened' && e.direction === 'outbound' && e.peer_id === '$LID' && e.security === '/tls/1.0.0' && e.muxer === '/yamux/1.0.0') && all('ping').length === 3"
		check "$T: golemnet -> js: js sees golemnet's peer ID over /tls/1.0.0" "$LOGDIR/$L.out" \
			"ev.some(e => e.event === 'connection_open' && e.direction === 'inbound' && e.peer_id === '$GID' && e.encryption === '/tls/1.0.0')" "$LOGDIR/$L.err"
	# 3. wrong expected peer ID
		if [ "$T" = ed25519 ]; then
			WRONG=$("$GN_CLI" id --key-seed 77 2>/dev/null)
			BAD=${LADDR%/p2p/*}/p2p/$WRONG
			W=gn-wrong-$T
			run "$W" "${GN[@]}" ping "$BAD" --count 1 --key "$GK" --security tls --timeout 20
			if [ "$RC" -ne 0 ] && grep -q "GN_EPEERID\|$LID" "$LOGDIR/$W.out" "$LOGDIR/$W.err"; then
				ok "$T: golemnet -> js with a wrong /p2p/ ID fails (GN_EPEERID, names $LID)"
			else
				not_ok "$T: golemnet -> js with a wrong /p2p/ ID fails (rc=$RC)" "$LOGDIR/$W.out" "$LOGDIR/$W.err"
			fi
		fi
	else
		not_ok "$T: js TLS listener starts" "$LOGDIR/$L.out" "$LOGDIR/$L.err"
	fi
	[ -n "$LPID" ] && stop_pid "$LPID"
done

echo "1..$N"
echo "# $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
