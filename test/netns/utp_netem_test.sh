#!/usr/bin/env bash
# test/netns/utp_netem_test.sh BUILD_DIR: golemnet over uTP on a faulty link
# (issue 16). Faults: 5 % loss, 50 ms +- 10 ms delay (the jitter reorders),
# 1 % duplication, 1 % reordering, on the data direction A to B only
# (GN_UTP_NETEM_FAULTS=data, the default: netem on one end of the veth
# pair, the reverse path clean) or on both (=both: netem on both ends).
# The links' MTU is GN_UTP_NETEM_MTU (default 9000: jumbo frames, so both
# nodes agree on ~8,900-byte payloads with golemnet's size offer,
# docs/utp.md; 1500 keeps the internet default of 1,400).
#  - With sch_netem: namespaces A and B on one veth pair, netem on A's end
#    (and B's with =both); B's node listens on /ip4/10.77.9.2/udp/7000/utp,
#    A dials it.
#  - Without it (this project's kernels): A -- R -- B on two veth pairs
#    (10.77.9.0/24, 10.77.10.0/24), no routing; test/netns/udp_impair.py
#    in R listens on 10.77.9.3:7000, applies the same faults with a seeded
#    RNG and forwards to B's node on 10.77.10.2:7000 (see its header). A
#    dials R's address with B's peer id. The forwarder's counters are
#    printed: forwarded, dropped, duplicated and reordered must be non-zero
#    in each impaired direction (and drops zero in a clean one), and with
#    MTU >= 9000 A's datagrams must have been larger than 1,500 bytes (the
#    size offer in use), or the test fails.
# From A, `golemnet echo` sends GN_UTP_NETEM_BYTES over uTP + Noise + yamux
# and checks every echoed byte. With the faults on A to B only, the echo's
# time is that of the impaired A-to-B transfer (the way back is clean; A's
# acks of it see the faults). Why these defaults (CI) and the figures:
# docs/utp.md "Tests" and docs/testing.md. The issue's worst reading,
# 64 MiB echoed with the faults both ways at MTU 1500, is a manual run
# (passed here in 1071 s):
#   GN_UTP_NETEM_BYTES=64MiB GN_UTP_NETEM_FAULTS=both GN_UTP_NETEM_MTU=1500 \
#       GN_UTP_NETEM_TIMEOUT=1380 bash test/netns/utp_netem_test.sh build
# GN_UTP_NETEM_TIMEOUT (default 840 s) limits the echo; every process runs
# under timeout(1) derived from it.
#
# Exit status: 0 passed, 1 failed, 77 skipped (not root, no ip, neither tc
# netem nor python3, no golemnet binary). The namespaces are deleted and
# the node and forwarder stopped on any exit.
set -u
BUILD=${1:-}
CLI="$BUILD/tools/golemnet"
BYTES=${GN_UTP_NETEM_BYTES:-64MiB}
FAULT_DIRS=${GN_UTP_NETEM_FAULTS:-data}
MTU=${GN_UTP_NETEM_MTU:-9000}
# namespaces named after this shell's PID, interfaces created inside them:
# concurrent runs (other worktrees, CI) never meet
NA=gn_utp_na_$$
NB=gn_utp_nb_$$
NR=gn_utp_nr_$$
LIMIT=${GN_UTP_NETEM_TIMEOUT:-840} # echo time limit, s; bounds every process
HERE=$(cd "$(dirname "$0")" && pwd)
PY=
for p in /usr/bin/python3 "$(command -v python3 2>/dev/null)"; do
    [ -n "$p" ] && [ -x "$p" ] && { PY=$p; break; }
done
if [ -z "$BUILD" ] || [ ! -x "$CLI" ]; then
    echo "SKIP: no golemnet binary at '$CLI'" >&2
    exit 77
fi
case "$FAULT_DIRS" in
data | both) ;;
*) echo "utp_netem_test.sh: GN_UTP_NETEM_FAULTS must be data or both, not '$FAULT_DIRS'" >&2; exit 2 ;;
esac
case "$MTU" in
'' | *[!0-9]*) echo "utp_netem_test.sh: GN_UTP_NETEM_MTU must be a number (1280..65535)" >&2; exit 2 ;;
esac
if [ "$MTU" -lt 1280 ] || [ "$MTU" -gt 65535 ]; then
    echo "utp_netem_test.sh: GN_UTP_NETEM_MTU must be 1280..65535, not $MTU" >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
    echo "SKIP: needs root and ip (and tc netem or python3)" >&2
    exit 77
