#!/usr/bin/env bash
# golemnet kad <-> js-libp2p kad-dht interop (issue 11), on 127.0.0.1 only.
#
#   dht_interop.sh [PATH_TO_golemnet]      (or GN_CLI=PATH)
#
# Registered in test/interop/meson.build (interop_js_dht); golemnet nodes are
# `golemnet node --option kad.mode=server --dht-namespace test` processes and
# one-shot `golemnet dht ...` commands (docs/cli.md "The DHT").
#
# What it checks (js side: dht_peer.mjs, see README.md "kad-dht"):
#   A. admission: a js node adds a golemnet server node to its routing table
#      (golemnet's identify lists /ipfs/kad/1.0.0 with a listen address, and
#      it answers /ipfs/ping/1.0.0) and golemnet adds the js node;
#   B. js puts, golemnet gets (golemnet reads js's GET_VALUE answer);
#   C. golemnet puts, js gets (js validates and stores golemnet's Record;
#      js accepts golemnet's GET_VALUE answer for js's own record);
#   D. golemnet provides, js finds the provider; js provides, golemnet finds;
#   E. js FIND_NODEs golemnet nodes: through js (js's reply names a golemnet
#      node) and through golemnet (golemnet's reply names another golemnet
#      node); golemnet finds a js node;
#   F. golemnet's and js's closest peers of a key are ordered by XOR of
#      SHA-256 (key) and SHA-256 (peer ID multihash), computed here;
#   G. 5 js + 5 golemnet nodes in a line: every node gets every node's
#      record and finds every node's provider.
#
# Output: TAP and a final "N passed, N failed". Skips ("1..0 # SKIP") without
# GN_CLI, node >= 20 and npm, or when golemnet has no `dht` command.
# Environment: GN_CLI, NODE, KEEP_LOGS=1.
# shellcheck disable=SC2016,SC2317  # JS expressions in single quotes; trap handler
set -u
GN_CLI=${1:-${GN_CLI:-}}
case $GN_CLI in
'' | /*) ;;
*) GN_CLI=$PWD/$GN_CLI ;;
esac
cd "$(dirname "$0")" || exit 1
NODE=${NODE:-node}
NODE_TIMEOUT=500  # seconds, bound for one long-running node (js or golemnet)
RUN_TIMEOUT=60    # seconds, bound for one golemnet one-shot dht command
OP_TIMEOUT_S=30   # seconds, the DHT operation timeout given to golemnet
START_TIMEOUT=150 # tenths of a second to wait for a node to listen
MIXED_N=${MIXED_N:-5}
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
if ! "$GN_CLI" dht --help >/dev/null 2>&1; then
	echo "1..0 # SKIP golemnet has no dht command (kad router not built)"
	exit 0
fi

LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/gn-dht-interop.XXXXXX")
. ./tap_lib.sh
. ./dht_lib.sh


hexof() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }

# cid_for NAME: "CIDv1 MULTIHASH_HEX" of sha2-256(NAME) (raw codec)
cid_for() {
	"$NODE" --input-type=module -e "
import { sha256 } from 'multiformats/hashes/sha2'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
const mh = await sha256.digest(new TextEncoder().encode(process.argv[1]))
console.log(CID.createV1(raw.code, mh).toString(), Buffer.from(mh.bytes).toString('hex'))" "$1"
}

# ================================================================ golemnet side
# Everything golemnet-specific is here.

GN=("$GN_CLI" --json)

# A long-running golemnet DHT server node that accepts "/test/" records with
# dht_peer.mjs's rule (--dht-namespace: any value valid, the
# lexicographically greatest bytes win). Sets GN_ARGS.
#   gn_server_args SEED [BOOTSTRAP_MA...]
gn_server_args() {
	local seed=$1 b
	shift
	GN_ARGS=(node --listen /ip4/127.0.0.1/tcp/0 --key-seed "$seed"
		--router kad --option kad.mode=server --dht-namespace test)
	for b in "$@"; do
		GN_ARGS+=(--bootstrap-kad "$b")
	done
}

# One DHT operation by a short-lived golemnet node (kad client mode, the
# CLI's default for `dht`) that joins through BOOTSTRAP_MA, prints one
# {"event":"dht",...} line and exits (0 ok, 1 failed). It listens: a
# provider record names its addresses.
#   gn_dht_args SEED BOOTSTRAP_MA OP ARGS...
#   OP: put KEY VALUE | get KEY | provide CID | find-providers CID |
#       find-peer PEER_ID | closest-peers KEY
gn_dht_args() {
	local seed=$1 boot=$2 op=$3
	shift 3
	GN_ARGS=(dht "$op" "$@" --key-seed "$seed" --listen /ip4/127.0.0.1/tcp/0
		--bootstrap-kad "$boot" --router kad --dht-namespace test
		--timeout "$OP_TIMEOUT_S")
}

# The one-shot command's result line (docs/cli.md "The DHT"):
#   {"event":"dht","op":...,"status":"ok"|"GN_...","value":...,"providers":[...],
#    "peer_id":...,"addrs":[...],"peers":[...]}
GX_OK='(find("dht")?.status === "ok")'
GX_VALUE='find("dht")?.value'
GX_PROVIDER_IDS='(find("dht")?.providers ?? []).map(p => p.peer_id)'
GX_PEER_ADDRS='(find("dht")?.addrs ?? [])'
GX_CLOSEST_IDS='(find("dht")?.peers ?? []).map(p => p.peer_id)'

# gn_start NAME SEED [BOOTSTRAP...]: a long-running golemnet server node
gn_start() {
	local name=$1 seed=$2 i
	shift 2
	gn_server_args "$seed" "$@"
	timeout -k 5 "$NODE_TIMEOUT" "${GN[@]}" "${GN_ARGS[@]}" >"$LOGDIR/$name.out" 2>"$LOGDIR/$name.err" &
	NODE_PID[$name]=$!
	PIDS+=("$!")
	for ((i = 0; i < START_TIMEOUT; i++)); do
		if grep -q '"event":"listening"' "$LOGDIR/$name.out" 2>/dev/null; then
			NODE_ID[$name]=$(get "$LOGDIR/$name.out" 'find("listening").peer_id')
			NODE_ADDR[$name]=$(get "$LOGDIR/$name.out" 'find("listening").addrs[0]')
			return 0
		fi
		kill -0 "${NODE_PID[$name]}" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# gn_op NAME SEED BOOTSTRAP_MA OP ARGS...: a one-shot golemnet dht command;
# output in $LOGDIR/NAME.out, status in RC
gn_op() {
	local name=$1 seed=$2 boot=$3
	shift 3
	gn_dht_args "$seed" "$boot" "$@"
	timeout -k 5 "$RUN_TIMEOUT" "${GN[@]}" "${GN_ARGS[@]}" >"$LOGDIR/$name.out" 2>"$LOGDIR/$name.err"
	RC=$?
	GN_OUT=$LOGDIR/$name.out
	[ "$RC" -eq 0 ] || echo "# golemnet dht $1 ($name) exited $RC"
}

gn_id_of_seed() { "$GN_CLI" id --key-seed "$1" 2>/dev/null | head -n 1; }

# ================================================================ js side
# js_launch, js_wait, js_start, cmd, check_reply: dht_lib.sh






stop_all() {
	local n pid fd
	for n in "${!NODE_PID[@]}"; do
		pid=${NODE_PID[$n]}
		if [ -n "${NODE_FD[$n]:-}" ]; then
			cmd "$n" 5000 '"cmd":"quit"'
			fd=${NODE_FD[$n]}
			exec {fd}>&-
		else
			kill -TERM "$pid" 2>/dev/null
		fi
	done
	for n in "${!NODE_PID[@]}"; do
		wait "${NODE_PID[$n]}" 2>/dev/null
	done
	PIDS=()
	NODE_PID=()
	NODE_FD=()
}

# ================================================================ tests

echo "TAP version 13"
echo "# golemnet kad <-> js kad-dht interop, logs in $LOGDIR"
echo "# golemnet: $GN_CLI ($("$GN_CLI" version 2>/dev/null)); node $("$NODE" --version)"
if [ ! -d node_modules ]; then
	echo "# node_modules missing: running npm ci"
	if ! timeout -k 5 300 npm ci --no-audit --no-fund >"$LOGDIR/npm-ci.log" 2>&1; then
		not_ok "npm ci" "$LOGDIR/npm-ci.log"
		finish
	fi
fi
echo "# @libp2p/kad-dht $("$NODE" -p 'require("./node_modules/@libp2p/kad-dht/package.json").version' 2>/dev/null)"

# ---------------------------------------------------------------- A: admission
js_start J1 --key-seed 201 || { not_ok "js node J1 listens" "$LOGDIR/J1.err"; finish; }
if ! gn_start G1 211 "${NODE_ADDR[J1]}"; then
	not_ok "golemnet server node G1 listens (bootstrap J1)" "$LOGDIR/G1.out" "$LOGDIR/G1.err"
	finish
fi
ok "golemnet server node G1 listens and bootstraps from J1"
J1=${NODE_ID[J1]}
G1=${NODE_ID[G1]}
cmd J1 20000 "\"cmd\":\"wait-routing\",\"peers\":[\"$G1\"]"
check_reply "A: js adds golemnet G1 to its routing table (identify lists kad, listen address, ping answered)" \
	"r.ok === true" "$LOGDIR/J1.err" "$LOGDIR/G1.err"
check "A: G1's identify lists /ipfs/kad/1.0.0 and /ipfs/ping/1.0.0 with a loopback listen address" "$LOGDIR/J1.out" \
	"ev.some(e => e.event === 'peer_identify' && e.peer_id === '$G1' && e.protocols.includes('/ipfs/kad/1.0.0') && e.protocols.includes('/ipfs/ping/1.0.0') && e.listen_addrs.some(a => a.startsWith('/ip4/127.0.0.1/tcp/')))"
# a one-shot node that knows only G1 learns J1 from G1's FIND_NODE answer:
# J1 is in G1's routing table
gn_op gn-rt 220 "${NODE_ADDR[G1]}" closest-peers "/test/rt-$$"
check "A: golemnet G1 adds js J1 to its routing table (G1's FIND_NODE answer names J1)" "$GN_OUT" \
	"$GX_OK && $GX_CLOSEST_IDS.includes('$J1')" "$LOGDIR/gn-rt.err" "$LOGDIR/G1.err"

# a second js node and a second golemnet node, each knowing only G1
js_start J2 --key-seed 202 || not_ok "js node J2 listens" "$LOGDIR/J2.err"
cmd J2 10000 "\"cmd\":\"dial\",\"addr\":\"${NODE_ADDR[G1]}\""
check_reply "A: js J2 dials golemnet G1" "r.ok === true" "$LOGDIR/J2.err"
cmd J2 20000 "\"cmd\":\"wait-routing\",\"peers\":[\"$G1\"]"
check_reply "A: J2 adds G1" "r.ok === true" "$LOGDIR/J2.err"
gn_start G2 212 "${NODE_ADDR[G1]}" || not_ok "golemnet node G2 listens (bootstrap G1)" "$LOGDIR/G2.err"
G2=${NODE_ID[G2]:-none}
J2=${NODE_ID[J2]:-none}

# ---------------------------------------------------------------- B: js puts, golemnet gets
KEY_JS=/test/interop-js-$$
VAL_JS=from-js-$RANDOM
cmd J1 30000 "\"cmd\":\"put\",\"key\":\"$KEY_JS\",\"value\":\"$VAL_JS\""
check_reply "B: js put $KEY_JS is stored by golemnet G1 (PUT_VALUE echoed)" "r.ok === true && r.stored_at.includes('$G1')" "$LOGDIR/J1.err" "$LOGDIR/G1.err"
gn_op gn-get-js 221 "${NODE_ADDR[J1]}" get "$KEY_JS"
check "B: golemnet (via js J1 only) gets js's record" "$GN_OUT" "$GX_VALUE === '$VAL_JS'" "$LOGDIR/gn-get-js.err"
gn_op gn-get-js2 222 "${NODE_ADDR[G1]}" get "$KEY_JS"
check "B: golemnet (via G1) gets js's record" "$GN_OUT" "$GX_VALUE === '$VAL_JS'" "$LOGDIR/gn-get-js2.err"

# ---------------------------------------------------------------- C: golemnet puts, js gets
KEY_GN=/test/interop-gn-$$
VAL_GN=from-golemnet-$RANDOM
# bootstrapped at J1 only, so J1 answers the lookup and is in its final set
gn_op gn-put 223 "${NODE_ADDR[J1]}" put "$KEY_GN" "$VAL_GN"
# status ok: at least one peer echoed the PUT_VALUE, and J1 is the only
# server the one-shot knows besides those J1 names
check "C: golemnet put $KEY_GN is stored (a PUT_VALUE echoed)" "$GN_OUT" "$GX_OK" "$LOGDIR/gn-put.err"
cmd J1 30000 "\"cmd\":\"get\",\"key\":\"$KEY_GN\""
check_reply "C: js J1 gets golemnet's record" "r.ok === true && r.value === '$VAL_GN'" "$LOGDIR/J1.err"
cmd J2 30000 "\"cmd\":\"get\",\"key\":\"$KEY_GN\""
check_reply "C: js J2 gets it" "r.ok === true && r.value === '$VAL_GN'" "$LOGDIR/J2.err"
# G1 stored js's record in B: its GET_VALUE answer must pass js's checks
# (record key = requested key, value valid)
cmd J2 30000 "\"cmd\":\"get\",\"key\":\"$KEY_JS\""
check_reply "C: js J2 accepts golemnet G1's GET_VALUE answer for $KEY_JS" \
	"r.ok === true && r.value === '$VAL_JS' && r.values_from.includes('$G1')" "$LOGDIR/J2.err"
cmd J2 30000 "\"cmd\":\"get\",\"key\":\"/test/absent-$$\""
check_reply "C: js get of an absent key through golemnet ends not found, in time" "r.ok === false && r.ms < 31000" "$LOGDIR/J2.err"

# ---------------------------------------------------------------- D: providers
read -r CID_GN MH_GN <<<"$(cid_for "gn-provided-$$")"
read -r CID_JS _ <<<"$(cid_for "js-provided-$$")"
PROV_ID=$(gn_id_of_seed 224)
gn_op gn-provide 224 "${NODE_ADDR[G1]}" provide "$CID_GN"
check "D: golemnet provide $CID_GN is sent (ADD_PROVIDER, key = multihash)" "$GN_OUT" "$GX_OK" "$LOGDIR/gn-provide.err"
cmd J1 30000 "\"cmd\":\"find-providers\",\"cid\":\"$CID_GN\",\"count\":1"
check_reply "D: js J1 finds golemnet's provider record with an address" \
	"r.ok === true && r.providers.some(p => p.peer_id === '$PROV_ID' && p.addrs.length > 0)" "$LOGDIR/J1.err"
cmd J2 30000 "\"cmd\":\"find-providers\",\"mh_hex\":\"$MH_GN\",\"count\":1"
check_reply "D: js J2 finds it by multihash" "r.ok === true && r.providers.some(p => p.peer_id === '$PROV_ID')" "$LOGDIR/J2.err"
cmd J1 30000 "\"cmd\":\"provide\",\"cid\":\"$CID_JS\""
check_reply "D: js provide $CID_JS reaches golemnet G1" "r.ok === true && r.sent_to.includes('$G1')" "$LOGDIR/J1.err"
gn_op gn-findprov 225 "${NODE_ADDR[G2]:-${NODE_ADDR[G1]}}" find-providers "$CID_JS"
check "D: golemnet (via G2) finds js J1 as provider" "$GN_OUT" "$GX_PROVIDER_IDS.includes('$J1')" "$LOGDIR/gn-findprov.err"

# ---------------------------------------------------------------- E: find-peer
js_start J3 --key-seed 203 || not_ok "js node J3 listens" "$LOGDIR/J3.err"
cmd J3 10000 "\"cmd\":\"dial\",\"addr\":\"${NODE_ADDR[J1]}\""
cmd J3 20000 "\"cmd\":\"wait-routing\",\"peers\":[\"$J1\"]"
cmd J3 30000 "\"cmd\":\"find-peer\",\"peer_id\":\"$G1\",\"use_cache\":false"
check_reply "E: js J3 (knows only J1) FIND_NODEs golemnet G1's address" \
	"r.ok === true && r.peer_id === '$G1' && r.addrs.some(a => a.startsWith('$(bare "${NODE_ADDR[G1]}")'))" "$LOGDIR/J3.err"
cmd J2 30000 "\"cmd\":\"find-peer\",\"peer_id\":\"$G2\",\"use_cache\":false"
check_reply "E: js J2 finds golemnet G2 through golemnet G1's FIND_NODE reply" \
	"r.ok === true && r.peer_id === '$G2' && r.addrs.some(a => a.startsWith('$(bare "${NODE_ADDR[G2]:-none}")'))" "$LOGDIR/J2.err"
J3=${NODE_ID[J3]:-none}
gn_op gn-findpeer 226 "${NODE_ADDR[G2]:-${NODE_ADDR[G1]}}" find-peer "$J3"
check "E: golemnet (via G2) finds js J3's address" "$GN_OUT" \
	"$GX_PEER_ADDRS.some(a => a.startsWith('$(bare "${NODE_ADDR[J3]:-none}")'))" "$LOGDIR/gn-findpeer.err"

# ---------------------------------------------------------------- F: distance order
# xor_sorted KEY IDS_JSON: "yes" when the peer IDs are in increasing
# XOR(SHA-256(KEY), SHA-256(peer ID multihash)) order, the kad-dht spec's metric
xor_sorted() {
	"$NODE" --input-type=module -e "
import { createHash } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
const sha = (b) => createHash('sha256').update(b).digest()
const k = sha(Buffer.from(process.argv[1]))
const d = (id) => Buffer.from(sha(peerIdFromString(id).toMultihash().bytes).map((x, i) => x ^ k[i]))
const ids = JSON.parse(process.argv[2])
console.log(ids.every((id, i) => i === 0 || Buffer.compare(d(ids[i - 1]), d(id)) < 0) ? 'yes' : 'no')" "$1" "$2"
}
CP_KEY=/test/closest-$$
cmd J1 30000 "\"cmd\":\"closest-peers\",\"key\":\"$CP_KEY\""
JS_ORDER=$(get "$REPLY_FILE" 'JSON.stringify(ev[0].peers.map(p => p.peer_id))')
if [ "$(xor_sorted "$CP_KEY" "${JS_ORDER:-[]}")" = yes ]; then
	ok "F: js's closest peers of $CP_KEY are in XOR order (test's own computation)"
else
	not_ok "F: js's closest peers of $CP_KEY are in XOR order: ${JS_ORDER:-none}"
fi
gn_op gn-closest 227 "${NODE_ADDR[G1]}" closest-peers "$CP_KEY"
GN_ORDER=$(get "$GN_OUT" "JSON.stringify($GX_CLOSEST_IDS)")
if [ "$(get "$GN_OUT" "$GX_CLOSEST_IDS.length >= 2 ? 'yes' : 'no'")" = yes ] &&
	[ "$(xor_sorted "$CP_KEY" "${GN_ORDER:-[]}")" = yes ]; then
	ok "F: golemnet's closest peers of $CP_KEY (>= 2) are in XOR order"
else
	not_ok "F: golemnet's closest peers of $CP_KEY (>= 2) are in XOR order: ${GN_ORDER:-none}" "$LOGDIR/gn-closest.err"
fi

stop_all

# ---------------------------------------------------------------- G: mixed network
# A line J1 - G1 - J2 - G2 - ... - J5 - G5: Gi bootstraps from Ji, J(i+1)
# dials Gi. Every node then stores one record and provides one CID; every
# js node and (through one-shot commands bootstrapped at it) every golemnet
# node gets all records and finds all providers.
for ((i = 1; i <= MIXED_N; i++)); do
	js_launch "MJ$i" --key-seed $((300 + i))
done
for ((i = 1; i <= MIXED_N; i++)); do
	js_wait "MJ$i" || not_ok "mixed: js node MJ$i listens" "$LOGDIR/MJ$i.err"
done
for ((i = 1; i <= MIXED_N; i++)); do
	gn_start "MG$i" $((310 + i)) "${NODE_ADDR[MJ$i]}" || not_ok "mixed: golemnet node MG$i listens" "$LOGDIR/MG$i.err"
	if [ "$i" -lt "$MIXED_N" ]; then
		cmd "MJ$((i + 1))" 10000 "\"cmd\":\"dial\",\"addr\":\"${NODE_ADDR[MG$i]}\""
	fi
done
# every js node has its golemnet neighbours in its table (MJi: MG(i-1) and
# MGi); the lookups below spread the line into a mesh
for ((i = 1; i <= MIXED_N; i++)); do
	want="\"${NODE_ID[MG$i]}\""
	[ "$i" -gt 1 ] && want="$want,\"${NODE_ID[MG$((i - 1))]}\""
	cmd "MJ$i" 30000 "\"cmd\":\"wait-routing\",\"peers\":[$want]"
	check_reply "mixed: MJ$i has its golemnet neighbours in its routing table" "r.ok === true" "$LOGDIR/MJ$i.err"
done

declare -A M_KEY M_VAL M_CID M_PROV
for ((i = 1; i <= MIXED_N; i++)); do
	for side in J G; do
		n=M$side$i
		M_KEY[$n]=/test/mixed-$$-$n
		M_VAL[$n]=value-of-$n-$RANDOM
		read -r M_CID[$n] _ <<<"$(cid_for "mixed-$$-$n")"
	done
	cmd "MJ$i" 60000 "\"cmd\":\"put\",\"key\":\"${M_KEY[MJ$i]}\",\"value\":\"${M_VAL[MJ$i]}\""
	check_reply "mixed: MJ$i puts its record" "r.ok === true && r.stored_at.length > 0" "$LOGDIR/MJ$i.err"
	cmd "MJ$i" 60000 "\"cmd\":\"provide\",\"cid\":\"${M_CID[MJ$i]}\""
	check_reply "mixed: MJ$i provides its CID" "r.ok === true && r.sent_to.length > 0" "$LOGDIR/MJ$i.err"
	M_PROV[MJ$i]=${NODE_ID[MJ$i]}
	gn_op "mg$i-put" $((320 + i)) "${NODE_ADDR[MG$i]}" put "${M_KEY[MG$i]}" "${M_VAL[MG$i]}"
	check "mixed: MG$i's record is put (one-shot via MG$i)" "$GN_OUT" "$GX_OK" "$LOGDIR/mg$i-put.err"
	gn_op "mg$i-provide" $((330 + i)) "${NODE_ADDR[MG$i]}" provide "${M_CID[MG$i]}"
	check "mixed: MG$i's CID is provided (one-shot via MG$i)" "$GN_OUT" "$GX_OK" "$LOGDIR/mg$i-provide.err"
	M_PROV[MG$i]=$(gn_id_of_seed $((330 + i)))
done

NAMES=()
for ((i = 1; i <= MIXED_N; i++)); do NAMES+=("MJ$i" "MG$i"); done
for ((i = 1; i <= MIXED_N; i++)); do
	# js node MJi finds everything
	miss=()
	for n in "${NAMES[@]}"; do
		cmd "MJ$i" 60000 "\"cmd\":\"get\",\"key\":\"${M_KEY[$n]}\""
		get "$REPLY_FILE" "ev[0].ok === true && ev[0].value === '${M_VAL[$n]}' ? 'yes' : 'no'" | grep -q yes || miss+=("record:$n")
		cmd "MJ$i" 60000 "\"cmd\":\"find-providers\",\"cid\":\"${M_CID[$n]}\",\"count\":1"
		get "$REPLY_FILE" "ev[0].ok === true && ev[0].providers.some(p => p.peer_id === '${M_PROV[$n]}') ? 'yes' : 'no'" | grep -q yes || miss+=("provider:$n")
	done
	if [ "${#miss[@]}" -eq 0 ]; then
		ok "mixed: js MJ$i gets all $((2 * MIXED_N)) records and finds all $((2 * MIXED_N)) providers"
	else
		not_ok "mixed: js MJ$i misses ${miss[*]}" "$LOGDIR/MJ$i.err"
	fi
	# golemnet node MGi finds everything (one-shot commands joining through it)
	miss=()
	for n in "${NAMES[@]}"; do
		gn_op "mg$i-get-$n" $((340 + i)) "${NODE_ADDR[MG$i]}" get "${M_KEY[$n]}"
		get "$GN_OUT" "$GX_VALUE === '${M_VAL[$n]}' ? 'yes' : 'no'" | grep -q yes || miss+=("record:$n")
		gn_op "mg$i-prov-$n" $((340 + i)) "${NODE_ADDR[MG$i]}" find-providers "${M_CID[$n]}"
		get "$GN_OUT" "$GX_PROVIDER_IDS.includes('${M_PROV[$n]}') ? 'yes' : 'no'" | grep -q yes || miss+=("provider:$n")
	done
	if [ "${#miss[@]}" -eq 0 ]; then
		ok "mixed: golemnet MG$i gets all $((2 * MIXED_N)) records and finds all $((2 * MIXED_N)) providers"
	else
		not_ok "mixed: golemnet MG$i misses ${miss[*]}" "$LOGDIR/MG$i.err"
	fi
done

# every long-running node is still alive, then stops cleanly
for n in "${!NODE_PID[@]}"; do
	if kill -0 "${NODE_PID[$n]}" 2>/dev/null; then
		ok "mixed: $n still running at the end"
	else
		not_ok "mixed: $n still running at the end" "$LOGDIR/$n.out" "$LOGDIR/$n.err"
	fi
done
stop_all
finish
