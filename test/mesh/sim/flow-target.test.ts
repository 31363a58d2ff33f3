// Issue 13's concurrency target at CI size (the full run is
// `npm run sim:flow-target`: 100,000 tasks, 1,000 kills, 2 failovers).
import { describe, expect, it } from 'vitest';
import { runFlowTarget } from './flow-target.js';

describe('flow target: one key, limit 3, three zones, kills mid-lease and a root failover', () => {
  it('never runs more than 3 at the agents, completes every task, and every count returns to zero', async () => {
    const seed = 7;
    const r = await runFlowTarget({ seed, tasks: 2000, kills: 20, failovers: 1 });
    const why = `seed ${seed} (replay: npm run sim:flow-target -- --seed ${seed} --tasks 2000 --kills 20 --failovers 1)`;
    expect(r.violations, why).toEqual([]);
    expect(r.shortfall, why).toBe('');
    expect(r.peak, why).toBe(3);
    expect(r.completed, why).toBe(2000);
    expect(r.starts, why).toBeGreaterThanOrEqual(2000 + 20);
    expect(r.leaderChanges, why).toBe(1);
    expect(r.permitsAtEnd, why).toBe(0);
  }, 120_000);
});
