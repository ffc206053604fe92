#!/usr/bin/env bash
# golemnet <-> js-libp2p over WebSocket (/ws), on 127.0.0.1 only.
#
#   ws_interop.sh [PATH_TO_golemnet]      (or GN_CLI=PATH; meson passes GN_CLI)
#
# js side: ws_peer.mjs (@libp2p/websockets, Noise, yamux). Both directions:
#   - golemnet dials a js listener on /ip4/127.0.0.1/tcp/0/ws: `golemnet ping`
#     (3 pings) and `golemnet echo` (ECHO_BYTES on 4 streams, bytes checked);
#   - js dials `golemnet node --listen /ip4/127.0.0.1/tcp/0/ws --echo`:
#     3 pings and an echo of ECHO_BYTES checked by js, with Noise and yamux
#     negotiated; golemnet reports the channel's /ws remote address.
# Then the same over /wss with a self-signed certificate (P-256, SAN
# IP:127.0.0.1) the script makes with the openssl CLI: js listens with it
# (an https server; js announces /tls/ws, dialled here as the equivalent
# /wss) and golemnet trusts it through websocket.ca_file; golemnet listens
# with websocket.cert_file/key_file and js trusts it through
# NODE_EXTRA_CA_CERTS; a golemnet dial without the CA is refused (the
# certificate is verified). Skipped (TAP SKIP) without the openssl CLI or
# when golemnet was built without /wss (GN_WS_TLS=0, set by meson; run by
# hand, set it yourself).
# Node 20 has no global WebSocket for dialling: js runs with
# --experimental-websocket (undici's client).
#
# Output: TAP. Skips ("1..0 # SKIP") without node >= 20 or without
# node_modules/ (run `npm ci` here). Every process runs under `timeout`; the
# exit trap stops what it started. KEEP_LOGS=1 keeps the logs.
set -u

GN_CLI=${1:-${GN_CLI:-}}
case $GN_CLI in
'' | /*) ;;
*) GN_CLI=$PWD/$GN_CLI ;;
esac
cd "$(dirname "$0")" || exit 1
NODE=${NODE:-node}
ECHO_BYTES=${ECHO_BYTES:-1048576}
N=0
PASSED=0
FAILED=0
PIDS=()
LOGDIR=

. ./tap_lib.sh
tap_require_js @libp2p/websockets

LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/gn-ws-interop.XXXXXX")

JS=("$NODE" --no-warnings --experimental-websocket --import ./polyfill.mjs ws_peer.mjs)

# wait_addr FILE PATTERN: the first listen address in FILE (15 s at most)
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

echo "TAP version 13"
echo "1..12"

# ---- golemnet dials js
timeout 60 "${JS[@]}" --listen /ip4/127.0.0.1/tcp/0/ws >"$LOGDIR/js_listen.out" 2>"$LOGDIR/js_listen.err" &
PIDS+=($!)
JS_ADDR=$(wait_addr "$LOGDIR/js_listen.out" '/ip4/127\.0\.0\.1/tcp/[0-9]*/ws/p2p/[A-Za-z0-9]*')
if [ -z "$JS_ADDR" ]; then
	not_ok "js listens on /ws" "$LOGDIR/js_listen.err"
else
	ok "js listens on $JS_ADDR"
fi
timeout 30 "$GN_CLI" ping "$JS_ADDR" --count 3 >"$LOGDIR/gn_ping.out" 2>&1
if grep -q 'ping_summary .*sent=3 received=3' "$LOGDIR/gn_ping.out" &&
	grep -q 'channel_opened .*remote_addr=/ip4/127.0.0.1/tcp/[0-9]*/ws .*security=/noise muxer=/yamux/1.0.0' "$LOGDIR/gn_ping.out"; then
	ok "golemnet -> js over /ws: noise + yamux, 3 pings"
	grep -o 'avg_ms=[0-9.]*' "$LOGDIR/gn_ping.out" | sed 's/^/# ping /'
else
	not_ok "golemnet -> js over /ws: noise + yamux, 3 pings" "$LOGDIR/gn_ping.out" "$LOGDIR/js_listen.err"
