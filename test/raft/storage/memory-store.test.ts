// MemoryLogStore/MemorySnapshotStore are twins of LmdbStorage/FileSnapshotStore:
// the same writes, fed to both, must read back the same, including after a
// "restart" (lmdb: close and open the directory; memory: close, keep the object).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CompactedError, EntryType, UnavailableError, type Entry } from '../../../src/raft/core/types.js';
import {
  LmdbStorage,
  MemoryLogStore,
  MemorySnapshotStore,
  type LogStore,
  type SnapshotStore,
} from '../../../src/raft/storage/index.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const enc = new TextEncoder();
function ents(from: number, to: number, term: number, tag = ''): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push({ index: i, term, type: EntryType.Normal, data: enc.encode(`${tag}${i}`) });
  return out;
}
const conf = { voters: ['a', 'b', 'c'], learners: [] };
const peers = { a: 'h:1', b: 'h:2', c: 'h:3' };

type Store = LogStore & { snapshots: SnapshotStore };

/** Everything a reader of the log can observe, with errors as their names. */
function view(s: Store): unknown {
  const first = s.firstIndex();
  const last = s.lastIndex();
  const attempt = (fn: () => unknown) => {
    try {
      return fn();
    } catch (err) {
      return (err as Error).name;
    }
  };
  const terms: unknown[] = [];
  for (let i = Math.max(0, first - 2); i <= last + 1; i++) terms.push([i, attempt(() => s.term(i))]);
  return {
    first,
    last,
    initial: s.initialState(),
    terms,
    entries: attempt(() => s.entries(first, last + 1).map((e) => [e.index, e.term, new TextDecoder().decode(e.data)])),
    limited: attempt(() => s.entries(first, last + 1, 4).length),
    below: attempt(() => s.entries(first - 1, last + 1)),
    snapshot: s.snapshot().meta,
    meta: s.getMeta('addr:b'),
  };
}

/** The same history of writes on both stores, compared after every step and after a restart. */
async function sameHistory(steps: Array<(s: Store) => Promise<void>>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlb-memstore-'));
  dirs.push(dir);
  let lmdb: Store = LmdbStorage.open({ dir, bootstrap: peers });
  const mem: Store = new MemoryLogStore({ bootstrap: peers });
  expect(view(mem)).toEqual(view(lmdb));
  for (const [i, step] of steps.entries()) {
    await step(lmdb);
    await step(mem);
    expect(view(mem), `after step ${i}`).toEqual(view(lmdb));
  }
  await lmdb.close();
  await mem.close();
  lmdb = LmdbStorage.open({ dir, bootstrap: peers });
  expect(view(mem), 'after a restart').toEqual(view(lmdb));
  await lmdb.close();
}

describe('MemoryLogStore reads back what LmdbStorage does', () => {
  it('bootstraps, appends, replaces a conflicting suffix, and keeps hard state and side records', async () => {
    await sameHistory([
      (s) => s.append(ents(4, 9, 2), { term: 2, vote: 'a', commit: 5 }),
      (s) => s.append(ents(7, 8, 3, 'x'), { term: 3, vote: 'b', commit: 6 }),
      (s) => s.append([], { term: 3, vote: 'b', commit: 7 }, { sync: false }),
      (s) => s.setMeta('addr:b', 'h:22'),
      (s) => s.append(ents(5, 12, 4, 'y')),
    ]);
  });

  it('compacts, and moves to a snapshot keeping an agreeing suffix or dropping a conflicting log', async () => {
    await sameHistory([
      (s) => s.append(ents(4, 20, 2), { term: 2, vote: 'a', commit: 15 }),
      (s) => s.compact(6),
      (s) => s.compact(5), // behind the base: nothing
      async (s) => {
        const meta = { index: 10, term: 2, conf };
        await s.snapshots.save({ meta, data: enc.encode('sm@10') });
        await s.applySnapshot(meta);
      },
      async (s) => {
        const meta = { index: 25, term: 5, conf };
        await s.snapshots.save({ meta, data: enc.encode('sm@25') });
        await s.applySnapshot(meta);
      },
      (s) => s.append(ents(26, 28, 5)),
    ]);
  });

  it('a snapshot saved but not applied to the log is recorded by the restart, as lmdb does on open', async () => {
    await sameHistory([
      (s) => s.append(ents(4, 20, 2), { term: 2, vote: '', commit: 20 }),
      (s) => s.snapshots.save({ meta: { index: 15, term: 2, conf }, data: enc.encode('sm@15') }),
    ]);
  });

  it('refuses a gap and reads past either end with the core errors', async () => {
    const s = new MemoryLogStore();
    await expect(s.append(ents(2, 3, 1))).rejects.toThrow(/gap/);
    await s.append(ents(1, 5, 1));
    await s.compact(2);
    expect(() => s.term(1)).toThrow(CompactedError);
    expect(() => s.entries(4, 7)).toThrow(UnavailableError);
    await expect(s.compact(9)).rejects.toThrow(UnavailableError);
  });
});

describe('MemorySnapshotStore', () => {
  it('serves the highest index saved, whatever the save order', async () => {
    const s = new MemorySnapshotStore();
    expect(s.load()).toBeUndefined();
    await s.save({ meta: { index: 9, term: 2, conf }, data: enc.encode('9') });
    await s.save({ meta: { index: 4, term: 1, conf }, data: enc.encode('4') });
    expect(s.latestMeta()?.index).toBe(9);
    expect(new TextDecoder().decode(s.load()!.data)).toBe('9');
    expect(s.saves).toBe(2);
  });
});
