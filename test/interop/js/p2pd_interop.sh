#!/usr/bin/env bash
# golemnet-p2pd driven by the libp2p daemon client (issue 13), on 127.0.0.1
# and Unix sockets only.
#
#   p2pd_interop.sh [PATH_TO_golemnet-p2pd]      (or GN_P2PD=PATH)
#
# Registered in test/interop/meson.build (interop_js_p2pd). Starts two
# golemnet-p2pd daemons: A with its control socket on a Unix socket (go's
# default form, /unix/PATH), B on loopback TCP; both run the DHT in server
# mode with the "test" namespace. Then p2pd_client.mjs drives them with
# @libp2p/daemon-client (pinned in package-lock.json) against a js-libp2p
# node it runs itself: identify, connect, list peers, a stream opened
# through the daemon and one handled by the client (bytes checked both
# ways), ERROR answers (pubsub, an unknown protocol, malformed requests,
# lost framing), the peer store, DHT calls both ways (closest peers, find
# peer, public key, put/get, search, providers) and between the two
# daemons, and a disconnect. Each of its checks becomes one TAP line here;
# then the daemons must exit cleanly on SIGTERM and remove their socket.
#
# Output: TAP and a final "N passed, N failed". Skips ("1..0 # SKIP")
# without the binary, node >= 20 and npm, or when npm ci fails.
# Environment: GN_P2PD, NODE, KEEP_LOGS=1.
# shellcheck disable=SC2016,SC2317  # JS expressions in single quotes; trap handler
set -u
GN_P2PD=${1:-${GN_P2PD:-}}
case $GN_P2PD in
'' | /*) ;;
*) GN_P2PD=$PWD/$GN_P2PD ;;
esac
cd "$(dirname "$0")" || exit 1
NODE=${NODE:-node}
LIFE=300          # seconds, bound for a daemon's whole life
CLIENT_TIMEOUT=240 # seconds, bound for the client script
START_TIMEOUT=150 # tenths of a second to wait for a daemon's start-up lines
N=0
PASSED=0
FAILED=0
PIDS=()
LOGDIR=

if [ -z "$GN_P2PD" ] || [ ! -x "$GN_P2PD" ]; then
	echo "1..0 # SKIP golemnet-p2pd binary not given (GN_P2PD or first argument): '${GN_P2PD}'"
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
if [ ! -d node_modules/@libp2p/daemon-client ]; then
	npm ci --no-audit --no-fund >/dev/null 2>&1 || {
		echo "1..0 # SKIP node_modules/@libp2p/daemon-client missing and npm ci failed"
		exit 0
	}
fi

LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/gn-p2pd.XXXXXX")
. ./tap_lib.sh

finish() {
	echo "1..$N"
	echo "# $PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit $?
}

# p2pd_start NAME ARGS...: a golemnet-p2pd daemon in the background
p2pd_start() {
	local name=$1
	shift
	timeout -k 5 "$LIFE" "$GN_P2PD" -log info "$@" >"$LOGDIR/$name.out" 2>"$LOGDIR/$name.err" &
	PIDS+=("$!")
	eval "PID_$name=$!"
}

# wait_started NAME: waits (bounded) for the "Peer Addrs:" line and one address
wait_started() {
	local i
	for ((i = 0; i < START_TIMEOUT; i++)); do
		if grep -q '^Peer Addrs:' "$LOGDIR/$1.out" 2>/dev/null &&
			[ "$(sed -n '/^Peer Addrs:/,$p' "$LOGDIR/$1.out" | grep -c '^/')" -ge 1 ]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# field NAME PREFIX: the rest of the start-up line beginning with PREFIX
field() {
	sed -n "s|^$2 ||p" "$LOGDIR/$1.out" | head -n 1
}

# ---- the daemons

# B's identity: an Ed25519 key file in go's format (a libp2p PrivateKey
# protobuf, as go-libp2p-daemon's p2p-keygen writes it), made by js
keygen() {
	"$NODE" --input-type=module -e "
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import fs from 'node:fs'
const k = await generateKeyPair(process.argv[2])
fs.writeFileSync(process.argv[1], privateKeyToProtobuf(k), { mode: 0o400 })
console.log(peerIdFromPrivateKey(k).toString())" "$@"
}
KEY_ID_B=$(keygen "$LOGDIR/b.key" Ed25519)
SOCK_A="$LOGDIR/a.sock"
p2pd_start A -listen "/unix$SOCK_A" -hostAddrs /ip4/127.0.0.1/tcp/0 -dhtServer \
	-dhtNamespace test -echo=false
p2pd_start B -listen /ip4/127.0.0.1/tcp/0 -hostAddrs /ip4/127.0.0.1/tcp/0 -dhtServer \
	-dhtNamespace test -id "$LOGDIR/b.key"
for d in A B; do
	if wait_started "$d"; then
		ok "daemon $d prints Control socket, Peer ID and Peer Addrs"
	else
		not_ok "daemon $d prints Control socket, Peer ID and Peer Addrs" "$LOGDIR/$d.out" "$LOGDIR/$d.err"
		finish
	fi
done
CTL_A=$(field A 'Control socket:')
ID_A=$(field A 'Peer ID:')
CTL_B=$(field B 'Control socket:')
ID_B=$(field B 'Peer ID:')
if [ "$CTL_A" = "/unix$SOCK_A" ] && [ -S "$SOCK_A" ] && [ "$(stat -c %a "$SOCK_A")" = 600 ]; then
	ok "daemon A's control socket is /unix$SOCK_A, mode 0600"
else
	not_ok "daemon A's control socket is /unix$SOCK_A, mode 0600 (got '$CTL_A')" "$LOGDIR/A.out"
fi
if [ -n "$KEY_ID_B" ] && [ "$ID_B" = "$KEY_ID_B" ]; then
	ok "daemon B's peer ID is its -id key file's ($ID_B)"
else
	not_ok "daemon B's peer ID is its -id key file's ('$ID_B', key '$KEY_ID_B')" "$LOGDIR/B.out"
fi
# an RSA key (go's p2p-keygen default, written by js here) loads: the daemon's peer ID is js's
KEY_ID_RSA=$(keygen "$LOGDIR/rsa.key" RSA)
timeout -k 5 20 "$GN_P2PD" -listen "/unix$LOGDIR/r.sock" -id "$LOGDIR/rsa.key" >"$LOGDIR/rsa.out" 2>"$LOGDIR/rsa.err" &
RSA_PID=$!
for _ in $(seq 1 100); do
	grep -q '^Peer ID:' "$LOGDIR/rsa.out" 2>/dev/null && break
	sleep 0.1
done
ID_RSA=$(sed -n 's/^Peer ID: *//p' "$LOGDIR/rsa.out" | head -n 1)
kill -TERM "$RSA_PID" 2>/dev/null
wait "$RSA_PID" 2>/dev/null
if [ -n "$KEY_ID_RSA" ] && [ "$ID_RSA" = "$KEY_ID_RSA" ]; then
	ok "an RSA key file (js-written) loads with js's peer ID ($ID_RSA)"
