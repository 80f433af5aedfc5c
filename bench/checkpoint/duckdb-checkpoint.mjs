// DuckDB side of the checkpoint benchmark (run by bench/checkpoint/run.sh).
//
//   node duckdb-checkpoint.mjs --dir DIR --weft WEFT_CHECKPOINT [--runs 5] [--threads 1,default]
//
// 1. Loads DIR/actions.json (the actions Weft's checkpoint holds) into an in-memory table typed as the
//    protocol's checkpoint schema (untimed), so both sides write the same values from memory.
// 2. For each thread setting: times --runs `COPY actions TO 'DIR/duckdb.checkpoint.parquet'` and --runs
//    reads of each checkpoint file with a query that touches every field Weft's reader takes.
// 3. Checks both files hold the same actions (the same aggregates) and writes DIR/duckdb.json.
//
// @duckdb/node-api is resolved from tests/interop (install it with `npm ci --prefix tests/interop`).
import { createRequire } from 'node:module';
import { statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const interop = resolve(here, '../../tests/interop/package.json');
const { DuckDBInstance } = await import(pathToFileURL(createRequire(interop).resolve('@duckdb/node-api')).href);

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => (i % 2 === 0 ? [...pairs, [a.replace(/^--/, ''), all[i + 1]]] : pairs), []));
const dir = args.dir;
const weft = args.weft;
const runs = Number(args.runs ?? 5);
const threads = (args.threads ?? '1,default').split(',');

const COLUMNS = `{
  txn: 'STRUCT(appId VARCHAR, version BIGINT, lastUpdated BIGINT)',
  add: 'STRUCT(path VARCHAR, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT, modificationTime BIGINT, dataChange BOOLEAN, stats VARCHAR, tags MAP(VARCHAR, VARCHAR))',
  remove: 'STRUCT(path VARCHAR, deletionTimestamp BIGINT, dataChange BOOLEAN, extendedFileMetadata BOOLEAN, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT)',
  metaData: 'STRUCT(id VARCHAR, name VARCHAR, description VARCHAR, format STRUCT(provider VARCHAR, options MAP(VARCHAR, VARCHAR)), schemaString VARCHAR, partitionColumns VARCHAR[], configuration MAP(VARCHAR, VARCHAR), createdTime BIGINT)',
  protocol: 'STRUCT(minReaderVersion INTEGER, minWriterVersion INTEGER)'}`;

// Every field a reader of the checkpoint takes: paths, sizes, times, flags, statistics, partition values.
const readSql = (file) => `SELECT count(add), sum(add.size), sum(add.modificationTime), count_if(add.dataChange),
  sum(strlen(add.stats)), sum(strlen(add.path)), sum(len(map_keys(add.partitionValues))), sum(strlen(list_aggregate(map_values(add.partitionValues), 'string_agg', ','))),
  count(remove), sum(remove.deletionTimestamp), count(protocol), count(metaData)
FROM read_parquet('${file}')`;

const instance = await DuckDBInstance.create(':memory:');
const connection = await instance.connect();
await connection.run(`CREATE TABLE actions AS SELECT txn, add, remove, metaData, protocol FROM read_json('${join(dir, 'actions.json')}', format = 'newline_delimited', columns = ${COLUMNS})`);

const output = join(dir, 'duckdb.checkpoint.parquet');
const result = { runs: {}, bytes: 0 };
for (const t of threads) {
  await connection.run(t === 'default' ? 'RESET threads' : `SET threads = ${t}`);
  const write = [], readDuck = [], readWeft = [];
  for (let r = 0; r <= runs; r++) {
    let start = process.hrtime.bigint();
    await connection.run(`COPY actions TO '${output}' (FORMAT parquet)`);
    const w = Number(process.hrtime.bigint() - start) / 1e6;
    start = process.hrtime.bigint();
    const duck = (await connection.runAndReadAll(readSql(output))).getRows()[0].map(String);
    const rd = Number(process.hrtime.bigint() - start) / 1e6;
    start = process.hrtime.bigint();
    const mine = (await connection.runAndReadAll(readSql(weft))).getRows()[0].map(String);
    const rw = Number(process.hrtime.bigint() - start) / 1e6;
    if (JSON.stringify(duck) !== JSON.stringify(mine)) {
      throw new Error(`the two checkpoints differ: DuckDB's ${duck.join(',')} against Weft's ${mine.join(',')}`);
    }
    if (r > 0) { write.push(w); readDuck.push(rd); readWeft.push(rw); }
  }
  result.runs[t] = { write_ms: write.sort((a, b) => a - b), read_duckdb_file_ms: readDuck.sort((a, b) => a - b), read_weft_file_ms: readWeft.sort((a, b) => a - b) };
}
result.bytes = statSync(output).size;
writeFileSync(join(dir, 'duckdb.json'), JSON.stringify(result));
console.log(JSON.stringify(result));
