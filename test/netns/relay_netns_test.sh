#!/usr/bin/env bash
# test/netns/relay_netns_test.sh BUILD_DIR: relay, AutoNAT and hole punching
# across real NATs (issue 12), in the two-NAT namespace rig (rig.sh): A
# behind NAT ra (10.77.1.2), B behind NAT rb (10.77.3.2), relays in the
# public namespace (10.77.2.2). Every node is tools/golemnet.
#
#   1. A reserves at relay R; B dials A through R and echoes on a stream;
#      AutoNAT says private for A and B, public for R; the verdicts are used
#      (R's DHT serves, B's autorelay router reserves at R) and A reaches B
#      by its bare peer ID through R.
#   2. DCUtR: a B that also runs dcutr gets a direct channel to A (a TCP
#      simultaneous open through both NATs); a 64 MiB echo started on the
#      relayed channel completes byte-exact.
#   3. With rb a symmetric NAT (masquerade fully-random) the hole punch
#      fails, the echo still completes over the relay, and the log says why.
#   4. Relay limits: a circuit past its data limit or its duration is closed;
#      a peer without a reservation gets NO_RESERVATION.
#
# Exit status: 0 all passed, 1 a check failed, 77 skipped (not root, no ip
# netns or nft, no golemnet binary). Every process runs under timeout(1);
# the namespaces are deleted on any exit.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=rig.sh
. "$HERE/rig.sh"

BUILD=${1:-}
CLI="$BUILD/tools/golemnet"
if [ -z "$BUILD" ] || [ ! -x "$CLI" ]; then
    echo "SKIP: relay netns test: no golemnet binary at '$CLI'" >&2
    exit 77
fi
rig_need_root

N=0
FAILED=0
ok() { N=$((N + 1)); echo "ok $N - $1"; }
not_ok() {
    N=$((N + 1)); FAILED=$((FAILED + 1))
    local d="$1"; shift
    echo "not ok $N - $d"
    local f
    for f in "$@"; do
        [ -f "$RIG_DIR/$f" ] || continue
        echo "#   --- last lines of $f"
        tail -n 10 "$RIG_DIR/$f" | cut -c1-300 | sed 's/^/#   /'
    done
}
# wait_grep <file> <ERE> <timeout_s>: waits until a line of $RIG_DIR/<file> matches
wait_grep() {
    local end=$((SECONDS + $3))
    while [ "$SECONDS" -lt "$end" ]; do
        grep -Eq -- "$2" "$RIG_DIR/$1" 2>/dev/null && return 0
        sleep 0.2
    done
    grep -Eq -- "$2" "$RIG_DIR/$1" 2>/dev/null
}
finish() {
    echo "1..$N"
    echo "# $((N - FAILED)) passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] && exit 0
    exit 1
}

rig_up || { echo "not ok - rig_up"; exit 1; }

R=$("$CLI" id --key-seed 1)
R2=$("$CLI" id --key-seed 4)
A=$("$CLI" id --key-seed 2)
C=$("$CLI" id --key-seed 5)
R_MA=/ip4/10.77.2.2/tcp/4001/p2p/$R
R2_MA=/ip4/10.77.2.2/tcp/4002/p2p/$R2
# AutoNAT decides fast here: short dial-back timeout, early first round.
FAST_AUTONAT=(--autonat --option autonat.dial_timeout_ms=3000 --option autonat.boot_delay_ms=300
              --option autonat.retry_interval_ms=2000)
# All rig addresses are private (10.77/16): hole punching must use them.
PUNCH=(--dcutr --option dcutr.allow_private=true)

# R: a relay whose limits let 64 MiB each way through (scenario 2)
rig_spawn relay pub 150 "$CLI" node --json --log info --key-seed 1 \
    --listen /ip4/10.77.2.2/tcp/4001 --relay "${FAST_AUTONAT[@]}" \
    --option relay.limit_data=268435456 --option relay.limit_duration=600
# R2: a relay with small limits (scenario 4)
rig_spawn relay2 pub 150 "$CLI" node --json --log info --key-seed 4 \
    --listen /ip4/10.77.2.2/tcp/4002 --relay \
    --option relay.limit_data=65536 --option relay.limit_duration=3
