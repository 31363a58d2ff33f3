// Refused attempts wait before they go again, and say why (src/mesh/refusal-wait.ts, docs/mesh.md,
// "Attempt numbers and refusals"): the first re-send at once, then a bounded exponential backoff with
// jitter from the cell's seeded random source; while one waits at its home, GetTask and Watch at the
// home leader say QUEUED and why; a cancel during the wait ends it with nothing sent.
import { describe, expect, it } from 'vitest';
import { TaskSpec, TaskState, type Task, type TaskRef } from '../../src/gen/meshlb/v1/task.js';
import type { AgentSessions } from '../../src/mesh/agent-sessions.js';
import { createMetrics } from '../../src/admin/metrics.js';
import { Cell } from '../../src/mesh/cell.js';
import type { AgentSide, CellPort, SubtreeLoad } from '../../src/mesh/port.js';
import { RESEND_BASE_MS, RESEND_MAX_MS, resendDelay } from '../../src/mesh/refusal-wait.js';
import { watchLedger } from '../../src/mesh/task-watch.js';
import type { WorkItem } from '../../src/mesh/types.js';
import { VersionRamps } from '../../src/mesh/version-ramps.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import { makeCandidate } from '../../src/policies/index.js';
import { parseTopology } from '../../src/topology/parse.js';
import { seededRandom } from '../../src/util/rng.js';

const TOPO = parseTopology(`
name: unit
tiers: { global: { policy: least-loaded } }
addressing: { host: 127.0.0.1, basePort: 7000 }
cells: { name: / }
`);
const SEED = 16;

/** One agent that refuses (bounces, uncounted) the next `refuse` assignments and keeps the rest. */
class Agent implements AgentSide {
  readonly versions = new VersionRamps();
  readonly byId = new Map<string, never>(); // what the metrics read of a node's sessions
  readonly given: string[] = [];
  /** When each assignment came (virtual ms), refused or not. */
  readonly at: number[] = [];
  refuse = 0;
  cell: CellPort | undefined;
  constructor(private readonly now: () => number) {}
  assign(_agentId: string, item: WorkItem): void {
    this.at.push(this.now());
    if (this.refuse > 0) {
      this.refuse--;
      this.cell!.bounce(item, 'agent a full');
      this.cell!.candidatesChanged(); // its slot is free again
      return;
    }
    this.given.push(item.key);
  }
  cancel(_agentId: string, _ref: TaskRef): void {}
  candidates() {
    return [makeCandidate({ id: 'a', slots: { k: [1, 1] } })];
  }
  load(): SubtreeLoad {
    return { capacity: new Map(), healthyAgents: 1, cpu: 0, memory: 0, latencyEwmaMs: 0, successEwma: 1 };
  }
  sweep(): void {}
}

function setup() {
  const vs = new VirtualScheduler(1_000_000);
  const metrics = createMetrics();
  const cell = new Cell(TOPO, TOPO.byPath.get('/')!, 1, {
    scheduler: vs,
    seed: SEED,
    taskTimeoutMs: 1000,
    meter: metrics.meter,
  });
  const agent = new Agent(() => vs.now());
  agent.cell = cell;
  cell.attach({ agents: agent as unknown as AgentSessions });
  cell.start();
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setImmediate(r));
      vs.runDeferred();
    }
  };
  return { vs, cell, agent, settle, metrics };
}

describe(`re-sends after a refusal back off (seed ${SEED})`, () => {
  it('the first at once, then half to all of 25 ms doubling, capped at a second', () => {
    const random = seededRandom(SEED);
    expect(resendDelay(1, random)).toBe(0);
    for (let n = 2; n <= 12; n++) {
      const cap = Math.min(RESEND_MAX_MS, RESEND_BASE_MS * 2 ** (n - 2));
      for (let i = 0; i < 50; i++) {
        const d = resendDelay(n, random);
        expect(d, `refusal ${n}`).toBeGreaterThanOrEqual(Math.floor(cap / 2));
        expect(d, `refusal ${n}`).toBeLessThanOrEqual(cap);
      }
    }
  });

  it('a refused attempt waits at home QUEUED and says why; Watch is told; it leaves as the same attempt', async () => {
    const { vs, cell, agent, settle, metrics } = setup();
    agent.refuse = 4;
    const watchers = watchLedger(cell.home, () => 100);
    const seen: Task[] = [];
    const [x] = await cell.submit([TaskSpec.fromPartial({ kind: 'k' })]);
    watchers.watch(x!.id, { changed: (_id, task) => void seen.push(task()), shutdown: () => undefined });
    await settle();
    // Sent, refused and sent again at once, refused again: now it waits out a backoff.
    expect(agent.at).toHaveLength(2);
    const view = cell.home.refusals.view(cell.ledger.get(x!.id)!);
    expect(view.state).toBe(TaskState.TASK_STATE_QUEUED);
    expect(view.attempt).toBe(1);
    expect(view.waiting).toMatch(/^refused by \/: agent a full; next try in \d+ ms$/);
    // The ledger still holds the attempt out (no entry per refusal): only the leader's view says QUEUED.
    expect(cell.ledger.get(x!.id)!.state).toBe(TaskState.TASK_STATE_DISPATCHED);
    for (let i = 0; i < 100 && agent.given.length === 0; i++) {
      vs.advance(10);
      await settle();
    }
    expect(agent.given).toEqual([`${x!.id}#1`]);
    // Five sends: at once, at once, then backoffs of at least 12, 25 and 50 ms between them.
    const gaps = agent.at.slice(1).map((t, i) => t - agent.at[i]!);
    expect(gaps[0]).toBe(0);
    for (const [i, min] of [12, 25, 50].entries()) expect(gaps[i + 1]).toBeGreaterThanOrEqual(min);
    const after = cell.home.refusals.view(cell.ledger.get(x!.id)!);
    expect([after.state, after.waiting]).toEqual([TaskState.TASK_STATE_DISPATCHED, '']);
    // Watch was told the dispatch (the ledger's), then each wait and each leave (soft state: no ledger change).
    const states = seen.map((t) => (t.state === TaskState.TASK_STATE_QUEUED ? 'Q' : 'D'));
    expect(states.join('')).toBe('D' + 'QD'.repeat(4));
    expect(seen.filter((t) => t.waiting !== '').every((t) => t.waiting.startsWith('refused by /'))).toBe(true);
    expect(cell.home.refusals.counts()).toMatchObject({ kept: 4, renumbered: 0, immediate: 1, delayed: 3 });
    const scraped = await metrics.registry.metrics();
    expect(scraped).toMatch(/meshlb_refusals_total\{cell="\/",outcome="kept"\} 4\n/);
    expect(scraped).toMatch(/meshlb_refusals_total\{cell="\/",outcome="backed_off"\} 3\n/);
    expect(scraped).toMatch(/meshlb_refusal_backoff_seconds_total\{cell="\/"\} 0\.\d+\n/);
    cell.close();
  });

  it('a cancel while it waits out its backoff ends it; nothing is sent when the backoff ends', async () => {
    const { vs, cell, agent, settle } = setup();
    agent.refuse = 2;
    const [x] = await cell.submit([TaskSpec.fromPartial({ kind: 'k' })]);
    await settle();
    expect(agent.at).toHaveLength(2);
    await cell.cancel(x!.id, 'changed my mind');
    vs.advance(2000);
    await settle();
    expect(agent.at).toHaveLength(2);
    expect(cell.ledger.get(x!.id)!.state).toBe(TaskState.TASK_STATE_CANCELLED);
    expect(cell.routes.size).toBe(0);
    cell.close();
  });
});
