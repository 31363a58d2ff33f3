import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open } from 'lmdb';
import { afterAll, describe, expect, it } from 'vitest';
import { CompactedError, EntryType, UnavailableError, type Entry } from '../../../src/raft/core/types.js';
import { decodeConfChange } from '../../../src/raft/core/confchange.js';
import { LmdbStorage, StorageCorruptionError } from '../../../src/raft/storage/index.js';

const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlb-lmdb-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const enc = new TextEncoder();
function ents(from: number, to: number, term: number, tag = ''): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push({ index: i, term, type: EntryType.Normal, data: enc.encode(`${tag}${i}`) });
  return out;
}
const text = (e: Entry) => new TextDecoder().decode(e.data);
const conf = { voters: ['a', 'b', 'c'], learners: [] };

describe('LmdbStorage', () => {
  it('bootstraps a new group with one committed addVoter entry per voter, once', async () => {
    const dir = tmp();
    const s = LmdbStorage.open({ dir, bootstrap: { c: 'h:3', a: 'h:1', b: 'h:2' } });
    expect(s.initialState()).toEqual({
      hardState: { term: 1, vote: '', commit: 3 },
      conf: { voters: [], learners: [] },
    });
    expect(s.entries(1, 4).map((e) => [e.type, decodeConfChange(e.data)])).toEqual([
      [EntryType.ConfChange, { type: 'addVoter', node: 'a', context: 'h:1' }],
      [EntryType.ConfChange, { type: 'addVoter', node: 'b', context: 'h:2' }],
      [EntryType.ConfChange, { type: 'addVoter', node: 'c', context: 'h:3' }],
    ]);
    await s.append(ents(4, 5, 2));
    await s.close();
    const r = LmdbStorage.open({ dir, bootstrap: { z: 'h:9' } }); // not empty: ignored
    expect(r.lastIndex()).toBe(5);
    await r.close();
  });

  it('persists entries and hard state across reopen', async () => {
    const dir = tmp();
    const s = LmdbStorage.open({ dir });
    expect([s.firstIndex(), s.lastIndex()]).toEqual([1, 0]);
    await s.append(ents(1, 10, 1), { term: 1, vote: 'b', commit: 4 });
    await s.close();
    const r = LmdbStorage.open({ dir, cacheEntries: 3 }); // small cache: reads come from lmdb too
    expect(r.initialState().hardState).toEqual({ term: 1, vote: 'b', commit: 4 });
    expect(r.lastIndex()).toBe(10);
    expect(r.entries(1, 11).map(text)).toEqual(ents(1, 10, 1).map(text));
    expect(r.term(7)).toBe(1);
    expect(() => r.term(11)).toThrow(UnavailableError);
    await r.close();
  });

  it('folds a commit-only hard state into the next write, and flushes it on close', async () => {
    const dir = tmp();
    const s = LmdbStorage.open({ dir });
    await s.append(ents(1, 3, 1), { term: 1, vote: 'a', commit: 0 });
    await s.append([], { term: 1, vote: 'a', commit: 2 }, { sync: false });
    expect(s.initialState().hardState.commit).toBe(2); // visible at once
    await s.append(ents(4, 4, 1));
    await s.append([], { term: 1, vote: 'a', commit: 4 }, { sync: false });
    await s.close();
    const r = LmdbStorage.open({ dir });
    expect(r.initialState().hardState).toEqual({ term: 1, vote: 'a', commit: 4 });
    await r.close();
  });

  it('replaces a conflicting suffix, including a longer old one', async () => {
    const s = LmdbStorage.open({ dir: tmp(), cacheEntries: 4 });
    await s.append(ents(1, 10, 1));
    await s.append(ents(6, 7, 2, 'new'));
    expect(s.lastIndex()).toBe(7);
    expect(s.entries(5, 8).map((e) => [e.term, text(e)])).toEqual([
      [1, '5'],
      [2, 'new6'],
      [2, 'new7'],
    ]);
    await expect(s.append(ents(9, 9, 2))).rejects.toThrow(/gap/);
    await s.close();
  });

  it('honours maxBytes but always returns at least one entry', async () => {
    const s = LmdbStorage.open({ dir: tmp() });
    await s.append(ents(1, 20, 1)); // data of '1'..'20': 1 or 2 bytes each
    expect(s.entries(1, 21, 0)).toHaveLength(1);
    expect(s.entries(10, 21, 6).map(text)).toEqual(['10', '11', '12']);
    await s.close();
  });

  it('compacts: old entries gone, base term still answerable, survives reopen', async () => {
    const dir = tmp();
    const s = LmdbStorage.open({ dir, cacheEntries: 2 });
    await s.append([...ents(1, 5, 1), ...ents(6, 12, 3)]);
    await s.compact(7);
    expect(s.firstIndex()).toBe(8);
    expect(s.term(7)).toBe(3);
    expect(() => s.term(6)).toThrow(CompactedError);
    expect(() => s.entries(7, 9)).toThrow(CompactedError);
    await s.close();
    const r = LmdbStorage.open({ dir });
    expect([r.firstIndex(), r.lastIndex(), r.term(7)]).toEqual([8, 12, 3]);
    expect(r.entries(8, 13).map(text)).toEqual(['8', '9', '10', '11', '12']);
    await r.close();
  });

  it('applies a snapshot: keeps an agreeing suffix, else discards the log', async () => {
    const dir = tmp();
    const s = LmdbStorage.open({ dir });
    await s.append(ents(1, 10, 2));
    const snapConf = { voters: ['a', 'b'], learners: [] };
    await s.snapshots.save({ meta: { index: 6, term: 2, conf: snapConf }, data: enc.encode('sm@6') });
    await s.applySnapshot({ index: 6, term: 2, conf: snapConf });
    expect([s.firstIndex(), s.lastIndex()]).toEqual([7, 10]);
    await s.snapshots.save({ meta: { index: 20, term: 5, conf: snapConf }, data: enc.encode('sm@20') });
    await s.applySnapshot({ index: 20, term: 5, conf: snapConf });
    expect([s.firstIndex(), s.lastIndex(), s.term(20)]).toEqual([21, 20, 5]);
    expect(s.initialState().hardState.commit).toBe(20);
    await s.close();
    const r = LmdbStorage.open({ dir });
    expect(r.initialState().conf).toEqual(snapConf);
    expect(new TextDecoder().decode(r.snapshot().data)).toBe('sm@20');
    await r.close();
  });

  it('records on open a snapshot that was saved before a crash cut the log update', async () => {
    const dir = tmp();
    const s = LmdbStorage.open({ dir });
    await s.append(ents(1, 3, 1));
    await s.snapshots.save({ meta: { index: 50, term: 4, conf }, data: enc.encode('x') });
    await s.close(); // crash stand-in: applySnapshot never ran
    const r = LmdbStorage.open({ dir });
    expect([r.firstIndex(), r.lastIndex(), r.initialState().hardState.commit]).toEqual([51, 50, 50]);
    await r.close();
  });

  it('truncates a corrupt uncommitted tail on open', async () => {
    const dir = tmp();
    const s = LmdbStorage.open({ dir });
    await s.append(ents(1, 10, 1), { term: 1, vote: '', commit: 6 });
    await s.close();
    pokeEntry(dir, 8, (b) => (b[b.length - 1]! ^= 0xff));
    const r = LmdbStorage.open({ dir });
    expect(r.lastIndex()).toBe(7);
    expect(r.entries(1, 8).map(text)).toEqual(ents(1, 7, 1).map(text));
    await r.append(ents(8, 9, 2)); // and the log is writable again
    expect(r.term(9)).toBe(2);
    await r.close();
  });

  it('refuses to start when a committed entry is corrupt or missing', async () => {
    const dir = tmp();
    const s = LmdbStorage.open({ dir });
    await s.append(ents(1, 10, 1), { term: 1, vote: '', commit: 9 });
    await s.close();
    pokeEntry(dir, 4, (b) => (b[6]! ^= 0x01)); // flip a bit in the term
    expect(() => LmdbStorage.open({ dir })).toThrow(StorageCorruptionError);
    expect(() => LmdbStorage.open({ dir })).toThrow(/entry 4 .*commit index is 9.*refusing to start/);
    const dir2 = tmp();
    const s2 = LmdbStorage.open({ dir: dir2 });
    await s2.append(ents(1, 5, 1), { term: 1, vote: '', commit: 5 });
    await s2.close();
    pokeEntry(dir2, 3, 'delete');
    expect(() => LmdbStorage.open({ dir: dir2 })).toThrow(/entry 3 is corrupt or missing/);
  });

  it('refuses a hard state record that fails its checksum', async () => {
    const dir = tmp();
    const s = LmdbStorage.open({ dir });
    await s.setHardState({ term: 3, vote: 'a', commit: 0 });
    await s.close();
    const root = open({ path: path.join(dir, 'raft.lmdb'), maxDbs: 4 });
    const meta = root.openDB<Buffer, string>({ name: 'meta', encoding: 'binary' });
    const b = Buffer.from(meta.getBinary('hardState')!);
    b[b.length - 2]! ^= 0x10;
    meta.putSync('hardState', b);
    await root.close();
    expect(() => LmdbStorage.open({ dir })).toThrow(/hardState.*checksum/);
  });
});

/** Rewrite (or delete) one stored entry record behind the storage's back. */
function pokeEntry(dir: string, index: number, edit: ((b: Buffer) => void) | 'delete'): void {
  const root = open({ path: path.join(dir, 'raft.lmdb'), maxDbs: 4 });
  const db = root.openDB<Buffer, number>({ name: 'entries', encoding: 'binary' });
  if (edit === 'delete') db.removeSync(index);
  else {
    const b = Buffer.from(db.getBinary(index)!);
    edit(b);
    db.putSync(index, b);
  }
  void root.close();
}