rig_wait_line relay '"event":"listening"' 10 >/dev/null &&
    rig_wait_line relay2 '"event":"listening"' 10 >/dev/null ||
    { not_ok "the relays listen" relay.err relay2.err; finish; }

# A: behind ra, listening through R; C: behind ra, listening through R2
# (one punch attempt: behind the symmetric NAT it fails within the test's time)
rig_spawn nodea a 150 "$CLI" node --json --log info --key-seed 2 --echo \
    --listen /ip4/10.77.1.2/tcp/4001 --listen "$R_MA/p2p-circuit" "${FAST_AUTONAT[@]}" "${PUNCH[@]}" \
    --option dcutr.attempts=1
rig_spawn nodec a 150 "$CLI" node --json --log info --key-seed 5 --echo \
    --listen /ip4/10.77.1.2/tcp/4003 --listen "$R2_MA/p2p-circuit"
# B: behind rb, connected to R (so that AutoNAT has a server to ask); its
# autorelay router names R and reserves there once AutoNAT says private
rig_spawn nodeb b 150 "$CLI" node --json --log info --key-seed 3 \
    --listen /ip4/10.77.3.2/tcp/4001 --bootstrap "$R_MA" "${FAST_AUTONAT[@]}" \
    --autorelay "$R_MA" --option autorelay.discover=false

# ---- 1. reservation, relayed stream, reachability
if wait_grep nodea.err "circuit: reserved at relay $R" 15; then
    ok "A (behind NAT ra) reserves a slot at relay R"
else
    not_ok "A (behind NAT ra) reserves a slot at relay R" nodea.err relay.err
fi
wait_grep nodec.err "circuit: reserved at relay $R2" 15 ||
    not_ok "C (behind NAT ra) reserves a slot at relay R2" nodec.err relay2.err

out=$(rig_exec b 40 "$CLI" echo "$R_MA/p2p-circuit/p2p/$A" --bytes 1000000 --json --timeout 30 2>&1)
if grep -q '"event":"echo","ok":true' <<<"$out" && grep -q '"remote_addr":"/p2p/'"$R"'/p2p-circuit' <<<"$out"; then
    ok "B (behind NAT rb) dials A through R and echoes 1 MB on a relayed channel"
else
    not_ok "B (behind NAT rb) dials A through R and echoes 1 MB on a relayed channel" nodea.err
    printf '#   %s\n' "${out:0:600}"
fi

for who in "nodea private" "nodeb private" "relay public"; do
    set -- $who
    if wait_grep "$1.out" '"event":"reachability","reachability":"'"$2"'"' 30; then
        ok "AutoNAT: $1 is $2"
    else
        not_ok "AutoNAT: $1 is $2" "$1.out" "$1.err"
    fi
done

# AutoNAT's verdict is used: the public relay serves the DHT (kad's auto
# mode: 10.77/16 is private, only the verdict makes it a server), and B's
# autorelay router listens through R once B is private
if wait_grep relay.err 'kad: server mode' 10; then
    ok "the relay's DHT turns to server mode on AutoNAT's public verdict"
else
    not_ok "the relay's DHT turns to server mode on AutoNAT's public verdict" relay.err
fi
if wait_grep nodeb.out '"event":"listen_added","addr":"'"$R_MA"'/p2p-circuit' 15 &&
    wait_grep nodeb.err "circuit: reserved at relay $R" 10; then
    ok "private B reserves at R by itself (autorelay)"
else
    not_ok "private B reserves at R by itself (autorelay)" nodeb.out nodeb.err
fi
B=$("$CLI" id --key-seed 3)
out=$(rig_exec a 30 "$CLI" ping "$B" --autorelay "$R_MA" --option autorelay.reserve=never \
    --option autorelay.discover=false --json --timeout 20 2>&1)
if grep -q '"received":1' <<<"$out"; then
    ok "A reaches private B by its peer ID through the relay the autorelay router names"
