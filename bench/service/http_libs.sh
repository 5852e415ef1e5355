#!/usr/bin/env bash
# The HTTP library choice: libmicrohttpd (as service/rest.c uses it) next to
# h2o (Debian's libh2o-evloop), each a hello server with the same thread count,
# under the same wrk load, alternating rounds.
#   bench/service/http_libs.sh [seconds=5] [rounds=3] [threads=2]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-5}; rounds=${2:-3}; threads=${3:-2}
need=()
command -v wrk >/dev/null || need+=(wrk)
dpkg-query -W -f='${Status}' libh2o-evloop-dev 2>/dev/null | grep -q "install ok" || need+=(libh2o-evloop-dev)
dpkg-query -W -f='${Status}' libmicrohttpd-dev 2>/dev/null | grep -q "install ok" || need+=(libmicrohttpd-dev)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
work=$(mktemp -d)
trap 'kill $p1 $p2 2>/dev/null || true; rm -rf "$work"' EXIT
cc -O2 -Wall -Wextra -o "$work/hello_h2o" "$here/hello_h2o.c" $(pkg-config --cflags --libs libh2o-evloop) -lpthread
cc -O2 -Wall -Wextra -o "$work/hello_mhd" "$here/hello_mhd.c" $(pkg-config --cflags --libs libmicrohttpd)
"$work/hello_h2o" 18181 "$threads" & p1=$!
"$work/hello_mhd" 18182 "$threads" & p2=$!
sleep 0.5
rate() { wrk -t2 -c64 -d"${secs}s" "http://127.0.0.1:$1/" | awk '/^Requests\/sec/ {print $2}'; }
h2o=(); mhd=()
for _ in $(seq "$rounds"); do h2o+=("$(rate 18181)"); mhd+=("$(rate 18182)"); done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
a=$(median "${mhd[@]}"); b=$(median "${h2o[@]}")
echo "METRIC http_hello_libmicrohttpd_rps $a req/s"
echo "METRIC http_hello_h2o_rps $b req/s"
echo "METRIC http_hello_mhd_vs_h2o_ratio $(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", a/b}') x"
echo "runs mhd: ${mhd[*]}; h2o: ${h2o[*]}; wrk -t2 -c64 -d${secs}s; $threads server threads each" >&2
