// Key shares (docs/flow-control.md, "Key shares"): a concurrency key's weight,
// minimum and ceiling. The replicated part as the ledger applies it (a
// dispatch past the ceiling refused, the lower of limit and ceiling holding, a
// runtime share counting the attempts already out, snapshots and the codec),
// a property that no sequence of dispatches, results, losses, returns and
// share or limit changes takes a key past its ceiling at a start, the leader's
// gate (held at the ceiling with a reason, let go as slots come back, keys and
// tenants under their minimum in order) and the queue's DRR by key lane
// (weights 5/3/2 split the pops 50/30/20; a key under its minimum first).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlowState, keyLane } from '../../src/flow/flow-state.js';
import { FlowGate } from '../../src/flow/gate.js';
import { ResultStatus, TaskResult, TaskSpec, TaskState } from '../../src/gen/meshlb/v1/task.js';
import { Ledger, type LedgerCommand } from '../../src/mesh/ledger.js';
import { decodeCommands, encodeCommands } from '../../src/mesh/ledger-codec.js';
import { TaskQueue, type QueueTask } from '../../src/queue/index.js';
import { parseTopology } from '../../src/topology/parse.js';

const SEED = Number(process.env.MESHLB_SEED ?? 16_001);

const topology = parseTopology(`
name: t
addressing: { host: 127.0.0.1, basePort: 20000 }
flow:
  lingerMs: 1000
  concurrency:
    capped: { limit: 10, max: 2 }
    tight: { limit: 1, max: 5 }
    ka: { limit: 1000, weight: 5 }
    kb: { limit: 1000, weight: 3 }
    kc: { limit: 1000, weight: 2 }
    vip: { limit: 1000, min: 3 }
    plain: { limit: 1000 }
  tenants:
    gold: { min: 2 }
cells:
  name: /
`);

const ledger = (): Ledger =>
  new Ledger({ retention: 100, defaultMaxAttempts: 3, flow: { spec: topology.flow, defaultTimeoutMs: 3000 } });

const task = (key: string, p: Partial<TaskSpec> = {}): TaskSpec =>
  TaskSpec.fromPartial({ kind: 'k', tenant: 't', concurrencyKey: key, ...p });

function accept(l: Ledger, ids: string[], spec: TaskSpec): void {
  l.apply({ type: 'accepted', tasks: ids.map((id) => ({ id, spec, homeCell: '/', atMs: 0 })) });
}

const dispatch = (l: Ledger, id: string, atMs = 10) =>
  l.apply({ type: 'dispatched', refs: [{ id, attempt: (l.get(id)?.attempt ?? 0) + 1 }], atMs })[0]!;

const ok = (id: string, attempt: number): TaskResult =>
  TaskResult.fromPartial({ taskId: id, attempt, status: ResultStatus.RESULT_STATUS_OK, agentId: 'a' });

const share = (key: string, weight: number, min: number, max: number, atMs = 1): LedgerCommand => ({
  type: 'keyShareSet',
  key,
  weight,
  min,
  max,
  atMs,
});

