#!/usr/bin/env bash
# test/netns/utp_ledbat_test.sh BUILD_DIR: uTP yields to TCP at a bottleneck
# (issue 16; LEDBAT, RFC 6817). Three namespaces: senders in A, a router R,
# receivers in B; R's egress towards B is a 20 Mbit/s tbf bottleneck with a
# 300 ms queue (deep enough for the queue to pass uTP's 100 ms target: a
# shallow queue would make LEDBAT react to loss only). The bottleneck sits
# on a router, not on the senders' own interface: there, TCP Small Queues
# would cap each TCP socket at a few packets queued in the local qdisc
# while UDP may fill it, and TCP would lose for reasons that have nothing
# to do with uTP. In B a golemnet node listens on uTP with the perf
# protocol and test/netns/tcp_bulk.py receives TCP; A uploads with
# `golemnet perf` (uTP + Noise + yamux) and tcp_bulk.py (TCP with CUBIC set
# on the socket: this kernel's default is BBR, and a namespace's default may
# only be one of tcp_allowed_congestion_control, here reno and bbr).
#   1. uTP alone takes the link: >= 80 % of 20 Mbit/s;
#   2. TCP alone gets >= 80 % (checks the rig);
#   3. a TCP upload started while a uTP upload runs gets >= 80 % of the
#      link once past its first 5 s (slow start, CUBIC's ramp), while the
#      uTP upload keeps sending (an nft counter on R sees its datagrams);
#   4. once TCP is done, uTP takes the link back: >= 70 % over 3 s.
# About 40 s (at most ~190 s: every phase is bounded). Exit status: 0
# passed, 1 failed, 77 skipped (not root, no ip/tc/tbf/nft/python3, no
# golemnet binary, no CUBIC in the kernel). Every process runs under
# timeout(1); the namespaces are deleted on any exit.
set -u
BUILD=${1:-}
CLI="$BUILD/tools/golemnet"
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
NA=gn_utpl_na
NR=gn_utpl_nr
NB=gn_utpl_nb
RATE_MBIT=20
if [ -z "$BUILD" ] || [ ! -x "$CLI" ]; then
    echo "SKIP: no golemnet binary at '$CLI'" >&2
    exit 77
fi
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null || ! command -v tc >/dev/null ||
    ! command -v nft >/dev/null || [ ! -x "$PY" ]; then
    echo "SKIP: needs root, ip, tc, nft and $PY" >&2
    exit 77
fi
DIR=$(mktemp -d /tmp/gn_utp_ledbat.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "$NA" "$NR" "$NB"; do ip netns del "$p" 2>/dev/null; done
    rm -rf "$DIR"
}
trap cleanup EXIT
for ns in "$NA" "$NR" "$NB"; do ip netns del "$ns" 2>/dev/null; done
for ns in "$NA" "$NR" "$NB"; do
    ip netns add "$ns" || { echo "SKIP: ip netns add failed" >&2; exit 77; }
    ip -n "$ns" link set lo up
done
ip link add gn_utpl_a type veth peer name gn_utpl_ra
ip link add gn_utpl_b type veth peer name gn_utpl_rb
ip link set gn_utpl_a netns "$NA"
ip link set gn_utpl_ra netns "$NR"
ip link set gn_utpl_b netns "$NB"
ip link set gn_utpl_rb netns "$NR"
ip -n "$NA" addr add 10.77.8.1/24 dev gn_utpl_a
ip -n "$NR" addr add 10.77.8.254/24 dev gn_utpl_ra
ip -n "$NB" addr add 10.77.12.2/24 dev gn_utpl_b
ip -n "$NR" addr add 10.77.12.254/24 dev gn_utpl_rb
ip -n "$NA" link set gn_utpl_a up
ip -n "$NB" link set gn_utpl_b up
ip -n "$NR" link set gn_utpl_ra up
ip -n "$NR" link set gn_utpl_rb up
ip -n "$NA" route add default via 10.77.8.254
ip -n "$NB" route add default via 10.77.12.254
# root may set any congestion control the kernel has (or can load): skip,
# not fail, where CUBIC is not there
if ! ip netns exec "$NA" "$PY" -c 'import socket; socket.socket().setsockopt(6, getattr(socket, "TCP_CONGESTION", 13), b"cubic")' \
    2>/dev/null; then
    echo "SKIP: TCP congestion control cubic unavailable" >&2
    exit 77
