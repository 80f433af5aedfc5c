#!/usr/bin/env bash
# Delta checkpoint benchmark, Weft vs DuckDB: writing and reading the checkpoint of a stream table's state
# (N live files over a month of hourly buckets with Weft's per-file statistics, N/10 remove tombstones).
#
#   bench/checkpoint/run.sh [--files N] [--runs K] [--dir DIR]
#
# 1. bench/Weft.Bench.Checkpoint (Release) builds the state in memory, writes its actions as DIR/actions.json,
#    and times K checkpoint writes (CheckpointWriter, as a table's handle writes one in the background) and
#    K reads of the file into actions (CheckpointReader, as a reader of a cleaned-up log opens it).
# 2. node bench/checkpoint/duckdb-checkpoint.mjs loads the same actions into a DuckDB table typed as the
#    protocol's checkpoint schema (untimed), times K `COPY … TO parquet` with 1 thread and the default
#    threads, and K reads of each file; it fails if the two files do not hold the same actions.
# 3. Prints medians and ratios.
#
# Needs: the .NET 10 SDK, node, and `npm ci --prefix tests/interop` (done here when missing).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
files=100000
runs=5
dir="${TMPDIR:-/tmp}/weft-checkpoint-bench"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --files) files="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    *) echo "usage: $0 [--files N] [--runs K] [--dir DIR]" >&2; exit 2 ;;
  esac
done

[ -d "$repo/tests/interop/node_modules/@duckdb/node-api" ] || npm ci --prefix "$repo/tests/interop" --no-audit --no-fund --loglevel=error
rm -rf "$dir" && mkdir -p "$dir"
dotnet build "$repo/bench/Weft.Bench.Checkpoint" -c Release --nologo -v q >/dev/null
dotnet "$repo/bench/Weft.Bench.Checkpoint/bin/Release/net10.0/Weft.Bench.Checkpoint.dll" --dir "$dir" --files "$files" --runs "$runs" >/dev/null
checkpoint=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$dir/weft.json')).checkpoint)")
node "$repo/bench/checkpoint/duckdb-checkpoint.mjs" --dir "$dir" --weft "$checkpoint" --runs "$runs" >/dev/null

node - "$dir" <<'JS'
const fs = require('fs');
const dir = process.argv[2];
const weft = JSON.parse(fs.readFileSync(`${dir}/weft.json`));
const duck = JSON.parse(fs.readFileSync(`${dir}/duckdb.json`));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const ms = (x) => `${x.toFixed(0)} ms`;
console.log(`checkpoint of ${weft.files} files + ${weft.tombstones} tombstones (${weft.files + weft.tombstones + 2} actions)`);
console.log(`file size: Weft ${(weft.bytes / 1e6).toFixed(1)} MB, DuckDB ${(duck.bytes / 1e6).toFixed(1)} MB`);
const w = median(weft.write_ms), r = median(weft.read_ms);
for (const [threads, d] of Object.entries(duck.runs)) {
  const dw = median(d.write_ms);
  console.log(`write: Weft (1 thread) ${ms(w)}, DuckDB (${threads} threads) ${ms(dw)}: Weft/DuckDB time ${(w / dw).toFixed(2)}`);
}
const d1 = duck.runs['1'] ?? Object.values(duck.runs)[0];
console.log(`read into actions: Weft ${ms(r)} (of which decoding every column of the file alone: ${ms(median(weft.columns_ms))}); DuckDB aggregating every field (1 thread): its own file ${ms(median(d1.read_duckdb_file_ms))}, Weft's file ${ms(median(d1.read_weft_file_ms))}`);
console.log(`read: Weft/DuckDB time on Weft's file ${(r / median(d1.read_weft_file_ms)).toFixed(2)}`);
JS
