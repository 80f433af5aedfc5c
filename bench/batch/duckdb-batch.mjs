// DuckDB side of the batch sequence benchmark (run by bench/batch/run.sh).
//
//   node duckdb-batch.mjs sequences --dir DIR --out OUT.parquet --json OUT.json [--as-of-us N] [--known-at-us N]
//                                   [--lookback-us N] [--max-length 500] [--form topn|window]
//   node duckdb-batch.mjs compare --weft WEFT.parquet --duckdb DUCK.parquet --json OUT.json
//
// `sequences` computes, in one SQL statement, what Weft's batch sequence build computes from the same raw files
// (DIR/events.parquet, DIR/items.parquet) and writes it as Parquet (SNAPPY, the same columns as Weft's sequence
// file): the raw events of the signal's types with the columns they require, deduplicated by event_id (the
// earliest ingested delivery wins), filtered as the signal filters (clicks with dwell_ms null or >= 500, and
// saves), cut (event_time in the lookback before as_of, ingest_time <= known_at), then per user the last
// --max-length events (event_time desc, event_id asc) with each item's latest version joined (category,
// embedding). --form topn (default) uses the top-N aggregate arg_min(struct, key, N); --form window uses
// row_number() over the user (DuckDB runs out of memory with it at 20M events). It records wall and CPU time
// (the process's own peak RSS is measured by run.sh around the whole process).
//
// `compare` reads both files and counts the users whose row differs in any column (every list compared whole,
// the embeddings float by float), so the two outputs agree exactly or the run fails.
//
// @duckdb/node-api is resolved from tests/interop (install it with `npm ci --prefix tests/interop`).
import { createRequire } from 'node:module';
import { writeFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const interop = resolve(here, '../../tests/interop/package.json');
const { DuckDBInstance } = await import(pathToFileURL(createRequire(interop).resolve('@duckdb/node-api')).href);

const log = (message) => process.stderr.write(`[duckdb] ${message}\n`);
const quote = (path) => `'${path.replaceAll("'", "''")}'`;

function parseArgs(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`expected --name value, got ${argv[i]}`);
    options[argv[i].slice(2)] = argv[i + 1];
  }
  return options;
}

// What the signal keeps, in SQL (see DataSet.Signal in bench/Weft.Bench.Batch).
const FILTER = "(event_type = 'save' OR (event_type = 'click' AND (dwell_ms IS NULL OR dwell_ms >= 500)))";

function sequencesSql(o) {
  const events = quote(join(o.dir, 'events.parquet'));
  const items = quote(join(o.dir, 'items.parquet'));
  const n = Number(o['max-length'] ?? 500);
  const asOf = BigInt(o['as-of-us']);
  const knownAt = BigInt(o['known-at-us'] ?? o['as-of-us']);
  const lookback = BigInt(o['lookback-us']);
  // The latest version of every item (a correction is a whole new version).
  const latest = `SELECT item_id, arg_max(category, version_time) AS category, arg_max(embedding, version_time) AS embedding
                  FROM read_parquet(${items}) GROUP BY item_id`;
  // Parse checks as Weft's (rows of other types are not the signal's; clicks and saves require item_id),
  // then one row per event_id: the earliest delivery.
  const raw = `SELECT event_id, user_id, event_type, event_time, ingest_time, item_id, dwell_ms FROM read_parquet(${events})
               WHERE event_type IN ('click', 'save') AND event_id IS NOT NULL AND event_id <> '' AND user_id IS NOT NULL
                 AND event_time IS NOT NULL AND item_id IS NOT NULL`;
  const dedup = `SELECT * FROM raw QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY ingest_time, event_id) = 1`;
  const kept = `SELECT * FROM dedup WHERE ${FILTER}
                AND epoch_us(event_time) <= ${asOf} AND epoch_us(event_time) > ${asOf - lookback} AND epoch_us(ingest_time) <= ${knownAt}`;
  const columns = ['event_id', 'event_type', 'event_time', 'item_id', 'dwell_ms', 'embedding', 'category'];
  if ((o.form ?? 'topn') === 'topn') {
    return `COPY (
      WITH items AS (${latest}), raw AS (${raw}), dedup AS (${dedup}), kept AS (${kept}),
      top AS (
        SELECT user_id, count(*) AS n,
               arg_min(struct_pack(${columns.map((c) => `${c} := ${c}`).join(', ')}),
                       struct_pack(t := -epoch_us(event_time), id := event_id), ${n}) AS s
        FROM kept LEFT JOIN items USING (item_id) GROUP BY user_id)
      SELECT user_id, len(s)::INTEGER AS length, n > ${n} AS truncated,
             ${columns.map((c) => `list_transform(s, x -> x.${c}) AS ${c}`).join(', ')}
      FROM top ORDER BY user_id
    ) TO ${quote(o.out)} (FORMAT parquet, COMPRESSION snappy)`;
  }
  return `COPY (
    WITH items AS (${latest}), raw AS (${raw}), dedup AS (${dedup}), kept AS (${kept}),
    r AS (SELECT kept.*, items.category, items.embedding,
                 row_number() OVER (PARTITION BY user_id ORDER BY event_time DESC, event_id ASC) AS k
          FROM kept LEFT JOIN items USING (item_id))
    SELECT user_id, count(*) FILTER (WHERE k <= ${n})::INTEGER AS length, max(k) > ${n} AS truncated,
           ${columns.map((c) => `list(${c} ORDER BY k) FILTER (WHERE k <= ${n}) AS ${c}`).join(', ')}
    FROM r GROUP BY user_id ORDER BY user_id
  ) TO ${quote(o.out)} (FORMAT parquet, COMPRESSION snappy)`;
}

