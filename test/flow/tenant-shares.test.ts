// Tenant shares (docs/flow-control.md, "Tenant shares"): the replicated part
// as the ledger applies it (src/flow/tenant-shares.ts through
// src/mesh/ledger.ts: a ceiling refuses a dispatch, permits come back on a
// result and linger after a loss, a runtime share counts what is out, NONE
// tasks are not counted, snapshots and the codec carry it all), a property
// that no sequence of operations lets a tenant hold more than its ceiling,
// the leader's gate (src/flow/tenant-gate.ts: ceilings counting starts not
// yet decided, the order of tenants under their minimum) and the queue's
// popFirstOf (a tenant served ahead of the DRR turns, which stay as they were).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlowState } from '../../src/flow/flow-state.js';
import { FlowGate } from '../../src/flow/gate.js';
import { Durability, ResultStatus, TaskResult, TaskSpec, TaskState } from '../../src/gen/meshlb/v1/task.js';
import { Ledger, type LedgerCommand } from '../../src/mesh/ledger.js';
import { decodeCommands, encodeCommands } from '../../src/mesh/ledger-codec.js';
import { TaskQueue, type QueueTask } from '../../src/queue/index.js';
import { parseTopology } from '../../src/topology/parse.js';
import type { FlowSpec } from '../../src/topology/types.js';

const SEED = Number(process.env.MESHLB_SEED ?? 13_003);

const topology = parseTopology(`
name: t
addressing: { host: 127.0.0.1, basePort: 20000 }
flow:
  lingerMs: 1000
  tenants:
    capped: { max: 2 }
    gold: { weight: 5, min: 3 }
cells:
  name: /
`);

const ledger = (): Ledger =>
  new Ledger({ retention: 100, defaultMaxAttempts: 3, flow: { spec: topology.flow, defaultTimeoutMs: 3000 } });

const task = (tenant: string, p: Partial<TaskSpec> = {}): TaskSpec => TaskSpec.fromPartial({ kind: 'k', tenant, ...p });

function accept(l: Ledger, ids: string[], spec: TaskSpec): void {
  l.apply({ type: 'accepted', tasks: ids.map((id) => ({ id, spec, homeCell: '/', atMs: 0 })) });
}

const dispatch = (l: Ledger, id: string, atMs = 10) =>
  l.apply({ type: 'dispatched', refs: [{ id, attempt: (l.get(id)?.attempt ?? 0) + 1 }], atMs })[0]!;

const ok = (id: string, attempt: number): TaskResult =>
  TaskResult.fromPartial({ taskId: id, attempt, status: ResultStatus.RESULT_STATUS_OK, agentId: 'a' });

