// A cell on virtual time: its timer, leases, retry backoff and deferred pumps
// all run on an injected VirtualScheduler, with no real timer and no waiting.
// The same seed gives the same run, step for step (what a mesh simulator needs).
import { describe, expect, it } from 'vitest';
import { Durability, TaskSpec, TaskState, type TaskRef } from '../../src/gen/meshlb/v1/task.js';
import type { AgentSessions } from '../../src/mesh/agent-sessions.js';
import { Cell } from '../../src/mesh/cell.js';
import type { AgentSide, SubtreeLoad } from '../../src/mesh/port.js';
import type { WorkItem } from '../../src/mesh/types.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import { makeCandidate } from '../../src/policies/index.js';
import { parseTopology } from '../../src/topology/parse.js';
import { VersionRamps } from '../../src/mesh/version-ramps.js';

const TOPO = parseTopology(`
name: unit
tiers: { global: { policy: least-loaded } }
addressing: { host: 127.0.0.1, basePort: 7000 }
cells: { name: / }
`);

const T0 = 1_000_000;

/** One agent with one slot that never answers unless told to. */
class SilentAgent implements AgentSide {
  readonly versions = new VersionRamps();
  readonly held: WorkItem[] = [];
  readonly log: string[] = [];
  constructor(private readonly vs: VirtualScheduler) {}
  assign(_agentId: string, item: WorkItem): void {
    this.held.push(item);
    this.log.push(`${this.vs.now() - T0} assign ${item.attempt}`);
  }
  cancel(_agentId: string, ref: TaskRef): void {
    const i = this.held.findIndex((x) => x.taskId === ref.taskId && x.attempt === ref.attempt);
    if (i >= 0) this.held.splice(i, 1);
    this.log.push(`${this.vs.now() - T0} cancel ${ref.attempt}`);
  }
  candidates() {
    return [makeCandidate({ id: 'a', slots: { k: [1 - this.held.length, 1] } })];
  }
  load(): SubtreeLoad {
    return { capacity: new Map(), healthyAgents: 1, cpu: 0, memory: 0, latencyEwmaMs: 0, successEwma: 1 };
  }
  sweep(): void {}
}

async function run(seed: number) {
  const vs = new VirtualScheduler(T0);
  const cell = new Cell(TOPO, TOPO.byPath.get('/')!, 1, {
    scheduler: vs,
    seed,
    taskTimeoutMs: 1000,
    leaseSlackMs: 0,
    backoffBaseMs: 400,
    backoffMaxMs: 1000,
    maxAttempts: 2,
  });
  const agent = new SilentAgent(vs);
  cell.attach({ agents: agent as unknown as AgentSessions });
  cell.start();
  // Durability NONE: every ledger command applies synchronously, so virtual time alone drives the run.
  const [o] = await cell.submit([TaskSpec.fromPartial({ kind: 'k', durability: Durability.DURABILITY_NONE })]);
  const id = o!.id;
  const state = () => cell.ledger.get(id)!.state;
  return { vs, cell, agent, id, state };
}

describe('a cell on a virtual scheduler', () => {
  it('runs its pump, lease and retry timers on virtual time', async () => {
    const { vs, cell, agent, state, id } = await run(7);
    expect(vs.pendingTimers).toBe(1); // the cell timer, on the virtual scheduler
    expect(agent.held).toHaveLength(0); // the pump waits for the next turn
    vs.runDeferred();
    expect(agent.held.map((i) => i.attempt)).toEqual([1]);
    expect(state()).toBe(TaskState.TASK_STATE_DISPATCHED);

    vs.advance(990); // the lease (1,000 ms) has not lapsed
    expect(state()).toBe(TaskState.TASK_STATE_DISPATCHED);

    vs.advance(100); // it lapses (on the 50 ms wheel): attempt 1 is cancelled, the task waits out its backoff (200-400 ms)
    expect(state()).toBe(TaskState.TASK_STATE_QUEUED);
    expect(agent.held).toHaveLength(0);
    expect(cell.ledger.get(id)!.reason).toBe('lost: lease lapsed');

    vs.advance(400);
    expect(agent.held.map((i) => i.attempt)).toEqual([2]);

    vs.advance(2000); // the second lease lapses too: out of attempts
    expect(state()).toBe(TaskState.TASK_STATE_DEAD_LETTERED);
    expect(cell.ledger.get(id)!.attempt).toBe(2);

    cell.close();
    expect(vs.pendingTimers).toBe(0);
  });

  it('replays exactly from the same seed', async () => {
    const trace = async (seed: number): Promise<string[]> => {
      const { vs, cell, agent } = await run(seed);
      for (let i = 0; i < 40; i++) vs.advance(97);
      cell.close();
      return agent.log;
    };
    const a = await trace(11);
    expect(a.length).toBeGreaterThanOrEqual(3);
    expect(await trace(11)).toEqual(a);
  });
});
