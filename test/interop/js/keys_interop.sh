#!/usr/bin/env bash
# golemnet <-> js-libp2p key types (issue 17), on 127.0.0.1 only.
#
#   keys_interop.sh       (GN_CLI and GN_KEY_TOOL from meson: tools/golemnet
#                          and test/interop/keys/key_tool)
#
# 1. The key files of @libp2p/interop (copied into test/data/interop-keys)
#    give golemnet the peer IDs js-libp2p (@libp2p/crypto + @libp2p/peer-id,
#    pinned by package-lock.json) derives from them (keys_peer_ids.mjs).
# 2. For every key type, key files written by golemnet and by js: both load
#    them with the same PublicKey bytes, and each verifies the other's
#    signature (key_tool <-> keys_check.mjs); golemnet's identify decoder
#    verifies the signed peer record js seals with the key (not ECDSA).
# 3. RSA and secp256k1 identities over Noise, both ways: a golemnet node with
#    the key type <- a js dialer with the key type (identify, ping), and a
#    js listener <- golemnet ping, each side seeing the other's peer ID.
# ECDSA with js-libp2p is reported as TODO, not failed: the pinned js-libp2p
# cannot make an ECDSA peer ID (@libp2p/peer-id throws UnsupportedKeyTypeError),
# writes ECDSA public keys in its own DER form rather than the spec's PKIX,
# and signs with WebCrypto's raw r||s form rather than DER (js-libp2p added
# ECDSA keys for its keychain, libp2p/js-libp2p#3059). The checks show what
# js does with golemnet's ECDSA keys; golemnet's ECDSA over Noise is tested
# golemnet <-> golemnet in test/unit/crypto/noise_test.c and the Python suite.
#
# Output: TAP. Skips like interop.sh without node >= 20 and npm; runs `npm ci`
# when node_modules/ is missing. Every process runs under `timeout`.
# shellcheck disable=SC2016,SC2317
set -u

cd "$(dirname "$0")" || exit 1
NODE=${NODE:-node}
RUN_TIMEOUT=120
LONG_TIMEOUT=200
START_TIMEOUT=150
N=0
PASSED=0
FAILED=0
PIDS=()
DATA=../../data/interop-keys

if [ -z "${GN_CLI:-}" ] || [ ! -x "$GN_CLI" ] || [ -z "${GN_KEY_TOOL:-}" ] || [ ! -x "$GN_KEY_TOOL" ]; then
	echo "1..0 # SKIP GN_CLI or GN_KEY_TOOL not given"
	exit 0
fi
if ! command -v "$NODE" >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "1..0 # SKIP node or npm not found"
	exit 0
fi
NODE_MAJOR=$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null)
if ! [ "${NODE_MAJOR:-0}" -ge 20 ] 2>/dev/null; then
	echo "1..0 # SKIP node >= 20 needed"
	exit 0
fi
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/gn-keys-interop.XXXXXX")
. ./tap_lib.sh

# todo NAME: a known js-libp2p limitation (TAP TODO: reported, not a failure)
todo() {
	N=$((N + 1))
	echo "not ok $N - $1 # TODO js-libp2p: no spec ECDSA identities"
}

JS=("$NODE" --import ./polyfill.mjs peer.mjs)
GN=("$GN_CLI" --json)

echo "TAP version 13"
echo "# golemnet <-> js-libp2p key types, logs in $LOGDIR"
if [ ! -d node_modules ]; then
	echo "# node_modules missing: running npm ci"
	if ! timeout -k 5 300 npm ci --no-audit --no-fund >"$LOGDIR/npm-ci.log" 2>&1; then
		not_ok "npm ci" "$LOGDIR/npm-ci.log"
		finish
	fi
fi
echo "# @libp2p/crypto $("$NODE" -p 'require("./node_modules/@libp2p/crypto/package.json").version' 2>/dev/null), @libp2p/peer-id $("$NODE" -p 'require("./node_modules/@libp2p/peer-id/package.json").version' 2>/dev/null)"

# ---- 1. @libp2p/interop key files: js's peer IDs
run js-ids "$NODE" keys_peer_ids.mjs "$DATA"/go.*.key "$DATA"/js.*.key
if [ "$RC" -ne 0 ]; then
	not_ok "js derives the peer IDs of the @libp2p/interop key files" "$LOGDIR/js-ids.err"
fi
while read -r file want kind; do
	got=$("$GN_CLI" id --key "$DATA/$file" 2>"$LOGDIR/id-$file.err")
	if [ -n "$want" ] && [ "$got" = "$want" ]; then
		ok "@libp2p/interop $file ($kind): golemnet loads it with js's peer ID $want"
	else
		not_ok "@libp2p/interop $file ($kind): golemnet '$got', js '$want'" "$LOGDIR/id-$file.err"
	fi
done <"$LOGDIR/js-ids.out"

