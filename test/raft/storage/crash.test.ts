// Crash durability with a real process: a child appends in a loop and reports
// each append once it resolved; we SIGKILL it at a seeded random moment and
// check that every reported entry is on disk, intact, after reopening.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { LmdbStorage } from '../../../src/raft/storage/index.js';
import { waitFor } from '../../helpers/wait.js';
import { payload } from './crash-writer.js';
import { seededRandom } from '../../../src/util/rng.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const dirs: string[] = [];
const children: ReturnType<typeof spawn>[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('LmdbStorage crash durability', () => {
  const seed = Number(process.env.MESHLB_SEED ?? Date.now() % 1_000_000);
  it(`keeps every entry reported durable before SIGKILL (seed ${seed})`, async () => {
    const rand = seededRandom(seed);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlb-crash-'));
    dirs.push(dir);
    let expected = 0;
    for (let round = 0; round < 4; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'crash-writer.ts'), dir], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      let reported = 0;
      let buf = '';
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop()!;
        for (const l of lines) if (l.startsWith('durable ')) reported = Number(l.slice(8));
      });
      const target = expected + 50 + Math.floor(rand() * 400);
      await waitFor(() => reported >= target, {
        timeoutMs: 20_000,
        what: `child to report ${target} durable (seed ${seed})`,
      });
      child.kill('SIGKILL');
      await waitFor(() => child.exitCode !== null || child.signalCode !== null, { what: 'child death' });
      expected = reported;
      const s = LmdbStorage.open({ dir });
      expect(s.lastIndex(), `seed ${seed}`).toBeGreaterThanOrEqual(expected);
      const got = s.entries(1, expected + 1);
      expect(got).toHaveLength(expected);
      for (const e of got)
        expect(Buffer.from(e.data).equals(Buffer.from(payload(e.index))), `entry ${e.index}`).toBe(true);
      expect(s.initialState().hardState.commit).toBeGreaterThanOrEqual(expected - 5);
      await s.close();
    }
  });
});