fi
timeout 60 "$GN_CLI" echo "$JS_ADDR" --bytes "$ECHO_BYTES" --streams 4 >"$LOGDIR/gn_echo.out" 2>&1
if grep -q "^echo ok=true bytes=$ECHO_BYTES streams=4" "$LOGDIR/gn_echo.out"; then
	ok "golemnet -> js over /ws: echo of $ECHO_BYTES bytes on 4 streams"
	grep -o 'seconds=[0-9.]*' "$LOGDIR/gn_echo.out" | sed 's/^/# echo /'
else
	not_ok "golemnet -> js over /ws: echo of $ECHO_BYTES bytes on 4 streams" "$LOGDIR/gn_echo.out" "$LOGDIR/js_listen.err"
fi

# ---- js dials golemnet
timeout 60 "$GN_CLI" node --listen /ip4/127.0.0.1/tcp/0/ws --echo >"$LOGDIR/gn_node.out" 2>&1 &
PIDS+=($!)
GN_ADDR=$(wait_addr "$LOGDIR/gn_node.out" '/ip4/127\.0\.0\.1/tcp/[0-9]*/ws/p2p/[A-Za-z0-9]*')
if [ -z "$GN_ADDR" ]; then
	not_ok "golemnet listens on /ws" "$LOGDIR/gn_node.out"
else
	ok "golemnet listens on $GN_ADDR"
fi
timeout 60 "${JS[@]}" --dial "$GN_ADDR" --ping 3 --echo-bytes "$ECHO_BYTES" >"$LOGDIR/js_dial.out" 2>"$LOGDIR/js_dial.err"
rc=$?
if [ "$rc" = 0 ] && grep -q '"encryption":"/noise"' "$LOGDIR/js_dial.out" &&
	grep -q '"muxer":"/yamux/1.0.0"' "$LOGDIR/js_dial.out" &&
	[ "$(grep -c '"event":"ping"' "$LOGDIR/js_dial.out")" = 3 ]; then
	ok "js -> golemnet over /ws: noise + yamux, 3 pings"
else
	not_ok "js -> golemnet over /ws: noise + yamux, 3 pings (exit $rc)" "$LOGDIR/js_dial.out" "$LOGDIR/js_dial.err" "$LOGDIR/gn_node.out"
fi
if grep -q "\"event\":\"echo\",\"ok\":true,\"bytes\":$ECHO_BYTES" "$LOGDIR/js_dial.out"; then
	ok "js -> golemnet over /ws: echo of $ECHO_BYTES bytes checked by js"
else
	not_ok "js -> golemnet over /ws: echo of $ECHO_BYTES bytes checked by js" "$LOGDIR/js_dial.out" "$LOGDIR/js_dial.err"
fi
if grep -q 'direction=inbound .*remote_addr=/ip4/127.0.0.1/tcp/[0-9]*/ws ' "$LOGDIR/gn_node.out"; then
	ok "golemnet reports the inbound channel's /ws address"
else
	not_ok "golemnet reports the inbound channel's /ws address" "$LOGDIR/gn_node.out"
fi

# ---- /wss both ways
skip_wss() {
	local i
	for i in 1 2 3 4 5; do
		N=$((N + 1))
		echo "ok $N # SKIP $1"
	done
}
CERT=$LOGDIR/cert.pem
KEY=$LOGDIR/key.pem
if [ "${GN_WS_TLS:-1}" = 0 ]; then
	skip_wss "golemnet built without /wss (no OpenSSL libssl)"
elif ! command -v openssl >/dev/null 2>&1; then
	skip_wss "openssl CLI not found"
elif ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$KEY" \
	-out "$CERT" -days 2 -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
	>"$LOGDIR/openssl.log" 2>&1; then
	skip_wss "openssl could not make a certificate"
