import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Snapshot } from '../../../src/raft/core/types.js';
import { FileSnapshotStore, SnapshotCorruptError } from '../../../src/raft/storage/index.js';
import { waitFor } from '../../helpers/wait.js';

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

// The temp name a save in flight uses: the snapshot's final name + an owner tag + .tmp.
function tmpFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));
}
/** A snapshot big enough that its write is still going on while a small save finishes. */
function big(index: number): Snapshot {
  return { meta: { index, term: 3, conf }, data: new Uint8Array(64 << 20).fill(index & 0xff) };
}
function small(index: number): Snapshot {
  return { meta: { index, term: 3, conf }, data: new Uint8Array(64).fill(index & 0xff) };
}
function expectIntact(dir: string, snap: Snapshot): void {
  const name = `snap-${String(snap.meta.index).padStart(20, '0')}-${snap.meta.term}.snap`;
  expect(fs.readdirSync(dir)).toContain(name);
  const fresh = new FileSnapshotStore(dir).load()!;
  expect(fresh.meta).toEqual(snap.meta);
  expect(fresh.data.length).toBe(snap.data.length);
  expect(fresh.data[0]).toBe(snap.data[0]);
}

describe('FileSnapshotStore with saves that overlap', () => {
  it('two concurrent saves of very different sizes (64 MiB, 64 B) both land; the latest is the higher index', async () => {
    const dir = tmp();
    const s = new FileSnapshotStore(dir);
    // The big one starts first (a replica's background snapshot), the small one
    // (a snapshot received from the leader) would finish first and prune.
    await Promise.all([s.save(big(10)), s.save(small(20))]);
    expect(fs.readdirSync(dir).sort()).toEqual([
      'snap-00000000000000000010-3.snap',
      'snap-00000000000000000020-3.snap',
    ]);
    expect(s.latestMeta()?.index).toBe(20);
    expectIntact(dir, small(20));
    // The other order: the cache never goes back to an older snapshot than the directory's latest.
    await Promise.all([s.save(small(40)), s.save(big(30))]);
    expect(s.latestMeta()?.index).toBe(40);
    expect(new FileSnapshotStore(dir).latestMeta()?.index).toBe(40);
  });

  it('two saves of the same position at once use their own temp files; the file loads intact', async () => {
    const dir = tmp();
    const s = new FileSnapshotStore(dir);
    await Promise.all([s.save(big(7)), s.save(small(7))]);
    expect(tmpFiles(dir)).toEqual([]);
    // Serialized in call order: the later save's bytes are under the final name, whole.
    expectIntact(dir, small(7));
  });

  it("a save racing a prune: another save's prune spares its temp file, removes dead writers' leftovers", async () => {
    const dir = tmp();
    const writer = new FileSnapshotStore(dir);
    const other = new FileSnapshotStore(dir);
    // Leftovers of writers that are gone: the old unowned name, and one owned by a pid that cannot exist.
    fs.writeFileSync(path.join(dir, 'snap-00000000000000000099-9.snap.tmp'), 'half-written');
    fs.writeFileSync(path.join(dir, 'snap-00000000000000000098-9.snap.2147483646-dead.tmp'), 'half-written');
    const inFlight = writer.save(big(50));
    await waitFor(() => tmpFiles(dir).length === 3, { timeoutMs: 5_000, what: 'the big save to open its temp file' });
    await other.save(small(60)); // saves and prunes while the big one is being written
    await inFlight;
    expect(tmpFiles(dir)).toEqual([]);
    expectIntact(dir, small(60));
    expect(fs.readdirSync(dir)).toContain('snap-00000000000000000050-3.snap');
  });

  it('a second store on the same directory (a restarted successor) never breaks the save its predecessor has in flight', async () => {
    const dir = tmp();
    const first = new FileSnapshotStore(dir);
    await first.save(small(5));
    const inFlight = first.save(big(10)); // the stopped replica's background snapshot
    await waitFor(() => tmpFiles(dir).length === 1, { timeoutMs: 5_000, what: 'the big save to open its temp file' });
    const successor = new FileSnapshotStore(dir);
    expect(successor.latestMeta()?.index).toBe(5);
    await successor.save(small(20)); // e.g. a snapshot from the leader
    await expect(inFlight).resolves.toBeUndefined();
    expect(tmpFiles(dir)).toEqual([]);
    expectIntact(dir, small(20));
  });
});
