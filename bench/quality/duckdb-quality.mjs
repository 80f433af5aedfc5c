// DuckDB side of the quality benchmark (run by bench/quality/run.sh).
//
//   node duckdb-quality.mjs --dir DIR [--runs 5] [--threads 1,default]
//
// Computes, over the Parquet files of DIR/enriched (hive-partitioned by bucket and path; the benchmark only
// appends, so every file is live), what `weft quality` reports: per event type the rows of each path, the
// events matched by (bucket, event_id) (the first copy of a repeated id), those only one path holds, the
// repeats, and for each compared column how many matched events agree; and the users whose events, and
// whose events and values, are the same. Times --runs runs per thread setting (after one warm-up) and
// writes DIR/duckdb.json; run.sh checks the counts against Weft's.
//
// @duckdb/node-api is resolved from tests/interop (install it with `npm ci --prefix tests/interop`).
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const interop = resolve(here, '../../tests/interop/package.json');
const { DuckDBInstance } = await import(pathToFileURL(createRequire(interop).resolve('@duckdb/node-api')).href);

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => (i % 2 === 0 ? [...pairs, [a.replace(/^--/, ''), all[i + 1]]] : pairs), []));
const dir = args.dir;
const runs = Number(args.runs ?? 5);
const threads = (args.threads ?? '1,default').split(',');
const columns = JSON.parse(readFileSync(join(dir, 'weft.json'))).columns; // the columns Weft compared

const files = `read_parquet('${join(dir, 'enriched')}/bucket=*/path=*/*.parquet', hive_partitioning = true, file_row_number = true)`;
const agree = columns.map((c) => `r1.v.${c} IS NOT DISTINCT FROM c1.v.${c} AS agree_${c}`).join(',\n    ');
const all = columns.map((c) => `agree_${c}`).join(' AND ');
// Each path's distinct ids per bucket with their first copy (the benchmark writes one file per bucket and
// path, so the first copy is the one with the lowest row number) and how many rows repeat them; a repeat is
// counted under its first copy's event type (the benchmark's repeats are exact copies).
const side = (path) => `SELECT bucket, event_id, count(*) - 1 AS repeats,
    arg_min(struct_pack(${columns.join(', ')}), file_row_number) AS v
  FROM t WHERE path = '${path}' GROUP BY bucket, event_id`;
const sql = `
WITH t AS (SELECT * FROM ${files}),
r1 AS MATERIALIZED (${side('batch')}),
c1 AS MATERIALIZED (${side('stream')}),
m AS MATERIALIZED (SELECT r1.v.event_type AS t, r1.v.user_id AS ru, c1.v.user_id AS cu,
    ${agree}
  FROM r1 JOIN c1 USING (bucket, event_id)),
r_only AS MATERIALIZED (SELECT * FROM r1 ANTI JOIN c1 USING (bucket, event_id)),
c_only AS MATERIALIZED (SELECT * FROM c1 ANTI JOIN r1 USING (bucket, event_id)),
types AS (
  SELECT v.event_type AS t, count(*) + sum(repeats) AS reference_rows, sum(repeats) AS reference_duplicates, 0 AS candidate_duplicates, 0 AS candidate_only, 0 AS reference_only FROM r1 GROUP BY 1
  UNION ALL SELECT v.event_type, 0, 0, sum(repeats), 0, 0 FROM c1 GROUP BY 1
  UNION ALL SELECT v.event_type, 0, 0, 0, count(*), 0 FROM c_only GROUP BY 1
  UNION ALL SELECT v.event_type, 0, 0, 0, 0, count(*) FROM r_only GROUP BY 1),
matched AS (SELECT t, count(*) AS matched, ${columns.map((c) => `count_if(agree_${c}) AS agree_${c}`).join(', ')} FROM m GROUP BY 1),
ids_differ AS (SELECT v.user_id AS u FROM r_only UNION SELECT v.user_id FROM c_only
  UNION SELECT ru FROM m WHERE NOT (agree_user_id AND agree_event_time) UNION SELECT cu FROM m WHERE NOT (agree_user_id AND agree_event_time)),
any_differ AS (SELECT u FROM ids_differ UNION SELECT ru FROM m WHERE NOT (${all}) UNION SELECT cu FROM m WHERE NOT (${all})),
users AS (SELECT count(*) AS n FROM (SELECT v.user_id FROM r1 UNION SELECT v.user_id FROM c1))
SELECT s.t AS event_type, sum(s.reference_rows) AS reference_rows,
  coalesce(any_value(matched.matched), 0) + sum(s.candidate_duplicates) + sum(s.candidate_only) AS candidate_rows,
  coalesce(any_value(matched.matched), 0) AS matched, sum(s.reference_only) AS reference_only, sum(s.candidate_only) AS candidate_only,
  sum(s.reference_duplicates) AS reference_duplicates, sum(s.candidate_duplicates) AS candidate_duplicates,
  ${columns.map((c) => `coalesce(any_value(matched.agree_${c}), 0) AS agree_${c}`).join(', ')},
  any_value((SELECT n FROM users)) AS users,
  any_value((SELECT n FROM users) - (SELECT count(*) FROM ids_differ)) AS users_ids_agree,
  any_value((SELECT n FROM users) - (SELECT count(*) FROM any_differ)) AS users_fully_agree
FROM types s LEFT JOIN matched ON matched.t = s.t
GROUP BY s.t ORDER BY s.t`;

const instance = await DuckDBInstance.create(':memory:');
const connection = await instance.connect();
const result = { runs: {}, types: null };
for (const t of threads) {
  await connection.run(t === 'default' ? 'RESET threads' : `SET threads = ${t}`);
  const times = [];
  for (let r = 0; r <= runs; r++) {
    const start = process.hrtime.bigint();
    const reader = await connection.runAndReadAll(sql);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    const names = reader.columnNames();
    result.types = reader.getRows().map((row) => Object.fromEntries(row.map((v, i) => [names[i], typeof v === 'bigint' ? Number(v) : v])));
    if (r > 0) times.push(ms);
  }
  result.runs[t] = { compare_ms: times.sort((a, b) => a - b) };
}
writeFileSync(join(dir, 'duckdb.json'), JSON.stringify(result));
console.log(JSON.stringify(result));