# ---- 2. key files and signatures of every type, both ways
MSG="golemnet key interop $$"
for T in ed25519 rsa secp256k1 ecdsa; do
	case $T in
	ed25519) JT=Ed25519 ;;
	rsa) JT=RSA ;;
	secp256k1) JT=secp256k1 ;;
	ecdsa) JT=ECDSA ;;
	esac
	run "keygen-$T" "$GN_CLI" keygen --out "$LOGDIR/gn-$T.key" --key-type "$T"
	run "jsgen-$T" "$NODE" keys_check.mjs genkey "$JT" "$LOGDIR/js-$T.key"
	for W in gn js; do
		K=$LOGDIR/$W-$T.key
		run "gsign-$W-$T" "$GN_KEY_TOOL" sign "$K" "$MSG"
		read -r GPUB GSIG GT <"$LOGDIR/gsign-$W-$T.out"
		run "jsign-$W-$T" "$NODE" keys_check.mjs sign "$K" "$MSG"
		read -r JPUB JSIG _ <"$LOGDIR/jsign-$W-$T.out"
		if [ "$GT" = "$T" ] && [ -n "$GPUB" ] && [ "$GPUB" = "$JPUB" ]; then
			ok "$T key written by $W: golemnet and js load it with the same PublicKey bytes"
		elif [ "$T" = ecdsa ]; then
			todo "$T key written by $W: same PublicKey bytes (js writes SEQUENCE{1, curve, point}, not PKIX)"
		else
			not_ok "$T key written by $W: same PublicKey bytes" "$LOGDIR/gsign-$W-$T.err" "$LOGDIR/jsign-$W-$T.err"
		fi
		run "jverify-$W-$T" "$NODE" keys_check.mjs verify "$GPUB" "$MSG" "$GSIG"
		if [ "$RC" -eq 0 ]; then
			ok "$T key written by $W: js verifies golemnet's signature"
		elif [ "$T" = ecdsa ]; then
			todo "$T key written by $W: js verifies golemnet's signature ($(tail -n 1 "$LOGDIR/jverify-$W-$T.err" | cut -c1-80))"
		else
			not_ok "$T key written by $W: js verifies golemnet's signature" "$LOGDIR/jverify-$W-$T.out" "$LOGDIR/jverify-$W-$T.err"
		fi
		run "gverify-$W-$T" "$GN_KEY_TOOL" verify "$GPUB" "$MSG" "${JSIG:-00}"
		if [ "$RC" -eq 0 ]; then
			ok "$T key written by $W: golemnet verifies js's signature"
		elif [ "$T" = ecdsa ]; then
			todo "$T key written by $W: golemnet verifies js's signature (js signs raw r||s, not DER: $(head -n 1 "$LOGDIR/gverify-$W-$T.out"))"
		else
			not_ok "$T key written by $W: golemnet verifies js's signature" "$LOGDIR/gverify-$W-$T.out"
		fi
		# a signed peer record js seals with the key (as its identify sends)
		if [ "$T" != ecdsa ]; then
			run "jrec-$W-$T" "$NODE" keys_check.mjs record "$K"
			run "grec-$W-$T" "$GN_KEY_TOOL" record "$K" "$(head -n 1 "$LOGDIR/jrec-$W-$T.out")"
			if [ "$RC" -eq 0 ]; then
				ok "$T key written by $W: golemnet's identify verifies js's signed peer record"
			else
				not_ok "$T key written by $W: golemnet's identify verifies js's signed peer record" "$LOGDIR/jrec-$W-$T.err" "$LOGDIR/grec-$W-$T.out"
			fi
		fi
		# a changed message fails on both sides
		run "gverify-bad-$W-$T" "$GN_KEY_TOOL" verify "$GPUB" "$MSG." "$GSIG"
		if [ "$RC" -eq 1 ] && grep -q GN_EBADSIG "$LOGDIR/gverify-bad-$W-$T.out"; then
			ok "$T key written by $W: golemnet refuses its signature over another message (GN_EBADSIG)"
		else
			not_ok "$T key written by $W: golemnet refuses a signature over another message" "$LOGDIR/gverify-bad-$W-$T.out"
		fi
	done
done

