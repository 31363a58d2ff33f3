// `meshlb dev` is the embedded default (`npm start`): it must run the whole
// mesh in one process and account for every task. Run as a real process so
// the CLI wiring, the example topology and the JSON contract are all covered.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runToExit, type Ran } from '../helpers/process.js';

const repo = join(import.meta.dirname, '..', '..');

function runCli(args: string[], timeoutMs: number): Promise<Ran> {
  const child = spawn(process.execPath, [join(repo, 'bin', 'meshlb.js'), ...args], {
    cwd: repo,
    env: { ...process.env, MESHLB_LOG_LEVEL: 'warn' },
  });
  return runToExit(child, `meshlb ${args.join(' ')}`, timeoutMs);
}

describe('meshlb dev', () => {
  it('runs the example mesh and prints one JSON report with every task accounted for', async () => {
    const seed = 7;
    const r = await runCli(
      [
        'dev',
        '--tasks',
        '3000',
        '--agents',
        '30',
        '--rate',
        '0',
        '--failure-rate',
        '0.05',
        '--seed',
        String(seed),
        '--json',
      ],
      90_000,
    );
    expect(r.code, `seed ${seed}; stderr:\n${r.stderr}`).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const report = JSON.parse(lines[0]!) as Record<string, unknown> & { latency_ms: { p50: number; p99: number } };
    expect(report.submitted).toBe(3000);
    expect(report.lost).toBe(0);
    expect(report.duplicates_recorded).toBe(0);
    // Failing attempts are retried: with 5% failures and 3 attempts nearly all complete.
    expect((report.completed as number) + (report.failed as number)).toBe(3000);
    expect(report.completed as number).toBeGreaterThan(2950);
    expect(report.max_agent_over_slots).toBe(0);
    expect(report.throughput_per_s as number).toBeGreaterThan(0);
    expect(report.latency_ms.p99).toBeGreaterThanOrEqual(report.latency_ms.p50);
    expect(report.seed).toBe(seed);
  });
});
