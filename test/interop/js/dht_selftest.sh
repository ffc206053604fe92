#!/usr/bin/env bash
# js <-> js self-test of the kad-dht interop peer (dht_peer.mjs), on 127.0.0.1 only.
#
# Three js nodes A - B - C connected in a line (B dials A, C dials B), kad-dht
# in server mode with the "test" namespace validator. Checks: every node adds
# its neighbours to its routing table; A finds C's addresses by a FIND_NODE
# lookup; A puts a /test/ record and C gets it; C provides a CID, A finds C as
# its provider, and B finds it under the CIDv0 of the same multihash (the DHT
# key is the multihash); a missing key ends "not found" within its timeout; a
# record of a namespace without a validator is stored nowhere else and cannot
# be got; with js's default peerInfoMapper a loopback peer never enters the
# routing table; a client-mode node is not added by its server; every node
# quits cleanly. Prints TAP and a final "N passed, N failed".
#
# Environment: NODE (node binary, default node), KEEP_LOGS=1 keeps the log
# directory. Skips ("1..0 # SKIP") without node >= 20 and npm; runs `npm ci`
# when node_modules/ is missing. Every node runs under `timeout`; the exit trap
# stops everything it started. Wall time about 15-30 s.
# shellcheck disable=SC2016,SC2317  # JS expressions in single quotes; trap handler
set -u

cd "$(dirname "$0")" || exit 1
NODE=${NODE:-node}
NODE_TIMEOUT=120  # seconds, bound for one node process
START_TIMEOUT=150 # tenths of a second to wait for a node to listen
N=0
PASSED=0
FAILED=0
PIDS=()
LOGDIR=

if ! command -v "$NODE" >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "1..0 # SKIP node or npm not found"
	exit 0
fi
NODE_MAJOR=$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null)
if ! [ "${NODE_MAJOR:-0}" -ge 20 ] 2>/dev/null; then
	echo "1..0 # SKIP node >= 20 needed (found $("$NODE" --version 2>/dev/null))"
	exit 0
fi

LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/gn-js-dht.XXXXXX")
. ./tap_lib.sh
. ./dht_lib.sh








echo "TAP version 13"
echo "# js kad-dht self-test (js <-> js), logs in $LOGDIR"
echo "# node $("$NODE" --version)"
if [ ! -d node_modules ]; then
	echo "# node_modules missing: running npm ci"
	if ! timeout -k 5 300 npm ci --no-audit --no-fund >"$LOGDIR/npm-ci.log" 2>&1; then
		not_ok "npm ci" "$LOGDIR/npm-ci.log"
		finish
	fi
fi
echo "# libp2p $("$NODE" -p 'require("./node_modules/libp2p/package.json").version' 2>/dev/null)," \
	"@libp2p/kad-dht $("$NODE" -p 'require("./node_modules/@libp2p/kad-dht/package.json").version' 2>/dev/null)"

# all five start together (node's start-up dominates the wall time); D and E
# are used at the end
js_launch A --key-seed 101
js_launch B --key-seed 102
js_launch C --key-seed 103
js_launch D --key-seed 104 --peer-info-mapper remove-private
js_launch E --key-seed 105 --client-mode
for n in A B C; do
	if js_wait "$n"; then
		ok "node $n listens (server mode, ${NODE_ID[$n]})"
	else
		not_ok "node $n listens" "$LOGDIR/$n.out" "$LOGDIR/$n.err"
		finish
	fi
done
A=${NODE_ID[A]}
B=${NODE_ID[B]}
C=${NODE_ID[C]}
check "A advertises /ipfs/kad/1.0.0 in server mode with the passthrough mapper" "$LOGDIR/A.out" \
	"(l => l.mode === 'server' && l.peer_info_mapper === 'passthrough' && l.protocol === '/ipfs/kad/1.0.0')(find('listening'))"

