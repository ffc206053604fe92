# shellcheck shell=bash
# test/netns/rig.sh: a two-NAT network in Linux network namespaces, for relay,
# AutoNAT and hole-punching (DCUtR) tests.  Source it from a bash test:
#
#   . "$(dirname "$0")/rig.sh"
#   rig_need_root            # exits 77 (skip) without root, ip netns or nft
#   rig_up                   # builds the network below; cleanup is trapped
#   rig_spawn relay pub 20 "$CLI" node --listen /ip4/10.77.2.2/tcp/4001
#   rig_exec a 10 "$CLI" ping /ip4/10.77.2.2/tcp/4001/p2p/...
#   rig_down                 # also runs on EXIT, INT and TERM
#
# Topology (roles in brackets are what the functions below take as <ns>):
#
#   [a] 10.77.1.2 --gnlan-- [ra] 10.77.1.1 | 10.77.2.1 --gnwan--+
#                                                               |  bridge gnbr
#                                           [pub] 10.77.2.2 ----+  in [pub]
#                                                               |
#   [b] 10.77.3.2 --gnlan-- [rb] 10.77.3.1 | 10.77.2.3 --gnwan--+
#
# The routers [ra] and [rb] are NATs made with nftables (table inet gn_nat):
#   - postrouting masquerades everything leaving the WAN interface: Linux
#     keeps the source port when it is free (endpoint-independent mapping)
#     and conntrack admits only replies (address-and-port-dependent
#     filtering), i.e. a port-restricted cone NAT;
#   - forward lets LAN->WAN and established/related traffic through, nothing
#     else;
#   - input drops "ct state new" arriving on the WAN interface.  Without this
#     an early hole-punch packet addressed to the router itself is confirmed
#     by conntrack, and the router's own client is later remapped to another
#     port (the tuple clashes), so the punch never matches.  Real CPE drops
#     these too.  See ../shared/notes/utp-upnp-nat-rig.md section 3.
# rig_symmetric <ra|rb> switches one router to "masquerade fully-random"
# (nft's name for iptables' --random-fully): a new random port for every
# flow, i.e. a symmetric NAT, where hole punching fails and a relay is needed.
# The routers have no default route and [pub] knows no LAN, so a LAN address
# of the other side is unreachable.
#
# Names: every namespace is gn_trly_<RIG_ID>_<role>, RIG_ID defaulting to the
# sourcing shell's PID, so concurrent runs never clash.  Interfaces are
# created directly inside their namespaces, so their (short, fixed) names
# never meet in the root namespace.
#
# Every process the rig starts runs under timeout(1).  Logs of background
# processes go to $RIG_DIR (a fresh temporary directory, removed by rig_down
# unless RIG_KEEP=1).

RIG_ID=${RIG_ID:-$$}
RIG_PREFIX="gn_trly_${RIG_ID}"
RIG_ROLES=(pub ra a rb b)
RIG_DIR=""
RIG_IS_UP=0
declare -A RIG_PIDS=()

# Prints the namespace name of role <ns> (pub, ra, a, rb, b); a name that is
# already a full namespace name is printed unchanged.
rig_ns() {
    case "$1" in
        pub|ra|a|rb|b) printf '%s_%s\n' "$RIG_PREFIX" "$1" ;;
        *) printf '%s\n' "$1" ;;
    esac
}

rig_log_msg() { printf '# rig: %s\n' "$*" >&2; }

# Exits 77 (the meson/automake "skipped" status) with a message on stderr
# when the rig cannot run here: not root, no "ip netns", no nft, no python3.
rig_need_root() {
    local why=""
    if [ "$(id -u)" != 0 ]; then
        why="needs root (CAP_NET_ADMIN) to create network namespaces"
    elif ! command -v ip >/dev/null 2>&1 || ! ip netns list >/dev/null 2>&1; then
        why="'ip netns' (iproute2) is unavailable"
    elif ! command -v nft >/dev/null 2>&1; then
        why="nft is unavailable (apt-get install nftables)"
    elif ! command -v timeout >/dev/null 2>&1; then
        why="timeout(1) is unavailable"
    else
        local probe="${RIG_PREFIX}_probe"
        if ! ip netns add "$probe" 2>/dev/null; then
            why="cannot create a network namespace (no CAP_NET_ADMIN?)"
        else
            if ! ip netns exec "$probe" nft -f - >/dev/null 2>&1 <<'EOF'
table inet gn_probe {
  chain p {
    type nat hook postrouting priority srcnat; policy accept;
    masquerade
  }
}
EOF
            then
                why="nftables NAT does not work inside a namespace (nf_nat module?)"
            fi
            ip netns del "$probe" 2>/dev/null
        fi
    fi
    if [ -n "$why" ]; then
        echo "SKIP: netns rig: $why" >&2
        exit 77
    fi
}

