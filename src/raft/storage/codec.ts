// Binary records for the lmdb log. Every record carries a CRC32 so a torn or
// bit-flipped value is detected on open (LMDB itself is crash-safe, but disks
// and operators are not). The CRC also covers the entry's index, which is not
// stored in the value, so a record copied under the wrong key is caught too.
import { crc32 } from 'node:zlib';
import { EntryType, type Entry } from '../core/types.js';

// value layout: crc32 u32 | version u8 | type u8 | term u64 | data...
const HEADER = 14;
const VERSION = 1;

export function encodeEntry(e: Entry): Buffer {
  const buf = Buffer.allocUnsafe(HEADER + e.data.length);
  buf.writeUInt8(VERSION, 4);
  buf.writeUInt8(e.type, 5);
  writeU64(buf, e.term, 6);
  buf.set(e.data, HEADER);
  buf.writeUInt32BE(entryCrc(e.index, buf), 0);
  return buf;
}

/** `n` (a safe integer >= 0) as a big-endian u64 at `at`: writeBigUInt64BE's bytes without a BigInt per call. */
function writeU64(buf: Buffer, n: number, at: number): void {
  buf.writeUInt32BE(Math.floor(n / 0x1_0000_0000), at);
  buf.writeUInt32BE(n >>> 0, at + 4);
}

/** The index's 8 bytes for the CRC (one buffer: crc32 reads it synchronously). */
const indexBytes = Buffer.alloc(8);

function entryCrc(index: number, buf: Uint8Array): number {
  writeU64(indexBytes, index, 0);
  return crc32(buf.subarray(4), crc32(indexBytes));
}

/** Decode a stored entry; returns undefined if the record fails its checksum or shape. */
export function decodeEntry(index: number, buf: Uint8Array | undefined): Entry | undefined {
  if (!buf || buf.length < HEADER) return undefined;
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.readUInt8(4) !== VERSION) return undefined;
  if (b.readUInt32BE(0) !== entryCrc(index, b)) return undefined;
  const type = b.readUInt8(5);
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) return undefined;
  // Copy: lmdb may reuse the buffer it handed us on the next read.
  return { index, term: Number(b.readBigUInt64BE(6)), type, data: new Uint8Array(b.subarray(HEADER)) };
}

/** Small JSON side records (hard state, log base, peers) with a CRC prefix. */
export function encodeMeta(value: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(value), 'utf8');
  const buf = Buffer.allocUnsafe(4 + json.length);
  json.copy(buf, 4);
  buf.writeUInt32BE(crc32(json), 0);
  return buf;
}

export function decodeMeta<T>(buf: Uint8Array | undefined): T | undefined | 'corrupt' {
  if (!buf) return undefined;
  if (buf.length < 4) return 'corrupt';
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const json = b.subarray(4);
  if (b.readUInt32BE(0) !== crc32(json)) return 'corrupt';
  try {
    return JSON.parse(json.toString('utf8')) as T;
  } catch {
    return 'corrupt';
  }
}
