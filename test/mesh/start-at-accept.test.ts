// A new LOGGED task that can be placed the moment it is accepted starts in the
// same log entry (src/mesh/start-at-accept.ts): one commit before it leaves,
// not two, and still never before that commit. A cell on virtual time with a
// scripted agent and a log whose proposals commit only when the test says so
// (as a Raft group's do, one fsync later), so every interleaving is exact.
import { describe, expect, it } from 'vitest';
import { Durability, TaskSpec, TaskState, type TaskRef } from '../../src/gen/meshlb/v1/task.js';
import type { AgentSessions } from '../../src/mesh/agent-sessions.js';
import { Cell } from '../../src/mesh/cell.js';
import type { ApplyResult, LedgerCommand } from '../../src/mesh/ledger.js';
import { SoleLeader } from '../../src/mesh/leadership.js';
import type { AgentSide, CellPort, SubtreeLoad } from '../../src/mesh/port.js';
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

/** One agent of kind k that keeps what it is given; `busy` slots are taken by others. */
class Agent implements AgentSide {
  readonly versions = new VersionRamps();
  readonly held: WorkItem[] = [];
  readonly given: string[] = [];
  slots = 2;
  busy = 0;
  cell: CellPort | undefined;
  assign(_agentId: string, item: WorkItem): void {
    this.held.push(item);
    this.given.push(item.key);
  }
  cancel(_agentId: string, ref: TaskRef): void {
    const i = this.held.findIndex((x) => x.taskId === ref.taskId && x.attempt === ref.attempt);
    if (i >= 0) this.held.splice(i, 1);
  }
  candidates() {
    const free = Math.max(0, this.slots - this.busy - this.held.length);
    return [makeCandidate({ id: 'a', slots: { k: [free, this.slots] } })];
  }
  load(): SubtreeLoad {
    return { capacity: new Map(), healthyAgents: 1, cpu: 0, memory: 0, latencyEwmaMs: 0, successEwma: 1 };
  }
  sweep(): void {}
}

/**
 * A log that commits like a Raft group's: a proposal applies (and resolves)
 * only when the test commits it; `lateNext` makes the next one commit and
 * still answer a timeout (outcome unknown to the proposer).
 */
class CommitLog extends SoleLeader {
  override readonly immediate = false;
  readonly proposed: LedgerCommand['type'][][] = [];
  private readonly pending: (() => void)[] = [];
  lateNext = false;
  override propose(cmds: readonly LedgerCommand[]): Promise<ApplyResult[][]> {
    this.proposed.push(cmds.map((c) => c.type));
    if (this.lateNext) {
      this.lateNext = false;
      return new Promise((_, reject) =>
        this.pending.push(() => void super.propose(cmds).then(() => reject(new Error('proposal timed out')))),
      );
    }
    return new Promise((resolve) => this.pending.push(() => resolve(super.propose(cmds))));
  }
  commitAll(): number {
    const n = this.pending.length;
    for (const fn of this.pending.splice(0)) fn();
    return n;
  }
}

function setup() {
  const vs = new VirtualScheduler(T0);
  let log: CommitLog | undefined;
  const cell = new Cell(TOPO, TOPO.byPath.get('/')!, 1, {
    scheduler: vs,
    seed: 5,
    taskTimeoutMs: 1000,
    leaseSlackMs: 0,
    backoffBaseMs: 100,
    backoffMaxMs: 200,
    maxAttempts: 3,
    replicatedLog: (ledger) => (log = new CommitLog(ledger, '/#1')),
  });
  const agent = new Agent();
  agent.cell = cell;
  cell.attach({ agents: agent as unknown as AgentSessions });
  cell.start();
  /** Let promise callbacks run, then the deferred pumps they asked for. */
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setImmediate(r));
      vs.runDeferred();
    }
  };
  /** Commit whatever is proposed until nothing is left (each commit may propose more). */
  const commit = async () => {
    for (let i = 0; i < 10; i++) {
      await settle();
      if (log!.commitAll() === 0) return;
    }
  };
  return { vs, cell, agent, log: log!, settle, commit };
}

const logged = (extra: Partial<TaskSpec> = {}) =>
  TaskSpec.fromPartial({ kind: 'k', durability: Durability.DURABILITY_LOGGED, ...extra });

