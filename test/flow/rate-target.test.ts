// The rate target on the flow code itself (the gate in front of the
// ledger's GCRA, on an injected clock): a key of 100/s with a backlog starts
// at most 105 in any 1 s window... at most 1,050 in any 10 s window, and uses
// at least 95% of its rate while the backlog lasts. (Over gRPC the home adds
// its pump and the Raft commit to each start; the rate is decided here.)
import { describe, expect, it } from 'vitest';
import { FlowState } from '../../src/flow/flow-state.js';
import { FlowGate } from '../../src/flow/gate.js';
import { TaskSpec } from '../../src/gen/meshlb/v1/task.js';

describe('rate limit target', () => {
  it('100/s (burst 10) with a backlog of 4,000: every 10 s window ≤ 1,050 starts, ≥ 95% used', () => {
    const state = new FlowState({
      defaultTimeoutMs: 1000,
      spec: {
        lingerMs: 0,
        concurrency: new Map(),
        rateLimits: new Map([['llm', { units: 100, periodMs: 1000, burst: 10 }]]),
      },
    });
    let now = 0;
    const timers: { at: number; fn: () => void }[] = [];
    const ready: { taskId: string; spec: TaskSpec }[] = [];
    const gate = new FlowGate<{ taskId: string; spec: TaskSpec }>(
      state,
      { requeue: (item) => ready.push(item), later: (ms, fn) => timers.push({ at: now + ms, fn }) },
      () => now,
    );
    const spec = TaskSpec.fromPartial({ kind: 'k', rateLimitKey: 'llm' });
    for (let i = 0; i < 4000; i++) ready.push({ taskId: `t${i}`, spec });
    const starts: number[] = [];
    // The pump: every ms, the ready items ask the gate; those let go start (the ledger applies the dispatch).
    for (now = 0; now < 30_000; now++) {
      for (const t of timers.splice(0))
        if (t.at <= now) t.fn();
        else timers.push(t);
      for (const item of ready.splice(0)) {
        if (gate.admit(item, 0, now).type !== 'go') continue;
        expect(state.start(item.spec, item.taskId, 1, now)).toBe(true);
        gate.settled(item);
        starts.push(now);
      }
    }
    // Sliding windows of 10 s (and of 1 s) over the run.
    let worst10 = 0;
    let worst1 = 0;
    for (let i = 0, j10 = 0, j1 = 0; i < starts.length; i++) {
      while (starts[i]! - starts[j10]! >= 10_000) j10++;
      while (starts[i]! - starts[j1]! >= 1_000) j1++;
      worst10 = Math.max(worst10, i - j10 + 1);
      worst1 = Math.max(worst1, i - j1 + 1);
    }
    expect(worst10).toBeLessThanOrEqual(1050);
    expect(worst1).toBeLessThanOrEqual(110); // the burst of 10 on top of 100/s, once
    // 30 s at 100/s (+ the first burst) while the backlog lasted.
    expect(starts.length).toBeGreaterThanOrEqual(0.95 * 3000);
  });
});