# --- the line A - B - C
cmd B 10000 "\"cmd\":\"dial\",\"addr\":\"${NODE_ADDR[A]}\""
check_reply "B dials A" "r.ok === true && r.peer_id === '$A'" "$LOGDIR/B.err"
cmd C 10000 "\"cmd\":\"dial\",\"addr\":\"${NODE_ADDR[B]}\""
check_reply "C dials B" "r.ok === true && r.peer_id === '$B'" "$LOGDIR/C.err"
cmd A 15000 "\"cmd\":\"wait-routing\",\"peers\":[\"$B\"]"
check_reply "A adds B to its routing table (identify lists kad, ping answered)" "r.ok === true && r.peers.includes('$B')" "$LOGDIR/A.err"
cmd B 15000 "\"cmd\":\"wait-routing\",\"peers\":[\"$A\",\"$C\"]"
check_reply "B adds A and C to its routing table" "r.ok === true && r.peers.includes('$A') && r.peers.includes('$C')" "$LOGDIR/B.err"
cmd C 15000 "\"cmd\":\"wait-routing\",\"peers\":[\"$B\"]"
check_reply "C adds B to its routing table" "r.ok === true && r.peers.includes('$B')" "$LOGDIR/C.err"
check "A saw B's identify listing /ipfs/kad/1.0.0 and /ipfs/ping/1.0.0" "$LOGDIR/A.out" \
	"ev.some(e => e.event === 'peer_identify' && e.peer_id === '$B' && e.protocols.includes('/ipfs/kad/1.0.0') && e.protocols.includes('/ipfs/ping/1.0.0'))"

# --- find-peer across the line (network lookup, not A's local peer store)
cmd A 20000 "\"cmd\":\"find-peer\",\"peer_id\":\"$C\",\"use_cache\":false"
check_reply "A finds C's address by a FIND_NODE lookup" \
	"r.ok === true && r.peer_id === '$C' && r.addrs.some(a => a.startsWith('$(bare "${NODE_ADDR[C]}")')) && r.responded.length > 0" "$LOGDIR/A.err"
cmd A 20000 "\"cmd\":\"closest-peers\",\"peer_id\":\"$C\""
check_reply "A's closest peers to C's id include B and C" \
	"r.ok === true && r.peers.some(p => p.peer_id === '$B') && r.peers.some(p => p.peer_id === '$C')" "$LOGDIR/A.err"

# --- put on A, get on C
KEY=/test/selftest-$$-$RANDOM
VALUE=value-$RANDOM-$RANDOM
cmd A 20000 "\"cmd\":\"put\",\"key\":\"$KEY\",\"value\":\"$VALUE\""
check_reply "A puts $KEY: PUT_VALUE accepted (record echoed) by B" \
	"r.ok === true && r.stored_at.includes('$B')" "$LOGDIR/A.err"
cmd C 20000 "\"cmd\":\"get\",\"key\":\"$KEY\""
check_reply "C gets $KEY with A's value" \
	"r.ok === true && r.value === '$VALUE'" "$LOGDIR/C.err"
cmd B 20000 "\"cmd\":\"get\",\"key_hex\":\"$(printf '%s' "$KEY" | od -An -tx1 | tr -d ' \n')\""
check_reply "B gets the same record by its hex key" "r.ok === true && r.value === '$VALUE'" "$LOGDIR/B.err"

# --- provide on C, find-providers on A (CIDv1) and B (CIDv0, same multihash)
CID1=bafkreibnoelefnzgwbcacyt4vh52ymxvzbjq7mmqhtcnwarfq4lzegsiqe
CID0=QmRQ353oFNqt8zfZ9X1HgRUszwv9RkEEwmMZZkbkYEsybn
MH=12202d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881
cmd C 20000 "\"cmd\":\"provide\",\"cid\":\"$CID1\""
check_reply "C provides $CID1: ADD_PROVIDER sent, key = its multihash" \
	"r.ok === true && r.sent_to.length > 0 && r.mh_hex === '$MH'" "$LOGDIR/C.err"
cmd A 20000 "\"cmd\":\"find-providers\",\"cid\":\"$CID1\",\"count\":1"
check_reply "A finds C (with its address) as provider of $CID1" \
	"r.ok === true && r.providers.some(p => p.peer_id === '$C' && p.addrs.some(a => a.startsWith('$(bare "${NODE_ADDR[C]}")')))" "$LOGDIR/A.err"
