#!/usr/bin/env bash
# The main job: a live demo on 127.0.0.1.
#
#   demo.sh [BUILD_DIR]      (default: build)
#
# Starts a golemnet node, connects to it from a second golemnet node over
# ECIES only, from nodes that know only its peer ID (a static route, a
# bootstrap list) and from a js-libp2p node over Noise, and prints what was
# negotiated, the identify results, ping RTTs and a perf figure. Everything it
# starts is stopped on exit; every step is bounded in time. The js part is
# skipped (with a note) when node >= 20 or npm is missing. Then a Kademlia
# DHT: three golemnet DHT nodes, one-shot put/get/find-peer through them, and
# a js-libp2p kad-dht node that reads the record and provides a CID that
# golemnet finds. Then a circuit relay: a golemnet relay, a node that listens
# only through it, and an echo dialled through the relay. Then two daemons:
# the CLI, as a client of A's control socket, dials B and sends a message
# that a client subscribed to B's events receives. Then the Ergo wire: two
# Ergo endpoints shake hands, join a pool of 3 links and exchange ENP frames,
# and an Ergo node serves a process that the CLI calls and spawns workers on.
# Then libp2p breadth: a secp256k1 identity listening on WebSocket, pinged by
# DNS name over /tls/1.0.0, and a js-libp2p node dialling it over /ws. Then a
# file shared and fetched by CID (/golem/transfer/1.0.0), and a gossipsub
# topic on which one node publishes and another receives.
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
cli=$root/${1:-build}/tools/golemnet
[ -x "$cli" ] || { echo "demo: no CLI at $cli (build first)" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }
# wait_line FILE PATTERN: waits (at most 10 s) until FILE has a line with PATTERN
wait_line() {
    for _ in $(seq 1 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
field() { # json-line file, python expression over `e` (the event dict)
    python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: e=json.loads(l)
    except ValueError: continue
    r=eval(sys.argv[2])
    if r is not None: print(r)' "$1" "$2"
}

say "1. a golemnet node (Noise and ECIES, yamux and mplex, echo and perf served)"
timeout 300 "$cli" node --listen /ip4/127.0.0.1/tcp/0 --key-seed 1 --echo --perf --json \
    >"$tmp/node.out" 2>"$tmp/node.err" &
pids+=($!)
wait_line "$tmp/node.out" '"listening"'
addr=$(field "$tmp/node.out" 'e["addrs"][0] if e.get("event")=="listening" else None' | head -n1)
[ -n "$addr" ] || { echo "demo: the node did not start" >&2; cat "$tmp/node.err" >&2; exit 1; }
echo "listening on $addr"

say "2. a second golemnet node dials it over ECIES only"
timeout 60 "$cli" ping "$addr" --count 3 --security ecies --identify --json >"$tmp/ping.out" 2>"$tmp/ping.err"
field "$tmp/ping.out" '"negotiated: security %s, muxer %s" % (e.get("security"), e.get("muxer")) if e.get("event")=="channel_opened" else None'
field "$tmp/ping.out" '"identify: agent %s, %d protocols: %s" % (e.get("agent_version"), len(e.get("protocols",[])), " ".join(e.get("protocols",[]))) if e.get("event")=="identify" else None'
field "$tmp/ping.out" '"ping: %.3f ms" % e["rtt_ms"] if e.get("event")=="ping" else None'
timeout 120 "$cli" perf "$addr" --upload-bytes 67108864 --download-bytes 67108864 --security ecies --json \
    >"$tmp/perf.out" 2>"$tmp/perf.err"
field "$tmp/perf.out" '"perf over ECIES: upload %.0f MB/s, download %.0f MB/s (64 MiB each way)" % (e["upload_bytes"]/e["upload_s"]/1e6, e["download_bytes"]/e["download_s"]/1e6) if e.get("event")=="perf" else None'

say "3. a third node knows only the peer ID: it finds the address through a route or a bootstrap list"
pid=${addr##*/p2p/}
timeout 60 "$cli" ping "$pid" --route "$addr" --count 1 --json >"$tmp/route.out" 2>"$tmp/route.err"
field "$tmp/route.out" '"static router: /p2p/%s... -> %s, ping %.3f ms" % (e["peer_id"][:16], "'"${addr%/p2p/*}"'", e["rtt_ms"]) if e.get("event")=="ping" else None'
timeout 60 "$cli" ping "/p2p/$pid" --bootstrap "$addr" --count 1 --json >"$tmp/boot.out" 2>"$tmp/boot.err"
field "$tmp/boot.out" '"bootstrap discovery: /p2p/%s... dialled, ping %.3f ms" % (e["peer_id"][:16], e["rtt_ms"]) if e.get("event")=="ping" else None'
timeout 60 "$cli" ping "/p2p/$pid" --router "" --discovery "" --json >"$tmp/noroute.out" 2>/dev/null
field "$tmp/noroute.out" '"no router, no discovery: %s" % e.get("error") if e.get("event")=="error" else None'

say "4. a js-libp2p node dials it over Noise"
js=$root/test/interop/js
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]; then
    if [ ! -d "$js/node_modules" ]; then
        (cd "$js" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >"$tmp/npm.log" 2>&1) ||
            { echo "demo: npm ci failed" >&2; tail "$tmp/npm.log" >&2; exit 1; }
    fi
    (cd "$js" && timeout 120 node --import ./polyfill.mjs peer.mjs --dial "$addr" --identify --ping 3 \
        --perf-upload 67108864 --perf-download 67108864 --exit-after-actions) >"$tmp/js.out" 2>"$tmp/js.err"
    field "$tmp/js.out" '"js sees: encryption %s, muxer %s" % (e.get("encryption"), e.get("muxer")) if e.get("event") in ("connection_open","connected") else None' | sort -u
    field "$tmp/js.out" '"js identify of golemnet: agent %s, protocols %s" % (e.get("agent_version"), " ".join(e.get("protocols",[]))) if e.get("event")=="identify" else None'
    field "$tmp/js.out" '"js ping: %.3f ms" % e["rtt_ms"] if e.get("event")=="ping" else None'
    field "$tmp/js.out" '"js perf: upload %.0f MB/s, download %.0f MB/s" % (e["upload_bytes"]/e["upload_s"]/1e6, e["download_bytes"]/e["download_s"]/1e6) if e.get("event")=="perf" else None'
else
    echo "(skipped: needs node >= 20 and npm)"
fi

say "5. a Kademlia DHT (/ipfs/kad/1.0.0): three golemnet DHT nodes and a js-libp2p kad-dht node"
dht_node() { # name seed [bootstrap addr]
    local boot=()
    [ -n "${3:-}" ] && boot=(--bootstrap-kad "$3")
    timeout 300 "$cli" node --listen /ip4/127.0.0.1/tcp/0 --key-seed "$2" --option kad.mode=server \
        --dht-namespace test "${boot[@]}" --json >"$tmp/$1.out" 2>"$tmp/$1.err" &
    pids+=($!)
    wait_line "$tmp/$1.out" '"listening"'
    field "$tmp/$1.out" 'e["addrs"][0] if e.get("event")=="listening" else None' | head -n1
}
d1=$(dht_node d1 11)
d2=$(dht_node d2 12 "$d1")
d3=$(dht_node d3 13 "$d1")
[ -n "$d1" ] && [ -n "$d2" ] && [ -n "$d3" ] || { echo "demo: the DHT nodes did not start" >&2; exit 1; }
echo "DHT nodes: ${d1##*/p2p/} ${d2##*/p2p/} ${d3##*/p2p/} (the 2nd and 3rd bootstrap from the 1st)"
dht() { timeout 60 "$cli" dht "$@" --dht-namespace test --json 2>"$tmp/dht.err"; }
dht put /test/hello "hello from golemnet" --bootstrap-kad "$d2" >"$tmp/put.out"
field "$tmp/put.out" '"put /test/hello (a one-shot node joining at the 2nd): %s" % e["status"] if e.get("event")=="dht" else None'
dht get /test/hello --bootstrap-kad "$d3" >"$tmp/get.out"
field "$tmp/get.out" '"get /test/hello (joining at the 3rd): %s, value %r" % (e["status"], e.get("value")) if e.get("event")=="dht" else None'
dht find-peer "${d3##*/p2p/}" --bootstrap-kad "$d1" >"$tmp/fp.out"
field "$tmp/fp.out" '"find-peer %s... (knowing only the 1st): %s %s" % (e.get("peer_id","")[:16], e["status"], " ".join(e.get("addrs",[]))) if e.get("event")=="dht" else None'
if [ -d "$js/node_modules/@libp2p/kad-dht" ]; then
    cid=bafkreibnoelefnzgwbcacyt4vh52ymxvzbjq7mmqhtcnwarfq4lzegsiqe
    mkfifo "$tmp/js.in"
    (cd "$js" && timeout 120 node --import ./polyfill.mjs dht_peer.mjs --key-seed 21 \
        <"$tmp/js.in" >"$tmp/jsdht.out" 2>"$tmp/jsdht.err") &
    pids+=($!)
    exec 9>"$tmp/js.in"
    echo "{\"id\":1,\"cmd\":\"dial\",\"addr\":\"$d1\"}" >&9
    echo "{\"id\":2,\"cmd\":\"wait-routing\",\"peers\":[\"${d1##*/p2p/}\"],\"timeout_ms\":15000}" >&9
    echo "{\"id\":3,\"cmd\":\"provide\",\"cid\":\"$cid\",\"timeout_ms\":30000}" >&9
    echo "{\"id\":4,\"cmd\":\"get\",\"key\":\"/test/hello\",\"timeout_ms\":30000}" >&9
    for _ in $(seq 1 300); do
        grep -q '"id":4' "$tmp/jsdht.out" 2>/dev/null && break
        sleep 0.1
    done
    field "$tmp/jsdht.out" '"js kad-dht: provide %s: %s" % ("'"$cid"'"[:20]+"...", "ok" if e.get("ok") else e.get("error")) if e.get("reply")=="provide" else None'
    field "$tmp/jsdht.out" '"js kad-dht: get /test/hello: %s" % (repr(e.get("value")) if e.get("ok") else e.get("error")) if e.get("reply")=="get" else None'
    dht find-providers "$cid" --bootstrap-kad "$d3" >"$tmp/fprov.out"
    field "$tmp/fprov.out" '"golemnet find-providers: %s, %s" % (e["status"], ", ".join(p["peer_id"][:16]+"..." for p in e.get("providers",[]))) if e.get("event")=="dht" else None'
    exec 9>&-
else
    echo "(js kad-dht part skipped: needs node >= 20 and npm)"
fi

say "6. circuit relay v2: a relay, a node listening through it, a relayed dial"
timeout 300 "$cli" node --listen /ip4/127.0.0.1/tcp/0 --key-seed 31 --relay --json \
    >"$tmp/relay.out" 2>"$tmp/relay.err" &
pids+=($!)
wait_line "$tmp/relay.out" '"listening"'
raddr=$(field "$tmp/relay.out" 'e["addrs"][0] if e.get("event")=="listening" else None' | head -n1)
timeout 300 "$cli" node --listen "$raddr/p2p-circuit" --key-seed 32 --echo --json --log info \
    >"$tmp/hidden.out" 2>"$tmp/hidden.err" &
pids+=($!)
wait_line "$tmp/hidden.err" 'circuit: reserved'
hidden=$(field "$tmp/hidden.out" 'e["addrs"][0] if e.get("event")=="listening" else None' | head -n1)
echo "relay: ${raddr}"
echo "a node with no address of its own, reachable only through the relay: ${hidden:-?}"
grep -o 'reserved at relay.*' "$tmp/hidden.err" | head -n1 | sed 's/^/  /'
timeout 60 "$cli" echo "$hidden" --bytes 65536 --json >"$tmp/relayed.out" 2>"$tmp/relayed.err"
field "$tmp/relayed.out" '"relayed channel: %s -> %s" % (e.get("local_addr"), e.get("remote_addr")) if e.get("event")=="channel_opened" and "p2p-circuit" in e.get("remote_addr","") else None'
field "$tmp/relayed.out" '"echo of 64 KiB through the relay: %s" % ("byte-exact" if e.get("ok") else "FAILED") if e.get("event")=="echo" else None'

say "7. daemons: nodes that other programs drive through a control socket"
sa=$tmp/a.sock
sb=$tmp/b.sock
for d in a:$sa:41 b:$sb:42; do
    IFS=: read -r name sock seed <<<"$d"
    timeout 300 "$cli" daemon --socket "$sock" --listen /ip4/127.0.0.1/tcp/0 --key-seed "$seed" \
        --json >"$tmp/daemon-$name.out" 2>"$tmp/daemon-$name.err" &
    pids+=($!)
done
wait_line "$tmp/daemon-a.out" '"ready"'
wait_line "$tmp/daemon-b.out" '"ready"'
field "$tmp/daemon-a.out" '"daemon A: %s..., control socket A.sock" % e["peer"][:16] if e.get("event")=="ready" else None'
baddr=$(field "$tmp/daemon-b.out" 'e["listen"][0] if e.get("event")=="ready" else None' | head -n1)
# a client subscribed to B's events, while the CLI drives A
timeout 30 "$cli" events --socket "$sb" --json >"$tmp/events-b.out" 2>&1 &
pids+=($!)
wait_line "$tmp/events-b.out" '"subscribed"'
timeout 30 "$cli" dial "$baddr" --socket "$sa" --json >"$tmp/ddial.out" 2>"$tmp/ddial.err"
chan=$(field "$tmp/ddial.out" 'e["channel_id"] if e.get("event")=="dialed" else None' | head -n1)
echo "golemnet dial --socket A.sock: channel ${chan:-?} to B"
timeout 30 "$cli" send "${chan:-1}" "hello from a client of A" --socket "$sa" --json >"$tmp/dsend.out" 2>&1
field "$tmp/dsend.out" '"golemnet send --socket A.sock: %d bytes on channel %s" % (e["bytes"], e["channel_id"]) if e.get("event")=="sent" else None'
wait_line "$tmp/events-b.out" '"message"'
field "$tmp/events-b.out" '"an event client of B: message \"%s\" from %s..." % (e.get("data"), e.get("peer_id","")[:16]) if e.get("event")=="message" else None'
timeout 30 "$cli" peers --socket "$sa" --json >"$tmp/dpeers.out" 2>&1
field "$tmp/dpeers.out" '"golemnet peers --socket A.sock: channel %s %s %s... %s + %s" % (e.get("channel_id"), e.get("direction"), e.get("peer_id","")[:16], e.get("security"), e.get("muxer")) if e.get("event")=="peer" else None'

say "8. the Ergo wire: two golemnet Ergo endpoints (EHS handshake with cookie digests, a pool of 3 TCP links, ENP frames)"
bench=$root/${1:-build}/bench/bench_enp_pool
if [ -x "$bench" ]; then
    timeout 60 "$bench" 200000 >"$tmp/enp.out" 2>&1
    field "$tmp/enp.out" '"%d ENP frames of %d bytes (an EDF binary of 64 bytes each) over a pool of %d links: %d received, %d bad, %.2f M frames/s" % (e["frames"], e["frame_bytes"], e["pool"], e["received"], e["bad"], e["frames_per_s"] / 1e6) if e.get("bench")=="enp_pool" else None'
else
    echo "(skipped: $bench was not built)"
fi

say "9. an Ergo node: a golemnet process that Ergo nodes send to, call and spawn on (docs/ergo-guide.md)"
if "$cli" ergo --help >/dev/null 2>&1; then
    ereg=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    eopt=(--cookie demo-cookie --registrar-port "$ereg" --json)
    timeout 120 "$cli" ergo serve --name golem@localhost --port 0 --allow-spawn worker "${eopt[@]}" \
        >"$tmp/ergo-serve.out" 2>"$tmp/ergo-serve.err" &
    pids+=($!)
    wait_line "$tmp/ergo-serve.out" '"ergo_serving"'
    field "$tmp/ergo-serve.out" '"golem@localhost serves process %s (%s); remote spawn enabled for factory worker" % (e["process"], e["pid"]) if e.get("event")=="ergo_serving" else None'
    for _ in $(seq 1 50); do # the server registers with the embedded registrar just after it serves
        timeout 20 "$cli" ergo call golem@localhost "hello, Ergo" "${eopt[@]}" >"$tmp/ergo-call.out" 2>&1 && break
        sleep 0.1
    done
    field "$tmp/ergo-call.out" '"Call(ProcessID{echo, golem@localhost}, \"hello, Ergo\") -> %s in %.2f ms" % (json.dumps(e["value"]), e["rtt_ms"]) if e.get("event")=="ergo_reply" else None'
    timeout 20 "$cli" ergo spawn golem@localhost worker --register w1 "${eopt[@]}" >"$tmp/ergo-spawn.out" 2>&1
    field "$tmp/ergo-spawn.out" '"RemoteSpawn(worker) on golem@localhost -> %s, registered as w1" % e["pid"] if e.get("event")=="ergo_spawned" else e.get("detail") if e.get("event")=="error" else None'
    timeout 20 "$cli" ergo call golem@localhost 42 --int --to w1 "${eopt[@]}" >"$tmp/ergo-call2.out" 2>&1
    field "$tmp/ergo-call2.out" '"Call(ProcessID{w1, golem@localhost}, 42) -> %s" % e["value"] if e.get("event")=="ergo_reply" else None'
    timeout 20 "$cli" ergo spawn golem@localhost miner "${eopt[@]}" >"$tmp/ergo-spawn2.out" 2>&1
    field "$tmp/ergo-spawn2.out" '"RemoteSpawn(miner), a factory nobody enabled -> refused: %s" % e.get("detail") if e.get("event")=="error" else None'
    timeout 20 "$cli" ergo info golem@localhost "${eopt[@]}" >"$tmp/ergo-info.out" 2>&1
    field "$tmp/ergo-info.out" '"GetNode(golem@localhost): creation %s, flags 0x%x, %s links over %s" % (e["creation"], e["flags"], e["links"], e["carrier"]) if e.get("event")=="ergo_info" else None'
else
    echo "(skipped: the CLI was built without the ergo component)"
fi

say "10. libp2p breadth: a secp256k1 identity on WebSocket, dialled by DNS name over /tls/1.0.0 and by js-libp2p over /ws"
if "$cli" keygen --out "$tmp/k1.key" --key-type secp256k1 --json >"$tmp/keygen.out" 2>&1; then
    field "$tmp/keygen.out" '"golemnet keygen --key-type secp256k1: peer ID %s" % e["peer_id"] if e.get("peer_id") else None'
    timeout 120 "$cli" node --listen /ip4/127.0.0.1/tcp/0/ws --key "$tmp/k1.key" --echo --json \
        >"$tmp/ws.out" 2>"$tmp/ws.err" &
    pids+=($!)
    wait_line "$tmp/ws.out" '"listening"'
    wsaddr=$(field "$tmp/ws.out" 'e["addrs"][0] if e.get("event")=="listening" else None' | head -n1)
    echo "listening on $wsaddr"
    # the same listener by name: /ip4/127.0.0.1 -> /dns4/localhost (resolved through c-ares)
    dnsaddr=/dns4/localhost/${wsaddr#/ip4/127.0.0.1/}
    timeout 60 "$cli" ping "$dnsaddr" --security tls --count 2 --json >"$tmp/wsping.out" 2>"$tmp/wsping.err"
    field "$tmp/wsping.out" '"golemnet ping '"$dnsaddr"': security %s, muxer %s, remote %s" % (e.get("security"), e.get("muxer"), e.get("remote_addr")) if e.get("event")=="channel_opened" else None'
    field "$tmp/wsping.out" '"ping over TLS + WebSocket: %.3f ms" % e["rtt_ms"] if e.get("event")=="ping" else e.get("error") if e.get("event")=="error" else None'
    if [ -d "$js/node_modules/@libp2p/websockets" ]; then
        (cd "$js" && timeout 60 node --no-warnings --experimental-websocket --import ./polyfill.mjs \
            ws_peer.mjs --dial "$wsaddr" --ping 2 --echo-bytes 65536) >"$tmp/jsws.out" 2>"$tmp/jsws.err"
        field "$tmp/jsws.out" '"js over /ws sees: encryption %s, muxer %s" % (e.get("encryption"), e.get("muxer")) if e.get("event")=="connection_open" else None'
        field "$tmp/jsws.out" '"js ping over /ws: %.3f ms" % e["rtt_ms"] if e.get("event")=="ping" else None'
        field "$tmp/jsws.out" '"js echo over /ws: %d bytes back intact" % e["bytes"] if e.get("event")=="echo" else e.get("error") if e.get("event")=="error" else None'
    else
        echo "(js part skipped: needs node >= 20 and the js harness)"
    fi
else
    echo "(skipped: keygen failed: $(cat "$tmp/keygen.out"))"
fi

say "11. a file shared and fetched (/golem/transfer/1.0.0: verified 256 KiB chunks, content-addressed)"
if "$cli" help share >/dev/null 2>&1 || "$cli" share --help >/dev/null 2>&1; then
    head -c 3000000 /dev/urandom >"$tmp/share.bin"
    timeout 60 "$cli" share "$tmp/share.bin" --listen /ip4/127.0.0.1/tcp/0 --json \
        >"$tmp/share.out" 2>"$tmp/share.err" &
    pids+=($!)
    wait_line "$tmp/share.out" '"shared"'
    shaddr=$(field "$tmp/share.out" 'e["addr"] if e.get("event")=="listening" else None' | head -n1)
    cid=$(field "$tmp/share.out" 'e["cid"] if e.get("event")=="shared" else None' | head -n1)
    echo "golemnet share: $cid (3,000,000 bytes) at $shaddr"
    timeout 60 "$cli" fetch "$cid" --from "$shaddr" -o "$tmp/fetched.bin" --json >"$tmp/fetch.out" 2>"$tmp/fetch.err"
    field "$tmp/fetch.out" '"golemnet fetch: %s, %d bytes, %s" % (e["status"], e["bytes"], e["path"].rsplit("/",1)[-1]) if e.get("event")=="done" else e.get("error") if e.get("event")=="error" else None'
    cmp -s "$tmp/share.bin" "$tmp/fetched.bin" && echo "byte-exact: yes" || echo "byte-exact: NO"
else
    echo "(skipped: the CLI was built without the transfer component)"
fi

say "12. a topic over gossipsub (/meshsub/1.1.0): one node publishes, another receives every message once, signed"
if "$cli" pubsub --help >/dev/null 2>&1 || "$cli" help pubsub >/dev/null 2>&1; then
    timeout 30 "$cli" pubsub sub demo --listen /ip4/127.0.0.1/tcp/0 --count 3 --timeout 25 \
        >"$tmp/sub.out" 2>"$tmp/sub.err" &
    subpid=$!
    pids+=($subpid)
    wait_line "$tmp/sub.out" '"listening"'
    subaddr=$(field "$tmp/sub.out" 'e["addr"] if e.get("event")=="listening" else None' | head -n1)
    timeout 30 "$cli" pubsub pub demo --dial "$subaddr" --count 3 --wait-peers 1 --timeout 25 \
        >"$tmp/pub.out" 2>"$tmp/pub.err"
    wait "$subpid" 2>/dev/null || true
    field "$tmp/pub.out" '"published on %s: %s" % (e["topic"], e["data"]) if e.get("event")=="published" else None'
    field "$tmp/sub.out" '"received on %s from %s...: %s" % (e["topic"], e["from"][:16], e["data"]) if e.get("event")=="message" else None'
    field "$tmp/sub.out" '"subscriber: delivered %s, duplicates %s, mesh %s" % (e["delivered"], e["duplicate"], e["mesh"]) if e.get("event")=="done" else None'
else
    echo "(skipped: the CLI was built without the pubsub component)"
fi

say "13. what the node saw"
field "$tmp/node.out" '"%s channel %s: peer %s, %s + %s" % (e["event"], e.get("direction"), e.get("peer_id","")[:16]+"...", e.get("security"), e.get("muxer")) if e.get("event")=="channel_opened" else None'
field "$tmp/node.out" '"identify of %s...: agent %s" % (e.get("peer_id","")[:16], e.get("agent_version")) if e.get("event")=="identify" else None'