else
	timeout 60 "${JS[@]}" --listen /ip4/127.0.0.1/tcp/0/wss --cert "$CERT" --key "$KEY" \
		>"$LOGDIR/js_wss.out" 2>"$LOGDIR/js_wss.err" &
	PIDS+=($!)
	JS_WSS=$(wait_addr "$LOGDIR/js_wss.out" '/ip4/127\.0\.0\.1/tcp/[0-9]*/tls/ws/p2p/[A-Za-z0-9]*' | sed 's#/tls/ws/#/wss/#')
	timeout 30 "$GN_CLI" ping "$JS_WSS" --count 3 --option "websocket.ca_file=$CERT" >"$LOGDIR/gn_wss_ping.out" 2>&1
	timeout 60 "$GN_CLI" echo "$JS_WSS" --bytes "$ECHO_BYTES" --streams 4 --option "websocket.ca_file=$CERT" \
		>"$LOGDIR/gn_wss_echo.out" 2>&1
	if grep -q 'ping_summary .*sent=3 received=3' "$LOGDIR/gn_wss_ping.out" &&
		grep -q "^echo ok=true bytes=$ECHO_BYTES streams=4" "$LOGDIR/gn_wss_echo.out"; then
		ok "golemnet -> js over /wss (js's /tls/ws): 3 pings, echo of $ECHO_BYTES bytes on 4 streams"
	else
		not_ok "golemnet -> js over /wss (js's /tls/ws): 3 pings, echo" "$LOGDIR/gn_wss_ping.out" "$LOGDIR/gn_wss_echo.out" "$LOGDIR/js_wss.err"
	fi
	timeout 30 "$GN_CLI" ping "$JS_WSS" --count 1 >"$LOGDIR/gn_wss_noca.out" 2>&1
	rc=$?
	if [ "$rc" != 0 ] && grep -q 'GN_EHANDSHAKE' "$LOGDIR/gn_wss_noca.out"; then
		ok "golemnet refuses js's self-signed certificate without websocket.ca_file"
	else
		not_ok "golemnet refuses js's self-signed certificate without websocket.ca_file (exit $rc)" "$LOGDIR/gn_wss_noca.out"
	fi
	timeout 60 "$GN_CLI" node --listen /ip4/127.0.0.1/tcp/0/wss --echo --option "websocket.cert_file=$CERT" \
		--option "websocket.key_file=$KEY" >"$LOGDIR/gn_wss_node.out" 2>&1 &
	PIDS+=($!)
	GN_WSS=$(wait_addr "$LOGDIR/gn_wss_node.out" '/ip4/127\.0\.0\.1/tcp/[0-9]*/wss/p2p/[A-Za-z0-9]*')
	if [ -n "$GN_WSS" ]; then
		ok "golemnet listens on $GN_WSS"
	else
		not_ok "golemnet listens on /wss" "$LOGDIR/gn_wss_node.out"
	fi
	NODE_EXTRA_CA_CERTS=$CERT timeout 60 "${JS[@]}" --dial "$GN_WSS" --ping 3 --echo-bytes "$ECHO_BYTES" \
		>"$LOGDIR/js_wss_dial.out" 2>"$LOGDIR/js_wss_dial.err"
	rc=$?
	if [ "$rc" = 0 ] && [ "$(grep -c '"event":"ping"' "$LOGDIR/js_wss_dial.out")" = 3 ] &&
		grep -q "\"event\":\"echo\",\"ok\":true,\"bytes\":$ECHO_BYTES" "$LOGDIR/js_wss_dial.out"; then
		ok "js -> golemnet over /wss: 3 pings, echo of $ECHO_BYTES bytes checked by js"
	else
		not_ok "js -> golemnet over /wss: 3 pings, echo (exit $rc)" "$LOGDIR/js_wss_dial.out" "$LOGDIR/js_wss_dial.err" "$LOGDIR/gn_wss_node.out"
	fi
	if grep -q 'direction=inbound .*remote_addr=/ip4/127.0.0.1/tcp/[0-9]*/wss ' "$LOGDIR/gn_wss_node.out"; then
		ok "golemnet reports the inbound channel's /wss address"
	else
		not_ok "golemnet reports the inbound channel's /wss address" "$LOGDIR/gn_wss_node.out"
	fi
fi

echo "# $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
