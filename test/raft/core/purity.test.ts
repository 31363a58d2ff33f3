// The core, quorum and tracker must stay pure: no clock, no ambient
// randomness, no timers, no async, no IO. This scans their sources.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '../../../src/raft');
const FORBIDDEN: Array<[RegExp, string]> = [
  [/\bDate\b/, 'Date'],
  [/\bperformance\./, 'performance clock'],
  [/Math\.random/, 'Math.random'],
  [/\bset(Timeout|Interval|Immediate)\b/, 'timers'],
  [/\bprocess\./, 'process'],
  [/\basync\b|\bawait\b|\bPromise\b/, 'async'],
  [/from ['"](node:|fs|net|http|lmdb|@grpc)/, 'IO imports'],
  [/\bconsole\./, 'console'],
];

describe('purity of src/raft/{core,quorum,tracker}', () => {
  for (const dir of ['core', 'quorum', 'tracker']) {
    for (const file of readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.ts'))) {
      it(`${dir}/${file}`, () => {
        // Comments may mention these words; code may not.
        const code = readFileSync(join(ROOT, dir, file), 'utf8')
          .replace(/\/\*[\s\S]*?\*\//g, '')
          .replace(/\/\/.*$/gm, '');
        for (const [re, what] of FORBIDDEN) expect(re.test(code), `${dir}/${file} uses ${what}`).toBe(false);
      });
    }
  }
});