describe('tenant shares in the ledger', () => {
  it("refuses a dispatch past the tenant's ceiling (QUEUED, attempt unchanged); a result frees its slot", () => {
    const l = ledger();
    accept(l, ['a', 'b', 'c'], task('capped'));
    expect(dispatch(l, 'a').ok).toBe(true);
    expect(dispatch(l, 'b').ok).toBe(true);
    expect(dispatch(l, 'c')).toMatchObject({ ok: false, why: 'limited' });
    expect(l.get('c')).toMatchObject({ state: TaskState.TASK_STATE_QUEUED, attempt: 0 });
    expect(l.flow.shares.permits.held('capped')).toBe(2);
    const freed: string[] = [];
    l.flow.shares.onFreed((t) => freed.push(t));
    l.apply({ type: 'completed', result: ok('a', 1), atMs: 20 });
    expect(freed).toEqual(['capped']);
    expect(dispatch(l, 'c').ok).toBe(true);
  });

  it('a lost attempt keeps its slot lingering until its agent answers or the timeout plus the linger', () => {
    const l = ledger();
    accept(l, ['a', 'b', 'c'], task('capped'));
    dispatch(l, 'a');
    dispatch(l, 'b');
    l.apply({ type: 'attemptFailed', id: 'a', attempt: 1, reason: 'lost', counted: true, lapse: true, atMs: 100 });
    expect(l.flow.isLingering('a#1')).toBe(true);
    expect(l.flow.due(100 + 3000 + 999)).toEqual([]);
    expect(l.flow.due(100 + 3000 + 1000)).toEqual(['a#1']);
    // Still counted: the retry of a and c wait.
    expect(dispatch(l, 'c')).toMatchObject({ ok: false, why: 'limited' });
    l.apply({ type: 'permitReturned', id: 'a', attempt: 1, atMs: 4200 });
    expect(l.flow.shares.permits.held('capped')).toBe(1);
    expect(dispatch(l, 'c').ok).toBe(true);
  });

  it('tenants without a share and durability NONE tasks hold no slot; a weight in the topology is the quantum', () => {
    const l = ledger();
    accept(l, ['n1', 'n2', 'n3'], task('capped', { durability: Durability.DURABILITY_NONE }));
    accept(l, ['f1'], task('free'));
    for (const id of ['n1', 'n2', 'n3', 'f1']) expect(dispatch(l, id).ok).toBe(true);
    expect(l.flow.shares.permits.total).toBe(0);
    expect(l.flow.weight('gold')).toBe(5);
    l.apply({ type: 'tenantWeightSet', tenant: 'gold', weight: 2, atMs: 1 });
    expect(l.flow.weight('gold')).toBe(2); // runtime over topology
  });

  it('a share set at runtime counts the attempts out now, overrides the topology, and both 0 return to it', () => {
    const l = ledger();
    accept(l, ['a', 'b', 'c', 'd'], task('free'));
    for (const id of ['a', 'b', 'c']) dispatch(l, id);
    l.apply({ type: 'tenantShareSet', tenant: 'free', min: 1, max: 3, atMs: 20 });
    expect(l.flow.shares.permits.held('free')).toBe(3);
    expect(dispatch(l, 'd')).toMatchObject({ ok: false, why: 'limited' });
    l.apply({ type: 'completed', result: ok('a', 1), atMs: 30 });
    expect(dispatch(l, 'd').ok).toBe(true);
    l.apply({ type: 'tenantShareSet', tenant: 'capped', min: 0, max: 5, atMs: 40 });
    expect(l.flow.shares.share('capped')).toEqual({ min: 0, max: 5 });
    l.apply({ type: 'tenantShareSet', tenant: 'capped', min: 0, max: 0, atMs: 50 });
    expect(l.flow.shares.share('capped')).toEqual({ weight: 1, min: 0, max: 2 });
    expect(l.flow.shares.hasRuntime('capped')).toBe(false);
  });

  it('snapshots and the log codec carry runtime shares and slots held (lingering too); replicas agree', () => {
    const l = ledger();
    const log: LedgerCommand[] = [
      { type: 'accepted', tasks: ['a', 'b'].map((id) => ({ id, spec: task('free'), homeCell: '/', atMs: 0 })) },
      { type: 'tenantShareSet', tenant: 'free', min: 1, max: 4, atMs: 1 },
      {
        type: 'dispatched',
        refs: [
          { id: 'a', attempt: 1 },
          { id: 'b', attempt: 1 },
        ],
        atMs: 5,
      },
      { type: 'attemptFailed', id: 'b', attempt: 1, reason: 'lost', counted: true, lapse: true, atMs: 6 },
    ];
    for (const c of log) l.apply(c);
    const r = ledger();
    r.restore(l.snapshot());
    expect(r.flow.toProto()).toEqual(l.flow.toProto());
    expect(r.flow.shares.share('free')).toEqual({ min: 1, max: 4 });
    expect(r.flow.isLingering('b#1')).toBe(true);
    expect(r.flow.shares.permits.held('free')).toBe(2);
    const f = ledger();
    for (const c of decodeCommands(encodeCommands(log))) f.apply(c);
    expect(f.flow.toProto()).toEqual(l.flow.toProto());
  });

  it(`property: no sequence of dispatches, results, losses and returns holds more than the ceiling (seed ${SEED})`, () => {
    const op = fc.record({
      what: fc.constantFrom('dispatch', 'ok', 'lost', 'return', 'share'),
      id: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
      max: fc.integer({ min: 1, max: 4 }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const l = ledger();
        accept(l, ['a', 'b', 'c', 'd', 'e', 'f'], task('capped', { maxAttempts: 100 }));
        let max = 2;
        let t = 10;
        for (const o of ops) {
          const rec = l.get(o.id)!;
          const before = l.flow.shares.permits.held('capped');
          if (o.what === 'dispatch') dispatch(l, o.id, t++);
          else if (o.what === 'ok') l.apply({ type: 'completed', result: ok(o.id, rec.attempt), atMs: t++ });
          else if (o.what === 'lost')
            l.apply({
              type: 'attemptFailed',
              id: o.id,
              attempt: rec.attempt,
              reason: 'lost',
              counted: false,
              lapse: true,
              atMs: t++,
            });
          else if (o.what === 'return') l.apply({ type: 'permitReturned', id: o.id, attempt: rec.attempt, atMs: t++ });
          else {
            max = o.max;
            l.apply({ type: 'tenantShareSet', tenant: 'capped', min: 0, max, atMs: t++ });
          }
          const held = l.flow.shares.permits.held('capped');
          // A start never takes the count past the ceiling (a lowered ceiling only stops new starts).
          if (held > before && o.what !== 'share') expect(held).toBeLessThanOrEqual(max);
        }
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});

interface Item {
  taskId: string;
  spec: TaskSpec;
}

function gateSetup(flow: FlowSpec | undefined = topology.flow) {
  const state = new FlowState({ spec: flow, defaultTimeoutMs: 1000 });
  const requeued: string[] = [];
  const gate = new FlowGate<Item>(
    state,
    { requeue: (item) => requeued.push(item.taskId), later: () => undefined },
    () => 0,
  );
  const item = (id: string, tenant: string, p: Partial<TaskSpec> = {}): Item => ({ taskId: id, spec: task(tenant, p) });
  return { state, gate, requeued, item };
}

describe('the tenant gate', () => {
  it('lets a tenant go up to its ceiling counting starts not yet decided, holds the rest in order, says why', () => {
    const { state, gate, requeued, item } = gateSetup();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => item(id, 'capped'));
    expect(gate.admit(a!, 1, 0).type).toBe('go');
    expect(gate.admit(b!, 2, 0).type).toBe('go');
    expect(gate.admit(c!, 3, 0).type).toBe('held');
    expect(gate.admit(d!, 4, 0).type).toBe('held');
    expect(gate.whyWaiting('c')).toBe('tenant capped at its ceiling of 2');
    expect(gate.holds('d')).toBe(true);
    expect(gate.tenants.waitingOf('capped')).toBe(2);
    // a's start is decided (its slot now in the ledger): the count is the same, nobody goes.
    state.start(a!.spec, 'a', 1, 0);
    gate.settled(a!);
    expect(requeued).toEqual([]);
    // b did not leave after all: one goes back to the queue, first come first.
    gate.settled(b!);
    expect(requeued).toEqual(['c']);
    // A second settle of the same start changes nothing (idempotent).
    gate.settled(b!);
    expect(requeued).toEqual(['c']);
    // a's slot comes back: d goes; c was let go and holds its room until admitted.
    state.ended('a', 1);
    expect(requeued).toEqual(['c']); // the home wires onFreed to the gate; here by hand:
    gate.tenants.freed('capped');
    expect(requeued).toEqual(['c', 'd']);
    expect(gate.admit(c!, 3, 0).type).toBe('go');
    expect(gate.admit(d!, 4, 0).type).toBe('go');
    expect(gate.admit(item('e', 'capped'), 5, 0).type).toBe('held');
  });

  it('a task let go for a freed slot that ends before it is admitted gives its room to the next waiting one', () => {
    const { gate, requeued, item } = gateSetup();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => item(id, 'capped'));
    gate.admit(a!, 1, 0);
    gate.admit(b!, 2, 0);
    gate.admit(c!, 3, 0);
    gate.admit(d!, 4, 0);
    gate.settled(b!); // b did not leave: c is let go
    expect(requeued).toEqual(['c']);
    gate.forget('c'); // cancelled before it came back to the gate: d goes in its place
    expect(requeued).toEqual(['c', 'd']);
    expect(gate.admit(d!, 4, 0).type).toBe('go');
  });

  it('a task held by its key gives its tenant reservation back; forget and clear drop what waits', () => {
    const flow: FlowSpec = { ...topology.flow!, concurrency: new Map([['k1', { limit: 1, strategy: 'queue' }]]) };
    const { gate, item } = gateSetup(flow);
    expect(gate.admit(item('a', 'capped', { concurrencyKey: 'k1' }), 1, 0).type).toBe('go');
    expect(gate.admit(item('b', 'capped', { concurrencyKey: 'k1' }), 2, 0).type).toBe('held');
    expect(gate.tenants.count('capped')).toBe(1); // b's reservation went back when its key held it
    expect(gate.admit(item('c', 'capped'), 3, 0).type).toBe('go');
    expect(gate.admit(item('d', 'capped'), 4, 0).type).toBe('held');
    gate.forget('d');
    expect(gate.holds('d')).toBe(false);
    gate.clear();
    expect(gate.tenants.count('capped')).toBe(0);
  });

  it('names the tenants under their minimum, the furthest below first; none when nobody has one', () => {
    const flow: FlowSpec = {
      ...topology.flow!,
      tenants: new Map([
        ['gold', { weight: 1, min: 4, max: 0 }],
        ['silver', { weight: 1, min: 2, max: 0 }],
        ['plain', { weight: 3, min: 0, max: 0 }],
      ]),
    };
    const { gate, item } = gateSetup(flow);
    expect(gate.tenants.underMin()).toEqual(['gold', 'silver']); // both at 0 of theirs: by name
    gate.admit(item('g1', 'gold'), 1, 0);
    gate.admit(item('g2', 'gold'), 2, 0);
    expect(gate.tenants.underMin()).toEqual(['silver', 'gold']); // 0/2 before 2/4
    gate.admit(item('s1', 'silver'), 3, 0);
    gate.admit(item('s2', 'silver'), 4, 0);
    expect(gate.tenants.underMin()).toEqual(['gold']);
    expect(gateSetup({ ...flow, tenants: new Map() }).gate.tenants.underMin()).toEqual([]);
  });
});

interface QT extends QueueTask {
  readonly home: boolean;
}

describe('TaskQueue.popFirstOf', () => {
  it('serves the first listed tenant with a task accept takes, highest priority first, and leaves the DRR turns as they were', () => {
    const q = new TaskQueue<QT>({ capacity: 100 });
    const push = (id: string, tenant: string, priority: QT['priority'] = 'normal', home = true): void =>
      void q.push({ id, kind: 'k', tenant, priority, home }, 0);
    push('a1', 'a');
    push('a2', 'a');
    push('b1', 'b');
    push('g1', 'gold', 'low');
    push('g2', 'gold', 'high', false);
    push('g3', 'gold', 'normal');
    const home = (t: QT): boolean => t.home;
    // g2 (high) is not a home task: passed over; g3 (normal) before g1 (low).
    expect(q.popFirstOf('k', ['silver', 'gold'], 1, home)?.task.id).toBe('g3');
    expect(q.popFirstOf('k', ['gold'], 1, home)?.task.id).toBe('g1');
    expect(q.popFirstOf('k', ['gold'], 1, home)).toBeUndefined();
    expect(q.popFirstOf('other', ['a'], 1, home)).toBeUndefined();
    // The DRR order of the rest is untouched: g2 (high) first, then a, b, a by turns.
    expect([1, 2, 3, 4].map(() => q.popKind('k', 1)?.task.id)).toEqual(['g2', 'a1', 'b1', 'a2']);
    expect(q.size).toBe(0);
  });
});
