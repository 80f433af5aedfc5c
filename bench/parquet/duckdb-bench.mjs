// DuckDB side of the Parquet benchmark (run by bench/parquet/run.sh).
//
//   node duckdb-bench.mjs --input weft.parquet --dir DIR --json OUT.json [--runs 3] [--row-group 1048576]
//                         [--threads 1,default]
//
// 1. Loads Weft's file into an in-memory DuckDB table (untimed), so both sides write the same values.
// 2. For each thread setting: times --runs `COPY events TO 'DIR/duckdb-tN.parquet'` (SNAPPY, dictionary on,
//    which is DuckDB's default, ROW_GROUP_SIZE as Weft) and --runs full scans of that file with a query that
//    aggregates every column (see scanSql below), so DuckDB must decode every value of every column.
// 3. Records file sizes and, from parquet_metadata(), per-column compressed sizes and encodings of both files.
// 4. With threads=1, times --runs scans of Weft's file one column at a time (that column's count and sum), so
//    the report can set each column's cost beside Weft's (the full scan's query is the figure that counts).
//
// @duckdb/node-api is resolved from tests/interop (install it with `npm ci --prefix tests/interop`).
import { createRequire } from 'node:module';
import { statSync, writeFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const interop = resolve(here, '../../tests/interop/package.json');
const { DuckDBInstance } = await import(pathToFileURL(createRequire(interop).resolve('@duckdb/node-api')).href);

// Column -> the value summed by the scan (strings: their length in bytes; timestamps: epoch microseconds).
const COLUMNS = {
  event_id: 'strlen(event_id)', user_id: 'user_id', event_type: 'strlen(event_type)',
  event_time: 'epoch_us(event_time)', ingest_time: 'epoch_us(ingest_time)', item_id: 'item_id',
  surface: 'strlen(surface)', dwell_ms: 'dwell_ms', embedding_bucket: 'embedding_bucket', score: 'score',
};
const NAMES = Object.keys(COLUMNS);

// The full scan: count(*), then count(col) and sum(value) of every column, so DuckDB must read,
// decompress and decode every value of every column chunk. Weft's scan computes the same aggregates
// from its decoded columns (bench/Weft.Bench.Parquet/ScanAggregates.cs), so the two can be compared.
const scanSql = (file) => `SELECT count(*), ${NAMES.map((n) => `count(${n}), sum(${COLUMNS[n]})`).join(', ')}
FROM read_parquet('${file}')`;

function aggregates(row) {
  const result = { rows: Number(row[0]) };
  NAMES.forEach((name, i) => {
    const sum = row[2 + 2 * i];
    result[name] = { count: Number(row[1 + 2 * i]), sum: typeof sum === 'number' ? sum : String(sum) };
  });
  return result;
}

function parseArgs(argv) {
  const options = { runs: '3', 'row-group': '1048576', threads: '1,default' };
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`expected --name value, got ${argv[i]}`);
    options[argv[i].slice(2)] = argv[i + 1];
  }
  for (const required of ['input', 'dir', 'json']) {
    if (!options[required]) throw new Error(`missing --${required}`);
  }
  return options;
}

const log = (message) => process.stderr.write(`[duckdb] ${message}\n`);

async function timed(connection, sql) {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const reader = await connection.runAndReadAll(sql);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return { seconds, cpuSeconds: (used.user + used.system) / 1e6, rows: reader.getRows() };
}

async function columnSizes(connection, file) {
  const reader = await connection.runAndReadAll(`
    SELECT path_in_schema, sum(total_compressed_size)::BIGINT, sum(total_uncompressed_size)::BIGINT,
           string_agg(DISTINCT encodings, ' / ')
    FROM parquet_metadata('${file}') GROUP BY path_in_schema`);
  const byName = new Map(reader.getRows().map((r) => [String(r[0]), r]));
  return NAMES.map((name) => {
    const r = byName.get(name);
    return { name, compressed: Number(r[1]), uncompressed: Number(r[2]), encodings: String(r[3]) };
  });
}