cmd B 20000 "\"cmd\":\"find-providers\",\"cid\":\"$CID0\",\"count\":1"
check_reply "B finds C under the CIDv0 of the same multihash" \
	"r.ok === true && r.mh_hex === '$MH' && r.providers.some(p => p.peer_id === '$C')" "$LOGDIR/B.err"

# --- bounded failures
cmd A 8000 "\"cmd\":\"get\",\"key\":\"/test/missing-$$\""
check_reply "get of a missing key ends 'not found' within its timeout" \
	"r.ok === false && /NotFound/.test(r.error) && r.ms < 9000" "$LOGDIR/A.err"
cmd A 20000 '"cmd":"put","key":"/noval/x","value":"v"'
check_reply "a record of a namespace without a validator is refused by the others" \
	"r.ok === true && r.stored_at.length === 0 && r.query_errors > 0" "$LOGDIR/A.err"
cmd C 8000 '"cmd":"get","key":"/noval/x"'
check_reply "... and cannot be got" "r.ok === false" "$LOGDIR/C.err"

# --- js's default peerInfoMapper drops loopback addresses: D never adds A
if js_wait D; then
	D=${NODE_ID[D]}
	cmd D 10000 "\"cmd\":\"dial\",\"addr\":\"${NODE_ADDR[A]}\""
	cmd A 15000 "\"cmd\":\"wait-routing\",\"peers\":[\"$D\"]"
	check_reply "A (passthrough mapper) adds D" "r.ok === true" "$LOGDIR/A.err"
	cmd D 3000 "\"cmd\":\"wait-routing\",\"peers\":[\"$A\"]"
	check_reply "D (js default remove-private mapper) does not add A, whose only address is loopback" \
		"r.ok === false && /Timeout|abort/i.test(r.error)" "$LOGDIR/D.err"
else
	not_ok "node D listens" "$LOGDIR/D.out" "$LOGDIR/D.err"
fi

# --- a client-mode node does not advertise kad and is not added by others
if js_wait E; then
	E=${NODE_ID[E]}
	check "E runs in client mode without /ipfs/kad/1.0.0" "$LOGDIR/E.out" "find('listening').mode === 'client'"
	cmd E 10000 "\"cmd\":\"dial\",\"addr\":\"${NODE_ADDR[A]}\""
	# js adds A once identify and its routing-table refresh ran: slow on a loaded 2-core CI
	cmd E 30000 "\"cmd\":\"wait-routing\",\"peers\":[\"$A\"]"
	check_reply "client-mode E adds server A" "r.ok === true" "$LOGDIR/E.err"
	check "A identified E without /ipfs/kad/1.0.0" "$LOGDIR/A.out" \
		"ev.some(e => e.event === 'peer_identify' && e.peer_id === '$E' && !e.protocols.includes('/ipfs/kad/1.0.0'))"
	cmd A 5000 '"cmd":"routing-table"'
	check_reply "A does not add client-mode E" "r.ok === true && !r.peers.includes('$E') && r.size === r.peers.length" "$LOGDIR/A.err"
	# nobody stores records on a client-mode node: E's value comes over the network
	cmd E 40000 "\"cmd\":\"get\",\"key\":\"$KEY\""
	check_reply "client-mode E gets $KEY from another node" \
		"r.ok === true && r.value === '$VALUE' && r.from !== '$E'" "$LOGDIR/E.err"
else
	not_ok "node E listens" "$LOGDIR/E.out" "$LOGDIR/E.err"
fi

# --- quit
for n in A B C D E; do
	[ -n "${NODE_PID[$n]:-}" ] || continue
	pid=${NODE_PID[$n]}
	cmd "$n" 5000 '"cmd":"quit"'
	fd=${NODE_FD[$n]}
	exec {fd}>&-
	rc=255
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null
			rc=$?
			break
		fi
		sleep 0.1
	done
	if [ "$rc" -eq 0 ] && grep -q '^{"event":"stopped","code":0}' "$LOGDIR/$n.out"; then
		ok "node $n quits cleanly"
	else
		not_ok "node $n quits cleanly (rc=$rc)" "$LOGDIR/$n.out" "$LOGDIR/$n.err"
	fi
	new=()
	for p in "${PIDS[@]}"; do
		[ "$p" = "$pid" ] || new+=("$p")
	done
	PIDS=("${new[@]}")
done

finish
