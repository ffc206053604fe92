#!/usr/bin/env bash
# test/interop/utp/utp_native_interop.sh: golemnet's uTP against libutp
# (npm utp-native 2.5.3, its prebuilt linux-x64 binary; issue 16), a raw
# byte-stream echo both ways on 127.0.0.1 through the test-only tool
# utp_pipe (GN_UTP_PIPE):
#   1. utp-native serves an echo; golemnet dials it (its SYN carries
#      golemnet's size extension, which libutp must skip), sends 60000
#      random bytes and gets the same 60000 back;
#   2. golemnet listens and answers what it reads with the same bytes;
#      utp-native dials, sends 60000 random bytes and checks the echo.
# TAP. Skips ("1..0 # SKIP") without node >= 20 / npm or utp_pipe. Like
# the js interop tests (test/interop/js/interop.sh), it runs `npm ci` itself
# in native/ when node_modules/utp-native is missing (CI installs node and
# npm, scripts/quickstart.sh); skips when that fails (no network or
# registry: the log's last line is shown) or when utp-native does not load
# (no prebuilt binary for this platform). Every process runs under
# timeout(1).
set -u
PIPE=${GN_UTP_PIPE:-${1:-}}
NODE=${NODE:-node}
HERE=$(cd "$(dirname "$0")" && pwd)
N=60000
if [ -z "$PIPE" ] || [ ! -x "$PIPE" ]; then
    echo "1..0 # SKIP utp_pipe not given (GN_UTP_PIPE or first argument)"
    exit 0
fi
if ! command -v "$NODE" >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "1..0 # SKIP node or npm not found"
    exit 0
fi
if ! [ "$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null)" -ge 20 ] 2>/dev/null; then
    echo "1..0 # SKIP node >= 20 needed"
    exit 0
fi
DIR=$(mktemp -d "${TMPDIR:-/tmp}/gn-utp-native.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$DIR"
}
trap cleanup EXIT
cd "$HERE/native" || exit 1
if [ ! -d node_modules/utp-native ]; then
    echo "# node_modules missing: running npm ci"
    if ! timeout -k 5 300 npm ci --no-audit --no-fund > "$DIR/npm-ci.log" 2>&1; then
        echo "1..0 # SKIP npm ci failed (no network or npm registry?): $(tail -1 "$DIR/npm-ci.log")"
        exit 0
    fi
fi
if ! timeout 20 "$NODE" -e 'require("utp-native")' > "$DIR/load.log" 2>&1; then
    echo "1..0 # SKIP utp-native does not load here: $(grep -m1 -i error "$DIR/load.log")"
    exit 0
fi
echo "1..2"
head -c "$N" /dev/urandom > "$DIR/data"
FAILED=0

# 1. golemnet dials utp-native's echo server
timeout 30 "$NODE" peer.cjs serve 25 > "$DIR/serve.log" 2>&1 &
PIDS+=($!)
PORT=
for _ in $(seq 1 100); do
    PORT=$(grep -o 'LISTEN [0-9]*' "$DIR/serve.log" 2>/dev/null | cut -d' ' -f2)
    [ -n "$PORT" ] && break
    sleep 0.1
done
if [ -n "$PORT" ] &&
    timeout 30 "$PIPE" dial "/ip4/127.0.0.1/udp/$PORT/utp" "$DIR/data" "$N" 300 \
        > "$DIR/echo1" 2> "$DIR/pipe1.log" &&
    cmp -s "$DIR/data" "$DIR/echo1"; then
    echo "ok 1 - golemnet dials utp-native: $N bytes echoed back byte-exact"
else
    echo "not ok 1 - golemnet dials utp-native: echo of $N bytes (port '${PORT}')"
    cat "$DIR/serve.log" "$DIR/pipe1.log" | tail -8 | sed 's/^/#   /'
    FAILED=1
fi

# 2. utp-native dials golemnet, which answers with the bytes it read
timeout 30 "$PIPE" listen /ip4/127.0.0.1/udp/0/utp "$DIR/data" "$N" 500 \
    > "$DIR/echo2" 2> "$DIR/pipe2.log" &
LPID=$!
PIDS+=($LPID)
PORT=
for _ in $(seq 1 100); do
    PORT=$(grep -o 'LISTEN /ip4/127.0.0.1/udp/[0-9]*' "$DIR/pipe2.log" 2>/dev/null | grep -o '[0-9]*$')
    [ -n "$PORT" ] && break
    sleep 0.1
done
if [ -n "$PORT" ] && timeout 30 "$NODE" peer.cjs dial "$PORT" "$DIR/data" 20 > "$DIR/dial.log" 2>&1 &&
    grep -q '"equal":true' "$DIR/dial.log" && wait "$LPID" && cmp -s "$DIR/data" "$DIR/echo2"; then
    echo "ok 2 - utp-native dials golemnet: $N bytes both ways byte-exact"
else
    echo "not ok 2 - utp-native dials golemnet: echo of $N bytes (port '${PORT}')"
    cat "$DIR/dial.log" "$DIR/pipe2.log" | tail -8 | sed 's/^/#   /'
    FAILED=1
fi
exit $FAILED
