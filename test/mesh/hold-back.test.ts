// A node's dispatcher with node-score's hold-back (src/policies/hold-back.ts):
// a task held for a faster agent's slot goes there when that agent answers,
// and goes to the slower idle agent at last when none answers (liveness: the
// cell's tick pumps while a task is held), once it waited maxHoldMs.
import { describe, expect, it } from 'vitest';
import { Dispatch, ResultStatus, TaskSpec, type TaskResult } from '../../src/gen/meshlb/v1/task.js';
import type { AgentSessions } from '../../src/mesh/agent-sessions.js';
import { Cell } from '../../src/mesh/cell.js';
import { VersionRamps } from '../../src/mesh/version-ramps.js';
import { FROM_PARENT, type WorkItem } from '../../src/mesh/types.js';
import { createPolicy, makeCandidate, seededRandom, type Picker } from '../../src/policies/index.js';
import { parseTopology } from '../../src/topology/parse.js';

const TOPO = parseTopology(`
name: unit
tiers: { global: { policy: node-score } }
addressing: { host: 127.0.0.1, basePort: 7000 }
cells: { name: / }
`);

/** Agents 'fast' (1 slot, 20 ms measured) and 'slow' (1 slot, 160 ms), standing in for AgentSessions. */
class TwoAgents {
  readonly versions = new VersionRamps();
  readonly held = new Map<string, WorkItem[]>([
    ['fast', []],
    ['slow', []],
  ]);
  private readonly ms: Record<string, number> = { fast: 20, slow: 160 };
  candidates() {
    return [...this.held].map(([id, h]) =>
      makeCandidate({ id, slots: { k: [1 - h.length, 1] }, active: h.length, latencyEwmaMs: this.ms[id]! }),
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
  answer(cell: Cell, agentId: string) {
    const item = this.held.get(agentId)!.shift()!;
    const r: TaskResult = {
      taskId: item.taskId,
      attempt: item.attempt,
      status: ResultStatus.RESULT_STATUS_OK,
      output: Buffer.alloc(0),
      error: '',
      agentId,
      nodeCell: '/',
      runMicros: 0,
      meshFailure: 0,
      retryAfterMs: 0,
    };
    cell.deliverResult(r);
    cell.dispatcher.release(agentId, 'k');
  }
}

/** node-score set on the cell's dispatcher, counting the picks its pickers make (pick, not wouldHold). */
function countingPolicy(cell: Cell): { picks: number } {
  const count = { picks: 0 };
  const policy = createPolicy('node-score', undefined, { random: seededRandom(7) });
  cell.dispatcher.setPolicy({
    name: policy.name,
    buildPicker: (cands, now): Picker => {
      const p = policy.buildPicker(cands, now);
      const pick = p.pick.bind(p);
      p.pick = (t) => (count.picks++, pick(t));
      return p;
    },
  });
  return count;
}

function setup() {
  let now = 1_000_000;
  const cell = new Cell(TOPO, TOPO.byPath.get('/')!, 1, {
    now: () => now,
    seed: 7,
    tickMs: 10,
    taskTimeoutMs: 10_000,
    leaseSlackMs: 0,
  });
  const agents = new TwoAgents();
  cell.attach({ agents: agents as unknown as AgentSessions });
  const settle = async () => {
    for (let i = 0; i < 4; i++) await new Promise<void>((r) => setImmediate(r));
  };
  const advance = async (ms: number) => {
    now += ms;
    cell.tick();
    await settle();
  };
  const where = (id: string) => [...agents.held].find(([, h]) => h.some((x) => x.taskId === id))?.[0];
  return { cell, agents, settle, advance, where, spec: () => TaskSpec.fromPartial({ kind: 'k' }) };
}

describe('hold-back at a node', () => {
  it('a task held for the full fast agent goes to it when it answers', async () => {
    const { cell, agents, settle, advance, where, spec } = setup();
    const [first] = await cell.submit([spec()]);
    await settle();
    expect(where(first!.id)).toBe('fast');
    const [second] = await cell.submit([spec()]);
    await settle();
    // 1/(1/20) + 20 / 0.8 = 45 ms < 160: it waits, beside the idle slow agent.
    expect(where(second!.id)).toBeUndefined();
    await advance(10);
    expect(where(second!.id)).toBeUndefined();
    agents.answer(cell, 'fast');
    await settle();
    expect(where(second!.id)).toBe('fast');
    expect(agents.held.get('slow')).toEqual([]);
  });

  it('a task its parent sent is not held: its line waits above, unseen, so it goes to the idle slow agent', async () => {
    const { cell, settle, where, spec } = setup();
    await cell.submit([spec()]);
    await settle();
    const acks = cell.acceptForwarded(
      [
        {
          taskId: 'p1',
          attempt: 1,
          homeCell: '/elsewhere',
          leaseMs: 60_000,
          spec: spec(),
          traceParent: '',
          checkpoint: undefined,
          guaranteed: false,
          send: 0,
        },
      ],
      FROM_PARENT,
    );
    expect(acks.every((a) => a.accepted)).toBe(true);
    await settle();
    expect(where('p1')).toBe('slow');
  });

  it('a held task goes to the slow agent at last when the fast one never answers', async () => {
    const { cell, settle, advance, where, spec } = setup();
    await cell.submit([spec()]);
    await settle();
    const [second] = await cell.submit([spec()]);
    await settle();
    let waited = 0;
    while (where(second!.id) === undefined && waited < 3000) {
      await advance(10);
      waited += 10;
    }
    expect(where(second!.id)).toBe('slow');
    // It waits no longer than maxHoldMs (500 by default): found on the next tick.
    expect(waited).toBeGreaterThanOrEqual(500);
    expect(waited).toBeLessThanOrEqual(510);
  });

  // One fast slot at 20 ms: held while (k + 1) · 20 + 20 / 0.8 < 160, k = 0..5; the seventh in line goes to 'slow'.
  it('a pump leaves a held line queued: one pick for its head, not one per task; the tick scans it whole', async () => {
    const { cell, settle, advance, where, spec } = setup();
    const count = countingPolicy(cell);
    await cell.submit([spec()]);
    await settle();
    const line = await cell.submit([spec(), spec(), spec(), spec()]);
    await settle();
    expect(line.every((t) => where(t.id) === undefined)).toBe(true);
    count.picks = 0;
    cell.dispatcher.schedule();
    await settle();
    expect(count.picks).toBe(1); // every task of the line was picked again before
    count.picks = 0;
    await advance(10);
    expect(count.picks).toBe(4);
    expect(line.every((t) => where(t.id) === undefined)).toBe(true);
  });

  it('past the threshold the overflow still goes to the slow agent in the same pump', async () => {
    const { cell, settle, where, spec } = setup();
    await cell.submit([spec()]);
    await settle();
    const line = await cell.submit([spec(), spec(), spec(), spec(), spec(), spec(), spec()]);
    await settle();
    expect(line.map((t) => where(t.id) ?? '-')).toEqual(['-', '-', '-', '-', '-', '-', 'slow']);
  });

  it('a task the hold does not apply to, behind a held line, goes within a tick', async () => {
    const { cell, settle, advance, where, spec } = setup();
    await cell.submit([spec()]);
    await settle();
    await cell.submit([spec(), spec()]);
    await settle();
    const acks = cell.acceptForwarded(
      [Dispatch.fromPartial({ taskId: 'p1', attempt: 1, homeCell: '/x', leaseMs: 60_000, spec: spec() })],
      FROM_PARENT,
    );
    expect(acks.every((a) => a.accepted)).toBe(true);
    await advance(10);
    expect(where('p1')).toBe('slow');
  });
});
