// Everything under src/mesh reads time, sets timers, defers work and draws
// random numbers only through what it is given (a Scheduler, a random
// source), so a simulator can drive a cell on virtual time from one seed.
// The one exception is src/mesh/scheduler.ts, which implements the real ones.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '../../src/mesh');
const ALLOWED = new Set(['scheduler.ts']);
const FORBIDDEN: Array<[RegExp, string]> = [
  [/\bDate\b/, 'Date (the clock)'],
  [/\bperformance\./, 'performance clock'],
  [/\bprocess\.hrtime\b/, 'process.hrtime'],
  [/\b(set|clear)(Timeout|Interval|Immediate)\b/, 'timers'],
  [/\bprocess\.nextTick\b/, 'process.nextTick'],
  [/Math\.random/, 'Math.random'],
];

const strip = (code: string): string => code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');

describe('src/mesh reads time and chance only through its Scheduler and random source', () => {
  const files = readdirSync(ROOT).filter((f) => f.endsWith('.ts') && !ALLOWED.has(f));

  it('scans every module', () => {
    expect(files.length).toBeGreaterThan(15);
  });

  for (const file of files) {
    it(file, () => {
      // Comments may mention these words; code may not.
      const code = strip(readFileSync(join(ROOT, file), 'utf8'));
      for (const [re, what] of FORBIDDEN) expect(re.test(code), `src/mesh/${file} uses ${what}`).toBe(false);
    });
  }

  it('the checker fires', () => {
    const hits = (src: string): string[] => FORBIDDEN.filter(([re]) => re.test(strip(src))).map(([, what]) => what);
    expect(hits('const t = Date.now();')).toEqual(['Date (the clock)']);
    expect(hits('setImmediate(f); clearTimeout(t);')).toEqual(['timers']);
    expect(hits('const r = Math.random();')).toEqual(['Math.random']);
    expect(hits('// setTimeout and Date.now in a comment\nconst x = 1;')).toEqual([]);
  });
});
