// Writes Delta Lake deletion vectors with CRoaring (roaring-wasm), as a reference independent of
// Weft's reader (PROTOCOL.md "Deletion Vector Format" and "Deletion Vector File Storage Format").
//
//   node deletion-vector.mjs --file request.json
//
// request: { "mode": "file", "path": "<dv file>", "vectors": [{ "rows": [..], "runs": bool }, ...] }
//          { "mode": "inline", "vectors": [...] }
//          { "mode": "z85", "hex": "<bytes, a multiple of 4>" }
// output (stdout, JSON): file   -> [{ "offset", "sizeInBytes", "cardinality" }, ...]
//                        inline -> [{ "pathOrInlineDv", "sizeInBytes", "cardinality" }, ...]
//                        z85    -> { "text" }
// A vector's bitmap: magic 1681511377 (little-endian), the 64-bit portable Roaring format (bucket
// count as 8 bytes, then each bucket's 32-bit key and its 32-bit bitmap in the portable format); rows
// below 2^32 only, so one bucket with key 0. "runs" lets CRoaring turn runs into run containers.
// A file: a version byte 1, then per vector its size (4 bytes, big-endian), the bitmap and the
// bitmap's CRC-32 (4 bytes, big-endian); a vector's offset is that of its size.
import { readFileSync, writeFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { roaringLibraryInitialize, RoaringBitmap32 } from 'roaring-wasm';

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';

function z85(bytes) {
  let text = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let value = ((bytes[i] << 24) >>> 0) + (bytes[i + 1] << 16) + (bytes[i + 2] << 8) + bytes[i + 3];
    const chunk = [];
    for (let k = 0; k < 5; k++) {
      chunk.unshift(Z85[value % 85]);
      value = Math.floor(value / 85);
    }
    text += chunk.join('');
  }
  return text;
}

function bitmap(vector) {
  const roaring = new RoaringBitmap32(vector.rows);
  if (roaring.size !== vector.rows.length) throw new Error('rows must be distinct');
  if (vector.runs) roaring.runOptimize();
  const inner = roaring.serialize('portable');
  roaring.dispose();
  const buckets = vector.rows.length === 0 ? 0 : 1;
  const out = Buffer.alloc(4 + 8 + (buckets ? 4 + inner.length : 0));
  out.writeInt32LE(1681511377, 0);
  out.writeBigUInt64LE(BigInt(buckets), 4);
  if (buckets) {
    out.writeUInt32LE(0, 12);
    Buffer.from(inner).copy(out, 16);
  }
  return out;
}

async function main(argv) {
  if (argv.length !== 2 || argv[0] !== '--file') throw new Error('usage: node deletion-vector.mjs --file request.json');
  const request = JSON.parse(readFileSync(argv[1], 'utf8'));
  if (request.mode === 'z85') {
    process.stdout.write(JSON.stringify({ text: z85(Buffer.from(request.hex, 'hex')) }));
    return;
  }
  await roaringLibraryInitialize();
  if (request.mode === 'inline') {
    const result = request.vectors.map((v) => {
      const data = bitmap(v);
      const padded = Buffer.alloc(Math.ceil(data.length / 4) * 4);
      data.copy(padded);
      return { pathOrInlineDv: z85(padded), sizeInBytes: data.length, cardinality: v.rows.length };
    });
    process.stdout.write(JSON.stringify(result));
    return;
  }
  if (request.mode !== 'file') throw new Error(`unknown mode ${request.mode}`);
  const parts = [Buffer.from([1])];
  let offset = 1;
  const result = [];
  for (const v of request.vectors) {
    const data = bitmap(v);
    const frame = Buffer.alloc(4 + data.length + 4);
    frame.writeUInt32BE(data.length, 0);
    data.copy(frame, 4);
    frame.writeUInt32BE(crc32(data), 4 + data.length);
    result.push({ offset, sizeInBytes: data.length, cardinality: v.rows.length });
    parts.push(frame);
    offset += frame.length;
  }
  writeFileSync(request.path, Buffer.concat(parts));
  process.stdout.write(JSON.stringify(result));
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