fi
ip netns exec "$NR" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$NR" tc qdisc add dev gn_utpl_rb root tbf rate ${RATE_MBIT}mbit burst 64kb \
    latency 300ms 2>/dev/null || { echo "SKIP: tc tbf unavailable" >&2; exit 77; }
# bytes of uTP datagrams forwarded towards B (the uTP upload's share)
ip netns exec "$NR" nft -f - <<'EOF' || { echo "SKIP: nft failed" >&2; exit 77; }
table inet gn_utpl {
    counter utp { }
    chain count_fwd {
        type filter hook forward priority 0; policy accept;
        oifname "gn_utpl_rb" udp dport 7000 counter name utp
    }
}
EOF
utp_bytes() {
    ip netns exec "$NR" nft list counter inet gn_utpl utp | grep -o 'bytes [0-9]*' | cut -d' ' -f2
}

ip netns exec "$NB" timeout 230 "$CLI" node --listen /ip4/10.77.12.2/udp/7000/utp --perf \
    --json --key-seed 9 > "$DIR/node.log" 2>&1 &
PIDS+=($!)
ip netns exec "$NB" timeout 230 "$PY" "$HERE/tcp_bulk.py" serve 10.77.12.2 7002 5 220 \
    > "$DIR/tcp_rx.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do
    grep -q '/udp/7000/utp/p2p/' "$DIR/node.log" 2>/dev/null &&
        grep -q listening "$DIR/tcp_rx.log" 2>/dev/null && break
    sleep 0.2
done
PID=$(grep -o '/p2p/[A-Za-z0-9]*' "$DIR/node.log" | head -1)
UTP="/ip4/10.77.12.2/udp/7000/utp$PID"
echo "1..4"
if [ -z "$PID" ] || ! grep -q listening "$DIR/tcp_rx.log"; then
    echo "not ok 1 - receivers up"; tail -5 "$DIR/node.log" "$DIR/tcp_rx.log" | sed 's/^/#   /'
    exit 1
fi
FAILED=0
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
# field <json-line file> <name> <skip>: a number from the first transfer
# line (one with "bytes") after the file's first <skip> lines
field() {
    tail -n +"$(($3 + 1))" "$1" | grep '"bytes"' | head -1 | grep -o "\"$2\": *[0-9.]*" |
        grep -o '[0-9.]*$'
}
nlines() { wc -l < "$1"; }
tcp_send() { # bytes
    ip netns exec "$NA" timeout 60 "$PY" "$HERE/tcp_bulk.py" send 10.77.12.2 7002 "$1" cubic 50
}
now_s() { date +%s.%N; }
mbit_between() { # bytes0 bytes1 t0 t1
    awk -v a="$1" -v b="$2" -v s="$3" -v e="$4" 'BEGIN { printf "%.2f", (b - a) * 8 / (e - s) / 1e6 }'
}

# 1. uTP alone
ip netns exec "$NA" timeout 60 "$CLI" perf "$UTP" --upload-bytes 12MB --timeout 50 --json \
    > "$DIR/utp_alone.log" 2>&1
U=$(grep -o '"upload_mbit_s":[0-9.]*' "$DIR/utp_alone.log" | head -1 | cut -d: -f2)
if [ -n "$U" ] && ge "$U" "$((RATE_MBIT * 8 / 10))"; then
    echo "ok 1 - uTP alone takes the link: $U Mbit/s of $RATE_MBIT"
