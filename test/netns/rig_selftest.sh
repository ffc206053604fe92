#!/usr/bin/env bash
# test/netns/rig_selftest.sh BUILD_DIR: proves that the rig in rig.sh behaves
# like two real NATs (masquerade, port preservation, inbound filtering, cone
# hole punch works, symmetric hole punch fails), with small Python probes,
# and then with golemnet nodes (tools/golemnet: listen, dial, ping).
#
# Exit status: 0 all checks passed, 1 a check failed, 77 skipped (not root,
# no ip netns or nft).  Runs in about 30 s; every process is under timeout(1)
# and the namespaces are deleted on any exit.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=rig.sh
. "$HERE/rig.sh"

BUILD=${1:-}
PY=/usr/bin/python3
PROBE="$HERE/probe.py"
CLI=""
if [ -n "$BUILD" ] && [ -x "$BUILD/tools/golemnet" ]; then
    CLI="$BUILD/tools/golemnet"
fi

rig_need_root
if [ ! -x "$PY" ]; then
    echo "SKIP: netns rig: $PY is needed for the probes" >&2
    exit 77
fi

N=0
FAILED=0
ok() {  # ok <description>: a passed check
    N=$((N + 1)); echo "ok $N - $1"
}
not_ok() {  # not_ok <description> <detail...>: a failed check
    N=$((N + 1)); FAILED=$((FAILED + 1))
    local d="$1"; shift
    echo "not ok $N - $d"
    printf '#   %s\n' "$@"
}
check() {  # check <description> <command...>: passes when the command does
    local d="$1"; shift
    if "$@"; then ok "$d"; else not_ok "$d" "failed: $*"; fi
}
# expect_eq <description> <got> <want>
expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "got:  '$2'" "want: '$3'"; fi
}

rig_up || { echo "not ok - rig_up"; exit 1; }
T0=$SECONDS

# --- plain IP probes ------------------------------------------------------
rig_spawn echo1 pub 50 "$PY" "$PROBE" echo-udp 3478 48
rig_spawn echo2 pub 50 "$PY" "$PROBE" echo-udp 3481 48
rig_spawn echot pub 50 "$PY" "$PROBE" echo-tcp 3480 48
rig_spawn rdv pub 50 "$PY" "$PROBE" rendezvous 3479 48
for p in echo1 echo2 echot rdv; do
    rig_wait_line "$p" '^ready' 5 >/dev/null || not_ok "probe $p started" "$(rig_err "$p")"
done

got=$(rig_exec a 5 "$PY" "$PROBE" ask-udp 10.77.2.2 3478 40000 3)
expect_eq "A reaches the public side over UDP, seen as 10.77.2.1, source port kept" \
    "$got" "seen 10.77.2.1:40000"
got=$(rig_exec a 5 "$PY" "$PROBE" ask-udp 10.77.2.2 3481 40000 3)
expect_eq "A's mapping is endpoint-independent (same port to another destination)" \
    "$got" "seen 10.77.2.1:40000"
got=$(rig_exec b 5 "$PY" "$PROBE" ask-udp 10.77.2.2 3478 40000 3)
expect_eq "B reaches the public side over UDP, seen as 10.77.2.3, source port kept" \
    "$got" "seen 10.77.2.3:40000"
got=$(rig_exec a 5 "$PY" "$PROBE" ask-tcp 10.77.2.2 3480 40001 3)
expect_eq "A reaches the public side over TCP, seen as 10.77.2.1, source port kept" \
    "$got" "seen 10.77.2.1:40001"

# Unsolicited inbound to A's router (a fresh port, and the port A just used
# towards another host), and to A's LAN address (no route): nothing arrives.
rig_spawn in_udp a 6 "$PY" "$PROBE" recv-udp 45000 3
rig_spawn in_tcp a 6 "$PY" "$PROBE" accept-tcp 45001 3
rig_wait_line in_udp '^ready' 5 >/dev/null
rig_wait_line in_tcp '^ready' 5 >/dev/null
rig_spawn out_udp pub 5 "$PY" "$PROBE" send-udp 10.77.2.1 45000 2
rig_spawn out_tcp pub 5 "$PY" "$PROBE" connect-tcp 10.77.2.1 45001 2
rig_spawn out_lan pub 5 "$PY" "$PROBE" connect-tcp 10.77.1.2 45001 2
rig_wait out_udp
rc=0; rig_wait out_tcp || rc=$?
expect_eq "an unsolicited TCP connect from the public side to A's router fails" "$rc" 1
rc=0; rig_wait out_lan || rc=$?
expect_eq "the public side cannot reach A's LAN address" "$rc" 1
rc=0; rig_wait in_udp || rc=$?
expect_eq "an unsolicited UDP datagram to A's router does not reach A" "$rc" 1
rc=0; rig_wait in_tcp || rc=$?
expect_eq "an unsolicited TCP connection to A's router does not reach A" "$rc" 1

# Hole punch through both cone NATs via the rendezvous.
rig_spawn punch_a a 12 "$PY" "$PROBE" punch a b 41000 10.77.2.2 3479 8
rig_spawn punch_b b 12 "$PY" "$PROBE" punch b a 41000 10.77.2.2 3479 8
rc_a=0; rig_wait punch_a || rc_a=$?
rc_b=0; rig_wait punch_b || rc_b=$?
if [ "$rc_a" = 0 ] && [ "$rc_b" = 0 ]; then
    ok "UDP hole punch between A and B through two cone NATs succeeds"
else
    not_ok "UDP hole punch between A and B through two cone NATs succeeds" \
        "A: $(rig_out punch_a | tr '\n' ' ')" "B: $(rig_out punch_b | tr '\n' ' ')"
fi

