#!/usr/bin/env bash
# A cheap compile check of the Windows-only code on Linux (issue 20): the
# files and halves that only the Windows cross build compiles, syntax-checked
# with mingw-w64 (-fsyntax-only, no dependency prefix needed: libuv's own
# headers select uv/win.h under _WIN32). Catches a Linux-side change that
# breaks the Windows build without running the Windows job
# (scripts/windows-ci.sh). TAP output; exit 77 (skipped) without the compiler.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cc=""
for c in x86_64-w64-mingw32-gcc-posix x86_64-w64-mingw32-gcc; do
    command -v "$c" >/dev/null && { cc=$c; break; }
done
[ -n "$cc" ] || { echo "1..0 # SKIP x86_64-w64-mingw32-gcc not installed (Debian gcc-mingw-w64-x86-64-posix)"; exit 77; }
[ -f /usr/include/uv.h ] || { echo "1..0 # SKIP libuv headers (libuv1-dev) missing"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# only libuv's headers, not all of /usr/include (glibc's must not be seen)
ln -s /usr/include/uv.h /usr/include/uv "$tmp/"
cat >"$tmp/test_os.c" <<'C'
#include "gn_test_msize.h"
#include "gn_test_os.h"
#include "syn_drop.h"
int main(void) { return gts_count_fds() + (int)gts_malloc_usable_size(0); }
C
flags=(-std=c11 -fsyntax-only -Wall -Wextra -Werror -DGN_STATIC
       -I"$root/include" -I"$root/core" -I"$root/ipc" -I"$root/ipc/client" -I"$root/tools"
       -I"$root/test/unit" -I"$tmp")
files=(core/platform_win.c ipc/client/client_win.c tools/cli_platform.c "$tmp/test_os.c")
echo "1..${#files[@]}"
n=0 fail=0
for f in "${files[@]}"; do
    n=$((n + 1))
    case $f in /*) p=$f;; *) p=$root/$f;; esac
    name=${f#"$tmp/"}
    [ "$name" = test_os.c ] && name="test/unit/gn_test_os.h, gn_test_msize.h, syn_drop.h"
    if out=$("$cc" "${flags[@]}" "$p" 2>&1); then
        echo "ok $n - $name ($cc -fsyntax-only)"
    else
        echo "not ok $n - $name"
        printf '%s\n' "$out" | sed 's/^/# /'
        fail=1
    fi
done
exit "$fail"
