// The pure half of bench:two-speed (the bench itself starts real processes:
// `npm run bench:two-speed`): its topology parses to a node cell with the
// policy under test, runs interleave, pacing and figures add up, and the
// verdict names what misses the target.
import { describe, expect, it } from 'vitest';
import { parseTopology } from '../../src/topology/parse.js';
import {
  dueBy,
  NODE_CELL,
  quantile,
  runFigures,
  runOrder,
  TWO_SPEED_DEFAULTS,
  twoSpeedTable,
  twoSpeedTopology,
  twoSpeedVerdict,
  type RunFigures,
  type RunSample,
} from '../../bench/two-speed-lib.js';
import { PHASES, phasesOf, type PhaseSample } from '../../bench/two-speed-phases.js';

const ADDRS = ['127.0.0.1:7001', '127.0.0.1:7002', '127.0.0.1:7003', '127.0.0.1:7004'];

function figures(policy: string, round: number, p99: number): RunFigures {
  const samples: RunSample[] = Array.from({ length: 100 }, (_, i) => ({
    clientMs: i === 99 ? p99 : 20,
    meshMs: i === 99 ? p99 - 2 : 18,
    agent: i < 90 ? `fast-${i % 10}` : `slow-${i % 10}`,
    completed: true,
  }));
  return runFigures(policy, round, samples, TWO_SPEED_DEFAULTS.groups, {
    submitRate: 800,
    loadBefore: 1,
    loadAfter: 2,
  });
}

describe('bench:two-speed (pure parts)', () => {
  it('serves the node cell of a four-tier chain with the policy under test at the given addresses', () => {
    const t = parseTopology(twoSpeedTopology('p2c', ADDRS), '<two-speed>');
    const node = t.byPath.get(NODE_CELL)!;
    expect(node.tier).toBe('node');
    expect(node.policy).toBe('p2c');
    expect(node.replicas.map((r) => r.address)).toEqual([ADDRS[3]]);
    expect(t.byPath.get('/')!.replicas[0]!.address).toBe(ADDRS[0]);
    expect(() => twoSpeedTopology('p2c', ADDRS.slice(1))).toThrow(/four addresses/);
  });

  it('interleaves rounds: every policy once per round', () => {
    expect(runOrder(['a', 'b'], 2)).toEqual([
      { policy: 'a', round: 1 },
      { policy: 'b', round: 1 },
      { policy: 'a', round: 2 },
      { policy: 'b', round: 2 },
    ]);
  });

  it('paces submits: the first at once, then rate per second, never past the total', () => {
    expect(dueBy(0, 800, 4000)).toBe(1);
    expect(dueBy(1000, 800, 4000)).toBe(801);
    expect(dueBy(4999, 800, 4000)).toBe(4000);
    expect(dueBy(60_000, 800, 4000)).toBe(4000);
  });

  it('takes nearest-rank quantiles and counts tasks per agent group', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.99)).toBe(4);
    expect(Number.isNaN(quantile([], 0.5))).toBe(true);
    const f = figures('node-score', 1, 50);
    expect(f.clientP50).toBe(20);
    expect(f.clientP99).toBe(20);
    expect(f.clientP999).toBe(50);
    expect(f.byGroup).toEqual({ fast: 90, slow: 10 });
    expect(f.completed).toBe(100);
  });

  it('counts the slowest 1% submitted in the first second, and tables it', () => {
    // 200 tasks: the two slowest (the 1%) were submitted at 0.5 s and 1.5 s.
    const samples: RunSample[] = Array.from({ length: 200 }, (_, i) => ({
      clientMs: i === 10 ? 300 : i === 150 ? 250 : 20,
      meshMs: 18,
      agent: 'fast-0',
      atMs: i * 10,
      completed: true,
    }));
    const f = runFigures('node-score', 1, samples, TWO_SPEED_DEFAULTS.groups, {
      submitRate: 800,
      loadBefore: 1,
      loadAfter: 1,
      nodeCpuUs: { firstSecond: 900, after: 700 },
    });
    expect(f.tail!.firstSecond).toBe(1);
    expect(f.nodeCpuUs).toEqual({ firstSecond: 900, after: 700 });
    expect(twoSpeedTable([f], 'node-score')).toMatch(
      /slowest 1% from 1st s[\s\S]*node-score \(default\) .* 1 +200\/200/,
    );
  });

  it('tables ratios to the default of the same round and judges the target', () => {
    const mk = (policy: string, round: number, p99: number): RunFigures => ({
      ...figures(policy, round, p99),
      clientP99: p99,
    });
    const runs = [mk('node-score', 1, 30), mk('random', 1, 240), mk('node-score', 2, 40), mk('random', 2, 200)];
    const table = twoSpeedTable(runs, 'node-score');
    expect(table).toContain('node-score (default)');
    expect(table).toMatch(/random .* 5\.0-8\.0/);
    expect(twoSpeedVerdict(runs, 'node-score')).toEqual({ met: true, why: [] });
    const bad = twoSpeedVerdict([mk('node-score', 1, 70), mk('random', 1, 65)], 'node-score');
    expect(bad.met).toBe(false);
    expect(bad.why).toEqual(['round 1: node-score p99 70.0 ms', 'round 1: random p99 65.0 ms < 70.0 ms']);
  });
});

describe('two-speed phases (--phases)', () => {
  it('splits a task time into submit, queued, agent, run and deliver, which add up to the client time', () => {
    const s: PhaseSample = {
      clientMs: 100,
      meshMs: 80,
      agent: 'fast-1',
      runMs: 20,
      atMs: 5,
      completed: true,
      taskId: 't',
      startUnixMs: 1000,
      createdUnixMs: 1004,
      updatedUnixMs: 1084,
      endUnixMs: 1100,
    };
    const p = phasesOf(s, 1040);
    expect(p).toEqual({ submit: 4, queued: 36, agent: 24, run: 20, deliver: 16 });
    expect(PHASES.reduce((t, k) => t + p[k], 0)).toBe(s.clientMs);
  });
});
