#!/usr/bin/env bash
# bench/bench_utp_secure.sh BUILD_DIR [BYTES] [ROUNDS]: one secured stream
# (Noise + yamux, `golemnet perf` upload of BYTES, default 1GiB) over TCP
# and over uTP, two processes, in the same run: on loopback, and (as root)
# over an unshaped veth pair between two network namespaces (MTU 1500).
# ROUNDS (default 1) alternate TCP and uTP. Prints one JSON line per run:
# where, transport, Mbit/s, and CPU seconds per GiB of the client and of
# the server (utime + stime from /proc, during the upload).
# Issue 16; figures in docs/performance.md.
set -u
BUILD=${1:?usage: bench_utp_secure.sh BUILD_DIR [BYTES] [ROUNDS]}
BYTES=${2:-1GiB}
ROUNDS=${3:-1}
CLI="$BUILD/tools/golemnet"
TCK=$(getconf CLK_TCK)
NA=gn_butp_na
NB=gn_butp_nb
DIR=$(mktemp -d /tmp/gn_bench_utp.XXXXXX)
SRV=
cleanup() {
    [ -n "$SRV" ] && kill "$SRV" 2>/dev/null
    ip netns del "$NA" 2>/dev/null
    ip netns del "$NB" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# run WHERE NSA NSB IP: a server node in NSB listening on IP, uploads from NSA
run() {
    local where=$1 xa=$2 xb=$3 ip=$4
    $xb timeout 3600 "$CLI" node --listen "/ip4/$ip/tcp/7101" --listen "/ip4/$ip/udp/7100/utp" \
        --perf --json --key-seed 11 > "$DIR/node.log" 2>&1 &
    SRV=$!
    for _ in $(seq 1 50); do
        grep -q '/udp/7100/utp/p2p/' "$DIR/node.log" 2>/dev/null && break
        sleep 0.1
    done
    local id node
    id=$(grep -o '/p2p/[A-Za-z0-9]*' "$DIR/node.log" | head -1)
    node=$(pgrep -P "$SRV" | head -1)  # the node under timeout(1)
    [ -n "$node" ] || node=$SRV
    local r t ma s0 s1 mbit cli
    for r in $(seq 1 "$ROUNDS"); do
        for t in tcp utp; do
            if [ $t = tcp ]; then ma="/ip4/$ip/tcp/7101$id"; else ma="/ip4/$ip/udp/7100/utp$id"; fi
            s0=$(cpu_ticks "$node")
            /usr/bin/time -f '%U %S' -o "$DIR/time" $xa "$CLI" perf "$ma" --upload-bytes "$BYTES" \
                --timeout 600 --json > "$DIR/perf.log" 2>&1
            s1=$(cpu_ticks "$node")
            mbit=$(grep -o '"upload_mbit_s":[0-9.]*' "$DIR/perf.log" | cut -d: -f2)
            cli=$(tail -1 "$DIR/time")
            awk -v w="$where" -v t="$t" -v m="${mbit:-0}" -v c="$cli" -v s="$((s1 - s0))" \
                -v tck="$TCK" -v b="$(grep -o '"upload_bytes":[0-9]*' "$DIR/perf.log" | cut -d: -f2)" \
                'BEGIN { split(c, cc, " "); gib = (b + 0) / 1073741824; if (gib <= 0) gib = 1e-9;
                         printf "{\"bench\":\"secure_bulk\",\"where\":\"%s\",\"transport\":\"%s\",\"mbit_s\":%s,\"mb_s\":%.1f,\"client_cpu_s_per_gib\":%.2f,\"server_cpu_s_per_gib\":%.2f}\n",
                                w, t, m, m / 8, (cc[1] + cc[2]) / gib, s / tck / gib }'
        done
    done
    kill "$SRV" 2>/dev/null
    wait "$SRV" 2>/dev/null
    SRV=
}

run loopback "" "" 127.0.0.1
if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null; then
    ip netns del "$NA" 2>/dev/null
    ip netns del "$NB" 2>/dev/null
    ip netns add "$NA" && ip netns add "$NB" || exit 0
    ip link add gn_butp_a type veth peer name gn_butp_b
    ip link set gn_butp_a netns "$NA"
    ip link set gn_butp_b netns "$NB"
    ip -n "$NA" addr add 10.77.13.1/24 dev gn_butp_a
    ip -n "$NB" addr add 10.77.13.2/24 dev gn_butp_b
    for ns in "$NA" "$NB"; do ip -n "$ns" link set lo up; done
    ip -n "$NA" link set gn_butp_a up
    ip -n "$NB" link set gn_butp_b up
    run veth "ip netns exec $NA" "ip netns exec $NB" 10.77.13.2
fi
