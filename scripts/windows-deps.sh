#!/usr/bin/env bash
# Cross-build golemnet's C dependencies for Windows x86-64 (mingw-w64) from
# Debian's own source packages, into a prefix that the meson cross file
# cross/x86_64-w64-mingw32.ini finds through pkg-config (issue 20).
#
# Nothing is downloaded except Debian source packages (`apt-get source`); zlib
# comes from Debian's libz-mingw-w64-dev. Every library is built static, with
# its own build system in its least-work configuration (no tests, docs, tools).
#
# Needs (Debian packages): gcc-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64
#   mingw-w64-x86-64-dev libz-mingw-w64-dev dpkg-dev cmake ninja-build
#   autoconf automake libtool perl pkg-config, and a deb-src entry for
#   bookworm in /etc/apt/sources.list.d/ (see docs/building.md).
#
# Usage: scripts/windows-deps.sh [dep ...]
#   With no arguments: the deps in GN_WIN_DEPS (default: all of them).
#   Prints the prefix on its last line of stdout.
# Environment:
#   GN_WIN_PREFIX  the prefix (default ~/.cache/golemnet-win/<key>, where
#                  <key> hashes this script and the Debian source versions, so
#                  a changed script or a Debian update builds a fresh prefix)
#   GN_WIN_DEPS    space-separated list of deps to build (default: all below)
#   GN_WIN_JOBS    parallel jobs (default 2)
# Each dep writes <prefix>/.done-<dep> when installed and is skipped when that
# file exists; <prefix>/timings.txt records each cold build's wall time and the
# load average when it started.
set -euo pipefail

HOST=x86_64-w64-mingw32
ALL_DEPS="libuv1 libsodium protobuf-c c-ares libsecp256k1 openssl miniupnpc libnatpmp http-parser"
DEPS=${*:-${GN_WIN_DEPS:-$ALL_DEPS}}
JOBS=${GN_WIN_JOBS:-2}
SELF=$(readlink -f "$0")

log() { echo "windows-deps: $*" >&2; }

for t in "$HOST-gcc" "$HOST-ar" cmake ninja autoreconf perl pkg-config dpkg-source; do
    command -v "$t" >/dev/null || { log "missing tool $t (see the header of $SELF)"; exit 1; }
done

# Versions of a source package that apt knows, newest first.
src_versions() {
    apt-cache showsrc "$1" 2>/dev/null | awk '/^Version:/ {print $2}' | sort -rV | uniq
}

declare -A VER
versions=""
for d in $ALL_DEPS; do
    v=$(src_versions "$d" | awk 'NR == 1')
    [ -n "$v" ] || { log "apt knows no source package $d: add a deb-src entry (docs/building.md)"; exit 1; }
    VER[$d]=$v
    versions+="$d=$v "
done
KEY=$( { cat "$SELF"; echo "$versions"; "$HOST-gcc" --version | head -1; } | sha256sum | cut -c1-16)
PREFIX=${GN_WIN_PREFIX:-$HOME/.cache/golemnet-win/$KEY}
WORK=$PREFIX.work
mkdir -p "$PREFIX/lib/pkgconfig" "$PREFIX/include" "$WORK"
PREFIX=$(readlink -f "$PREFIX")
WORK=$(readlink -f "$WORK")

CMAKE_CROSS=(-G Ninja -DCMAKE_SYSTEM_NAME=Windows -DCMAKE_SYSTEM_PROCESSOR=x86_64
    -DCMAKE_C_COMPILER="$HOST-gcc" -DCMAKE_CXX_COMPILER="$HOST-g++"
    -DCMAKE_RC_COMPILER="$HOST-windres" -DCMAKE_AR="$(command -v $HOST-ar)"
    -DCMAKE_RANLIB="$(command -v $HOST-ranlib)"
    -DCMAKE_FIND_ROOT_PATH="/usr/$HOST;$PREFIX" -DCMAKE_FIND_ROOT_PATH_MODE_PROGRAM=NEVER
    -DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY -DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_INSTALL_LIBDIR=lib
    -DBUILD_SHARED_LIBS=OFF -DBUILD_TESTING=OFF)