describe('a logged task placed at once starts in its accepted entry', () => {
  it('one entry carries accepted and dispatched, and the attempt leaves only once it committed', async () => {
    const { cell, agent, log, settle, commit } = setup();
    const submitted = cell.submit([logged()]);
    await settle();
    expect(log.proposed).toEqual([['accepted', 'dispatched']]);
    expect(agent.given).toEqual([]); // not before the commit
    await commit();
    const [x] = await submitted;
    expect(agent.given).toEqual([`${x!.id}#1`]);
    expect(cell.ledger.get(x!.id)).toMatchObject({ attempt: 1, state: TaskState.TASK_STATE_DISPATCHED });
    // Nothing else was proposed: no second `dispatched`, and the task is not queued as well.
    expect(log.proposed).toHaveLength(1);
    expect(cell.queue.has(`${x!.id}#next`)).toBe(false);
    expect(cell.home.atAccept.started).toBe(1);
    cell.close();
  });

  it('a task the picker cannot place now is accepted alone, queued, and started by its own dispatch', async () => {
    const { cell, agent, log, settle, commit } = setup();
    agent.busy = 2;
    cell.candidatesChanged();
    await settle();
    const submitted = cell.submit([logged()]);
    await commit();
    const [x] = await submitted;
    expect(log.proposed).toEqual([['accepted']]);
    expect(cell.queue.has(`${x!.id}#next`)).toBe(true);
    agent.busy = 0;
    cell.candidatesChanged();
    await commit();
    expect(log.proposed).toEqual([['accepted'], ['dispatched']]);
    expect(agent.given).toEqual([`${x!.id}#1`]);
    cell.close();
  });

  it('a kind with tasks already queued keeps its order: the newcomer queues behind them', async () => {
    const { cell, agent, log, settle, commit } = setup();
    agent.busy = 2;
    cell.candidatesChanged();
    await settle();
    const first = cell.submit([logged()]);
    await commit();
    const [a] = await first;
    agent.busy = 1; // one slot frees, but `a` is ahead in the queue
    cell.candidatesChanged();
    const second = cell.submit([logged()]);
    await settle();
    // `b` was not placed past `a`: its proposal is `accepted` alone (a's dispatch is its own proposal).
    expect(log.proposed.slice(0, 2)).toEqual([['accepted'], ['accepted']]);
    await commit();
    const [b] = await second;
    expect(agent.given[0]).toBe(`${a!.id}#1`);
    expect(cell.queue.has(`${b!.id}#next`)).toBe(true);
    cell.close();
  });

  it('tasks the ledger may fold or gate (debounce, singleton, concurrency keys) and NONE tasks do not start at accept', async () => {
    const { cell, agent, log, settle, commit } = setup();
    agent.slots = 8;
    cell.candidatesChanged();
    await settle();
    const submitted = cell.submit([
      logged({ debounceKey: 'd1', debouncePeriodMs: 10 }),
      logged({ singletonKey: 's1' }),
      logged({ concurrencyKey: 'c1' }),
      logged({ durability: Durability.DURABILITY_NONE }),
    ]);
    await settle();
    expect(log.proposed[0]).toEqual(['accepted']);
    await commit();
    await submitted;
    expect(cell.home.atAccept.started).toBe(0);
    cell.close();
  });

  it('an idempotency key starts its task at accept once: a second spec with the key folds into the first', async () => {
    const { cell, agent, log, settle, commit } = setup();
    const submitted = cell.submit([logged({ idempotencyKey: 'i1' }), logged({ idempotencyKey: 'i1' })]);
    await settle();
    expect(log.proposed).toEqual([['accepted', 'dispatched']]);
    await commit();
    const [x, y] = await submitted;
    expect(y).toMatchObject({ id: x!.id, existing: true });
    expect(agent.given).toEqual([`${x!.id}#1`]);
    expect(cell.ledger.size).toBe(1);
    // Submitted again later: answered from the ledger, nothing proposed, nothing started.
    const [z] = await cell.submit([logged({ idempotencyKey: 'i1' })]);
    expect(z).toMatchObject({ id: x!.id, existing: true });
    expect(log.proposed).toHaveLength(1);
    expect(agent.given).toHaveLength(1);
    cell.close();
  });

  it('an accept-and-dispatch that commits late, answered as a timeout, sends nothing then and is repaired from the ledger', async () => {
    const { vs, cell, agent, log, settle, commit } = setup();
    log.lateNext = true;
    const submitted = cell.submit([logged()]);
    await settle();
    expect(log.proposed).toEqual([['accepted', 'dispatched']]);
    log.commitAll();
    await expect(submitted).rejects.toThrow(/timed out/);
    await settle();
    // Committed, but the proposer never learnt it: nothing was sent, the ledger has attempt 1 out.
    expect(agent.given).toEqual([]);
    const [id] = [...cell.ledger.records()].map((r) => r.id);
    expect(cell.ledger.get(id!)).toMatchObject({ attempt: 1, state: TaskState.TASK_STATE_DISPATCHED });
    // The repair gives it a lease; the lease lapses (it may have run), and attempt 2 runs.
    for (let i = 0; i < 40 && agent.given.length === 0; i++) {
      vs.advance(100);
      await commit();
    }
    expect(agent.given).toEqual([`${id}#2`]);
    cell.close();
  });
});
