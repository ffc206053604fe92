#!/usr/bin/env bash
# Sans-I/O rule check (STYLE.md section 4): wire-format cores in layers/ and
# protocols/ include no libuv, make no syscalls, read no clock, start no
# threads and keep no mutable globals. Adapters (*_uv.c) and layer glue
# (*_layer.c) are exempt. Prints TAP; exits 1 on a violation.
set -u
cd "$(dirname "$0")/.."
n=0
fail=0
report() { # ok|not-ok name detail
    n=$((n + 1))
    if [ "$1" = ok ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; echo "$3" | sed 's/^/# /'; fail=1; fi
}
# ipc/: the control protocol core and the p2pd core; ipc/client* (the C client) is glue.
cores=$(find layers protocols ipc -name '*.[ch]' ! -name '*_uv.[ch]' ! -name '*_layer.c' ! -path 'ipc/client*' | sort)
echo "TAP version 13"
echo "1..4"
hits=$(grep -nE '#include[[:space:]]*[<"](uv\.h|pthread\.h|unistd\.h|sys/socket\.h|netinet/|sys/time\.h|threads\.h)' $cores)
[ -z "$hits" ] && report ok "cores include no libuv, threads or socket headers" "" || report no "cores include no libuv, threads or socket headers" "$hits"
hits=$(grep -nE '\b(sleep|usleep|nanosleep|socket|connect|accept|recv|send|clock_gettime|gettimeofday|time|rand|random|getrandom|uv_[a-z_]+)[[:space:]]*\(' $cores | grep -vE '^\S+:[0-9]+:\s*(\*|//|/\*)' | grep -vE '\b(gn|gni)_[a-z_]*(send|recv|accept|time)\b')
[ -z "$hits" ] && report ok "cores make no syscalls and read no clock" "" || report no "cores make no syscalls and read no clock" "$hits"
# file-scope statics that are not const and not functions
hits=$(grep -nE '^static[[:space:]]+' $cores | grep -vE '^\S+:[0-9]+:static[[:space:]]+(inline[[:space:]]+)?const\b' | grep -vE '\(' | grep -vE 'const[[:space:]]+[A-Za-z_]')
[ -z "$hits" ] && report ok "cores keep no mutable globals" "" || report no "cores keep no mutable globals" "$hits"
hits=$(grep -lE 'gn_now\(\)' $cores)
[ -z "$hits" ] && report ok "cores take the time as an argument" "" || report no "cores take the time as an argument" "$hits"
exit $fail
