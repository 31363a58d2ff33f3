// Circuit breakers at one node cell, with no network: a fake clock and fake
// agents standing in for AgentSessions. A failing agent's breaker opens (it
// gets nothing), half-opens after the cool-down (a bounded probe), re-opens on
// a failed probe, closes on a good one with a slow start; no task is lost.
import { describe, expect, it } from 'vitest';
import { ResultStatus, TaskSpec, TaskState, type TaskResult } from '../../src/gen/meshlb/v1/task.js';
import type { AgentSessions } from '../../src/mesh/agent-sessions.js';
import { Cell } from '../../src/mesh/cell.js';
import type { WorkItem } from '../../src/mesh/types.js';
import { makeCandidate } from '../../src/policies/index.js';
import { parseTopology } from '../../src/topology/parse.js';
import { VersionRamps } from '../../src/mesh/version-ramps.js';

const TOPO = parseTopology(`
name: unit
tiers: { global: { policy: least-loaded } }
breakers: { consecutiveFailures: 2, errorRate: 0, cooldownMs: 500, halfOpenProbes: 1, slowStartMs: 1000, maxOpenShare: 1 }
addressing: { host: 127.0.0.1, basePort: 7000 }
cells: { name: / }
`);

class FakeAgents {
  readonly versions = new VersionRamps();
  readonly held = new Map<string, WorkItem[]>();
  constructor(private readonly slots: Record<string, number>) {
    for (const id of Object.keys(slots)) this.held.set(id, []);
  }
  candidates() {
    return Object.entries(this.slots).map(([id, s]) =>
      makeCandidate({
        id,
        slots: { k: [s - this.held.get(id)!.length, s] },
        sharedSlots: [s - this.held.get(id)!.length, s],
      }),
    );
  }
  load() {
    return { capacity: new Map(), healthyAgents: 0, cpu: 0, memory: 0, latencyEwmaMs: 0, successEwma: 1 };
  }
  assign(agentId: string, item: WorkItem) {
    this.held.get(agentId)!.push(item);
  }
  cancel() {}
  sweep() {}
  closeAll() {}
  /** The agent answers its oldest attempt; the slot frees as AgentSessions frees it (slotFreed). */
  answer(cell: Cell, agentId: string, ok: boolean) {
    const item = this.held.get(agentId)!.shift()!;
    const r: TaskResult = {
      taskId: item.taskId,
      attempt: item.attempt,
      status: ok ? ResultStatus.RESULT_STATUS_OK : ResultStatus.RESULT_STATUS_ERROR,
      output: Buffer.alloc(0),
      error: ok ? '' : 'boom',
      agentId,
      nodeCell: '/',
      runMicros: 0,
      meshFailure: 0,
      retryAfterMs: 0,
    };
    cell.slotFreed(agentId, 'k');
    cell.deliverResult(r);
  }
}

function setup(slots: Record<string, number>) {
  let now = 1_000_000;
  const cell = new Cell(TOPO, TOPO.byPath.get('/')!, 1, {
    now: () => now,
    seed: 11,
    tickMs: 10,
    taskTimeoutMs: 60_000,
    backoffBaseMs: 10,
    backoffMaxMs: 10,
    maxAttempts: 20,
  });
  const agents = new FakeAgents(slots);
  cell.attach({ agents: agents as unknown as AgentSessions });
  const turn = () => new Promise<void>((r) => setImmediate(r));
  const settle = async () => {
    for (let i = 0; i < 4; i++) await turn();
  };
  const advance = async (ms: number) => {
    // In ticks, as the cell's timer would: backoffs and cool-downs come due in order.
    for (let t = 0; t < ms; t += 10) {
      now += Math.min(10, ms - t);
      cell.tick();
      await settle();
    }
  };
  const submit = async (n: number) => {
    const out = await cell.submit(Array.from({ length: n }, () => TaskSpec.fromPartial({ kind: 'k' })));
    await settle();
    return out.map((o) => o.id);
  };
  const state = (id: string) => cell.breakers.breakers.state(id);
  return { cell, agents, advance, submit, state, settle };
}

describe('circuit breakers at a node', () => {
  it('opens on failures, probes after the cool-down, re-opens on a failed probe, closes with a slow start; every task ends', async () => {
    const { cell, agents, advance, submit, state } = setup({ a: 2 });
    const ids = await submit(4);
    expect(agents.held.get('a')).toHaveLength(2);
    agents.answer(cell, 'a', false);
    agents.answer(cell, 'a', false);
    expect(state('a')).toBe('open');
    expect(cell.breakers.trips).toBe(1);
    // Open: its slots are free, yet it gets nothing; the tasks wait here, none is dropped.
    await advance(200);
    expect(agents.held.get('a')).toHaveLength(0);
    expect(cell.queue.size).toBe(4);
    expect(cell.summaries.build(1, 0, '').breakersOpen).toBe(1);
    // Cool-down over: half-open, exactly one probe.
    await advance(310);
    expect(state('a')).toBe('half-open');
    expect(agents.held.get('a')).toHaveLength(1);
    await advance(100);
    expect(agents.held.get('a')).toHaveLength(1);
    agents.answer(cell, 'a', false); // the probe fails: open again
    expect(state('a')).toBe('open');
    expect(cell.breakers.trips).toBe(2);
    await advance(200);
    expect(agents.held.get('a')).toHaveLength(0);
    await advance(310);
    expect(agents.held.get('a')).toHaveLength(1);
    agents.answer(cell, 'a', true); // a good probe: closed, slow start
    expect(state('a')).toBe('closed');
    await advance(10);
    // One task at a time at first (share ~0 of 2 slots).
    expect(agents.held.get('a')).toHaveLength(1);
    agents.answer(cell, 'a', true);
    await advance(600); // past half the slow start: both slots
    expect(agents.held.get('a')).toHaveLength(2);
    agents.answer(cell, 'a', true);
    agents.answer(cell, 'a', true);
    await advance(10);
    for (const id of ids) expect(cell.ledger.get(id)!.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(cell.queue.size).toBe(0);
  });

  it('pickers skip an open agent: work goes to the healthy one, and waits when every agent is open', async () => {
    const { cell, agents, advance, submit, state } = setup({ bad: 1, good: 1 });
    // Fail whatever lands on bad until its breaker opens; good answers OK.
    for (let i = 0; i < 10 && state('bad') !== 'open'; i++) {
      await submit(2);
      if (agents.held.get('bad')!.length) agents.answer(cell, 'bad', false);
      while (agents.held.get('good')!.length) agents.answer(cell, 'good', true);
      await advance(20);
    }
    expect(state('bad')).toBe('open');
    const ids = await submit(6);
    for (let i = 0; i < 12; i++) {
      expect(agents.held.get('bad')).toHaveLength(0);
      if (agents.held.get('good')!.length) agents.answer(cell, 'good', true);
      await advance(20);
    }
    for (const id of ids) expect(cell.ledger.get(id)!.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(cell.breakers.counts()).toEqual({ closed: 1, open: 1, halfOpen: 0 });
  });
});