describe('key shares in the ledger', () => {
  it("refuses a dispatch past the key's ceiling (QUEUED, attempt unchanged); the lower of limit and ceiling holds", () => {
    const l = ledger();
    accept(l, ['a', 'b', 'c'], task('capped'));
    expect(dispatch(l, 'a').ok).toBe(true);
    expect(dispatch(l, 'b').ok).toBe(true);
    expect(dispatch(l, 'c')).toMatchObject({ ok: false, why: 'limited' });
    expect(l.get('c')).toMatchObject({ state: TaskState.TASK_STATE_QUEUED, attempt: 0 });
    expect(l.flow.cap('capped')).toBe(2);
    expect(l.flow.cap('tight')).toBe(1); // its limit is the lower
    l.apply({ type: 'completed', result: ok('a', 1), atMs: 20 });
    expect(dispatch(l, 'c').ok).toBe(true);
    // A lost attempt keeps its slot lingering, as any permit of the key.
    l.apply({ type: 'attemptFailed', id: 'b', attempt: 1, reason: 'lost', counted: true, lapse: true, atMs: 30 });
    accept(l, ['d'], task('capped'));
    expect(dispatch(l, 'd')).toMatchObject({ ok: false, why: 'limited' });
    l.apply({ type: 'permitReturned', id: 'b', attempt: 1, atMs: 5000 });
    expect(dispatch(l, 'd').ok).toBe(true);
  });

  it('a share set at runtime counts the attempts out now, overrides the topology, and all 0 return to it', () => {
    const l = ledger();
    accept(l, ['a', 'b', 'c', 'd'], task('plain'));
    for (const id of ['a', 'b', 'c']) expect(dispatch(l, id).ok).toBe(true);
    const freed: string[] = [];
    l.flow.onFreed((k) => freed.push(k));
    l.apply(share('plain', 4, 1, 2, 20));
    expect(freed).toEqual(['plain']); // the gate looks again at the key's waiting tasks
    // Three out, ceiling 2: nothing starts until two of them end.
    expect(l.flow.permits.held('plain')).toBe(3);
    expect(dispatch(l, 'd')).toMatchObject({ ok: false, why: 'limited' });
    l.apply({ type: 'completed', result: ok('a', 1), atMs: 30 });
    expect(dispatch(l, 'd')).toMatchObject({ ok: false, why: 'limited' });
    l.apply({ type: 'completed', result: ok('b', 1), atMs: 31 });
    expect(dispatch(l, 'd').ok).toBe(true);
    expect(l.flow.keyShares.share('plain')).toEqual({ weight: 4, min: 1, max: 2 });
    expect(l.flow.weight(keyLane('plain'))).toBe(4);
    l.apply(share('capped', 0, 0, 5, 40));
    expect(l.flow.cap('capped')).toBe(5);
    l.apply(share('capped', 0, 0, 0, 50));
    expect(l.flow.keyShares.share('capped')).toEqual({ weight: 1, min: 0, max: 2 });
    expect(l.flow.keyShares.hasRuntime('capped')).toBe(false);
    expect(l.flow.cap('capped')).toBe(2);
  });

  it('snapshots and the log codec carry runtime key shares; replicas agree', () => {
    const l = ledger();
    const log: LedgerCommand[] = [
      { type: 'accepted', tasks: ['a', 'b'].map((id) => ({ id, spec: task('plain'), homeCell: '/', atMs: 0 })) },
      share('plain', 3, 1, 4),
      share('ka', 7, 0, 0),
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
    expect(r.flow.toProto().keyShares).toEqual([
      { key: 'plain', weight: 3, minSlots: 1, maxSlots: 4 },
      { key: 'ka', weight: 7, minSlots: 0, maxSlots: 0 },
    ]);
    expect(r.flow.keyShares.share('plain')).toEqual({ weight: 3, min: 1, max: 4 });
    expect(r.flow.weight(keyLane('ka'))).toBe(7);
    expect(r.flow.isLingering('b#1')).toBe(true);
    const f = ledger();
    for (const c of decodeCommands(encodeCommands(log))) f.apply(c);
    expect(f.flow.toProto()).toEqual(l.flow.toProto());
  });

  it(`property: no sequence of dispatches, results, losses, returns and share or limit changes starts past the ceiling (seed ${SEED})`, () => {
    const op = fc.record({
      what: fc.constantFrom('dispatch', 'dispatch', 'ok', 'lost', 'return', 'share', 'limit'),
      id: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
      n: fc.integer({ min: 0, max: 4 }),
    });
    let starts = 0;
    let refused = 0;
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const l = ledger();
        accept(l, ['a', 'b', 'c', 'd', 'e', 'f'], task('plain', { maxAttempts: 100 }));
        let max = 0; // no share yet: the key is only counted
        let limit = 1000;
        let t = 10;
        for (const o of ops) {
          const rec = l.get(o.id)!;
          const before = l.flow.permits.held('plain');
          if (o.what === 'dispatch') {
            const r = dispatch(l, o.id, t++);
            if (r.ok) starts++;
            else if (r.why === 'limited') refused++;
          } else if (o.what === 'ok') l.apply({ type: 'completed', result: ok(o.id, rec.attempt), atMs: t++ });
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
          else if (o.what === 'share') {
            max = o.n; // 0: back to the topology's (none for `plain`)
            l.apply(share('plain', 1, 0, max, t++));
          } else {
            limit = o.n === 0 ? 1000 : o.n + 1;
            l.apply({ type: 'flowLimitSet', key: 'plain', limit: o.n === 0 ? 0 : limit, atMs: t++ });
          }
          const held = l.flow.permits.held('plain');
          // A start never takes the count past the ceiling or the limit (lowering either only stops new starts).
          if (held > before) {
            if (max > 0) expect(held).toBeLessThanOrEqual(max);
            expect(held).toBeLessThanOrEqual(limit);
          }
        }
      }),
      { seed: SEED, numRuns: 400 },
    );
    // The property saw both answers many times (not a run where nothing ever started or was refused).
    expect(starts, `${starts} starts, ${refused} refused`).toBeGreaterThan(300);
    expect(refused, `${starts} starts, ${refused} refused`).toBeGreaterThan(20);
  });
});

interface Item {
  taskId: string;
  spec: TaskSpec;
}

function gateSetup() {
  const state = new FlowState({ spec: topology.flow, defaultTimeoutMs: 1000 });
  const requeued: string[] = [];
  const gate = new FlowGate<Item>(
    state,
    { requeue: (item) => requeued.push(item.taskId), later: () => undefined },
    () => 0,
  );
  state.onFreed((k) => gate.freed(k)); // as the home wires it
  const item = (id: string, key: string, p: Partial<TaskSpec> = {}): Item => ({ taskId: id, spec: task(key, p) });
  return { state, gate, requeued, item };
}

