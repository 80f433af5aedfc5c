#!/usr/bin/env bash
# Deletion-vector read benchmark: a Delta table after a DELETE another engine recorded as deletion vectors.
#
#   bench/delta-interop/run.sh [--rows N] [--files F] [--deleted P] [--runs K] [--dir DIR]
#
# 1. node bench/delta-interop/prepare.mjs: DuckDB writes N events in F Parquet files; P of each file's rows
#    (in runs and scattered, seeded) are deleted through one deletion vector per file (CRoaring, portable
#    format, one vector file, CRC-32 framed); DIR/dv is the Delta table with the vectors, DIR/plain the
#    same files without, DIR/deleted.parquet the deleted (file, row) pairs.
# 2. bench/Weft.Bench.DeletionVectors (Release) times K full scans of each table with EventTable (one
#    thread), aggregating every column, after one untimed scan of each.
# 3. node bench/delta-interop/duckdb-time.mjs times DuckDB's reading of the same files with the deleted
#    rows left out by an anti-join on (filename, file_row_number), and whole, with 1 and 2 threads.
# 4. Checks that both sides return the same rows and score sum, and prints medians and ratios.
#
# Needs: the .NET 10 SDK, node, and `npm ci --prefix tests/interop` (done here when missing).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rows=10000000
files=10
deleted=0.1
runs=3
dir="${TMPDIR:-/tmp}/weft-dv-bench"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rows) rows="$2"; shift 2 ;;
    --files) files="$2"; shift 2 ;;
    --deleted) deleted="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    *) echo "usage: $0 [--rows N] [--files F] [--deleted P] [--runs K] [--dir DIR]" >&2; exit 2 ;;
  esac
done

[ -d "$repo/tests/interop/node_modules/roaring-wasm" ] || npm ci --prefix "$repo/tests/interop" --no-audit --no-fund --loglevel=error
rm -rf "$dir" && mkdir -p "$dir"
node "$repo/bench/delta-interop/prepare.mjs" --dir "$dir" --rows "$rows" --files "$files" --deleted "$deleted" > "$dir/prepared.json"
dotnet build "$repo/bench/Weft.Bench.DeletionVectors" -c Release --nologo -v q >/dev/null
dotnet "$repo/bench/Weft.Bench.DeletionVectors/bin/Release/net10.0/Weft.Bench.DeletionVectors.dll" --dir "$dir" --runs "$runs" > "$dir/weft.json"
node "$repo/bench/delta-interop/duckdb-time.mjs" --dir "$dir" --runs "$runs" > "$dir/duckdb.json"

node - "$dir" <<'JS'
const fs = require('fs');
const dir = process.argv[2];
const prepared = JSON.parse(fs.readFileSync(`${dir}/prepared.json`));
const weft = JSON.parse(fs.readFileSync(`${dir}/weft.json`));
const duck = JSON.parse(fs.readFileSync(`${dir}/duckdb.json`));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const live = prepared.rows - prepared.deleted;
const cases = [
  ['Weft, with deletion vectors', weft.dv, live],
  ['Weft, same files, no vectors', weft.plain, prepared.rows],
  ['DuckDB anti-join threads=1', duck['deleted threads=1'], live],
  ['DuckDB anti-join threads=2', duck['deleted threads=2'], live],
  ['DuckDB whole files threads=1', duck['whole threads=1'], prepared.rows],
  ['DuckDB whole files threads=2', duck['whole threads=2'], prepared.rows],
];
for (const [name, c, rows] of cases) {
  if (c.rows !== rows) { console.error(`${name}: ${c.rows} rows, expected ${rows}`); process.exit(1); }
}
if (Math.abs(weft.dv.score - duck['deleted threads=1'].score) > 1e-6 * Math.abs(weft.dv.score)) {
  console.error(`score sums differ: Weft ${weft.dv.score}, DuckDB ${duck['deleted threads=1'].score}`); process.exit(1);
}
const lines = [`${prepared.rows.toLocaleString('en')} rows in ${prepared.files ?? ''} files, ${prepared.deleted.toLocaleString('en')} deleted (${(100 * prepared.deleted / prepared.rows).toFixed(1)} %)`, '',
  '| read | median s | runs s | M rows/s out |', '|---|---:|---|---:|'];
for (const [name, c, rows] of cases) {
  const m = median(c.seconds);
  lines.push(`| ${name} | ${m.toFixed(3)} | ${c.seconds.map((s) => s.toFixed(3)).join(', ')} | ${(rows / m / 1e6).toFixed(2)} |`);
}
const dv = median(weft.dv.seconds), plain = median(weft.plain.seconds), anti1 = median(duck['deleted threads=1'].seconds);
lines.push('', `Weft with vectors / Weft without: ${(dv / plain).toFixed(2)} (the time the vectors add)`, `DuckDB anti-join threads=1 / Weft with vectors: ${(anti1 / dv).toFixed(2)} (above 1: Weft is faster)`);
const report = lines.join('\n');
fs.writeFileSync(`${dir}/report.txt`, report + '\n');
console.log(report);
JS
