// Times DuckDB's reading of the benchmark's files (bench/delta-interop/run.sh): the files minus the
// deleted rows (an anti-join on file name and file_row_number, as a reader without Delta support would
// apply a DELETE) and the files whole, each aggregating every column, with 1 thread and the default.
//
//   node bench/delta-interop/duckdb-time.mjs --dir DIR --runs K
//
// Prints JSON: {"<case>": {"seconds": [..], "rows": n, "score": s}, ...}
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// The module tests/interop pins (package-lock.json).
const interop = resolve(dirname(fileURLToPath(import.meta.url)), '../../tests/interop/package.json');
const { DuckDBInstance } = await import(pathToFileURL(createRequire(interop).resolve('@duckdb/node-api')).href);

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (i % 2 === 0 ? [...a, [v.replace(/^--/, ''), all[i + 1]]] : a), []));
const dir = args.dir, runs = Number(args.runs);
const aggregates = "count(*) AS n, sum(score) AS score, sum(user_id) AS users, sum(item_id) AS items, sum(dwell_ms) AS dwell, max(event_time) AS last, count(event_id) AS ids, count(event_type) AS types";
const files = `read_parquet('${dir}/data/*.parquet', filename = true, file_row_number = true)`;
const queries = {
  deleted: `SELECT ${aggregates} FROM ${files} p ANTI JOIN deleted d ON p.filename = d.file AND p.file_row_number = d.row`,
  whole: `SELECT ${aggregates} FROM read_parquet('${dir}/data/*.parquet')`,
};
const result = {};
for (const threads of [1, 2]) {
  const connection = await (await DuckDBInstance.create(':memory:', { threads: String(threads) })).connect();
  await connection.run(`CREATE TABLE deleted AS SELECT * FROM read_parquet('${dir}/deleted.parquet')`); // untimed
  for (const [name, sql] of Object.entries(queries)) {
    const seconds = [];
    let last;
    for (let r = 0; r < runs; r++) {
      const start = process.hrtime.bigint();
      last = (await connection.runAndReadAll(sql)).getRows()[0];
      seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
    }
    result[`${name} threads=${threads}`] = { seconds, rows: Number(last[0]), score: Number(last[1]) };
  }
}
process.stdout.write(JSON.stringify(result) + '\n');
