// Dispatch, leases, retries, deadlines and cancel at one home cell, with no
// network: a fake clock, and a fake set of agents standing in for
// AgentSessions (the cell talks to it through the same methods).
import { describe, expect, it } from 'vitest';
import { MeshFailure, ResultStatus, TaskSpec, TaskState, type TaskResult } from '../../src/gen/meshlb/v1/task.js';
import { Cell } from '../../src/mesh/cell.js';
import type { AgentSessions } from '../../src/mesh/agent-sessions.js';
import type { ParentLink } from '../../src/mesh/parent-link.js';
import { FROM_PARENT, type WorkItem } from '../../src/mesh/types.js';
import { makeCandidate } from '../../src/policies/index.js';
import { parseTopology } from '../../src/topology/parse.js';
import { VersionRamps } from '../../src/mesh/version-ramps.js';

const TOPO = parseTopology(`
name: unit
tiers: { global: { policy: least-loaded } }
addressing: { host: 127.0.0.1, basePort: 7000 }
cells: { name: / }
`);

class FakeAgents {
  readonly versions = new VersionRamps();
  readonly held = new Map<string, WorkItem[]>();
  readonly cancels: string[] = [];
  maxOver = 0;
  constructor(
    private readonly slots: Record<string, number>,
    private readonly labels: Record<string, Record<string, string>> = {},
  ) {
    for (const id of Object.keys(slots)) this.held.set(id, []);
  }
  candidates() {
    return Object.entries(this.slots).map(([id, s]) =>
      makeCandidate({ id, slots: { k: [s - this.held.get(id)!.length, s] }, labels: this.labels[id] ?? {} }),
    );
  }
  load() {
    return { capacity: new Map(), healthyAgents: 0, cpu: 0, memory: 0, latencyEwmaMs: 0, successEwma: 1 };
  }
  assign(agentId: string, item: WorkItem) {
    const h = this.held.get(agentId)!;
    h.push(item);
    this.maxOver = Math.max(this.maxOver, h.length - this.slots[agentId]!);
  }
  /** Like a real agent, it stops a cancelled attempt, and its slot frees once it says so. */
  cancel(_agentId: string, ref: { taskId: string; attempt: number }) {
    this.cancels.push(`${ref.taskId}#${ref.attempt}`);
    if (this.releaseOnCancel) {
      for (const h of this.held.values()) {
        const i = h.findIndex((x) => x.taskId === ref.taskId && x.attempt === ref.attempt);
        if (i >= 0) h.splice(i, 1);
      }
      this.onRelease();
    }
  }
  releaseOnCancel = false;
  onRelease = () => {};
  sweep() {}
  closeAll() {}
  all(): WorkItem[] {
    return [...this.held.values()].flat();
  }
  /** The agent answers: its slot frees, the result goes to the cell. */
  answer(
    cell: Cell,
    item: WorkItem,
    status = ResultStatus.RESULT_STATUS_OK,
    error = '',
    meshFailure = MeshFailure.MESH_FAILURE_UNSPECIFIED,
  ) {
    for (const h of this.held.values()) {
      const i = h.indexOf(item);
      if (i >= 0) h.splice(i, 1);
    }
    const r: TaskResult = {
      taskId: item.taskId,
      attempt: item.attempt,
      status,
      output: Buffer.alloc(0),
      error,
      agentId: 'a',
      nodeCell: '/',
      runMicros: 0,
      meshFailure,
      retryAfterMs: 0,
    };
    cell.deliverResult(r);
    cell.dispatcher.invalidate();
  }
}

function setup(
  slots: Record<string, number>,
  opts: {
    maxAttempts?: number;
    timeoutMs?: number;
    labels?: Record<string, Record<string, string>>;
    unplaceableTimeoutMs?: number;
  } = {},
) {
  let now = 1_000_000;
  const cell = new Cell(TOPO, TOPO.byPath.get('/')!, 1, {
    now: () => now,
    seed: 7,
    tickMs: 10,
    taskTimeoutMs: opts.timeoutMs ?? 1000,
    leaseSlackMs: 0,
    backoffBaseMs: 100,
    backoffMaxMs: 1000,
    maxAttempts: opts.maxAttempts ?? 3,
    ...(opts.unplaceableTimeoutMs !== undefined ? { unplaceableTimeoutMs: opts.unplaceableTimeoutMs } : {}),
  });
  const agents = new FakeAgents(slots, opts.labels);
  cell.attach({ agents: agents as unknown as AgentSessions });
  agents.onRelease = () => cell.dispatcher.invalidate();
  const turn = () => new Promise<void>((r) => setImmediate(r));
  const settle = async () => {
    for (let i = 0; i < 4; i++) await turn();
  };
  const advance = async (ms: number) => {
    now += ms;
    cell.tick();
    await settle();
  };
  return {
    cell,
    agents,
    settle,
    advance,
    spec: (p: Partial<TaskSpec> = {}) => TaskSpec.fromPartial({ kind: 'k', ...p }),
  };
}