else
    not_ok "A reaches private B by its peer ID through the relay the autorelay router names" nodeb.err
    printf '#   %s\n' "$(grep -v channel_ <<<"$out" | tail -n 4)"
fi

# ---- 2. DCUtR through two cone NATs
rig_spawn punch b 90 "$CLI" echo "$R_MA/p2p-circuit/p2p/$A" --bytes 67108864 --json --timeout 80 \
    --listen /ip4/10.77.3.2/tcp/4005 --identify "${PUNCH[@]}" --log info
if rig_wait punch && grep -q '"event":"echo","ok":true,"bytes":67108864' "$RIG_DIR/punch.out"; then
    ok "a 64 MiB echo started on the relayed channel completes byte-exact"
else
    not_ok "a 64 MiB echo started on the relayed channel completes byte-exact" punch.out punch.err
fi
if grep -Eq "dcutr: hole punch with [A-Za-z0-9]+ succeeded .*direct connection established" \
    "$RIG_DIR/punch.err" "$RIG_DIR/nodea.err"; then
    ok "DCUtR: A and B get a direct channel through both NATs"
else
    not_ok "DCUtR: A and B get a direct channel through both NATs" nodea.err punch.err
fi

# ---- 3. a symmetric NAT: the punch fails, the relay keeps the traffic
rig_symmetric rb
# pings for long enough that every punch attempt ends before the node does
SYM=$("$CLI" id --key-seed 9)
rig_spawn sym b 90 "$CLI" ping "$R_MA/p2p-circuit/p2p/$A" --count 10 --interval 1s --json \
    --timeout 80 --listen /ip4/10.77.3.2/tcp/4006 --identify "${PUNCH[@]}" --log info --key-seed 9
if rig_wait sym && grep -q '"received":10' "$RIG_DIR/sym.out"; then
    ok "behind a symmetric NAT the traffic stays on the relay, nothing lost"
else
    not_ok "behind a symmetric NAT the traffic stays on the relay, nothing lost" sym.out sym.err
fi
if grep -E "dcutr: hole punch with ($SYM|$A) failed" "$RIG_DIR/sym.err" "$RIG_DIR/nodea.err" |
    grep -vq 'closing'; then
    ok "... and the failed hole punch is reported with its reason"
else
    not_ok "... and the failed hole punch is reported with its reason" sym.err nodea.err
fi
rig_cone rb

# ---- 4. relay limits and NO_RESERVATION
out=$(rig_exec b 40 "$CLI" echo "$R2_MA/p2p-circuit/p2p/$C" --bytes 1000000 --json --timeout 30 2>&1)
if ! grep -q '"event":"echo","ok":true' <<<"$out" &&
    wait_grep relay2.err 'circuit reached its data limit' 5; then
    ok "a circuit past R2's data limit (64 KiB) is closed"
else
    not_ok "a circuit past R2's data limit (64 KiB) is closed" relay2.err
fi
out=$(rig_exec b 40 "$CLI" ping "$R2_MA/p2p-circuit/p2p/$C" --count 6 --interval 1s --json --timeout 30 2>&1)
# (the CLI dials again after a reset: what counts is that R2 cut the circuit)
if grep -q '"event":"ping","peer_id"' <<<"$out" &&
    wait_grep relay2.err 'circuit reached its duration limit' 5; then
    ok "a circuit past R2's duration limit (3 s) is closed"
else
    not_ok "a circuit past R2's duration limit (3 s) is closed" relay2.err
    printf '#   %s\n' "$(grep -v channel_ <<<"$out" | tail -n 6)"
fi
X=$("$CLI" id --key-seed 77)
out=$(rig_exec b 30 "$CLI" ping "$R_MA/p2p-circuit/p2p/$X" --json --timeout 20 2>&1)
if grep -q '"event":"error"' <<<"$out" && grep -q 'NO_RESERVATION' <<<"$out"; then
    ok "a peer without a reservation gets NO_RESERVATION"
else
    not_ok "a peer without a reservation gets NO_RESERVATION"
    printf '#   %s\n' "${out:0:600}"
fi

finish