else
	not_ok "an RSA key file loads with js's peer ID ('$ID_RSA', js '$KEY_ID_RSA')" "$LOGDIR/rsa.err"
fi
case $CTL_B in
/ip4/127.0.0.1/tcp/[1-9]*) ok "daemon B's control socket is $CTL_B" ;;
*) not_ok "daemon B's control socket is loopback TCP (got '$CTL_B')" "$LOGDIR/B.out" ;;
esac

# a second daemon on A's live socket is refused, and A keeps its socket
if timeout -k 5 20 "$GN_P2PD" -listen "/unix$SOCK_A" -noListenAddrs >"$LOGDIR/A2.out" 2>"$LOGDIR/A2.err"; then
	not_ok "a second daemon on a live control socket is refused" "$LOGDIR/A2.out"
elif grep -qi 'in use' "$LOGDIR/A2.err" && [ -S "$SOCK_A" ]; then
	ok "a second daemon on a live control socket is refused ($(head -c 160 "$LOGDIR/A2.err"))"
else
	not_ok "a second daemon on a live control socket is refused, naming why" "$LOGDIR/A2.err"
fi
# flags of go's daemon that golemnet cannot honour are refused by name
if timeout -k 5 20 "$GN_P2PD" -listen "/unix$LOGDIR/x.sock" -pubsub >/dev/null 2>"$LOGDIR/ps.err"; then
	not_ok "-pubsub is refused" "$LOGDIR/ps.err"
elif grep -q 'pubsub' "$LOGDIR/ps.err"; then
	ok "-pubsub is refused ($(head -n 1 "$LOGDIR/ps.err" | cut -c1-120))"
else
	not_ok "-pubsub is refused, naming pubsub" "$LOGDIR/ps.err"
fi

# ---- the client

timeout -k 5 "$CLIENT_TIMEOUT" "$NODE" --import ./polyfill.mjs p2pd_client.mjs \
	--control-a "$CTL_A" --id-a "$ID_A" --control-b "$CTL_B" --id-b "$ID_B" \
	>"$LOGDIR/client.out" 2>"$LOGDIR/client.err"
CLIENT_RC=$?
while IFS= read -r line; do
	case $line in
	'{"check":'*) ;;
	*) continue ;;
	esac
	name=$(printf '%s' "$line" | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const o=JSON.parse(s);process.stdout.write(o.check+" ("+String(o.detail).slice(0,160)+", "+o.ms+" ms)")})')
	if printf '%s' "$line" | grep -q '"ok":true'; then
		ok "$name"
	else
		not_ok "$name" "$LOGDIR/client.err" "$LOGDIR/A.err"
	fi
done <"$LOGDIR/client.out"
if grep -q '"event":"done"' "$LOGDIR/client.out"; then
	ok "the client ran every check (exit $CLIENT_RC)"
else
	not_ok "the client ran every check (exit $CLIENT_RC)" "$LOGDIR/client.err" "$LOGDIR/A.err"
fi

# ---- clean exit on SIGTERM, socket removed

for d in A B; do
	pid_var="PID_$d"
	kill -TERM "${!pid_var}" 2>/dev/null
	wait "${!pid_var}"
	rc=$?
	if [ "$rc" -eq 0 ]; then
		ok "daemon $d exits 0 on SIGTERM"
	else
		not_ok "daemon $d exits 0 on SIGTERM (exit $rc)" "$LOGDIR/$d.err"
	fi
done
if [ ! -e "$SOCK_A" ]; then
	ok "daemon A removed its control socket"
else
	not_ok "daemon A removed its control socket"
fi
if grep -qiE 'sanitizer|runtime error' "$LOGDIR/A.err" "$LOGDIR/B.err"; then
	not_ok "no sanitizer report in the daemons' logs" "$LOGDIR/A.err" "$LOGDIR/B.err"
else
	ok "no sanitizer report in the daemons' logs"
fi
finish
