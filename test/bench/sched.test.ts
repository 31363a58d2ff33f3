// Smoke test of bench:sched (the benchmark itself is `npm run bench:sched`):
// one small scenario through the simulator, the table and the chart, so the
// bench cannot rot unnoticed. Virtual time: no timing, no sleeps.

import { describe, expect, it } from 'vitest';
import { listPolicies } from '../../src/policies/index.js';
import { renderScenarioTable, renderSvg } from '../../bench/sched/report.js';
import { SCENARIOS } from '../../bench/sched/scenarios.js';
import { runScenario } from '../../bench/sched/sim.js';
import { DEFAULTS, scenarioRuns } from '../../bench/sched/suite.js';

describe('bench:sched', () => {
  it('runs the two-speed case with every node policy, same tasks, and renders table and chart', () => {
    const sc = SCENARIOS['two-speed']!(0.25, 0);
    expect(sc.tasks.length).toBeGreaterThan(800);
    const runs = scenarioRuns(sc);
    expect(runs.map((r) => r.policy).sort()).toEqual(listPolicies().sort());
    for (const r of runs) {
      expect(r.metrics.completed + r.metrics.failed).toBe(sc.tasks.length);
      expect(r.metrics.creditViolations).toBe(0);
      expect(r.metrics.p50Ms).toBeGreaterThan(0);
    }
    // The expected-delay default keeps work on the fast agents; random does not.
    const def = runs.find((r) => r.tier === 'default')!.metrics;
    const rnd = runs.find((r) => r.policy === 'random')!.metrics;
    expect(def.meanMs).toBeLessThan(0.8 * rnd.meanMs);
    const table = renderScenarioTable(runs);
    expect(table.split('\n')).toHaveLength(2 + runs.length);
    expect(table).toContain('default (node-score)');
    const svg = renderSvg(runs, listPolicies());
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('polyline');
  });

  it('is deterministic: a seed replays a run exactly', () => {
    const sc = SCENARIOS['heterogeneous']!(0.05, 0);
    const a = runScenario(sc, DEFAULTS);
    const b = runScenario(sc, DEFAULTS);
    expect(a).toEqual(b);
    expect(a.completed).toBeGreaterThan(0);
  });
});