fi
DIR=$(mktemp -d /tmp/gn_utp_netem.XXXXXX)
NODE_PID=
IMP_PID=
cleanup() {
    [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null
    [ -n "$IMP_PID" ] && kill "$IMP_PID" 2>/dev/null
    ip netns del "$NA" 2>/dev/null
    ip netns del "$NB" 2>/dev/null
    ip netns del "$NR" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT
ip netns del "$NA" 2>/dev/null
ip netns del "$NB" 2>/dev/null
ip netns del "$NR" 2>/dev/null
ip netns add "$NA" && ip netns add "$NB" || { echo "SKIP: ip netns add failed" >&2; exit 77; }
ip -n "$NA" link add gn_utpv_a type veth peer name gn_utpv_b netns "$NB"
ip -n "$NA" addr add 10.77.9.1/24 dev gn_utpv_a
ip -n "$NB" addr add 10.77.9.2/24 dev gn_utpv_b
for ns in "$NA" "$NB"; do ip -n "$ns" link set lo up; done
ip -n "$NA" link set gn_utpv_a mtu "$MTU" up
ip -n "$NB" link set gn_utpv_b mtu "$MTU" up
NETEM="delay 50ms 10ms loss 5% duplicate 1% reorder 1% limit 10000"
LISTEN_IP=10.77.9.2
DIAL_IP=10.77.9.2
# shellcheck disable=SC2086
if command -v tc >/dev/null &&
    ip netns exec "$NA" tc qdisc add dev gn_utpv_a root netem $NETEM 2>/dev/null &&
    { [ "$FAULT_DIRS" = data ] ||
        ip netns exec "$NB" tc qdisc add dev gn_utpv_b root netem $NETEM; }; then
    FAULTS="netem $NETEM on A's end$([ "$FAULT_DIRS" = both ] && echo " and B's"), MTU $MTU"
else
    # No sch_netem in this kernel (this project's VMs): replace the direct
    # veth by A -- R -- B and run test/netns/udp_impair.py in R, which A
    # dials instead of B (see that script's header for the design).
    if [ -z "$PY" ]; then
        echo "SKIP: no tc netem and no python3 for the userspace forwarder" >&2
        exit 77
    fi
    ip -n "$NA" link del gn_utpv_a
    ip netns add "$NR" || { echo "SKIP: ip netns add failed" >&2; exit 77; }
    ip -n "$NA" link add gn_utpv_a type veth peer name gn_utpv_ra netns "$NR"
    ip -n "$NB" link add gn_utpv_b type veth peer name gn_utpv_rb netns "$NR"
    ip -n "$NA" addr add 10.77.9.1/24 dev gn_utpv_a
    ip -n "$NR" addr add 10.77.9.3/24 dev gn_utpv_ra
    ip -n "$NR" addr add 10.77.10.3/24 dev gn_utpv_rb
    ip -n "$NB" addr add 10.77.10.2/24 dev gn_utpv_b
    ip -n "$NR" link set lo up
    for pair in "$NA gn_utpv_a" "$NR gn_utpv_ra" "$NR gn_utpv_rb" "$NB gn_utpv_b"; do
        read -r ns dev <<< "$pair"
        ip -n "$ns" link set "$dev" mtu "$MTU" up
    done
    LISTEN_IP=10.77.10.2
    DIAL_IP=10.77.9.3
    ip netns exec "$NR" timeout -k 5 "$((LIMIT + 60))" "$PY" -u "$HERE/udp_impair.py" \
        --listen 10.77.9.3:7000 --upstream-bind 10.77.10.3 --target 10.77.10.2:7000 \
        --loss 0.05 --delay 50 --jitter 10 --dup 0.01 --reorder 0.01 --seed 16 \
        --faults "$([ "$FAULT_DIRS" = both ] && echo both || echo a2b)" \
        --lifetime "$((LIMIT + 30))" > "$DIR/impair.log" 2>&1 &
    IMP_PID=$!
    for _ in $(seq 1 50); do
        grep -q '^ready' "$DIR/impair.log" && break
        sleep 0.1
    done
    if ! grep -q '^ready' "$DIR/impair.log"; then
        echo "1..0 # SKIP udp_impair.py did not start"
        sed 's/^/#   /' "$DIR/impair.log" | tail -5
        exit 1
    fi
    FAULTS="udp_impair.py in router namespace: 5% loss, 50+-10 ms delay, 1% dup, 1% reorder $([ "$FAULT_DIRS" = both ] && echo "both ways" || echo "A to B only"), MTU $MTU (no sch_netem in this kernel)"
fi

echo "1..2"
ip netns exec "$NB" timeout -k 5 "$((LIMIT + 60))" "$CLI" node --listen "/ip4/$LISTEN_IP/udp/7000/utp" --echo --json \
    --key-seed 7 > "$DIR/node.log" 2>&1 &
NODE_PID=$!
ADDR=
for _ in $(seq 1 50); do
    ADDR=$(grep -o "/ip4/$LISTEN_IP/udp/7000/utp/p2p/[A-Za-z0-9]*" "$DIR/node.log" | head -1)
    [ -n "$ADDR" ] && break
    sleep 0.2
done
if [ -z "$ADDR" ]; then
    echo "not ok 1 - node listens on uTP in namespace B"
    sed 's/^/#   /' "$DIR/node.log" | tail -5
    echo "not ok 2 - echo $BYTES over uTP + Noise + yamux # SKIP no node"
    exit 1
fi
echo "ok 1 - node listens on uTP in namespace B: $ADDR"
ADDR="/ip4/$DIAL_IP${ADDR#/ip4/"$LISTEN_IP"}"
START=$SECONDS
ip netns exec "$NA" timeout -k 5 "$((LIMIT + 20))" "$CLI" echo "$ADDR" --bytes "$BYTES" --timeout "$LIMIT" --json \
    > "$DIR/echo.log" 2>&1
RC=$?
ELAPSED=$((SECONDS - START))
FAULTS_OK=1
if [ -n "$IMP_PID" ]; then
    # stop the forwarder (bounded wait) and require that every fault
    # really happened in both directions
    kill "$IMP_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$IMP_PID" 2>/dev/null || break; sleep 0.1; done
    IMP_PID=
    grep '^{' "$DIR/impair.log" | sed 's/^/#   forwarder: /'
    "$PY" - "$DIR/impair.log" "$FAULT_DIRS" "$MTU" <<'EOF' || FAULTS_OK=0
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
both, mtu = sys.argv[2] == "both", int(sys.argv[3])
ok = len(rows) == 2
for r in rows:
    impaired = both or r["direction"] == "a2b"
    for k in ("forwarded", "dropped", "duplicated", "reordered"):
        if impaired and r.get(k, 0) <= 0:
            print("#   %s: no %s datagrams" % (r["direction"], k))
            ok = False
    if not impaired and (r.get("dropped", 0) or r.get("forwarded", 0) <= 0):
        print("#   %s: should pass unimpaired" % r["direction"])
        ok = False
    if r["direction"] == "a2b" and mtu >= 9000 and r.get("max_size", 0) <= 1500:
        print("#   a2b: no datagram above 1500 bytes at MTU %d (size offer not used)" % mtu)
        ok = False
sys.exit(0 if ok else 1)
EOF
fi
if [ $RC -eq 0 ] && grep -q '"event":"echo","ok":true' "$DIR/echo.log" && [ $FAULTS_OK -eq 1 ]; then
    echo "ok 2 - echo $BYTES over uTP + Noise + yamux, byte-exact ($ELAPSED s; $FAULTS)"
    [ "${FAULTS#netem}" != "$FAULTS" ] &&
        ip netns exec "$NA" tc -s qdisc show dev gn_utpv_a | grep -E "dropped" |
        sed 's/^/#   A qdisc: /'
    exit 0
fi
echo "not ok 2 - echo $BYTES over uTP + Noise + yamux ($FAULTS; exit $RC, faults seen $FAULTS_OK)"
tail -5 "$DIR/echo.log" | cut -c1-300 | sed 's/^/#   /'
exit 1
