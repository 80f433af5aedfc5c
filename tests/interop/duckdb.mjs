// Runs SQL with DuckDB (@duckdb/node-api) and prints the results as JSON on stdout.
//
//   node duckdb.mjs "<sql>" ["<sql>" ...]
//   node duckdb.mjs --file statements.json      (a JSON array of SQL strings)
//
// Output: a JSON array with one entry per statement:
//   { "columns": [names], "types": [DuckDB type names], "rows": [[values...], ...] }
// Value conversion: NULL -> null; BIGINT/HUGEINT/... -> decimal string; TIMESTAMP and
// TIMESTAMP WITH TIME ZONE -> microseconds since the Unix epoch as a decimal string; FLOAT/DOUBLE
// -> number, or the strings "NaN", "Infinity", "-Infinity"; LIST/ARRAY -> JSON array;
// anything else -> its string form. Errors go to stderr with exit code 1.
import { readFileSync } from 'node:fs';
import {
  DuckDBInstance,
  DuckDBListValue,
  DuckDBArrayValue,
  DuckDBTimestampValue,
  DuckDBTimestampTZValue,
} from '@duckdb/node-api';

function convert(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN';
    if (value === Infinity) return 'Infinity';
    if (value === -Infinity) return '-Infinity';
    if (Object.is(value, -0)) return '-0';
    return value;
  }
  if (typeof value === 'boolean' || typeof value === 'string') return value;
  if (value instanceof DuckDBTimestampValue || value instanceof DuckDBTimestampTZValue) {
    return value.micros.toString();
  }
  if (value instanceof DuckDBListValue || value instanceof DuckDBArrayValue) {
    return value.items.map(convert);
  }
  return String(value);
}

async function main(argv) {
  let statements;
  if (argv[0] === '--file') {
    if (argv.length !== 2) throw new Error('usage: node duckdb.mjs --file statements.json');
    statements = JSON.parse(readFileSync(argv[1], 'utf8'));
    if (!Array.isArray(statements)) throw new Error('the statements file must hold a JSON array of strings');
  } else {
    statements = argv;
  }
  if (statements.length === 0) throw new Error('usage: node duckdb.mjs "<sql>" ["<sql>" ...] | --file statements.json');

  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  const results = [];
  try {
    for (const sql of statements) {
      const reader = await connection.runAndReadAll(sql);
      const columns = reader.columnNames();
      const types = reader.columnTypes().map((t) => t.toString());
      const rows = reader.getRows().map((row) => row.map(convert));
      results.push({ columns, types, rows });
    }
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
  process.stdout.write(JSON.stringify(results));
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`duckdb.mjs: ${err && err.message ? err.message : String(err)}\n`);
  process.exit(1);
});