# rig_exec <ns> <timeout_s> cmd...: runs cmd in namespace <ns> in the
# foreground, killed after timeout_s seconds (SIGTERM, SIGKILL 2 s later).
# Returns cmd's status (124 on timeout, as timeout(1)).
rig_exec() {
    local ns; ns=$(rig_ns "$1")
    local t="$2"
    shift 2
    timeout -k 2 "$t" ip netns exec "$ns" "$@"
}

# rig_spawn <name> <ns> <timeout_s> cmd...: starts cmd in the background in
# namespace <ns>, bounded by timeout_s seconds.  stdout goes to
# $RIG_DIR/<name>.out and stderr to $RIG_DIR/<name>.err.  <name> is a
# word ([A-Za-z0-9_]) naming the process for rig_wait, rig_stop, rig_out.
rig_spawn() {
    local name="$1" ns; ns=$(rig_ns "$2")
    local t="$3"
    shift 3
    [ -n "$RIG_DIR" ] || { rig_log_msg "rig_spawn before rig_up"; return 1; }
    timeout -k 2 "$t" ip netns exec "$ns" "$@" \
        >"$RIG_DIR/$name.out" 2>"$RIG_DIR/$name.err" &
    RIG_PIDS[$name]=$!
}

# rig_wait <name>: waits for a process from rig_spawn (which is bounded by its
# timeout) and returns its exit status.
rig_wait() {
    local pid="${RIG_PIDS[$1]:-}"
    [ -n "$pid" ] || return 127
    local rc=0
    wait "$pid" || rc=$?
    unset "RIG_PIDS[$1]"
    return "$rc"
}

# rig_stop <name> [signal]: signals a process from rig_spawn (default TERM;
# timeout(1) passes it on) and waits for it; returns its exit status.
rig_stop() {
    local pid="${RIG_PIDS[$1]:-}"
    [ -n "$pid" ] || return 127
    kill -s "${2:-TERM}" "$pid" 2>/dev/null
    rig_wait "$1"
}

# rig_out <name>: prints the stdout log of a rig_spawn process.
# rig_err <name>: prints its stderr log.
rig_out() { cat "$RIG_DIR/$1.out" 2>/dev/null; }
rig_err() { cat "$RIG_DIR/$1.err" 2>/dev/null; }

# rig_wait_line <name> <ERE> <timeout_s>: waits until a line of <name>'s
# stdout matches the extended regular expression; prints that line.  Returns
# 1 when the time is up or the process has ended without such a line.
rig_wait_line() {
    local name="$1" re="$2" t="$3"
    local end=$((SECONDS + t)) line
    while :; do
        line=$(grep -E -m1 -- "$re" "$RIG_DIR/$name.out" 2>/dev/null) && {
            printf '%s\n' "$line"; return 0; }
        local pid="${RIG_PIDS[$name]:-}"
        if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
            grep -E -m1 -- "$re" "$RIG_DIR/$name.out" 2>/dev/null && return 0
            return 1
        fi
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.05
    done
}

rig_nft_router() {
    # $1 namespace, $2 masquerade flags ("" or "fully-random")
    ip netns exec "$1" nft -f - <<EOF
table inet gn_nat
delete table inet gn_nat
table inet gn_nat {
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "gnwan" ct state new drop
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "gnlan" oifname "gnwan" accept
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "gnwan" masquerade $2
  }
}
EOF
}