# ---- 3. RSA and secp256k1 identities over Noise, both ways
for T in rsa secp256k1; do
	case $T in
	rsa) JT=RSA ;;
	secp256k1) JT=secp256k1 ;;
	esac
	GK=$LOGDIR/gn-$T.key
	GID=$("$GN_CLI" id --key "$GK")

	# golemnet listener (key type T) <- js dialer (key type T)
	G=gn-node-$T
	start_bg "$G" "${GN[@]}" node --listen /ip4/127.0.0.1/tcp/0 --key "$GK"
	GPID=$BG_PID
	if ! wait_event "$GPID" "$LOGDIR/$G.out" 'find("listening")'; then
		not_ok "$T: golemnet node with a $T key listens" "$LOGDIR/$G.out" "$LOGDIR/$G.err"
		stop_pid "$GPID"
		continue
	fi
	GADDR=$(get "$LOGDIR/$G.out" 'find("listening").addrs[0]')
	check "$T: golemnet node's peer ID is its $T key's ($GID)" "$LOGDIR/$G.out" \
		"find('listening').peer_id === '$GID'"
	D=js-dial-$T
	run "$D" "${JS[@]}" --listen /ip4/127.0.0.1/tcp/0 --key-type "$JT" --dial "$GADDR" \
		--identify --ping 3 --exit-after-actions --timeout 60
	DID=$(get "$LOGDIR/$D.out" 'find("listening")?.peer_id')
	check "$T: js ($T identity) -> golemnet ($T identity): js connects over /noise to $GID" "$LOGDIR/$D.out" \
		"ev.some(e => e.event === 'connected' && e.peer_id === '$GID' && e.encryption === '/noise')" "$LOGDIR/$D.err"
	check "$T: js -> golemnet: golemnet sees js's $T peer ID" "$LOGDIR/$G.out" \
		"'$DID' !== '' && ev.some(e => e.event === 'channel_opened' && e.direction === 'inbound' && e.peer_id === '$DID' && e.security === '/noise')"
	check "$T: js -> golemnet: identify both ways (js reads golemnet's $T key)" "$LOGDIR/$D.out" \
		"(r => r != null && r.peer_id === '$GID')(find('identify'))" "$LOGDIR/$D.err"
	check "$T: js -> golemnet: golemnet identifies js" "$LOGDIR/$G.out" \
		"ev.some(r => r.event === 'identify' && r.ok === true && r.peer_id === '$DID')"
	check "$T: js -> golemnet: ping x3" "$LOGDIR/$D.out" \
		"all('ping').length === 3 && all('ping').every(e => e.peer_id === '$GID')" "$LOGDIR/$D.err"
	stop_pid "$GPID"

	# js listener (key type T) <- golemnet ping (key type T)
	L=js-listen-$T
	start_bg "$L" "${JS[@]}" --listen /ip4/127.0.0.1/tcp/0 --key-type "$JT"
	LPID=$BG_PID
	if ! wait_event "$LPID" "$LOGDIR/$L.out" 'find("listening")'; then
		not_ok "$T: js listener with a $T key starts" "$LOGDIR/$L.out" "$LOGDIR/$L.err"
		stop_pid "$LPID"
		continue
	fi
	LADDR=$(get "$LOGDIR/$L.out" 'find("listening").addrs[0]')
	LID=$(get "$LOGDIR/$L.out" 'find("listening").peer_id')
	P=gn-ping-$T
	run "$P" "${GN[@]}" ping "$LADDR" --count 3 --identify --key "$GK" --timeout 60
	if [ "$RC" -eq 0 ]; then
		ok "$T: golemnet ($T identity) -> js ($T identity $LID): ping exits 0"
	else
		not_ok "$T: golemnet -> js: ping exits 0 (rc=$RC)" "$LOGDIR/$P.out" "$LOGDIR/$P.err"
	fi
	check "$T: golemnet -> js: golemnet's channel is to js's $T peer ID over /noise" "$LOGDIR/$P.out" \
		"ev.some(e => e.event === 'channel_opened' && e.direction === 'outbound' && e.peer_id === '$LID' && e.security === '/noise') && all('ping').length === 3"
	check "$T: golemnet -> js: js sees golemnet's $T peer ID" "$LOGDIR/$L.out" \
		"ev.some(e => e.event === 'connection_open' && e.direction === 'inbound' && e.peer_id === '$GID' && e.encryption === '/noise')" "$LOGDIR/$L.err"
	stop_pid "$LPID"
done

# ---- ECDSA identities with js: what js does (TODO, see the header)
GK=$LOGDIR/gn-ecdsa.key
G=gn-node-ecdsa
start_bg "$G" "${GN[@]}" node --listen /ip4/127.0.0.1/tcp/0 --key "$GK"
GPID=$BG_PID
if wait_event "$GPID" "$LOGDIR/$G.out" 'find("listening")'; then
	GADDR=$(get "$LOGDIR/$G.out" 'find("listening").addrs[0]')
	run js-dial-ecdsa "${JS[@]}" --key-seed 31 --dial "$GADDR" --ping 1 --exit-after-actions --timeout 30
	if "$NODE" events.mjs "$LOGDIR/js-dial-ecdsa.out" "all('ping').length === 1" 2>/dev/null; then
		ok "ecdsa: js (Ed25519) -> golemnet (ECDSA identity) over /noise"
	else
		todo "ecdsa: js (Ed25519) -> golemnet (ECDSA identity) over /noise: $(get "$LOGDIR/js-dial-ecdsa.out" 'find("error")?.error' | cut -c1-100)"
	fi
fi
stop_pid "$GPID"

finish
