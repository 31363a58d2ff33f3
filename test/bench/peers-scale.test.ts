// The pure helpers of bench:peers and bench:scale: /proc parsing, Redis arguments, the side-by-side table, agents per process and ratios.
import { describe, expect, it } from 'vitest';
import { parseStatCpuTicks, parseStatusMiB, procCpuUs, procRssMiB } from '../../bench/lib/procfs.js';
import { redisArgs } from '../../bench/lib/redis.js';
import { peerRows, ratio, type Side } from '../../bench/peers-table.js';
import { NO_LAT } from '../../bench/lib/phases.js';
import { ratioRow, splitAgents } from '../../bench/scale-table.js';

describe('procfs', () => {
  it('reads utime + stime past a command name holding spaces and parentheses', () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    const stat = '4242 (redis-server *:6379) (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 5 0';
    expect(parseStatCpuTicks(stat)).toBe(1234 + 567);
    expect(parseStatCpuTicks('garbage')).toBeNaN();
    expect(parseStatCpuTicks('1 (x) S 1 2')).toBeNaN();
  });

  it('reads a kB field of /proc/<pid>/status as MiB', () => {
    const status = 'Name:\tnode\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n';
    expect(parseStatusMiB(status, 'VmRSS')).toBe(100);
    expect(parseStatusMiB(status, 'VmHWM')).toBe(200);
    expect(parseStatusMiB(status, 'VmSwap')).toBeNaN();
  });

  it.runIf(process.platform === 'linux')('measures this process', () => {
    expect(procCpuUs(process.pid)).toBeGreaterThan(0);
    expect(procRssMiB(process.pid)).toBeGreaterThan(10);
    expect(procCpuUs(2 ** 22 + 1)).toBeNaN();
  });
});

describe('redis arguments', () => {
  it('binds loopback on the given port and persists nothing', () => {
    const a = redisArgs(6399);
    const arg = (k: string): string | undefined => a[a.indexOf(k) + 1];
    expect(arg('--port')).toBe('6399');
    expect(arg('--bind')).toBe('127.0.0.1');
    expect(arg('--save')).toBe('');
    expect(arg('--appendonly')).toBe('no');
    expect(arg('--daemonize')).toBe('no');
  });
});

describe('peer table', () => {
  const side = (tps: number, cpu: number, p99: number): Side => ({
    tasksPerSecond: tps,
    fullRate: { ...NO_LAT, p50Ms: 10, p99Ms: 20 },
    cpuUsPerTask: cpu,
    cpuUsPerTaskByProcess: {},
    paced: { ...NO_LAT, p50Ms: 1, p99Ms: p99, p999Ms: 2 * p99 },
    pacedCompleted: 3000,
    pacedCpuUsPerTask: 10 * cpu,
    pacedCpuUsPerTaskByProcess: {},
  });

  it('gives meshlb / peer per figure, and a gap where a side did not run', () => {
    expect(ratio(30, 10)).toBe(3);
    expect(ratio(1, 3)).toBe(0.33);
    expect(ratio(1, 0)).toBe('-');
    expect(ratio(NaN, 2)).toBe('-');
    const rows = peerRows(side(30_000, 60, 4), side(10_000, 120, 5), 60_000, 500);
    const byName = new Map(rows.map((r) => [r[0], r]));
    expect(byName.get('tasks/s, full rate (more is better)')).toEqual([
      'tasks/s, full rate (more is better)',
      30_000,
      10_000,
      3,
    ]);
    expect(byName.get('  share of echo round trips/s (unbatched)')?.slice(1, 3)).toEqual([0.5, 0.17]);
    expect(byName.get('paced 500/s: submit→result p99 ms')?.[3]).toBe(0.8);
    expect(byName.get('paced 500/s: CPU µs per task, all processes')?.[3]).toBe(0.5);
    // Several passes: their spread per side, and meshlb / BullMQ per pair (pass i against pass i).
    const passes = (xs: [number, number][]) => xs.map(([p99Ms, cpuUsPerTask]) => ({ p99Ms, cpuUsPerTask }));
    const paired = peerRows(
      {
        ...side(30_000, 60, 4),
        pacedPasses: passes([
          [4, 900],
          [6, 1500],
        ]),
      },
      {
        ...side(10_000, 120, 5),
        pacedPasses: passes([
          [2, 600],
          [3, 1000],
        ]),
      },
      60_000,
      500,
    );
    const cpuRow = paired.find((r) => r[0] === '  passes: CPU µs per task, min-max');
    expect(cpuRow).toEqual(['  passes: CPU µs per task, min-max', '900-1500', '600-1000', '1.5-1.5']);
    expect(paired.find((r) => String(r[0]).includes('p99 ms, min-max'))?.slice(1)).toEqual(['4-6', '2-3', '2-2']);
    expect(rows.some((r) => String(r[0]).includes('min-max'))).toBe(false);
    const skipped = { ...side(NaN, NaN, NaN), pacedCompleted: NaN };
    const gap = peerRows(side(30_000, 60, 4), skipped, 60_000, 500);
    expect(gap[0]).toEqual(['tasks/s, full rate (more is better)', 30_000, 'not run', '-']);
  });
});

describe('scale helpers', () => {
  it('splits agents over processes of at most `per`', () => {
    expect(splitAgents(12_000, 5000)).toEqual([5000, 5000, 2000]);
    expect(splitAgents(100, 5000)).toEqual([100]);
    expect(splitAgents(0, 5000)).toEqual([]);
    expect(splitAgents(10, 0)).toEqual([]);
  });

  it('gives each figure as a multiple of the reference run', () => {
    const run = (rss: number, idle: number, tps: number, p99: number, us: number) => ({
      rssIdleMiB: rss,
      idleCoresNode: idle,
      nodeCpuUsPerTask: us,
      load: { tasksPerSecond: tps, submitToResult: { p99Ms: p99 } },
    });
    expect(ratioRow(run(480, 0.07, 1000, 30, 150), run(120, 0.01, 2000, 10, 75))).toEqual([4, 7, 0.5, 3, 2]);
    expect(ratioRow(run(480, 0.07, NaN, 30, 150), run(120, 0, 2000, 10, 75))).toEqual([4, '-', '-', 3, 2]);
  });
});
