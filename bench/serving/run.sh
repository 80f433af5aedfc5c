#!/usr/bin/env bash
# Serving benchmark (docs/PERFORMANCE.md, "Serving (issue 6)"), in one run of one process:
#
#   bench/serving/run.sh [--users N] [--events N] [--iterations N] [--duration S] [--connections C] [--threads T] [--port P]
#
# 1. Builds a deployment in a temp folder: a signal with 8 sequence columns and max_length 500; N users with
#    --events events each over 6.5 days, all but the last day through `weft batch` (sealed history), the last
#    day through the stream into the SQLite online store, so every 500-element read merges both paths.
# 2. Starts `weft serve` in the benchmark process on 127.0.0.1:P (in-process stream, default caches).
# 3. In-process: --iterations reads of random users through the handler's own code (parameters, timeline,
#    cut, columnar JSON), p50/p90/p99/p99.9/max in µs — with both caches, with the timeline cache only,
#    and with no cache (SQLite read + payload decode + merge each time).
# 4. Over HTTP on loopback: wrk against GET /healthz, then against GET /v1/signals/bench/users/{random}/sequence
#    on the same server with the same settings; requests/s, p50/p99 and the ratio.
# 5. Hybrid reads (docs/migration.md): click cut over to Weft, view still served by a stand-in legacy service on
#    loopback; wrk against that service alone, then against GET …/sequence?consumer=bench-ranker; the ratio.
#
# Needs the .NET 10 SDK and wrk (Debian package; installed here when missing). Traffic stays on 127.0.0.1.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

if ! command -v wrk >/dev/null 2>&1; then
  echo "== installing wrk" >&2
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

echo "== build (Release)" >&2
dotnet build -c Release --nologo -v q "$repo/bench/Weft.Bench.Serving/Weft.Bench.Serving.csproj" >&2
echo "== load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
dotnet "$repo/bench/Weft.Bench.Serving/bin/Release/net10.0/Weft.Bench.Serving.dll" --wrk "$(command -v wrk)" "$@"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
