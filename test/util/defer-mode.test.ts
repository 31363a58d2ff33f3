// MESHLB_DEFER: the three modes it names, `light` when unset, and for anything else `light` with one warning
// per process naming the accepted values (before session 15 a typo silently ran the default). The unit part
// in this process (vitest runs each file in its own, so nothing has warned before it); the wiring through
// src/mesh/scheduler.ts in a real process, whose log goes to stderr.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFER_MODES, deferModeFrom } from '../../src/util/turn-defer.js';

const repo = join(import.meta.dirname, '..', '..');

describe('deferModeFrom (MESHLB_DEFER)', () => {
  it('takes each accepted mode, `light` when unset; an unknown value is `light` with one warning per process', () => {
    const warnings: string[] = [];
    const warn = (m: string): void => void warnings.push(m);
    expect(DEFER_MODES).toEqual(['turn', 'light', 'soon']);
    for (const m of DEFER_MODES) expect(deferModeFrom(m, warn)).toBe(m);
    expect(deferModeFrom(undefined, warn)).toBe('light');
    expect(deferModeFrom('', warn)).toBe('light');
    expect(warnings).toEqual([]);
    expect(deferModeFrom('ligth', warn)).toBe('light');
    expect(warnings).toEqual(['unknown MESHLB_DEFER "ligth": using light (accepted: turn, light, soon)']);
    expect(deferModeFrom('TURN', warn)).toBe('light'); // case matters; still one warning
    expect(deferModeFrom('ligth', warn)).toBe('light');
    expect(warnings).toHaveLength(1);
  });

  it('a process with MESHLB_DEFER=bogus logs the warning once, through the scheduler', () => {
    const script = `
      await import('./src/mesh/scheduler.ts');
      const { deferModeFrom } = await import('./src/util/turn-defer.ts');
      console.log(deferModeFrom(process.env.MESHLB_DEFER));`;
    const env: NodeJS.ProcessEnv = { ...process.env, MESHLB_DEFER: 'bogus', MESHLB_LOG_LEVEL: 'warn' };
    delete env.VITEST; // under vitest the product's logger is silent
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: repo,
      env,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('light');
    const lines = r.stderr.split('\n').filter((l) => l.includes('MESHLB_DEFER'));
    expect(lines, r.stderr).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 40,
      component: 'turn-defer',
      msg: 'unknown MESHLB_DEFER "bogus": using light (accepted: turn, light, soon)',
    });
  });
});
