// Prepares the deletion-vector read benchmark (bench/delta-interop/run.sh): a Delta table as Databricks
// leaves it after a DELETE, and the same files without the DELETE.
//
//   node bench/delta-interop/prepare.mjs --dir DIR --rows N --files F --deleted P
//
// DIR/data/part-i.parquet   DuckDB-written events (rows N/F each, row groups of 122,880)
// DIR/deleted.parquet       (file, row): the rows the DELETE removed, P of each file, in runs and scattered
// DIR/dv/                   Delta table: the files with one deletion vector each (CRoaring, portable
//                           format, in one deletion_vector_<uuid>.bin), reader feature deletionVectors
// DIR/plain/                Delta table: the same files, no vectors
// Prints {"rows":…, "deleted":…} as JSON.
import { mkdirSync, writeFileSync, statSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// The modules tests/interop pins (package-lock.json).
const interop = resolve(dirname(fileURLToPath(import.meta.url)), '../../tests/interop/package.json');
const load = async (name) => import(pathToFileURL(createRequire(interop).resolve(name)).href);
const { DuckDBInstance } = await load('@duckdb/node-api');
const roaring = await load('roaring-wasm');
const { roaringLibraryInitialize, RoaringBitmap32 } = roaring.default ?? roaring;

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (i % 2 === 0 ? [...a, [v.replace(/^--/, ''), all[i + 1]]] : a), []));
const dir = args.dir, rows = Number(args.rows), files = Number(args.files), share = Number(args.deleted);
mkdirSync(`${dir}/data`, { recursive: true });
mkdirSync(`${dir}/dv/_delta_log`, { recursive: true });
mkdirSync(`${dir}/plain/_delta_log`, { recursive: true });

const duck = await (await DuckDBInstance.create(':memory:')).connect();
const perFile = Math.floor(rows / files);
for (let f = 0; f < files; f++) {
  const first = f * perFile;
  await duck.run(`COPY (SELECT 'e' || i AS event_id, (i * 7919) % 1000000 AS user_id,
      ['view','click','add_to_cart','purchase'][(i % 4) + 1] AS event_type,
      TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_microseconds(i * 259200) AS event_time,
      (i * 31) % 200000 AS item_id, CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 30000)::INTEGER END AS dwell_ms,
      ((i * 2654435761) % 1000000) / 1000000.0 AS score
    FROM range(${first}, ${first + perFile}) t(i)) TO '${dir}/data/part-${f}.parquet' (FORMAT parquet, ROW_GROUP_SIZE 122880)`);
}

// A seeded generator, so two runs delete the same rows.
let seed = 20251206 >>> 0;
const next = () => { // mulberry32: 32-bit integer arithmetic, exact in JavaScript
  seed = (seed + 0x6D2B79F5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
await roaringLibraryInitialize();
const uuid = randomUUID();
const frames = [Buffer.from([1])];
let offset = 1, deletedTotal = 0;
const deletedRows = [];
const dvs = [];
for (let f = 0; f < files; f++) {
  const set = new Set();
  while (set.size < Math.floor(perFile * share)) {
    if (next() < 0.5) { const start = Math.floor(next() * perFile); for (let r = start; r < Math.min(perFile, start + 1 + Math.floor(next() * 500)); r++) set.add(r); }
    else set.add(Math.floor(next() * perFile));
  }
  const sorted = [...set].sort((a, b) => a - b);
  deletedTotal += sorted.length;
  for (const r of sorted) deletedRows.push(`${f},${r}`);
  const bitmap = new RoaringBitmap32(sorted);
  bitmap.runOptimize();
  const inner = bitmap.serialize('portable');
  bitmap.dispose();
  const data = Buffer.alloc(16 + inner.length);
  data.writeInt32LE(1681511377, 0);
  data.writeBigUInt64LE(1n, 4);
  data.writeUInt32LE(0, 12);
  Buffer.from(inner).copy(data, 16);
  const frame = Buffer.alloc(4 + data.length + 4);
  frame.writeUInt32BE(data.length, 0);
  data.copy(frame, 4);
  frame.writeUInt32BE(crc32(data), 4 + data.length);
  dvs.push({ storageType: 'p', pathOrInlineDv: `file://${dir}/dv/deletion_vector_${uuid}.bin`, offset, sizeInBytes: data.length, cardinality: sorted.length });
  frames.push(frame);
  offset += frame.length;
}
writeFileSync(`${dir}/dv/deletion_vector_${uuid}.bin`, Buffer.concat(frames));
writeFileSync(`${dir}/deleted.csv`, 'file,row\n' + deletedRows.join('\n') + '\n');
await duck.run(`COPY (SELECT '${dir}/data/part-' || file || '.parquet' AS file, row FROM read_csv('${dir}/deleted.csv')) TO '${dir}/deleted.parquet' (FORMAT parquet)`);

const schema = JSON.stringify({ type: 'struct', fields: [
  ['event_id', 'string'], ['user_id', 'long'], ['event_type', 'string'], ['event_time', 'timestamp'],
  ['item_id', 'long'], ['dwell_ms', 'integer'], ['score', 'double'],
].map(([name, type]) => ({ name, type, nullable: true, metadata: {} })) });
function log(path, protocol, withVectors) {
  const lines = [{ protocol }, { metaData: { id: randomUUID(), format: { provider: 'parquet', options: {} }, schemaString: schema, partitionColumns: [], configuration: {} } }];
  for (let f = 0; f < files; f++) {
    const file = `${dir}/data/part-${f}.parquet`;
    const add = { path: `file://${file}`, partitionValues: {}, size: statSync(file).size, modificationTime: 1764000000000, dataChange: true, stats: JSON.stringify({ numRecords: perFile }) };
    if (withVectors) add.deletionVector = dvs[f];
    lines.push({ add });
  }
  writeFileSync(`${path}/_delta_log/00000000000000000000.json`, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
}
log(`${dir}/dv`, { minReaderVersion: 3, minWriterVersion: 7, readerFeatures: ['deletionVectors'], writerFeatures: ['deletionVectors'] }, true);
log(`${dir}/plain`, { minReaderVersion: 1, minWriterVersion: 2 }, false);
process.stdout.write(JSON.stringify({ rows: perFile * files, files, deleted: deletedTotal }) + '\n');
