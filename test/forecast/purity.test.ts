// src/forecast is pure: time comes in as arguments, so the seeded mesh
// simulator and bench:sched replay it exactly. No clock, timers or chance.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../../src/forecast');
const FORBIDDEN: Array<[RegExp, string]> = [
  [/\bDate\b/, 'Date (the clock)'],
  [/\bperformance\./, 'performance clock'],
  [/\bprocess\./, 'process'],
  [/\b(set|clear)(Timeout|Interval|Immediate)\b/, 'timers'],
  [/Math\.random/, 'Math.random'],
  [/from '(node:|\.\.\/)/, 'imports outside src/forecast'],
];
const strip = (code: string): string => code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');

describe('src/forecast takes time only as arguments', () => {
  const files = readdirSync(ROOT).filter((f) => f.endsWith('.ts'));
  it('scans every module', () => expect(files.length).toBeGreaterThanOrEqual(3));
  for (const file of files) {
    it(file, () => {
      const code = strip(readFileSync(join(ROOT, file), 'utf8'));
      for (const [re, what] of FORBIDDEN) expect(re.test(code), `src/forecast/${file} uses ${what}`).toBe(false);
    });
  }
});
