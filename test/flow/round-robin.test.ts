// Round robin across the members of a concurrency group (src/flow/round-robin.ts,
// the gate and the ledger's counter): tasks naming `group:member` count against
// the group's one limit, and freed permits go to the members in turn, so a
// member with many tasks waiting cannot starve one with few.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FlowState } from '../../src/flow/flow-state.js';
import { FlowGate } from '../../src/flow/gate.js';
import { RoundRobinWaiters } from '../../src/flow/round-robin.js';
import { TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import { parseTopology } from '../../src/topology/parse.js';
import type { FlowSpec } from '../../src/topology/types.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 8080);

const spec: FlowSpec = {
  lingerMs: 0,
  concurrency: new Map([
    ['customers', { limit: 2, strategy: 'round-robin' as const }],
    ['solo', { limit: 1, strategy: 'queue' as const }],
  ]),
  rateLimits: new Map(),
};

interface Item {
  taskId: string;
  spec: TaskSpec;
}

function setup() {
  const state = new FlowState({ spec, defaultTimeoutMs: 1000 });
  const requeued: string[] = [];
  const gate = new FlowGate<Item>(state, { requeue: (i) => requeued.push(i.taskId), later: () => {} }, () => 0);
  const item = (id: string, key: string): Item => ({
    taskId: id,
    spec: TaskSpec.fromPartial({ kind: 'k', concurrencyKey: key }),
  });
  /** Admit and, if it goes, start it in the ledger's state (as an applied dispatch would). */
  const run = (it: Item): string => {
    const a = gate.admit(it, 0, 0);
    if (a.type === 'go') {
      expect(state.start(it.spec, it.taskId, 1, 0)).toBe(true);
      gate.settled(it);
    }
    return a.type;
  };
  const end = (id: string): void => {
    state.ended(id, 1);
    gate.freed('customers');
  };
  return { state, gate, requeued, item, run, end };
}

describe('round-robin concurrency groups', () => {
  it('count every member against the group, hold the rest by member, and let them go in turn', () => {
    const { state, gate, requeued, item, run, end } = setup();
    expect(run(item('a1', 'customers:a'))).toBe('go');
    expect(run(item('a2', 'customers:a'))).toBe('go');
    // The group is full: a's backlog of 5 arrives first, then one task each of b and c.
    for (let i = 3; i <= 7; i++) expect(run(item(`a${i}`, 'customers:a'))).toBe('held');
    expect(run(item('b1', 'customers:b'))).toBe('held');
    expect(run(item('c1', 'customers:c'))).toBe('held');
    expect(state.permits.held('customers')).toBe(2);
    expect(state.permits.held('customers:a')).toBe(0);
    expect(gate.backlog().get('c:customers')).toBe(7);
    expect(gate.oldestWaiting().get('c:customers')).toBe(0);
    expect(gate.whyWaiting('b1')).toBe(
      'concurrency group customers at its limit of 2 (customers:b waits its turn, round-robin)',
    );
    // Each freed permit goes to the next member in turn (the queue admits what was let go at once).
    const byId = new Map<string, Item>();
    for (let i = 3; i <= 7; i++) byId.set(`a${i}`, item(`a${i}`, 'customers:a'));
    byId.set('b1', item('b1', 'customers:b'));
    byId.set('c1', item('c1', 'customers:c'));
    const started: string[] = [];
    const running = ['a1', 'a2'];
    while (running.length > 0) {
      end(running.shift()!);
      for (const id of requeued.splice(0)) {
        expect(run(byId.get(id)!)).toBe('go');
        started.push(id);
        running.push(id);
      }
    }
    expect(started).toEqual(['a3', 'b1', 'c1', 'a4', 'a5', 'a6', 'a7']);
    expect(state.permits.held('customers')).toBe(0);
  });

  it('forget a waiting task by its member line; other keys are untouched', () => {
    const { gate, item, run } = setup();
    run(item('a1', 'customers:a'));
    run(item('a2', 'customers:a'));
    run(item('b1', 'customers:b'));
    gate.forget('b1');
    expect(gate.holds('b1')).toBe(false);
    expect(gate.backlog().get('c:customers') ?? 0).toBe(0);
    expect(run(item('s1', 'solo'))).toBe('go');
    expect(run(item('s2', 'solo'))).toBe('held');
    expect(gate.whyWaiting('s2')).toBe('concurrency key solo at its limit of 1');
  });

  it('property: n freed permits go to n different members while n members wait, each line first come first', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 8 }),
        (members, n) => {
          const w = new RoundRobinWaiters<number>();
          members.forEach((m, i) => w.add(`m${m}`, `t${i}`, i));
          const waiting = w.members;
          const taken = w.take(n);
          expect(taken.length).toBe(Math.min(n, members.length));
          const owners = taken.map(([, i]) => members[i]!);
          expect(new Set(owners.slice(0, waiting)).size).toBe(Math.min(taken.length, waiting));
          // Within a member, first come first.
          for (const m of new Set(owners)) {
            const mine = taken.filter(([, i]) => members[i] === m).map(([, i]) => i);
            const firsts = members
              .map((x, i) => [x, i] as const)
              .filter(([x]) => x === m)
              .map(([, i]) => i);
            expect(mine).toEqual(firsts.slice(0, mine.length));
          }
          expect(w.size).toBe(members.length - taken.length);
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('the topology accepts round-robin and refuses a group named with ":"', () => {
    const yaml = (key: string) => `
name: t
addressing: { host: 127.0.0.1, basePort: 20000 }
flow:
  concurrency:
    "${key}": { limit: 3, strategy: round-robin }
cells:
  name: /
`;
    expect(parseTopology(yaml('customers')).flow?.concurrency.get('customers')?.strategy).toBe('round-robin');
    expect(() => parseTopology(yaml('a:b'))).toThrow(/round-robin group is named without ":"/);
  });
});