async function timed(connection, sql) {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const reader = await connection.runAndReadAll(sql);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return { seconds, cpuSeconds: (used.user + used.system) / 1e6, rows: reader.getRows() };
}

async function withDuckDB(action) {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    return await action(connection);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

async function sequences(o) {
  for (const required of ['dir', 'out', 'json', 'as-of-us', 'lookback-us']) {
    if (!o[required]) throw new Error(`missing --${required}`);
  }
  o.dir = resolve(o.dir);
  o.out = resolve(o.out);
  rmSync(o.out, { force: true });
  await withDuckDB(async (connection) => {
    const version = String((await connection.runAndReadAll('SELECT version()')).getRows()[0][0]);
    const threads = Number((await connection.runAndReadAll("SELECT current_setting('threads')")).getRows()[0][0]);
    const memoryLimit = String((await connection.runAndReadAll("SELECT current_setting('memory_limit')")).getRows()[0][0]);
    const sql = sequencesSql(o);
    log(`form ${o.form ?? 'topn'}, threads=${threads}, memory_limit=${memoryLimit}`);
    const m = await timed(connection, sql);
    const stats = (await connection.runAndReadAll(
      `SELECT count(*), sum(length)::BIGINT, count(*) FILTER (WHERE truncated) FROM read_parquet(${quote(o.out)})`)).getRows()[0];
    const result = {
      side: 'duckdb', version, threads, memoryLimit, form: o.form ?? 'topn', seconds: m.seconds, cpuSeconds: m.cpuSeconds,
      users: Number(stats[0]), elements: Number(stats[1]), truncatedUsers: Number(stats[2]), fileBytes: statSync(o.out).size, sql,
    };
    writeFileSync(o.json, JSON.stringify(result, null, 2));
    log(`${result.users} users, ${result.elements} elements in ${m.seconds.toFixed(2)} s (cpu ${m.cpuSeconds.toFixed(2)} s)`);
  });
}

async function compare(o) {
  for (const required of ['weft', 'duckdb', 'json']) {
    if (!o[required]) throw new Error(`missing --${required}`);
  }
  const columns = ['length', 'truncated', 'event_id', 'event_type', 'event_time', 'item_id', 'dwell_ms', 'embedding', 'category'];
  await withDuckDB(async (connection) => {
    // Timestamps compared as epoch microseconds, so a TIMESTAMP and a TIMESTAMPTZ reading of one file compare equal.
    const norm = (side) => `SELECT user_id, length, truncated, event_id, event_type,
        list_transform(event_time, t -> epoch_us(t)) AS event_time, item_id, dwell_ms, embedding, category FROM read_parquet(${quote(side)})`;
    const m = await timed(connection, `
      WITH w AS (${norm(resolve(o.weft))}), d AS (${norm(resolve(o.duckdb))})
      SELECT (SELECT count(*) FROM w), (SELECT count(*) FROM d),
             count(*) FILTER (WHERE w.user_id IS NULL OR d.user_id IS NULL
               OR ${columns.map((c) => `w.${c} IS DISTINCT FROM d.${c}`).join(' OR ')}),
             ${columns.map((c) => `count(*) FILTER (WHERE w.${c} IS DISTINCT FROM d.${c})`).join(', ')},
             min(CASE WHEN w.user_id IS NULL OR d.user_id IS NULL OR ${columns.map((c) => `w.${c} IS DISTINCT FROM d.${c}`).join(' OR ')}
                      THEN coalesce(w.user_id, d.user_id) END)
      FROM w FULL OUTER JOIN d USING (user_id)`);
    const r = m.rows[0].map((v) => (typeof v === 'bigint' ? Number(v) : v));
    const byColumn = Object.fromEntries(columns.map((c, i) => [c, r[3 + i]]));
    const result = { weftUsers: r[0], duckdbUsers: r[1], differingUsers: r[2], byColumn, firstDifferingUser: r[3 + columns.length], seconds: m.seconds };
    writeFileSync(o.json, JSON.stringify(result, null, 2));
    if (r[2] !== 0) {
      log(`outputs DIFFER: ${r[2]} users (by column ${JSON.stringify(byColumn)}; first user ${result.firstDifferingUser})`);
      process.exit(1);
    }
    log(`outputs equal: ${r[0]} users, every column of every row (compared in ${m.seconds.toFixed(1)} s)`);
  });
}

const [command, ...rest] = process.argv.slice(2);
const options = parseArgs(rest);
(command === 'sequences' ? sequences(options) : command === 'compare' ? compare(options) : Promise.reject(new Error(`unknown command ${command}`)))
  .catch((err) => {
    process.stderr.write(`duckdb-batch.mjs: ${err && err.stack ? err.stack : String(err)}\n`);
    process.exit(1);
  });
