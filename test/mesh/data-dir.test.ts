// A replica's data directory belongs to one replica of one cell of one mesh:
// claimed on first use, refused to anyone else (started on another group's
// Raft log, a replica would lead that group alone beside the real one).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { claimDataDir, IDENTITY_FILE } from '../../src/mesh/data-dir.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const fresh = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'meshlb-datadir-'));
  dirs.push(d);
  return d;
};

describe('claimDataDir', () => {
  const me = { meshId: 'aaaa', cell: '/', replicaId: '/#1' };

  it('claims a new directory and lets the same replica in again', () => {
    const d = join(fresh(), 'nested');
    claimDataDir(d, me);
    expect(() => claimDataDir(d, me)).not.toThrow();
  });

  it('refuses another mesh, another cell and another replica, naming both', () => {
    const d = fresh();
    claimDataDir(d, me);
    expect(() => claimDataDir(d, { ...me, meshId: 'bbbb' })).toThrow(/mesh aaaa, not \/#1 of \/ in mesh bbbb/);
    expect(() => claimDataDir(d, { ...me, cell: '/eu', replicaId: '/eu#1' })).toThrow(/cell \/ in mesh aaaa/);
    expect(() => claimDataDir(d, { ...me, replicaId: '/#2' })).toThrow(/holds replica \/#1/);
  });

  it('refuses a directory whose identity file is unreadable', () => {
    const d = fresh();
    writeFileSync(join(d, IDENTITY_FILE), '{not json');
    expect(() => claimDataDir(d, me)).toThrow(/unreadable/);
  });
});