else
    echo "not ok 1 - uTP alone takes the link: '${U}' Mbit/s of $RATE_MBIT (want >= 80 %)"
    tail -3 "$DIR/utp_alone.log" | cut -c1-300 | sed 's/^/#   /'; FAILED=1
fi

# 2. TCP alone (CUBIC)
L2=$(nlines "$DIR/tcp_rx.log")
tcp_send 12000000 > "$DIR/tcp_alone.log" 2>&1
T0=$(field "$DIR/tcp_rx.log" mbit_s "$L2")
if [ -n "$T0" ] && ge "$T0" "$((RATE_MBIT * 8 / 10))"; then
    echo "ok 2 - TCP (cubic) alone: $T0 Mbit/s of $RATE_MBIT"
else
    echo "not ok 2 - TCP (cubic) alone: '${T0}' Mbit/s of $RATE_MBIT (want >= 80 %)"
    cat "$DIR/tcp_alone.log" "$DIR/tcp_rx.log" | sed 's/^/#   /'; FAILED=1
fi

# 3. TCP beside a running uTP upload; the upload outlives the slowest
# TCP phase allowed (3 s + tcp_send's 60 s) and phase 4 (4 s)
ip netns exec "$NA" timeout 100 "$CLI" perf "$UTP" --upload-bytes 1GB --timeout 95 --json \
    > "$DIR/utp_bg.log" 2>&1 &
BG=$!
PIDS+=($BG)
sleep 3
L3=$(nlines "$DIR/tcp_rx.log")
U0=$(utp_bytes)
S0=$(now_s)
tcp_send 40000000 > "$DIR/tcp_shared.log" 2>&1 &
TS=$!
PIDS+=($TS)
sleep 5
U1=$(utp_bytes)
S1=$(now_s)
wait "$TS"
U2=$(utp_bytes)
S2=$(now_s)
T=$(field "$DIR/tcp_rx.log" warm_mbit_s "$L3")
TALL=$(field "$DIR/tcp_rx.log" mbit_s "$L3")
UWARM=$(mbit_between "$U1" "$U2" "$S1" "$S2")
UFIRST=$(mbit_between "$U0" "$U1" "$S0" "$S1")
if [ -n "$T" ] && ge "$T" "$((RATE_MBIT * 8 / 10))" && kill -0 "$BG" 2>/dev/null &&
    [ "$U2" -gt "$U1" ]; then
    echo "ok 3 - TCP beside a uTP upload: $T Mbit/s of $RATE_MBIT after 5 s ($TALL overall);" \
        "uTP meanwhile $UWARM Mbit/s ($UFIRST in TCP's first 5 s)"
else
    echo "not ok 3 - TCP beside a uTP upload: '${T}' Mbit/s of $RATE_MBIT after 5 s (want >= 80 %," \
        "and uTP still sending: $UWARM Mbit/s)"
    cat "$DIR/tcp_shared.log" "$DIR/tcp_rx.log" | sed 's/^/#   /'
    tail -3 "$DIR/utp_bg.log" | cut -c1-300 | sed 's/^/#   /'; FAILED=1
fi

# 4. uTP takes the link back
sleep 1
U3=$(utp_bytes)
S3=$(now_s)
sleep 3
U4=$(utp_bytes)
S4=$(now_s)
UB=$(mbit_between "$U3" "$U4" "$S3" "$S4")
if ge "$UB" "$((RATE_MBIT * 7 / 10))" && kill -0 "$BG" 2>/dev/null; then
    echo "ok 4 - uTP takes the link back: $UB Mbit/s of $RATE_MBIT"
else
    echo "not ok 4 - uTP takes the link back: $UB Mbit/s of $RATE_MBIT (want >= 70 %)"
    tail -3 "$DIR/utp_bg.log" | cut -c1-300 | sed 's/^/#   /'; FAILED=1
fi
kill "$BG" 2>/dev/null
exit $FAILED
