// max_attempts holds (issue 8: a task ended `lost: lease lapsed (attempt 5 of
// 3)`). A cell on virtual time with a scripted agent side and a ledger log
// that can hold or fail proposals, so the interleavings are exact.
import { describe, expect, it } from 'vitest';
import { TaskSpec, TaskState, type TaskRef } from '../../src/gen/meshlb/v1/task.js';
import type { AgentSessions } from '../../src/mesh/agent-sessions.js';
import { Cell } from '../../src/mesh/cell.js';
import { KEPT_PER_ATTEMPT } from '../../src/mesh/home-refusals.js';
import { RESEND_MAX_MS } from '../../src/mesh/refusal-wait.js';
import { isTerminal, type ApplyResult, type LedgerCommand } from '../../src/mesh/ledger.js';
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

/** One agent that keeps what it is given (never answers); `busy` slots are taken by others. */
class Agent implements AgentSide {
  readonly versions = new VersionRamps();
  readonly held: WorkItem[] = [];
  /** Every attempt it was given (task#attempt), in order. */
  readonly given: string[] = [];
  slots = 1;
  busy = 0;
  /** Refuse (bounce, uncounted) the next n assignments, as a node does for an agent that just filled up. */
  refuse = 0;
  cell: CellPort | undefined;
  assign(_agentId: string, item: WorkItem): void {
    if (this.refuse > 0) {
      this.refuse--;
      this.cell!.bounce(item, 'agent a unavailable');
      this.cell!.candidatesChanged();
      return;
    }
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

/** The local log, except that the test may hold the next `dispatched` or fail the next `cancelled`. */
class GateLog extends SoleLeader {
  holdNextDispatch = false;
  failNextCancel = false;
  readonly held: (() => void)[] = [];
  override propose(cmds: readonly LedgerCommand[]): Promise<ApplyResult[][]> {
    if (this.failNextCancel && cmds.some((c) => c.type === 'cancelled')) {
      this.failNextCancel = false;
      return Promise.reject(new Error('proposal timed out'));
    }
    if (this.holdNextDispatch && cmds.some((c) => c.type === 'dispatched')) {
      this.holdNextDispatch = false;
      return new Promise((resolve) => this.held.push(() => resolve(super.propose(cmds))));
    }
    return super.propose(cmds);
  }
}

function setup(maxAttempts = 3) {
  const vs = new VirtualScheduler(T0);
  let log: GateLog | undefined;
  const cell = new Cell(TOPO, TOPO.byPath.get('/')!, 1, {
    scheduler: vs,
    seed: 3,
    taskTimeoutMs: 1000,
    leaseSlackMs: 0,
    backoffBaseMs: 100,
    backoffMaxMs: 200,
    maxAttempts,
    replicatedLog: (ledger) => (log = new GateLog(ledger, '/#1')),
  });
  const agent = new Agent();
  agent.cell = cell;
  cell.attach({ agents: agent as unknown as AgentSessions });
  cell.start();
  /** Let promise callbacks (commits) run, then the deferred pumps they asked for. */
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setImmediate(r));
      vs.runDeferred();
    }
  };
  return { vs, cell, agent, log: log!, settle };
}