rig_build() {
    local pub ra a rb b
    pub=$(rig_ns pub); ra=$(rig_ns ra); a=$(rig_ns a); rb=$(rig_ns rb); b=$(rig_ns b)
    local ns
    for ns in "$pub" "$ra" "$a" "$rb" "$b"; do
        ip netns add "$ns" && ip -n "$ns" link set lo up || return 1
    done
    ip -n "$pub" link add gnbr type bridge &&
    ip -n "$pub" addr add 10.77.2.2/24 dev gnbr &&
    ip -n "$pub" link set gnbr up || return 1
    local r c lan wan x side
    for side in a b; do
        if [ "$side" = a ]; then r=$ra; c=$a; lan=1; wan=1; x=gnwa
        else r=$rb; c=$b; lan=3; wan=3; x=gnwb; fi
        # client <-> router LAN
        ip link add gnlan netns "$c" type veth peer name gnlan netns "$r" &&
        ip -n "$c" addr add "10.77.$lan.2/24" dev gnlan &&
        ip -n "$r" addr add "10.77.$lan.1/24" dev gnlan &&
        ip -n "$c" link set gnlan up && ip -n "$r" link set gnlan up &&
        ip -n "$c" route add default via "10.77.$lan.1" || return 1
        # router WAN <-> public bridge
        ip link add gnwan netns "$r" type veth peer name "$x" netns "$pub" &&
        ip -n "$r" addr add "10.77.2.$wan/24" dev gnwan &&
        ip -n "$r" link set gnwan up &&
        ip -n "$pub" link set "$x" master gnbr &&
        ip -n "$pub" link set "$x" up || return 1
        ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1 &&
        rig_nft_router "$r" "" || return 1
    done
}

# Deletes gn_trly_<pid>_* namespaces left by runs that could not clean up
# (killed with SIGKILL): only those whose shell <pid> is gone AND that are
# older than 10 minutes (a PID seen from another PID namespace may look gone
# while its run is alive; no run lasts that long).
rig_reap_stale() {
    local f n pid
    for f in /run/netns/gn_trly_*; do
        [ -e "$f" ] || continue
        n=${f##*/}; pid=${n#gn_trly_}; pid=${pid%%_*}
        case "$pid" in ''|*[!0-9]*) continue ;; esac
        [ "$pid" = "$RIG_ID" ] && continue
        if ! kill -0 "$pid" 2>/dev/null &&
           [ -n "$(find "$f" -maxdepth 0 -mmin +10 2>/dev/null)" ]; then
            ip netns del "$n" 2>/dev/null && rig_log_msg "deleted stale namespace $n"
        fi
    done
}

# rig_up: creates the namespaces, links, addresses, routes and NAT rules
# above, and traps EXIT, INT and TERM to run rig_down.  On failure it cleans
# up and returns 1.
rig_up() {
    trap 'rig_down' EXIT
    trap 'rig_down; exit 130' INT
    trap 'rig_down; exit 143' TERM
    RIG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/gn_trly.XXXXXX") || return 1
    RIG_IS_UP=1
    rig_reap_stale
    rig_build || { rig_log_msg "rig_up failed"; rig_down; return 1; }
    rig_log_msg "up: namespaces ${RIG_PREFIX}_{pub,ra,a,rb,b}, logs in $RIG_DIR"
}

# rig_symmetric <ra|rb>: makes that router a symmetric NAT (masquerade
# fully-random).  Flows already tracked keep their mapping: use new ports.
rig_symmetric() {
    case "$1" in ra|rb) ;; *) rig_log_msg "rig_symmetric: ra or rb, not '$1'"; return 2 ;; esac
    rig_nft_router "$(rig_ns "$1")" fully-random
}

# rig_cone <ra|rb>: back to the default (port-preserving) masquerade.
rig_cone() {
    case "$1" in ra|rb) ;; *) rig_log_msg "rig_cone: ra or rb, not '$1'"; return 2 ;; esac
    rig_nft_router "$(rig_ns "$1")" ""
}

# rig_down: stops the processes rig_spawn started (by PID), deletes this
# run's namespaces (which deletes their interfaces and rules) and the log
# directory (kept when RIG_KEEP=1).  Idempotent; safe before rig_up.
rig_down() {
    local name pid ns
    for name in "${!RIG_PIDS[@]}"; do
        pid=${RIG_PIDS[$name]}
        kill -s TERM "$pid" 2>/dev/null
    done
    for name in "${!RIG_PIDS[@]}"; do
        wait "${RIG_PIDS[$name]}" 2>/dev/null
        unset "RIG_PIDS[$name]"
    done
    for ns in "${RIG_ROLES[@]}" probe; do
        ns="${RIG_PREFIX}_$ns"
        if [ -e "/run/netns/$ns" ]; then
            ip netns del "$ns" 2>/dev/null || rig_log_msg "could not delete $ns"
        fi
    done
    if [ -n "$RIG_DIR" ] && [ -d "$RIG_DIR" ]; then
        if [ "${RIG_KEEP:-0}" = 1 ]; then
            rig_log_msg "logs kept in $RIG_DIR"
        else
            rm -rf -- "$RIG_DIR"
        fi
    fi
    RIG_DIR=""
    RIG_IS_UP=0
}
