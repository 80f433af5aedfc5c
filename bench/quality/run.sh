#!/usr/bin/env bash
# Quality benchmark, Weft vs DuckDB: `weft quality`'s stream-against-batch comparison of one enriched table.
#
#   bench/quality/run.sh [--events N] [--buckets B] [--runs K] [--dir DIR]
#
# 1. bench/Weft.Bench.Quality (Release) writes DIR/enriched: N events in B hourly buckets on path=batch, and
#    on path=stream the same with a stream's faults (0.5 % missing, 1 % stale category, 1 % embedding off,
#    0.2 % repeated, 0.1 % stream-only); then times K comparisons (StreamBatchQuality.CompareAsync, one thread)
#    and writes the counts it found.
# 2. node bench/quality/duckdb-quality.mjs computes the same counts with one SQL query over the same files,
#    K times with 1 thread and with DuckDB's default.
# 3. Fails unless both found the same counts; prints medians and ratios.
#
# Needs: the .NET 10 SDK, node, and `npm ci --prefix tests/interop` (done here when missing).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
events=1000000
buckets=168
runs=5
dir="${TMPDIR:-/tmp}/weft-quality-bench"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) events="$2"; shift 2 ;;
    --buckets) buckets="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    *) echo "usage: $0 [--events N] [--buckets B] [--runs K] [--dir DIR]" >&2; exit 2 ;;
  esac
done

[ -d "$repo/tests/interop/node_modules/@duckdb/node-api" ] || npm ci --prefix "$repo/tests/interop" --no-audit --no-fund --loglevel=error
rm -rf "$dir" && mkdir -p "$dir"
dotnet build "$repo/bench/Weft.Bench.Quality" -c Release --nologo -v q >/dev/null
dotnet "$repo/bench/Weft.Bench.Quality/bin/Release/net10.0/Weft.Bench.Quality.dll" --dir "$dir" --events "$events" --buckets "$buckets" --runs "$runs"
node "$repo/bench/quality/duckdb-quality.mjs" --dir "$dir" --runs "$runs" >/dev/null

node - "$dir" <<'JS'
const fs = require('fs');
const dir = process.argv[2];
const weft = JSON.parse(fs.readFileSync(`${dir}/weft.json`));
const duck = JSON.parse(fs.readFileSync(`${dir}/duckdb.json`));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
// The same counts, or the comparison is not the same work.
const keys = ['event_type', 'reference_rows', 'candidate_rows', 'matched', 'reference_only', 'candidate_only', 'reference_duplicates', 'candidate_duplicates', ...weft.columns.map((c) => `agree_${c}`)];
const pick = (row) => keys.map((k) => String(row[k]));
const w = weft.types.map(pick), d = duck.types.map(pick);
if (JSON.stringify(w) !== JSON.stringify(d)) throw new Error(`the counts differ:\nWeft   ${JSON.stringify(w)}\nDuckDB ${JSON.stringify(d)}`);
const users = [weft.users, weft.users_ids_agree, weft.users_fully_agree].join(',');
const duckUsers = [duck.types[0].users, duck.types[0].users_ids_agree, duck.types[0].users_fully_agree].join(',');
if (users !== duckUsers) throw new Error(`the user counts differ: Weft ${users}, DuckDB ${duckUsers}`);
console.log(`${weft.events.toLocaleString('en')} events a path in ${weft.buckets} buckets; both found, per type: ${weft.types.map((t) => `${t.event_type} ${t.matched} matched, ${t.reference_only} batch-only, ${t.candidate_only} stream-only`).join('; ')}; users ${users} (all, same ids, same values)`);
const mine = median(weft.compare_ms);
console.log(`compare: Weft (1 thread) ${mine.toFixed(0)} ms`);
for (const [threads, r] of Object.entries(duck.runs)) {
  const theirs = median(r.compare_ms);
  console.log(`compare: DuckDB (${threads} threads) ${theirs.toFixed(0)} ms: Weft/DuckDB time ${(mine / theirs).toFixed(2)}`);
}
JS
