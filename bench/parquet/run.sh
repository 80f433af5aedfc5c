#!/usr/bin/env bash
# Weft vs DuckDB Parquet benchmark: write and full-scan throughput of the same 10M-event table, in one run.
#
#   bench/parquet/run.sh [--rows N] [--runs K] [--out DIR]
#
# 1. Weft (bench/Weft.Bench.Parquet, Release): generates the table in memory from a seed, times K writes to
#    DIR/weft.parquet and K full scans of it (single-threaded).
# 2. DuckDB (bench/parquet/duckdb-bench.mjs): loads Weft's file into an in-memory table (untimed), then with
#    threads=1 and with its default thread count times K `COPY ... TO` (SNAPPY, dictionary on, same row
#    groups) and K full scans of its own file (a query aggregating every column).
# 3. Weft reads DuckDB's file back and checks every value against the generated table.
# 4. Prints the table (medians, rows/s, MB/s, cpu/wall, file sizes, Weft/DuckDB ratios); also in DIR/report.txt.
#
# Needs: the .NET 10 SDK, node, and `npm ci --prefix tests/interop` (done here when node_modules is missing).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rows=10000000
runs=3
row_group=1048576
out="${TMPDIR:-/tmp}/weft-parquet-bench"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rows) rows="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: $0 [--rows N] [--runs K] [--out DIR]" >&2; exit 2 ;;
  esac
done

mkdir -p "$out"
rm -f "$out"/*.parquet "$out"/*.json

if [[ ! -d "$repo/tests/interop/node_modules/@duckdb/node-api" ]]; then
  npm ci --prefix "$repo/tests/interop" >/dev/null
fi

echo "== build (Release)" >&2
dotnet build -c Release --nologo -v q "$repo/bench/Weft.Bench.Parquet/Weft.Bench.Parquet.csproj" >&2
runner=(dotnet "$repo/bench/Weft.Bench.Parquet/bin/Release/net10.0/Weft.Bench.Parquet.dll")

{
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -r)"
  echo "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "dotnet $(dotnet --version), node $(node --version); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out/machine.txt"

echo "== Weft: generate, write x$runs, scan x$runs" >&2
"${runner[@]}" bench --rows "$rows" --row-group "$row_group" --runs "$runs" --dir "$out" --json "$out/weft.json"

echo "== DuckDB: load Weft's file, then COPY x$runs and scan x$runs at threads=1 and default" >&2
node "$repo/bench/parquet/duckdb-bench.mjs" --input "$out/weft.parquet" --dir "$out" --json "$out/duckdb.json" \
  --runs "$runs" --row-group "$row_group" --threads 1,default

echo "== Weft reads DuckDB's file and checks every value" >&2
"${runner[@]}" verify --file "$out/duckdb-t1.parquet" --rows "$rows"

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"
{
  cat "$out/machine.txt"
  echo
  "${runner[@]}" report --weft "$out/weft.json" --duckdb "$out/duckdb.json"
} | tee "$out/report.txt"
