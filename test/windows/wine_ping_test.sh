#!/usr/bin/env bash
# A Windows golemnet node under Wine and a native Linux golemnet node on
# 127.0.0.1 (issue 20): ping and echo in both directions, TCP + Noise/yamux
# (the defaults). TAP output; exit 77 (skipped) without wine or either CLI.
#
#   test/windows/wine_ping_test.sh WIN_CLI.exe NATIVE_CLI
#
# Environment: WINEPREFIX, WINEDEBUG as for scripts/windows-ci.sh.
set -u
win=${1:-build-win/tools/golemnet.exe}
native=${2:-build/tools/golemnet}
command -v wine >/dev/null || { echo "1..0 # SKIP wine not installed"; exit 77; }
[ -f "$win" ] || { echo "1..0 # SKIP no Windows CLI at $win"; exit 77; }
[ -x "$native" ] || { echo "1..0 # SKIP no native CLI at $native"; exit 77; }
export WINEDEBUG=${WINEDEBUG:--all}
tmp=$(mktemp -d)
pids=()
cleanup() {
    # TERM, up to ~5 s to exit, then KILL (a Wine process may ignore TERM)
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for _ in $(seq 50); do
        local alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$2" | tail -20; fail=1; }

# Starts a node (the command is "$@"), writes its /p2p address to $tmp/$name.addr.
start_node() { # name cmd...
    local name=$1; shift
    "$@" node --echo --listen /ip4/127.0.0.1/tcp/0 >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pids+=($!)
    for _ in $(seq 1 300); do # up to 30 s: a cold Wine start takes several seconds
        if grep -q '^listening' "$tmp/$name.out" 2>/dev/null; then
            grep -o 'addrs=[^ ]*' "$tmp/$name.out" | head -1 | cut -d= -f2 | cut -d, -f1 | tr -d '\r' >"$tmp/$name.addr"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

echo "TAP version 13"
echo "1..6"
if start_node win wine "$win"; then ok "Windows node listens under Wine ($(cat "$tmp/win.addr"))"; else notok "Windows node listens under Wine" "$tmp/win.err"; fi
if start_node lin "$native"; then ok "native node listens ($(cat "$tmp/lin.addr"))"; else notok "native node listens" "$tmp/lin.err"; fi

# native -> Windows
summary() { grep -m1 '^ping_summary' "$1" | tr -d '\r' | sed 's/peer_id=[^ ]* //'; }
if timeout 60 "$native" ping "$(cat "$tmp/win.addr")" --count 3 >"$tmp/p1" 2>&1 &&
   grep -q '^ping_summary.* received=3 ' "$tmp/p1"; then
    ok "native pings the Windows node: $(summary "$tmp/p1")"
else notok "native pings the Windows node" "$tmp/p1"; fi
if timeout 60 "$native" echo "$(cat "$tmp/win.addr")" --bytes 100000 >"$tmp/e1" 2>&1; then
    ok "native echoes 100000 bytes through the Windows node"
else notok "native echoes 100000 bytes through the Windows node" "$tmp/e1"; fi
# Windows -> native
if timeout 60 wine "$win" ping "$(cat "$tmp/lin.addr")" --count 3 >"$tmp/p2" 2>&1 &&
   grep -q '^ping_summary.* received=3 ' "$tmp/p2"; then
    ok "the Windows CLI pings the native node: $(summary "$tmp/p2")"
else notok "the Windows CLI pings the native node" "$tmp/p2"; fi
if timeout 60 wine "$win" echo "$(cat "$tmp/lin.addr")" --bytes 100000 >"$tmp/e2" 2>&1; then
    ok "the Windows CLI echoes 100000 bytes through the native node"
else notok "the Windows CLI echoes 100000 bytes through the native node" "$tmp/e2"; fi
exit $fail