describe('the gate with key shares', () => {
  it('holds a key at its ceiling (counting starts not yet decided) with the reason, lets the next go as a slot comes back', () => {
    const { state, gate, requeued, item } = gateSetup();
    const [a, b, c] = ['a', 'b', 'c'].map((id) => item(id, 'capped'));
    expect(gate.admit(a!, 1, 0).type).toBe('go');
    expect(gate.admit(b!, 2, 0).type).toBe('go');
    expect(gate.admit(c!, 3, 0).type).toBe('held');
    expect(gate.whyWaiting('c')).toBe('concurrency key capped at its ceiling of 2');
    state.start(a!.spec, 'a', 1, 0);
    gate.settled(a!);
    expect(requeued).toEqual([]);
    state.ended('a', 1);
    expect(requeued).toEqual(['c']);
    // A ceiling raised at runtime lets waiting tasks go at once.
    expect(gate.admit(c!, 3, 0).type).toBe('go');
    expect(gate.admit(item('d', 'capped'), 4, 0).type).toBe('held');
    state.setKeyShare('capped', { min: 0, max: 3 });
    expect(requeued).toEqual(['c', 'd']);
    // Where the limit is the lower it is the limit that holds, and says so.
    expect(gate.admit(item('t1', 'tight'), 5, 0).type).toBe('go');
    expect(gate.admit(item('t2', 'tight'), 6, 0).type).toBe('held');
    expect(gate.whyWaiting('t2')).toBe('concurrency key tight at its limit of 1');
  });

  it('names keys (their lanes) and tenants under their minimum together, the furthest below first', () => {
    const { gate, item } = gateSetup();
    expect(gate.underMin()).toEqual(['gold', keyLane('vip')].sort()); // both at 0: by name
    gate.admit(item('v1', 'vip'), 1, 0);
    expect(gate.underMin()).toEqual(['gold', keyLane('vip')]); // 0/2 before 1/3
    gate.admit(item('g1', 'plain', { tenant: 'gold' }), 2, 0);
    gate.admit(item('g2', 'plain', { tenant: 'gold' }), 3, 0);
    expect(gate.underMin()).toEqual([keyLane('vip')]);
    gate.admit(item('v2', 'vip'), 4, 0);
    gate.admit(item('v3', 'vip'), 5, 0);
    expect(gate.underMin()).toEqual([]);
  });
});

interface QT extends QueueTask {
  readonly taskId: string;
  readonly spec: TaskSpec;
}

describe('the queue by key lanes', () => {
  const setup = () => {
    const state = new FlowState({ spec: topology.flow, defaultTimeoutMs: 1000 });
    const q = new TaskQueue<QT>({ capacity: 10_000, ...state.fairness });
    const push = (id: string, key: string, tenant = 't'): void =>
      void q.push({ id, taskId: id, kind: 'k', tenant, priority: 'normal', spec: task(key, { tenant }) }, 0);
    return { state, q, push };
  };

  it('keys with weights 5/3/2 and backlogs take 50/30/20 of the pops; keys without a share stay in their tenant', () => {
    const { state, q, push } = setup();
    expect(state.laneOf(task('ka'))).toBe(keyLane('ka'));
    expect(state.laneOf(task('plain', { tenant: 'x' }))).toBe('x');
    expect(state.laneOf(task('', { tenant: 'x' }))).toBe('x');
    for (let i = 0; i < 200; i++) for (const k of ['ka', 'kb', 'kc']) push(`${k}-${i}`, k);
    const got = new Map<string, number>();
    for (let i = 0; i < 100; i++) {
      const id = q.popKind('k', 1)!.task.id;
      got.set(id.slice(0, 2), (got.get(id.slice(0, 2)) ?? 0) + 1);
    }
    expect(Object.fromEntries(got)).toEqual({ ka: 50, kb: 30, kc: 20 });
  });

  it('a key under its minimum is served first through popFirstOf, ahead of the DRR turns', () => {
    const { state, q, push } = setup();
    const gate = new FlowGate<QT>(state, { requeue: () => undefined, later: () => undefined }, () => 0);
    for (let i = 0; i < 5; i++) push(`ka-${i}`, 'ka');
    for (let i = 0; i < 5; i++) push(`vip-${i}`, 'vip');
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      const p = q.popFirstOf('k', gate.underMin(), 1, () => true) ?? q.popKind('k', 1)!;
      expect(gate.admit(p.task, 0, 1).type).toBe('go');
      order.push(p.task.id);
    }
    // vip's three (its minimum) first, then the DRR: ka's weight of 5 before vip's 1.
    expect(order).toEqual(['vip-0', 'vip-1', 'vip-2', 'ka-0', 'ka-1', 'ka-2']);
  });
});
