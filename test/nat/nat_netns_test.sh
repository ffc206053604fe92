#!/usr/bin/env bash
# NAT components against real and fake gateways in network namespaces.
#
# Usage: nat_netns_test.sh upnp|natpmp miniupnpd|fake
#   (meson sets GN_NAT_PROBE, GN_NAT_TEST_DIR and GN_PYTHON)
#
# Topology (namespaces gn_tnat_{c,r,w}<pid>, 10.77.x.x addresses only, all
# deleted by the EXIT trap; every process runs under `timeout`):
#   client c 10.77.1.2 --veth-- 10.77.1.1 router r [10.77.2.1 --veth-- 10.77.2.2 wan w]
# The probe (nat_probe.c) runs a node with the component in c.
#   miniupnpd: Debian's miniupnpd (+ miniupnpd-nftables) in r, with a
#     private WAN address (10.77.2.1). It is a real IGD that cannot map:
#     upnp: discovery finds it, UPNP_GetValidIGD() is 2, the map fails with
#       GN_EADDRNOTAVAIL and says why; with upnp.allow_private=1 (and the
#       IGD named by upnp.igd_url) AddPortMapping is tried and its UPnP
#       error 501 is reported (GN_EIO);
#     natpmp: its NAT-PMP answer is result code 3 (network failure),
#       reported as GN_EADDRNOTAVAIL.
#   fake: test/nat/fake_igd.py or fake_natpmp.py in r, a gateway that says
#     its public address is 203.0.113.7: the map succeeds, is renewed (short
#     lease) and deleted when the node closes; the fake's request log shows it.
# Prints TAP. Exit 77 (skip) when not root, without `ip netns`, or without
# the programs a scenario needs.
set -u
comp=${1:?component}
scen=${2:?scenario}
probe=${GN_NAT_PROBE:?}
dir=${GN_NAT_TEST_DIR:?}
py=${GN_PYTHON:-/usr/bin/python3}