// Median seconds of --runs single-column scans of `file` per column, at threads=1.
async function columnScans(connection, file, runs) {
  await connection.run('SET threads = 1');
  const byColumn = {};
  for (const name of NAMES) {
    const seconds = [];
    for (let run = 0; run < runs; run++) {
      seconds.push((await timed(connection, `SELECT count(${name}), sum(${COLUMNS[name]}) FROM read_parquet('${file}')`)).seconds);
    }
    byColumn[name] = seconds.sort((a, b) => a - b)[Math.floor(seconds.length / 2)];
  }
  log(`threads=1 single-column scans of ${file}: ${NAMES.map((n) => `${n} ${byColumn[n].toFixed(3)}`).join('; ')}`);
  return byColumn;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const runs = Number(options.runs);
  const input = resolve(options.input);
  const dir = resolve(options.dir);

  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const version = String((await connection.runAndReadAll('SELECT version()')).getRows()[0][0]);
    const defaultThreads = Number((await connection.runAndReadAll("SELECT current_setting('threads')")).getRows()[0][0]);

    const load = await timed(connection, `CREATE TABLE events AS SELECT * FROM read_parquet('${input}')`);
    log(`loaded ${input} into memory in ${load.seconds.toFixed(2)} s (untimed for the comparison)`);

    const settings = options.threads.split(',').map((t) => (t === 'default' ? defaultThreads : Number(t)));
    const configs = [];
    for (const threads of [...new Set(settings)]) {
      await connection.run(`SET threads = ${threads}`);
      const file = join(dir, `duckdb-t${threads}.parquet`);
      const copySql = `COPY events TO '${file}' (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE ${options['row-group']})`;
      const write = { seconds: [], cpuSeconds: [] };
      for (let run = 1; run <= runs; run++) {
        rmSync(file, { force: true });
        const m = await timed(connection, copySql);
        write.seconds.push(m.seconds);
        write.cpuSeconds.push(m.cpuSeconds);
        log(`threads=${threads} write run ${run}: ${m.seconds.toFixed(3)} s (cpu ${m.cpuSeconds.toFixed(3)} s)`);
      }

      const scan = { seconds: [], cpuSeconds: [] };
      let scanAggregates;
      for (let run = 1; run <= runs; run++) {
        const m = await timed(connection, scanSql(file));
        scan.seconds.push(m.seconds);
        scan.cpuSeconds.push(m.cpuSeconds);
        scanAggregates = aggregates(m.rows[0]);
        log(`threads=${threads} scan run ${run}: ${m.seconds.toFixed(3)} s (cpu ${m.cpuSeconds.toFixed(3)} s)`);
      }

      configs.push({ threads, file, fileBytes: statSync(file).size, write, scan, aggregates: scanAggregates });
    }

    const one = configs.find((c) => c.threads === 1) ?? configs[0];
    const columns = { weft: await columnSizes(connection, input), duckdb: await columnSizes(connection, one.file) };
    const weftFileAggregates = aggregates((await connection.runAndReadAll(scanSql(input))).getRows()[0]);
    const scanSecondsByColumn = await columnScans(connection, input, runs);
    const result = { side: 'duckdb', version, defaultThreads, loadSeconds: load.seconds, configs, columns, weftFileAggregates, scanSecondsByColumn };
    writeFileSync(options.json, JSON.stringify(result, null, 2));

    // Exact for every aggregate but sum(score), whose floating-point sum depends on the order of addition.
    const same = (a, b) => a.rows === b.rows && NAMES.every((n) => a[n].count === b[n].count &&
      (typeof a[n].sum === 'number' ? Math.abs(a[n].sum - b[n].sum) <= 1e-9 * Math.abs(b[n].sum) : a[n].sum === b[n].sum));
    for (const c of configs) {
      if (!same(c.aggregates, weftFileAggregates)) {
        throw new Error(`the aggregates of ${c.file} differ from those of Weft's file: ${JSON.stringify(c.aggregates)} vs ${JSON.stringify(weftFileAggregates)}`);
      }
    }
    log(`aggregates of every DuckDB file equal those of Weft's file (${weftFileAggregates.rows} rows)`);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

main().catch((err) => {
  process.stderr.write(`duckdb-bench.mjs: ${err && err.stack ? err.stack : String(err)}\n`);
  process.exit(1);
});