describe('dispatch at a home cell', () => {
  it('never assigns more than the free slots, and refills as slots free', async () => {
    const { cell, agents, settle, spec } = setup({ a: 2, b: 1 });
    await cell.submit(Array.from({ length: 10 }, () => spec()));
    await settle();
    expect(agents.all()).toHaveLength(3);
    expect(agents.maxOver).toBe(0);
    expect(cell.queue.size).toBe(7);
    agents.answer(cell, agents.held.get('a')![0]!);
    await settle();
    expect(agents.all()).toHaveLength(3);
    expect(cell.ledger.counters.completed).toBe(1);
    expect(agents.maxOver).toBe(0);
  });

  it('two specs with one idempotency key in one batch make one task, and it runs', async () => {
    for (const durability of [1, 2]) {
      const { cell, agents, settle, spec } = setup({ a: 4 });
      const out = await cell.submit([
        spec({ idempotencyKey: 'k1', durability }),
        spec({ idempotencyKey: 'k1', durability }),
        spec({ durability }),
      ]);
      expect(out[0]!.existing).toBe(false);
      expect(out[1]!).toMatchObject({ id: out[0]!.id, existing: true });
      expect(out[2]!.existing).toBe(false);
      await settle();
      expect(
        agents
          .all()
          .map((i) => i.taskId)
          .sort(),
      ).toEqual([out[0]!.id, out[2]!.id].sort());
      for (const item of agents.all()) agents.answer(cell, item);
      expect(cell.ledger.get(out[0]!.id)!.state).toBe(TaskState.TASK_STATE_COMPLETED);
      expect(cell.ledger.liveCount).toBe(0);
    }
  });

  it('a lapsed lease retries with attempt+1 after backoff; the stale result is dropped', async () => {
    const { cell, agents, settle, advance, spec } = setup({ a: 1, b: 1 });
    const [o] = await cell.submit([spec()]);
    await settle();
    const first = agents.all()[0]!;
    expect(first.attempt).toBe(1);
    await advance(1001); // lease lapses
    expect(cell.ledger.get(o!.id)!.state).toBe(TaskState.TASK_STATE_QUEUED);
    expect(agents.cancels).toContain(`${o!.id}#1`);
    await advance(1000); // past the backoff cap
    const second = agents.all().find((i) => i.attempt === 2)!;
    expect(second).toBeDefined();
    agents.answer(cell, first); // stale: attempt 1
    expect(cell.ledger.get(o!.id)!.state).toBe(TaskState.TASK_STATE_DISPATCHED);
    agents.answer(cell, second);
    expect(cell.ledger.get(o!.id)!.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(cell.ledger.get(o!.id)!.attempt).toBe(2);
  });

  it('dead-letters after max attempts of lapsed leases', async () => {
    const { cell, agents, advance, settle, spec } = setup({ a: 1 }, { maxAttempts: 2 });
    agents.releaseOnCancel = true;
    const [o] = await cell.submit([spec()]);
    await settle();
    for (let i = 0; i < 6; i++) await advance(1001);
    const rec = cell.ledger.get(o!.id)!;
    expect(rec.state).toBe(TaskState.TASK_STATE_DEAD_LETTERED);
    expect(rec.attempt).toBe(2);
  });

  it('retries agent errors with backoff and fails after max attempts; lost attempts retry at once', async () => {
    const { cell, agents, settle, advance, spec } = setup({ a: 1 }, { maxAttempts: 2 });
    const [o] = await cell.submit([spec()]);
    await settle();
    agents.answer(
      cell,
      agents.all()[0]!,
      ResultStatus.RESULT_STATUS_ERROR,
      'lost: agent died',
      MeshFailure.MESH_FAILURE_LOST,
    );
    await settle();
    // lost: requeued at once, no backoff
    expect(agents.all()[0]!.attempt).toBe(2);
    agents.answer(cell, agents.all()[0]!, ResultStatus.RESULT_STATUS_ERROR, 'bad input');
    await advance(10);
    expect(cell.ledger.get(o!.id)!.state).toBe(TaskState.TASK_STATE_FAILED);
    expect(cell.ledger.get(o!.id)!.reason).toMatch(/bad input/);
  });

  it('dead-letters a task whose deadline passes while queued', async () => {
    const { cell, agents, settle, advance, spec } = setup({ a: 1 });
    await cell.submit([spec()]); // occupies the only slot
    await settle();
    const [late] = await cell.submit([spec({ deadlineUnixMs: 1_000_000 + 500 })]);
    await settle();
    expect(agents.all()).toHaveLength(1);
    await advance(600);
    expect(cell.ledger.get(late!.id)!.state).toBe(TaskState.TASK_STATE_DEAD_LETTERED);
    expect(cell.queue.size).toBe(0);
  });

  it('cancel ends the task once and cancels the attempt at the agent', async () => {
    const { cell, agents, settle, spec } = setup({ a: 1 });
    const [o] = await cell.submit([spec()]);
    await settle();
    const rec = await cell.cancel(o!.id, 'user');
    expect(rec.state).toBe(TaskState.TASK_STATE_CANCELLED);
    expect(agents.cancels).toEqual([`${o!.id}#1`]);
    agents.answer(cell, agents.all()[0]!);
    expect(cell.ledger.get(o!.id)!.state).toBe(TaskState.TASK_STATE_CANCELLED);
    expect(cell.ledger.counters.completed).toBe(0);
  });

  it('refuses submissions past capacity with RESOURCE_EXHAUSTED and a retry hint', async () => {
    let now = 5;
    const cell = new Cell(TOPO, TOPO.byPath.get('/')!, 1, { now: () => now, seed: 1, queueCapacity: 3 });
    await cell.submit([TaskSpec.fromPartial({ kind: 'k' }), TaskSpec.fromPartial({ kind: 'k' })]);
    await expect(
      cell.submit([TaskSpec.fromPartial({ kind: 'k' }), TaskSpec.fromPartial({ kind: 'k' })]),
    ).rejects.toMatchObject({
      code: 8,
      details: { 'meshlb-retry-after-ms': expect.stringMatching(/^\d+$/) },
    });
    now++;
  });
});

// Issue 8: one task no agent can take sat at the head of its kind's queue and
// the pump stopped there (a `queue` answer broke the kind's loop; a spillUp it
// could not hand on was put back at the head and popped again), so every other
// task of the kind waited while agents of that kind sat idle.
describe('head-of-line: a task no agent can take does not hold up the rest of its kind', () => {
  const a100 = { affinity: [{ key: 'gpu', value: 'a100' }] };
  const ids = (items: WorkItem[]) => items.map((i) => i.taskId).sort();

  it('an affinity no agent has (nowhere to spill it): the other tasks go to the idle agents at once', async () => {
    const { cell, agents, settle, advance, spec } = setup({ a: 2, b: 2 });
    const [blocker] = await cell.submit([spec(a100)]);
    await advance(5); // it waits longest: first in line
    const out = [blocker!, ...(await cell.submit([spec(), spec(), spec()]))];
    await settle();
    expect(ids(agents.all())).toEqual(
      out
        .slice(1)
        .map((o) => o.id)
        .sort(),
    );
    // The blocker still waits for an agent with gpu=a100, and keeps its place.
    expect(cell.queue.has(`${out[0]!.id}#next`)).toBe(true);
    expect(agents.maxOver).toBe(0);
  });

  it('the only matching agent is full: the other tasks of the kind still go to the idle ones', async () => {
    const { cell, agents, settle, spec } = setup({ g: 1, a: 2 }, { labels: { g: { gpu: 'a100' } } });
    const out = await cell.submit([spec(a100), spec(a100), spec(), spec()]);
    await settle();
    expect(ids(agents.held.get('g')!)).toEqual([out[0]!.id]);
    expect(ids(agents.held.get('a')!)).toEqual([out[2]!.id, out[3]!.id].sort());
    expect(cell.queue.has(`${out[1]!.id}#next`)).toBe(true);
    expect(agents.maxOver).toBe(0);
  });

  it('at a node: a dispatch from the parent that no agent matches goes back at once, "no match below", and holds up nothing', async () => {
    const { cell, agents, settle, advance } = setup({ a: 2 });
    // The parent this node answers (refusal-wait.ts NO_MATCH_BELOW): only the results it is sent matter here.
    const toParent: TaskResult[] = [];
    const parent = {
      connected: true,
      sendResult: (r: TaskResult) => void toParent.push(r),
      sendCheckpoint: () => undefined,
      sendCancel: () => undefined,
      spillUp: () => undefined,
      capacityChanged: () => undefined,
      tick: () => undefined,
    };
    cell.attach({ agents: agents as unknown as AgentSessions, parent: parent as unknown as ParentLink });
    const d = (i: number, p: Partial<TaskSpec> = {}) => ({
      taskId: `t${i}`,
      attempt: 1,
      homeCell: '/elsewhere',
      leaseMs: 60_000,
      spec: TaskSpec.fromPartial({ kind: 'k', ...p }),
      traceParent: '',
      checkpoint: undefined,
      guaranteed: false,
      send: 0,
    });
    const acks = cell.acceptForwarded([d(0, a100)], FROM_PARENT);
    await advance(5); // it waits longest: first in line
    acks.push(...cell.acceptForwarded([d(1), d(2)], FROM_PARENT));
    expect(acks.every((a) => a.accepted)).toBe(true);
    await settle();
    expect(ids(agents.all())).toEqual(['t1', 't2']);
    // Before session 16 it waited here for its lease (and could end "lease lapsed" after its retries).
    expect(cell.queue.has('t0#1')).toBe(false);
    expect(cell.routes.has('t0#1')).toBe(false);
    expect(toParent.map((r) => [r.taskId, r.attempt, r.meshFailure, r.error])).toEqual([
      ['t0', 1, MeshFailure.MESH_FAILURE_REQUEUE, 'requeue: no match below /: no agent of kind k matches gpu=a100'],
    ]);
  });
});

// Issue 8: a task of a kind nobody serves waited QUEUED forever at the root,
// while the same task homed lower was dead-lettered as "lease lapsed". One
// behaviour at every tier: it waits up to unplaceableTimeoutMs where it cannot
// go further (here: the root, with no agent of its kind), counted as
// unplaceable, then ends DEAD_LETTERED with the reason "no agent of kind X".
describe('a task of a kind no agent serves', () => {
  it('waits QUEUED up to unplaceableTimeoutMs, counted as unplaceable, then is dead-lettered "no agent of kind X"', async () => {
    const { cell, agents, settle, advance, spec } = setup({ a: 1 }, { unplaceableTimeoutMs: 5000 });
    const [o] = await cell.submit([spec({ kind: 'gpu' })]);
    await settle();
    await advance(3000);
    const [p] = await cell.submit([spec({ kind: 'gpu' }), spec()]);
    await settle();
    expect(agents.all()).toHaveLength(1); // the kind served is not held up
    await advance(1950);
    expect(cell.ledger.get(o!.id)!.state).toBe(TaskState.TASK_STATE_QUEUED);
    expect(cell.dispatcher.unplaceable()).toEqual(new Map([['gpu', 2]]));
    await advance(100); // the first has waited 5 s: it ends, the second waits on
    expect(cell.ledger.get(o!.id)).toMatchObject({
      state: TaskState.TASK_STATE_DEAD_LETTERED,
      reason: 'no agent of kind gpu',
    });
    expect(cell.ledger.get(p!.id)!.state).toBe(TaskState.TASK_STATE_QUEUED);
    expect(cell.dispatcher.unplaceable()).toEqual(new Map([['gpu', 1]]));
    await advance(3000);
    expect(cell.ledger.get(p!.id)).toMatchObject({
      state: TaskState.TASK_STATE_DEAD_LETTERED,
      reason: 'no agent of kind gpu',
    });
    expect(cell.dispatcher.unplaceable().size).toBe(0);
    expect(cell.queue.sizeOfKind('gpu')).toBe(0);
  });
});