skip() { echo "1..0 # SKIP $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v ip >/dev/null 2>&1 || skip "no ip (iproute2)"
ip netns list >/dev/null 2>&1 || skip "ip netns does not work here"
command -v timeout >/dev/null 2>&1 || skip "no timeout (coreutils)"
if [ "$scen" = miniupnpd ]; then
    [ -x /usr/sbin/miniupnpd ] || skip "no /usr/sbin/miniupnpd (apt-get install miniupnpd miniupnpd-nftables)"
    command -v nft >/dev/null 2>&1 || skip "no nft (apt-get install nftables)"
else
    [ -x "$py" ] || skip "no $py"
fi

C=gn_tnat_c$$ R=gn_tnat_r$$ W=gn_tnat_w$$
tmp=$(mktemp -d /tmp/gn_tnat.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    for ns in $C $R $W; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0 fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; fail=1; }
check() { # description, then a command
    local d=$1; shift
    if "$@"; then ok "$d"; else not_ok "$d"; fi
}
has() { grep -qF -- "$2" "$1"; }
count() { grep -cF -- "$2" "$1"; }
dump() { sed 's/^/# /' "$1"; }

echo "TAP version 13"

# ---- the namespaces ----
ip netns add $C && ip netns add $R || skip "cannot create network namespaces"
ip -n $C link add gn_veth_c type veth peer name gn_veth_r netns $R
ip -n $C addr add 10.77.1.2/24 dev gn_veth_c
ip -n $R addr add 10.77.1.1/24 dev gn_veth_r
for ns in $C $R; do ip -n $ns link set lo up; done
ip -n $C link set gn_veth_c up
ip -n $R link set gn_veth_r up
ip -n $C route add default via 10.77.1.1
if [ "$scen" = miniupnpd ]; then
    ip netns add $W
    ip -n $R link add gn_wan_r type veth peer name gn_wan_w netns $W
    ip -n $R addr add 10.77.2.1/24 dev gn_wan_r
    ip -n $W addr add 10.77.2.2/24 dev gn_wan_w
    ip -n $W link set lo up
    ip -n $W link set gn_wan_w up
    ip -n $R link set gn_wan_r up
    ip -n $R route add default via 10.77.2.2
    ip netns exec $R sysctl -qw net.ipv4.ip_forward=1
fi

run_probe() { # output file, then probe arguments
    local out=$1; shift
    ip netns exec $C timeout 45 "$probe" "$@" >"$out" 2>&1
    local rc=$?
    echo "# probe $* -> exit $rc"
    # a crash, a sanitizer report or a hang fails the test (exit status)
    if [ $rc -ne 0 ] || grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$out"; then
        echo "# FAIL: the probe did not end cleanly"
        fail=1
    fi
}

wait_listen() { # ns, proto (t|u), port
    for _ in $(seq 1 50); do
        ip netns exec "$1" ss -ln"$2" 2>/dev/null | grep -q ":$3 " && return 0
        sleep 0.1
    done
    return 1
}

if [ "$scen" = miniupnpd ]; then
    # miniupnpd-nftables 2.3.1 expects these tables; its own nft_init.sh
    # sources the iptables flavour's helpers and cannot make them.
    cat >"$tmp/router.nft" <<'NFT'
table inet filter {
  chain miniupnpd {
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "gn_veth_r" oifname "gn_wan_r" accept
    jump miniupnpd
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "gn_wan_r" masquerade
  }
}
NFT
    ip netns exec $R nft -f "$tmp/router.nft" || skip "nft cannot load the router tables here"
    cat >"$tmp/miniupnpd.conf" <<CONF
ext_ifname=gn_wan_r
listening_ip=gn_veth_r
http_port=5555
enable_natpmp=yes
enable_upnp=yes
secure_mode=yes
system_uptime=yes
ipv6_disable=yes
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b
lease_file=$tmp/upnp.leases
minissdpdsocket=$tmp/no_minissdpd.sock
allow 1024-65535 10.77.1.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
CONF
    ip netns exec $R timeout 80 /usr/sbin/miniupnpd -f "$tmp/miniupnpd.conf" -d \
        -P "$tmp/miniupnpd.pid" >"$tmp/miniupnpd.log" 2>&1 &
    pids+=($!)
    if ! wait_listen $R t 5555; then
        echo "# miniupnpd did not start:"; dump "$tmp/miniupnpd.log"
        skip "miniupnpd does not run in a namespace here"
    fi
    if [ "$comp" = upnp ]; then
        echo "1..5"
        out=$tmp/p1
        run_probe "$out" upnp /ip4/10.77.1.2/tcp/40001 0 upnp.multicastif=gn_veth_c \
            upnp.discover_ms=1500
        dump "$out"
        check "discovery finds miniupnpd's IGD (its rootDesc URL is named)" \
            has "$out" "http://10.77.1.1:5555/rootDesc.xml"
        check "UPNP_GetValidIGD()=2 is reported: the IGD has no public address" \
            has "$out" "UPNP_GetValidIGD()=2"
        check "the map fails with GN_EADDRNOTAVAIL and nothing is observed" \
            bash -c "grep -q 'RESULT failed GN_EADDRNOTAVAIL' '$out' && grep -q 'OBSERVED 0' '$out'"
        out=$tmp/p2
        run_probe "$out" upnp /ip4/10.77.1.2/tcp/40001 0 \
            upnp.igd_url=http://10.77.1.1:5555/rootDesc.xml upnp.allow_private=1
        dump "$out"
        check "with allow_private, AddPortMapping's UPnP error 501 is reported" \
            has "$out" "AddPortMapping(TCP 40001 -> 10.77.1.2:40001, lease 3600 s) failed: UPnP error 501 (Action Failed)"
        check "... as GN_EIO" has "$out" "RESULT failed GN_EIO"
    else
        echo "1..3"
        out=$tmp/p1
        run_probe "$out" natpmp /ip4/10.77.1.2/tcp/40001 0 natpmp.timeout_ms=3000
        dump "$out"
        check "the gateway (found through the default route) answers result code 3" \
            has "$out" "NAT-PMP result code 3 (network failure"
        check "... reported as GN_EADDRNOTAVAIL" has "$out" "RESULT failed GN_EADDRNOTAVAIL"
        check "nothing is observed" has "$out" "OBSERVED 0"
    fi
    echo "# miniupnpd log:"; dump "$tmp/miniupnpd.log"
    exit $fail
fi

# ---- fake gateways: the success path ----
calls=$tmp/calls
if [ "$comp" = upnp ]; then
    ip netns exec $R timeout 60 "$py" "$dir/fake_igd.py" --addr 10.77.1.1 --port 5000 \
        --ext 203.0.113.7 --log "$calls" >"$tmp/fake.log" 2>&1 &
    pids+=($!)
    wait_listen $R t 5000 && wait_listen $R u 1900 || { dump "$tmp/fake.log"; not_ok "fake IGD starts"; exit 1; }
    echo "1..10"
    # through the node: it listens on 0.0.0.0, the IGD is told our LAN address
    out=$tmp/p1
    run_probe "$out" upnp /ip4/0.0.0.0/tcp/40001 5000 upnp.multicastif=gn_veth_c \
        upnp.discover_ms=1000 upnp.lease=4
    dump "$out"; echo "# fake IGD calls:"; dump "$calls"
    check "SSDP discovery reached the fake IGD" has "$calls" "SSDP M-SEARCH st=urn:schemas-upnp-org:device:InternetGatewayDevice:1 from=10.77.1.2"
    check "mapped to the IGD's external address" has "$out" "RESULT mapped /ip4/203.0.113.7/tcp/40001"
    check "the external address is an observed address" has "$out" "OBSERVED 1"
    check "AddPortMapping for our LAN address with the lease asked" \
        has "$calls" "AddPortMapping ext=40001 proto=TCP int=40001 client=10.77.1.2 lease=4 desc=golemnet"
    check "the mapping was checked (GetSpecificPortMappingEntry)" \
        has "$calls" "GetSpecificPortMappingEntry ext=40001 proto=TCP"
    adds=$(count "$calls" "AddPortMapping ext=40001 proto=TCP")
    check "renewed at half the lease (2 or more AddPortMapping in 5 s, got $adds)" [ "$adds" -ge 2 ]
    check "deleted when the node closed" has "$calls" "DeletePortMapping ext=40001 proto=TCP found=1"
    # directly, a UDP address
    : >"$calls.before"; cp "$calls" "$calls.before"
    out=$tmp/p2
    run_probe "$out" upnp direct:/ip4/10.77.1.2/udp/40002 2500 upnp.multicastif=gn_veth_c \
        upnp.discover_ms=1000 upnp.lease=60
    dump "$out"
    check "a UDP address is mapped as UDP" has "$out" "RESULT mapped /ip4/203.0.113.7/udp/40002"
    check "... with lease 60" has "$calls" "AddPortMapping ext=40002 proto=UDP int=40002 client=10.77.1.2 lease=60"
    check "... and deleted on unmap" has "$calls" "DeletePortMapping ext=40002 proto=UDP found=1"
else
    ip netns exec $R timeout 60 "$py" "$dir/fake_natpmp.py" --addr 10.77.1.1 --ext 203.0.113.7 \
        --log "$calls" --shift 1000 >"$tmp/fake.log" 2>&1 &
    pids+=($!)
    wait_listen $R u 5351 || { dump "$tmp/fake.log"; not_ok "fake NAT-PMP gateway starts"; exit 1; }
    echo "1..9"
    out=$tmp/p1
    run_probe "$out" natpmp /ip4/0.0.0.0/tcp/40001 5000 natpmp.lease=4
    dump "$out"; echo "# fake gateway requests:"; dump "$calls"
    check "public address asked (gateway from the default route)" has "$calls" "PUBADDR from=10.77.1.2"
    check "mapped to the public address and the port the gateway granted" \
        has "$out" "RESULT mapped /ip4/203.0.113.7/tcp/41001"
    check "the external address is an observed address" has "$out" "OBSERVED 1"
    maps=$(count "$calls" "MAP tcp priv=40001 suggested=40001 lifetime=4")
    check "TCP mapping asked, then renewed at half the lifetime ($maps in 5 s)" [ "$maps" -ge 2 ]
    check "deleted (lifetime 0) when the node closed" has "$calls" "DELETE tcp priv=40001 found=1"
    out=$tmp/p2
    run_probe "$out" natpmp direct:/ip4/10.77.1.2/udp/40002 500 natpmp.gateway=10.77.1.1
    dump "$out"; dump "$calls"
    check "a UDP address is mapped as UDP (natpmp.gateway)" has "$out" "RESULT mapped /ip4/203.0.113.7/udp/41002"
    check "... with the node's lifetime" has "$calls" "MAP udp priv=40002 suggested=40002 lifetime=3600"
    check "... and deleted on unmap" has "$calls" "DELETE udp priv=40002 found=1"
    out=$tmp/p3
    run_probe "$out" natpmp direct:/ip4/10.77.1.2/tcp/40003 0 natpmp.gateway=10.77.1.9 \
        natpmp.timeout_ms=1000
    dump "$out"
    check "no gateway at natpmp.gateway: GN_ETIMEDOUT within the timeout" \
        has "$out" "RESULT failed GN_ETIMEDOUT"
fi
exit $fail