AUTOCONF_CROSS=(--host=$HOST --prefix="$PREFIX" --disable-shared --enable-static
    --disable-dependency-tracking)

# The upstream part of the Debian version unpack() fetched.
upstream_ver() { local v; v=$(cat "$WORK/$1.version"); v=${v#*:}; echo "${v%%-*}"; }

# A .pc file for a library installed by hand (or whose own .pc misses what a
# static Windows link needs).
write_pc() { # name version cflags libs
    cat >"$PREFIX/lib/pkgconfig/$1.pc" <<EOF
prefix=$PREFIX
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: $1
Description: $1 (static, mingw-w64; scripts/windows-deps.sh)
Version: $2
Cflags: -I\${includedir} $3
Libs: -L\${libdir} $4
EOF
}

# Fetch and unpack the Debian source package (with Debian's patches applied)
# into $WORK/<dep>; prints the source directory. The newest version apt knows
# first, then older ones: a mirror can list a security update in its index
# before (or without) carrying its files (seen with openssl 3.0.22 here).
unpack() {
    local d=$1 v
    for v in $(src_versions "$d"); do
        rm -rf "$WORK/$d"; mkdir -p "$WORK/$d"
        if (cd "$WORK/$d" && apt-get source -q "$d=$v" >/dev/null 2>"$WORK/$d.fetch.log"); then
            echo "$v" >"$WORK/$d.version"
            find "$WORK/$d" -mindepth 1 -maxdepth 1 -type d | head -1
            return 0
        fi
        log "$d $v: apt-get source failed, trying an older version" 
    done
    cat "$WORK/$d.fetch.log" >&2
    return 1
}

build_libuv1() {
    local s; s=$(unpack libuv1) || return 1; cd "$s"
    cmake -S . -B _b "${CMAKE_CROSS[@]}" -DLIBUV_BUILD_TESTS=OFF -DLIBUV_BUILD_BENCH=OFF
    ninja -C _b -j"$JOBS" uv_a
    cp _b/libuv_a.a "$PREFIX/lib/libuv.a"
    cp -r include/. "$PREFIX/include/"
    # the system libraries libuv's CMakeLists.txt links on Windows
    write_pc libuv "$(upstream_ver libuv1)" "" \
        "-luv -lpsapi -luser32 -ladvapi32 -liphlpapi -luserenv -lws2_32 -ldbghelp -lole32 -lshell32"
}

build_libsodium() {
    local s; s=$(unpack libsodium) || return 1; cd "$s"
    autoreconf -fi
    ./configure "${AUTOCONF_CROSS[@]}"
    make -j"$JOBS"
    make install
    # a static libsodium on Windows needs SODIUM_STATIC (else dllimport declarations)
    sed -i 's|^Cflags: \(.*\)|Cflags: \1 -DSODIUM_STATIC|' "$PREFIX/lib/pkgconfig/libsodium.pc"
}

build_protobuf-c() {
    local s; s=$(unpack protobuf-c) || return 1; cd "$s"
    # the runtime library only: protoc-c runs natively (Debian protobuf-c-compiler)
    ./configure "${AUTOCONF_CROSS[@]}" --disable-protoc
    make -j"$JOBS"
    make install
}

build_c-ares() {
    local s; s=$(unpack c-ares) || return 1; cd "$s"
    # Debian's CVE-2023-31130 patch uses INADDRSZ, which only <arpa/nameser.h>
    # defines (not on Windows): it is the size of an IPv4 address
    cmake -S . -B _b "${CMAKE_CROSS[@]}" -DCMAKE_C_FLAGS="-DINADDRSZ=4" -DCARES_STATIC=ON -DCARES_SHARED=OFF \
        -DCARES_BUILD_TOOLS=OFF -DCARES_BUILD_TESTS=OFF -DCARES_INSTALL=ON
    ninja -C _b -j"$JOBS" install
}

build_libsecp256k1() {
    local s; s=$(unpack libsecp256k1) || return 1; cd "$s"
    autoreconf -fi
    ./configure "${AUTOCONF_CROSS[@]}" --disable-tests --disable-exhaustive-tests \
        --disable-benchmark --disable-examples
    make -j"$JOBS"
    make install
}

build_openssl() {
    local s; s=$(unpack openssl) || return 1; cd "$s"
    # libcrypto and libssl only (build_libs, install_dev): no apps, tests, docs
    env -u CC -u CFLAGS -u AR -u RANLIB ./Configure mingw64 no-shared no-tests no-module \
        --cross-compile-prefix=$HOST- --prefix="$PREFIX" --libdir=lib \
        --openssldir="$PREFIX/ssl"
    make -j"$JOBS" build_libs
    make install_dev
}

build_miniupnpc() {
    local s; s=$(unpack miniupnpc) || return 1; cd "$s"
    [ -f CMakeLists.txt ] || cd miniupnpc
    cmake -S . -B _b "${CMAKE_CROSS[@]}" -DUPNPC_BUILD_STATIC=ON -DUPNPC_BUILD_SHARED=OFF \
        -DUPNPC_BUILD_TESTS=OFF -DUPNPC_BUILD_SAMPLE=OFF
    ninja -C _b -j"$JOBS" install
    write_pc miniupnpc "$(upstream_ver miniupnpc)" "-DMINIUPNP_STATICLIB" \
        "-lminiupnpc -lws2_32 -liphlpapi"
}

build_libnatpmp() {
    local s; s=$(unpack libnatpmp) || return 1; cd "$s"
    # upstream's Makefile is Unix-only and build.bat is for Windows hosts: the
    # three sources of the library, as build.bat compiles them
    local cf=(-O2 -DNATPMP_STATICLIB -DENABLE_STRNATPMPERR -Wall)
    for f in natpmp getgateway wingettimeofday; do
        "$HOST-gcc" "${cf[@]}" -c $f.c -o $f.o
    done
    "$HOST-ar" rcs "$PREFIX/lib/libnatpmp.a" natpmp.o getgateway.o wingettimeofday.o
    cp natpmp.h "$PREFIX/include/"
    [ -f natpmp_declspec.h ] && cp natpmp_declspec.h "$PREFIX/include/"
    write_pc natpmp "$(upstream_ver libnatpmp)" "-DNATPMP_STATICLIB" "-lnatpmp -lws2_32 -liphlpapi"
}

build_http-parser() {
    local s; s=$(unpack http-parser) || return 1; cd "$s"
    # one C file; upstream's Makefile builds Linux shared objects
    "$HOST-gcc" -O2 -DHTTP_PARSER_STRICT=0 -c http_parser.c -o http_parser.o
    "$HOST-ar" rcs "$PREFIX/lib/libhttp_parser.a" http_parser.o
    cp http_parser.h "$PREFIX/include/"
    write_pc http-parser "$(upstream_ver http-parser)" "" "-lhttp_parser"
}

export CC=$HOST-gcc AR=$HOST-ar RANLIB=$HOST-ranlib CFLAGS="-O2"
export PKG_CONFIG_LIBDIR="$PREFIX/lib/pkgconfig:/usr/$HOST/lib/pkgconfig"
for d in $DEPS; do
    case " $ALL_DEPS " in *" $d "*) ;; *) log "unknown dep $d (known: $ALL_DEPS)"; exit 2;; esac
    if [ -f "$PREFIX/.done-$d" ]; then log "$d ${VER[$d]}: cached"; continue; fi
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    log "$d ${VER[$d]}: building (load $load)"
    t0=$(date +%s)
    # in the foreground (Ctrl-C and a kill of the job reach the build too);
    # rc taken with set +e around it, since under || set -e would be off
    # inside the subshell as well
    set +e
    ( set -e; "build_$d" ) >"$WORK/$d.log" 2>&1
    rc=$?
    set -e
    if [ "$rc" -ne 0 ]; then
        tail -40 "$WORK/$d.log" >&2
        log "$d failed ($WORK/$d.log)"
        exit 1
    fi
    t1=$(date +%s)
    echo "$d $(cat "$WORK/$d.version") $((t1 - t0))s jobs=$JOBS load_at_start=$load" >>"$PREFIX/timings.txt"
    log "$d: $((t1 - t0)) s"
    touch "$PREFIX/.done-$d"
    rm -rf "${WORK:?}/$d"
done
rm -f "$PREFIX"/lib/*.dll.a
echo "$PREFIX"
