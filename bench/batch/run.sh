#!/usr/bin/env bash
# Batch sequence benchmark, Weft vs DuckDB (issue 4): last-500 sequences with a 16-float embedding and a category
# joined from a 200k-item table, from a raw Parquet archive of N events over 1M users, both sides in one run.
#
#   bench/batch/run.sh [--events N[,N...]] [--users U] [--items I] [--data DIR] [--out DIR] [--form topn|window]
#                      [--skip-duckdb]
#
# For each N (default 5000000,10000000,20000000):
# 1. Generate (once per N; kept in DATA/N) events.parquet and items.parquet with Weft's Parquet writer, seeded
#    (bench/Weft.Bench.Batch gen), and read both files once so that both sides start with them in the page cache.
# 2. Weft: one process (bench/Weft.Bench.Batch weft, Release) loads the signal and the item table, reads the raw
#    events, runs the signal's executors, dedups, cuts, enriches and writes OUT/N/weft.parquet (SequenceBuild).
# 3. DuckDB: one process (node bench/batch/duckdb-batch.mjs sequences, @duckdb/node-api, default settings: all
#    cores, 80 % of RAM) runs the same computation as one SQL statement with the top-N aggregate
#    arg_min(struct, key, 500) and writes OUT/N/duckdb.parquet.
#    Both processes run under /usr/bin/time: wall time, user + system CPU time and peak RSS of the whole process.
# 4. DuckDB reads both outputs and compares every column of every user (the run fails on any difference).
# 5. Prints the table with the ratios (also in OUT/report.txt).
#
# Needs: the .NET 10 SDK, node, /usr/bin/time, and `npm ci --prefix tests/interop` (done here when missing).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
sizes="5000000,10000000,20000000"
users=1000000
items=200000
data="${TMPDIR:-/tmp}/weft-batch-bench/data"
out="${TMPDIR:-/tmp}/weft-batch-bench/out"
form=topn
duckdb=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) sizes="$2"; shift 2 ;;
    --users) users="$2"; shift 2 ;;
    --items) items="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --form) form="$2"; shift 2 ;;
    --skip-duckdb) duckdb=0; shift ;;
    *) echo "usage: $0 [--events N[,N...]] [--users U] [--items I] [--data DIR] [--out DIR] [--form topn|window] [--skip-duckdb]" >&2; exit 2 ;;
  esac
done

if [[ ! -d "$repo/tests/interop/node_modules/@duckdb/node-api" ]]; then
  npm ci --prefix "$repo/tests/interop" --no-audit --no-fund --loglevel=error >/dev/null
fi

echo "== build (Release)" >&2
dotnet build -c Release --nologo -v q "$repo/bench/Weft.Bench.Batch/Weft.Bench.Batch.csproj" >&2
runner=(dotnet "$repo/bench/Weft.Bench.Batch/bin/Release/net10.0/Weft.Bench.Batch.dll")
mkdir -p "$out"

# The cut: as of 32 days after the data's start (every event and delivery is in), a 365-day lookback.
as_of_us=1769990400000000
lookback_us=31536000000000

{
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -r)"
  echo "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "dotnet $(dotnet --version), node $(node --version); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out/machine.txt"

# Runs a command under /usr/bin/time and writes {"seconds","cpuSeconds","peakRssBytes"} to $1.
measure() {
  local json="$1"; shift
  local times="$json.time"
  local status=0
  /usr/bin/time -o "$times" -f '%e %U %S %M' "$@" || status=$?
  read -r wall user sys rss < <(tail -n 1 "$times")
  printf '{"seconds": %s, "cpuSeconds": %s, "peakRssBytes": %s, "exitCode": %s, "loadAverage": "%s"}\n' \
    "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')" "$((rss * 1024))" "$status" "$(cut -d' ' -f1-3 /proc/loadavg)" > "$json"
  return $status
}

results=()
IFS=',' read -r -a ns <<< "$sizes"
for n in "${ns[@]}"; do
  dir="$data/$n"
  run="$out/$n"
  mkdir -p "$run"
  rm -f "$run"/*.parquet
  echo "== $n events: generate (or reuse) $dir" >&2
  "${runner[@]}" gen --dir "$dir" --events "$n" --users "$users" --items "$items"
  cat "$dir/events.parquet" "$dir/items.parquet" > /dev/null

  echo "== $n events: Weft (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  measure "$run/weft-process.json" "${runner[@]}" weft --dir "$dir" --out "$run/weft.parquet" --json "$run/weft-result.json"

  if [[ $duckdb == 1 ]]; then
    echo "== $n events: DuckDB (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    if measure "$run/duckdb-process.json" node "$repo/bench/batch/duckdb-batch.mjs" sequences --dir "$dir" --out "$run/duckdb.parquet" \
        --json "$run/duckdb-result.json" --as-of-us "$as_of_us" --lookback-us "$lookback_us" --form "$form"; then
      echo "== $n events: DuckDB compares the two outputs" >&2
      node "$repo/bench/batch/duckdb-batch.mjs" compare --weft "$run/weft.parquet" --duckdb "$run/duckdb.parquet" --json "$run/compare.json"
    else
      echo "DuckDB failed at $n events (see above)" >&2
      echo '{"failed": true}' > "$run/duckdb-result.json"
    fi
  fi
  results+=("$run")
done

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"
{
  cat "$out/machine.txt"
  echo
  "${runner[@]}" report --json "$(IFS=','; echo "${results[*]}")"
} | tee "$out/report.txt"
