import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileSnapshotStore, SnapshotCorruptError } from '../../../src/raft/storage/index.js';

const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlb-snap-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const conf = { voters: ['a', 'b', 'c'], learners: ['d'] };

describe('FileSnapshotStore', () => {
  it('saves and loads the latest, pruning older files and stray temp files', async () => {
    const dir = tmp();
    const s = new FileSnapshotStore(dir, 2);
    fs.writeFileSync(path.join(dir, 'snap-00000000000000000099-9.snap.tmp'), 'half-written');
    for (const i of [5, 10, 15]) await s.save({ meta: { index: i, term: 2, conf }, data: new Uint8Array([i, i + 1]) });
    expect(fs.readdirSync(dir).sort()).toEqual([
      'snap-00000000000000000010-2.snap',
      'snap-00000000000000000015-2.snap',
    ]);
    const r = new FileSnapshotStore(dir);
    expect(r.latestMeta()).toEqual({ index: 15, term: 2, conf });
    expect([...r.load()!.data]).toEqual([15, 16]);
    expect(new FileSnapshotStore(tmp()).load()).toBeUndefined();
  });

  it('detects a checksum mismatch', async () => {
    const dir = tmp();
    await new FileSnapshotStore(dir).save({ meta: { index: 7, term: 1, conf }, data: new Uint8Array(1000).fill(3) });
    const file = path.join(dir, fs.readdirSync(dir)[0]!);
    const b = fs.readFileSync(file);
    b[b.length - 10]! ^= 0x40;
    fs.writeFileSync(file, b);
    expect(() => new FileSnapshotStore(dir).load()).toThrow(SnapshotCorruptError);
    expect(() => new FileSnapshotStore(dir).load()).toThrow(/sha256 checksum mismatch/);
    fs.writeFileSync(file, b.subarray(0, 20)); // truncated
    expect(() => new FileSnapshotStore(dir).load()).toThrow(/truncated/);
  });
});