# B's router becomes symmetric: a new port per destination, punch fails.
check "rig_symmetric rb" rig_symmetric rb
g1=$(rig_exec b 5 "$PY" "$PROBE" ask-udp 10.77.2.2 3478 43000 3)
g2=$(rig_exec b 5 "$PY" "$PROBE" ask-udp 10.77.2.2 3481 43000 3)
if [ "${g1%:*}" = "seen 10.77.2.3" ] && [ "${g2%:*}" = "seen 10.77.2.3" ] && [ "$g1" != "$g2" ]; then
    ok "symmetric NAT: one source port maps to a different port per destination"
else
    not_ok "symmetric NAT: one source port maps to a different port per destination" \
        "to 3478: '$g1'" "to 3481: '$g2'"
fi
rig_spawn punch_a2 a 8 "$PY" "$PROBE" punch a2 b2 42000 10.77.2.2 3479 4
rig_spawn punch_b2 b 8 "$PY" "$PROBE" punch b2 a2 42000 10.77.2.2 3479 4
rc_a=0; rig_wait punch_a2 || rc_a=$?
rc_b=0; rig_wait punch_b2 || rc_b=$?
if [ "$rc_a" = 1 ] && [ "$rc_b" = 1 ]; then
    ok "UDP hole punch fails when B's NAT is symmetric"
else
    not_ok "UDP hole punch fails when B's NAT is symmetric" \
        "A ($rc_a): $(rig_out punch_a2 | tr '\n' ' ')" "B ($rc_b): $(rig_out punch_b2 | tr '\n' ' ')"
fi
for p in echo1 echo2 echot rdv; do rig_stop "$p" >/dev/null 2>&1; done

# --- golemnet nodes -------------------------------------------------------
if [ -z "$CLI" ]; then
    echo "# golemnet checks skipped: no BUILD_DIR/tools/golemnet (argument: '$BUILD')"
else
    ID1=$("$CLI" id --key-seed 1)
    ID3=$("$CLI" id --key-seed 3)
    PUB_MA="/ip4/10.77.2.2/tcp/4001/p2p/$ID1"
    rig_spawn relay pub 40 "$CLI" node --json --key-seed 1 --listen /ip4/10.77.2.2/tcp/4001
    rig_spawn nodeb b 40 "$CLI" node --json --key-seed 3 --listen /ip4/10.77.3.2/tcp/4002
    if rig_wait_line relay '"event":"listening"' 10 >/dev/null &&
       rig_wait_line nodeb '"event":"listening"' 10 >/dev/null; then
        ok "golemnet nodes listen in the public namespace and behind B's NAT"
    else
        not_ok "golemnet nodes listen in the public namespace and behind B's NAT" \
            "$(rig_err relay)" "$(rig_err nodeb)"
    fi
    # the negative dials run while the positive ones do (they take a few s)
    rig_spawn dial_lan a 10 "$CLI" ping "/ip4/10.77.3.2/tcp/4002/p2p/$ID3" --json --timeout 3
    rig_spawn dial_wan a 10 "$CLI" ping "/ip4/10.77.2.3/tcp/4002/p2p/$ID3" --json --timeout 3
    for side in a b; do
        out=$(rig_exec "$side" 15 "$CLI" ping "$PUB_MA" --count 2 --json --timeout 10 2>&1)
        rc=$?
        n=$(printf '%s\n' "$out" | grep -c '"event":"ping"')
        if [ "$rc" = 0 ] && [ "$n" = 2 ]; then
            ok "$side dials the public node through its NAT and pings it"
        else
            not_ok "$side dials the public node through its NAT and pings it" "rc=$rc" "$out"
        fi
    done
    # B's node is up: it answers from inside B's LAN
    out=$(rig_exec b 15 "$CLI" ping "/ip4/10.77.3.2/tcp/4002/p2p/$ID3" --json --timeout 10 2>&1)
    check "B's node answers a ping from its own LAN" test $? = 0
    rc=0; rig_wait dial_lan || rc=$?
    if [ "$rc" = 1 ] && grep -q '"what":"dial"' "$RIG_DIR/dial_lan.out"; then
        ok "A cannot dial B's LAN address (no route across the NATs)"
    else
        not_ok "A cannot dial B's LAN address (no route across the NATs)" "rc=$rc" "$(rig_out dial_lan)"
    fi
    rc=0; rig_wait dial_wan || rc=$?
    if [ "$rc" = 1 ] && grep -q '"event":"error"' "$RIG_DIR/dial_wan.out"; then
        ok "A cannot dial B's router WAN address (the NAT drops the SYN)"
    else
        not_ok "A cannot dial B's router WAN address (the NAT drops the SYN)" "rc=$rc" "$(rig_out dial_wan)"
    fi
    rig_stop relay >/dev/null 2>&1
    rig_stop nodeb >/dev/null 2>&1
    # what the public node saw: inbound channels from the routers' WAN addresses
    for w in 10.77.2.1 10.77.2.3; do
        if grep '"event":"channel_opened"' "$RIG_DIR/relay.out" | grep -q "\"remote_addr\":\"/ip4/$w/tcp/"; then
            ok "the public node sees a dialer as $w (masqueraded)"
        else
            not_ok "the public node sees a dialer as $w (masqueraded)" "$(rig_out relay)"
        fi
    done
    if grep '"event":"channel_opened"' "$RIG_DIR/relay.out" | grep -q '"remote_addr":"/ip4/10\.77\.[13]\.'; then
        not_ok "no LAN address reaches the public node" "$(rig_out relay)"
    else
        ok "no LAN address reaches the public node"
    fi
fi

echo "1..$N"
echo "# $((SECONDS - T0)) s, $FAILED failed"
rig_down
[ "$FAILED" = 0 ]
