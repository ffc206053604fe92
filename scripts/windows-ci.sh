#!/usr/bin/env bash
# golemnet's Windows job (issue 20): cross-build for Windows x86-64 with
# mingw-w64 on Debian 12 and run the Windows tests under Wine. Meant to be
# wired into scripts/quickstart.sh as a mode (`windows`); runnable alone:
#
#   bash scripts/windows-ci.sh            # deps (cached), build, tests
#   bash scripts/windows-ci.sh deps       # only the dependency prefix
#   bash scripts/windows-ci.sh build      # deps + build
#
# Environment: JOBS (default 2), GN_WIN_PREFIX (the dependency prefix;
# default ~/.cache/golemnet-win/<key>, see scripts/windows-deps.sh: cache
# that directory between CI runs), GN_WIN_BUILD (build dir, default
# build-win), WINEPREFIX (default ~/.cache/golemnet-win/wineprefix).
#
# What it builds and runs: docs/building.md "Windows (cross-built)".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mode=${1:-test}
jobs=${JOBS:-2}
bdir=${GN_WIN_BUILD:-build-win}

log() { printf '\n== windows: %s\n' "$*" >&2; }

# Debian packages of the Windows job (beside quickstart.sh's list)
win_pkgs=(gcc-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64 mingw-w64-x86-64-dev
          libz-mingw-w64-dev wine64 wine dpkg-dev cmake ninja-build autoconf automake
          libtool perl pkg-config meson protobuf-c-compiler)

# The dependencies the Windows build needs. libcrypto (RSA/ECDSA keys),
# libsecp256k1 and c-ares are required by meson.build; miniupnpc, libnatpmp
# and http-parser only feed components the Windows job turns off (upnp,
# natpmp, websocket, ergo_etcd), so CI leaves them out.
win_deps="libuv1 libsodium protobuf-c c-ares libsecp256k1 openssl"

# The meson options of the Windows job: no Python (no Windows CPython headers
# here), no benchmarks, and off what needs a dep left out above.
win_opts=(-Dpython=disabled -Dbench=false -Dupnp=disabled -Dnatpmp=disabled
          -Dwebsocket=disabled -Dergo_etcd=disabled)

# The tests the Windows job runs under Wine (issue 20's minimum list; the
# names are meson test names). docs/building.md lists those left out and why.
win_tests=(err_test log_test buf_test loop_test stream_test wq_test registry_test
           multiformats_test multiaddr_test identity_test keys_test seal_test hkdf_test
           lpmsg_test secmem_test mstate_test rcmgr_test dnsaddr_test
           multistream_test ms_stream_test
           noise_test noise_vectors_test ecies_test yamux_test mplex_test
           tcp_test memory_test node_test peerstore_test)

install_win_deps() {
    local missing=()
    for p in "${win_pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    # (awk reads everything: grep -q would end the pipe early, and pipefail
    # would take apt-cache's SIGPIPE for "no source package")
    if ! apt-cache showsrc libuv1 2>/dev/null | awk '/^Version:/ {f = 1} END {exit !f}'; then
        [ "$(id -u)" -eq 0 ] || { echo "need root to add a deb-src entry" >&2; exit 1; }
        # the mirror of the existing deb entries, as a deb-src entry
        # (deb822 *.sources files, else one-line "deb URI SUITE ..." entries;
        # "|| true": no match must not end the script under pipefail)
        local uri suite
        uri=$( { grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } \
              | head -1 | awk '{print $2}')
        if [ -z "$uri" ]; then
            uri=$( { grep -hE '^deb\s' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                         2>/dev/null || true; } \
                  | awk '{for (i = 2; i <= NF; i++) if ($i !~ /^\[/) {print $i; exit}}')
        fi
        uri=${uri:-http://deb.debian.org/debian}
        suite=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
        suite=${suite:-bookworm}
        log "adding deb-src for $suite (apt-get source)"
        cat >/etc/apt/sources.list.d/golemnet-deb-src.sources <<EOF
Types: deb-src
URIs: $uri
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        apt-get update -qq
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" -eq 0 ] || { echo "need root to apt-get install: ${missing[*]}" >&2; exit 1; }
        log "installing: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
}

win_env() {
    export WINEPREFIX=${WINEPREFIX:-$HOME/.cache/golemnet-win/wineprefix}
    export WINEDEBUG=${WINEDEBUG:--all}
    # no Mono or Gecko install prompts in a fresh prefix
    export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-mscoree,mshtml=}
    if [ ! -f "$WINEPREFIX/system.reg" ]; then
        log "creating the Wine prefix $WINEPREFIX"
        mkdir -p "$WINEPREFIX"
        # bounded: a wineboot that hangs (no display, a stuck wineserver) must
        # not hold the job
        timeout 120 wineboot -i >/dev/null 2>&1 \
            || { echo "wineboot -i failed or took over 120 s" >&2; exit 1; }
    fi
}

windows_deps() {
    local t0=$SECONDS
    GN_WIN_PREFIX_OUT=$(GN_WIN_DEPS="$win_deps" GN_WIN_JOBS=$jobs bash scripts/windows-deps.sh | tail -1)
    log "dependency prefix $GN_WIN_PREFIX_OUT ($((SECONDS - t0)) s)"
}

windows_build() {
    local t0=$SECONDS
    export PKG_CONFIG_LIBDIR="$GN_WIN_PREFIX_OUT/lib/pkgconfig:/usr/x86_64-w64-mingw32/lib/pkgconfig"
    if [ ! -f "$bdir/build.ninja" ]; then
        meson setup "$bdir" --cross-file cross/x86_64-w64-mingw32.ini \
            --buildtype=debugoptimized --wrap-mode=nodownload "${win_opts[@]}" >"$root/$bdir.setup.log" 2>&1 \
            || { tail -30 "$root/$bdir.setup.log" >&2; exit 1; }
    fi
    local targets=(tools/golemnet.exe)
    for t in "${win_tests[@]}"; do targets+=("test/unit/unit_$t.exe"); done
    ninja -C "$bdir" -j"$jobs" "${targets[@]}"
    log "build: $((SECONDS - t0)) s"
}

windows_test() {
    local t0=$SECONDS
    win_env
    meson test -C "$bdir" --no-rebuild --num-processes "$jobs" --print-errorlogs "${win_tests[@]}"
    log "unit tests under Wine: $((SECONDS - t0)) s"
    t0=$SECONDS
    local rc=0
    bash test/windows/wine_ping_test.sh "$bdir/tools/golemnet.exe" \
        "${GN_NATIVE_CLI:-build/tools/golemnet}" || rc=$?
    if [ "$rc" -eq 77 ]; then
        log "SKIP Wine node <-> native node: a prerequisite is missing (see above)"
    elif [ "$rc" -ne 0 ]; then
        log "FAIL Wine node <-> native node (exit $rc)"
        exit "$rc"
    else
        log "Wine node <-> native node: $((SECONDS - t0)) s"
    fi
}

windows() {
    install_win_deps
    windows_deps
    [ "$mode" = deps ] && return 0
    windows_build
    [ "$mode" = build ] && return 0
    windows_test
}

windows