describe('attempts never exceed max_attempts', () => {
  it('a dispatch that commits late does not let a second attempt start while the first is out', async () => {
    const { vs, cell, agent, log, settle } = setup();
    const [x] = await cell.submit([TaskSpec.fromPartial({ kind: 'k' })]);
    const [z] = await cell.submit([TaskSpec.fromPartial({ kind: 'nobody' })]);
    // x is routed; its `dispatched` command is slow to commit (held).
    log.holdNextDispatch = true;
    await settle();
    expect(log.held).toHaveLength(1);
    // Another proposal fails (a timeout under load): the home repairs from the
    // ledger, where x is still QUEUED and not in the queue.
    log.failNextCancel = true;
    await expect(cell.cancel(z!.id, 'x')).rejects.toThrow(/timed out/);
    agent.busy = 1; // the agent is busy for now: the repaired x waits in the queue
    cell.candidatesChanged();
    vs.advance(500);
    await settle();
    expect(cell.queue.has(`${x!.id}#next`)).toBe(true);
    // The slow dispatch commits: attempt 1 goes to the agent.
    log.held.shift()!();
    await settle();
    expect(agent.given).toEqual([`${x!.id}#1`]);
    // A slot frees: the repaired copy must not start attempt 2 while attempt 1 runs.
    agent.busy = 0;
    agent.slots = 2;
    cell.candidatesChanged();
    await settle();
    expect(agent.given).toEqual([`${x!.id}#1`]);
    expect(cell.ledger.get(x!.id)).toMatchObject({ attempt: 1, state: TaskState.TASK_STATE_DISPATCHED });
    cell.close();
  });

  it('dispatches refused before they started are not attempts: the reason counts the attempts that ran', async () => {
    const { vs, cell, agent, settle } = setup(3);
    agent.refuse = 2;
    const [x] = await cell.submit([TaskSpec.fromPartial({ kind: 'k' })]);
    await settle();
    // Bounded: three leases of 1 s and a few backoffs of at most 200 ms.
    const live = () => !isTerminal(cell.ledger.get(x!.id)!.state);
    for (let i = 0; i < 100 && live(); i++) {
      vs.advance(100);
      await settle();
    }
    const rec = cell.ledger.get(x!.id)!;
    expect(rec.state).toBe(TaskState.TASK_STATE_DEAD_LETTERED);
    // Two refusals (uncounted; attempt 1 keeps its number through them: docs/mesh.md, "Attempt numbers and
    // refusals"), then three lapsed leases: three attempts ran, of three, numbered as they ran.
    expect(agent.given).toEqual([`${x!.id}#1`, `${x!.id}#2`, `${x!.id}#3`]);
    expect(cell.home.refusals.stats).toEqual({ kept: 2, renumbered: 0 });
    expect(rec.failures).toBe(3);
    expect(rec.reason).toBe('lost: lease lapsed (3 of 3 attempts)');
    cell.close();
  });

  it('an attempt refused for ever keeps its number 8 times, then takes the next: the ledger cap still ends it', async () => {
    const { vs, cell, agent, settle } = setup(3);
    agent.refuse = 1_000_000;
    const t0 = vs.now();
    const [x] = await cell.submit([TaskSpec.fromPartial({ kind: 'k' })]);
    const live = () => !isTerminal(cell.ledger.get(x!.id)!.state);
    // Re-sends after a refusal back off (refusal-wait.ts): about 1 s apart past the first few, so the
    // 23 x 9 sends take minutes of virtual time, not the two seconds of round trips they took before.
    for (let i = 0; i < 4000 && live(); i++) {
      vs.advance(100);
      await settle();
    }
    const rec = cell.ledger.get(x!.id)!;
    expect(rec.state).toBe(TaskState.TASK_STATE_FAILED);
    const sends = 23 * (KEPT_PER_ATTEMPT + 1);
    const seconds = (rec.updatedMs - t0) / 1000;
    expect(seconds).toBeGreaterThan(sends * (RESEND_MAX_MS / 2 / 1000) * 0.8);
    expect(cell.home.refusals.wait.counts.immediate).toBe(1); // only the task's first refusal goes at once
    // max_attempts + 20 numbers, each through KEPT_PER_ATTEMPT (8) refusals and the one that moved it on.
    expect(rec.reason).toBe('requeue: agent a unavailable (0 of 3 attempts, 23 dispatches)');
    expect(cell.home.refusals.stats).toEqual({ kept: 23 * KEPT_PER_ATTEMPT, renumbered: 23 });
    expect(agent.given).toEqual([]);
    cell.close();
  });
});
