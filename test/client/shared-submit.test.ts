// The shared SubmitStream (src/client/shared-submit.ts) against fake streams
// and a fake clock: answers per item, a stream that breaks mid-flight, hung
// replicas and deadlines, refusals of the whole stream, backpressure, and a
// property over random schedules: every submit settles exactly once, and a
// task is never made twice for one submit (every send of it carries one key).
import { status } from '@grpc/grpc-js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/agent/backoff.js';
import { MeshClientError } from '../../src/client/errors.js';
import { SharedSubmit, type Clock, type SharedSubmitPorts, type SubmitCall } from '../../src/client/shared-submit.js';
import { toTaskSpec } from '../../src/client/spec.js';
import {
  TaskState,
  type SubmitBatchItem,
  type SubmitResponse,
  type SubmitStreamRequest,
  type SubmitStreamResponse,
  type TaskSpec,
} from '../../src/gen/meshlb/v1/task.js';

const SEED = 20261206;
const ITEM: SubmitBatchItem = { taskId: '', existing: false, code: 0, message: '', retryAfterMs: 0 };

class FakeClock implements Clock {
  t = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 1;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.t + Math.max(0, ms), fn, id });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== h);
  }
  /** Run every timer due by now + ms, in time order. */
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.at > until) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
    }
    this.t = until;
  }
}

type Handler = (x: never) => void;

class FakeCall implements SubmitCall {
  readonly writes: SubmitStreamRequest[] = [];
  readonly answered = new Set<number>();
  ended = false;
  cancelled = false;
  over = false;
  private readonly handlers: Record<string, Handler[]> = {};
  constructor(readonly address: string) {}
  write(req: SubmitStreamRequest): void {
    this.writes.push(req);
  }
  end(): void {
    this.ended = true;
  }
  cancel(): void {
    this.cancelled = true;
    this.fail(status.CANCELLED, 'Cancelled on client');
  }
  on(ev: string, fn: Handler): this {
    (this.handlers[ev] ??= []).push(fn);
    return this;
  }
  private emit(ev: string, x: unknown): void {
    for (const h of this.handlers[ev] ?? []) (h as (x: unknown) => void)(x);
  }
  /** Requests written and not answered, in order. */
  get unanswered(): SubmitStreamRequest[] {
    return this.writes.filter((w) => !this.answered.has(w.requestId));
  }
  answer(requestId: number, item: Partial<SubmitBatchItem>): void {
    if (this.over) return;
    this.answered.add(requestId);
    const res: SubmitStreamResponse = {
      requestId,
      item: { taskId: '', existing: false, code: 0, message: '', retryAfterMs: 0, ...item },
      items: [],
    };
    this.emit('data', res);
  }
  /** A batch request answered in `items`. */
  answerItems(requestId: number, items: Partial<SubmitBatchItem>[]): void {
    if (this.over) return;
    this.answered.add(requestId);
    const full = items.map((it) => ({ taskId: '', existing: false, code: 0, message: '', retryAfterMs: 0, ...it }));
    this.emit('data', { requestId, item: undefined, items: full } satisfies SubmitStreamResponse);
  }
  fail(code: status, details: string): void {
    if (this.over) return;
    this.over = true;
    if (code !== status.OK) this.emit('error', Object.assign(new Error(details), { code, details }));
    this.emit('status', { code, details });
  }
}

interface Rig {
  s: SharedSubmit;
  clock: FakeClock;
  calls: FakeCall[];
  fallbacks: { spec: TaskSpec; deadlineMs: number | undefined }[];
  batchFallbacks: TaskSpec[][];
  preferred: { address: string };
  last(): FakeCall;
}

function rig(
  o: { retry?: boolean; maxInFlight?: number; retryExhausted?: boolean; fallback?: SharedSubmitPorts['fallback'] } = {},
): Rig {
  const clock = new FakeClock();
  const calls: FakeCall[] = [];
  const fallbacks: Rig['fallbacks'] = [];
  const batchFallbacks: TaskSpec[][] = [];
  const preferred = { address: 'a' };
  const ports: SharedSubmitPorts = {
    addresses: ['a', 'b', 'c'],
    first: () => preferred.address,
    answered: (a) => (preferred.address = a),
    open: (a) => {
      const c = new FakeCall(a);
      calls.push(c);
      return c;
    },
    fallback:
      o.fallback ??
      ((spec, deadlineMs) => {
        fallbacks.push({ spec, deadlineMs });
        return Promise.resolve({
          taskId: `u-${spec.idempotencyKey}`,
          existing: true,
          state: TaskState.TASK_STATE_RUNNING,
        });
      }),
    fallbackBatch: (specs) => {
      batchFallbacks.push(specs);
      return Promise.resolve(specs.map((x) => ({ ...ITEM, taskId: `u-${x.idempotencyKey}` })));
    },
    defaultDeadlineMs: 10_000,
    retry: o.retry === false ? undefined : { maxAttempts: 10, initialBackoffMs: 50, maxBackoffMs: 2000 },
    random: seededRandom(SEED),
    retryExhausted: o.retryExhausted ?? false,
    clock,
  };
  const s = new SharedSubmit(ports, { maxInFlight: o.maxInFlight ?? 1000, lingerMs: 250 });
  return { s, clock, calls, fallbacks, batchFallbacks, preferred, last: () => calls[calls.length - 1]! };
}

const spec = (key: string, more: Parameters<typeof toTaskSpec>[0] = { kind: 'k' }): TaskSpec => {
  const s = toTaskSpec(more);
  s.idempotencyKey = key;
  return s;
};

/** Let promise callbacks run (the fake streams answer synchronously). */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

function outcome<T>(p: Promise<T>): { value?: T; error?: MeshClientError; done: boolean } {
  const o: { value?: T; error?: MeshClientError; done: boolean } = { done: false };
  p.then(
    (v) => Object.assign(o, { value: v, done: true }),
    (e: MeshClientError) => Object.assign(o, { error: e, done: true }),
  );
  return o;
}

describe('SharedSubmit: answers per item', () => {
  it('new tasks answer QUEUED; a refused spec fails alone; a named task and a batch status go down the unary path', async () => {
    const r = rig();
    const outs = ['k1', 'k2', 'k3', 'k4', 'k5'].map((k) => outcome(r.s.submit(spec(k), undefined)));
    const c = r.last();
    expect(r.calls).toHaveLength(1);
    expect(c.writes.map((w) => w.task!.idempotencyKey)).toEqual(['k1', 'k2', 'k3', 'k4', 'k5']);
    c.answer(1, { taskId: 't1' });
    c.answer(2, { code: status.INVALID_ARGUMENT, message: 'task.kind is required' });
    c.answer(3, { taskId: 't3', existing: true });
    c.answer(4, { code: status.UNAVAILABLE, message: 'no leader', retryAfterMs: 100 });
    c.answer(5, { code: status.RESOURCE_EXHAUSTED, message: 'queue full', retryAfterMs: 40 });
    await settle();
    expect(outs[0]!.value).toEqual({ taskId: 't1', existing: false, state: TaskState.TASK_STATE_QUEUED });
    expect(outs[1]!.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(outs[2]!.value?.taskId).toBe('u-k3'); // asked again alone: the cell's state
    expect(outs[3]!.value?.taskId).toBe('u-k4');
    // Saturation: rejected with the unary trailer's hint (retries are opt-in).
    expect(outs[4]!.error?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(outs[4]!.error?.retryAfterMs).toBe(40);
    expect(r.fallbacks.map((f) => f.spec.idempotencyKey)).toEqual(['k3', 'k4']);
    expect(r.preferred.address).toBe('a');
  });

  it('with retryResourceExhausted, a saturated item goes down the unary path after the hint', async () => {
    const r = rig({ retryExhausted: true });
    const o = outcome(r.s.submit(spec('k'), 5000));
    r.last().answer(1, { code: status.RESOURCE_EXHAUSTED, message: 'queue full', retryAfterMs: 40 });
    r.clock.advance(39);
    expect(r.fallbacks).toHaveLength(0);
    r.clock.advance(1);
    await settle();
    expect(r.fallbacks).toHaveLength(1);
    expect(r.fallbacks[0]!.deadlineMs).toBe(4960);
    expect(o.value?.taskId).toBe('u-k');
  });
});

describe('SharedSubmit: batches in one message', () => {
  it('a batch goes as one message and resolves with its items; a broken stream sends it again whole, same keys', async () => {
    const r = rig({ maxInFlight: 4 });
    const batch = outcome(r.s.submitBatch([spec('b1'), spec('b2'), spec('b3')], undefined));
    const one = outcome(r.s.submit(spec('k1'), undefined));
    const two = outcome(r.s.submit(spec('k2'), undefined)); // past maxInFlight (the batch counts its three): waits
    const a = r.last();
    expect(a.writes.map((w) => [w.task?.idempotencyKey, w.tasks.map((t) => t.idempotencyKey)])).toEqual([
      [undefined, ['b1', 'b2', 'b3']],
      ['k1', []],
    ]);
    a.answer(2, { taskId: 't-k1' }); // room for k2
    expect(a.writes.map((w) => w.task?.idempotencyKey)).toEqual([undefined, 'k1', 'k2']);
    a.fail(status.UNAVAILABLE, 'Connection dropped');
    r.clock.advance(50);
    const b = r.last();
    expect(b.writes.map((w) => [w.task?.idempotencyKey, w.tasks.map((t) => t.idempotencyKey)])).toEqual([
      [undefined, ['b1', 'b2', 'b3']],
      ['k2', []],
    ]);
    b.answerItems(1, [{ taskId: 't-b1' }, { code: status.INVALID_ARGUMENT, message: 'bad' }, { taskId: 't-b3' }]);
    b.answer(2, { taskId: 't-k2' });
    await settle();
    // The items as SubmitBatch answers them (the coalescer reads them).
    expect(batch.value?.map((i) => [i.taskId, i.code])).toEqual([
      ['t-b1', 0],
      ['', status.INVALID_ARGUMENT],
      ['t-b3', 0],
    ]);
    expect([one.value?.taskId, two.value?.taskId]).toEqual(['t-k1', 't-k2']);
    expect(r.s.stats).toMatchObject({ streams: 2, broken: 1, resent: 2, fallbacks: 0 });
    expect(r.s.sent).toBe(0);
  });

  it('a cell that reads no `tasks` (it answers the batch in `item`): batches go as SubmitBatch from then on', async () => {
    const r = rig();
    const first = outcome(r.s.submitBatch([spec('b1'), spec('b2')], undefined));
    r.last().answer(1, { code: status.INVALID_ARGUMENT, message: 'task is required' });
    await settle();
    expect(first.value?.map((i) => i.taskId)).toEqual(['u-b1', 'u-b2']);
    expect(r.s.batchesOff).toBe(true);
    const later = outcome(r.s.submitBatch([spec('b3')], 5000));
    await settle();
    expect(later.value?.map((i) => i.taskId)).toEqual(['u-b3']);
    expect(r.batchFallbacks.map((b) => b.map((x) => x.idempotencyKey))).toEqual([['b1', 'b2'], ['b3']]);
    expect(r.last().writes).toHaveLength(1); // the later batch never went on the stream
  });

  it("items the cell could not decide (no leader) go down SubmitBatch's path alone; the decided ones stand", async () => {
    const r = rig();
    const o = outcome(r.s.submitBatch([spec('b1'), spec('b2'), spec('b3'), spec('b4')], 5000));
    r.last().answerItems(1, [
      { taskId: 't-b1' },
      { code: status.UNAVAILABLE, message: 'no leader', retryAfterMs: 100 },
      { code: status.INVALID_ARGUMENT, message: 'bad' },
      { code: status.RESOURCE_EXHAUSTED, message: 'queue full', retryAfterMs: 40 },
    ]);
    await settle();
    expect(r.batchFallbacks.map((b) => b.map((x) => x.idempotencyKey))).toEqual([['b2']]);
    // Saturation is the caller's to retry (retryResourceExhausted is off here): its item stands, with the hint.
    expect(o.value?.map((i) => [i.taskId, i.code, i.retryAfterMs])).toEqual([
      ['t-b1', 0, 0],
      ['u-b2', 0, 0],
      ['', status.INVALID_ARGUMENT, 0],
      ['', status.RESOURCE_EXHAUSTED, 40],
    ]);
  });

  it('a batch not answered by its deadline rejects DEADLINE_EXCEEDED', async () => {
    const r = rig({ retry: false });
    const o = outcome(r.s.submitBatch([spec('b1'), spec('b2')], 300));
    r.clock.advance(300);
    await settle();
    expect(o.error?.code).toBe(status.DEADLINE_EXCEEDED);
    expect(r.s.sent).toBe(0);
  });
});

describe('SharedSubmit: broken streams, hung replicas, deadlines', () => {
  it('a stream that breaks mid-flight: its unanswered submits go again, same keys, on a new stream at the next address', async () => {
    const r = rig();
    const outs = ['k1', 'k2', 'k3'].map((k) => outcome(r.s.submit(spec(k), undefined)));
    const a = r.last();
    a.answer(2, { taskId: 't2' });
    a.fail(status.UNAVAILABLE, 'Connection dropped');
    // Submits made meanwhile wait behind the resent ones (request order kept).
    const late = outcome(r.s.submit(spec('k4'), undefined));
    expect(r.calls).toHaveLength(1); // the backoff first
    r.clock.advance(50);
    const b = r.last();
    expect(b.address).toBe('b');
    expect(b.writes.map((w) => w.task!.idempotencyKey)).toEqual(['k1', 'k3', 'k4']);
    for (const w of b.writes) b.answer(w.requestId, { taskId: `t-${w.task!.idempotencyKey}` });
    await settle();
    expect(outs.map((o) => o.value?.taskId)).toEqual(['t-k1', 't2', 't-k3']);
    expect(late.value?.taskId).toBe('t-k4');
    expect(r.s.stats).toMatchObject({ streams: 2, broken: 1, resent: 2, fallbacks: 0 });
    expect(r.preferred.address).toBe('b');
  });

  it('a hung replica: past the attempt timeout (half the deadline) the stream is dropped and the submits resent; the deadline rejects', async () => {
    const r = rig();
    const o = outcome(r.s.submit(spec('k'), 1000));
    r.clock.advance(499);
    expect(r.calls).toHaveLength(1);
    r.clock.advance(1);
    expect(r.calls[0]!.cancelled).toBe(true);
    r.clock.advance(50);
    expect(r.last().address).toBe('b');
    expect(r.last().writes[0]!.task!.idempotencyKey).toBe('k');
    r.clock.advance(450); // the call's deadline
    await settle();
    expect(o.error?.code).toBe(status.DEADLINE_EXCEEDED);
    // A late answer finds nothing to settle.
    r.last().answer(1, { taskId: 'late' });
    expect(r.s.sent).toBe(0);
  });

  it('resends are bounded by the attempts; without submitRetry only UNAVAILABLE moves on, once per address', async () => {
    const r = rig({ retry: false });
    const o = outcome(r.s.submit(spec('k'), undefined));
    for (const addr of ['a', 'b', 'c']) {
      expect(r.last().address).toBe(addr);
      r.last().fail(status.UNAVAILABLE, 'down');
      r.clock.advance(2000);
    }
    await settle();
    expect(o.error?.code).toBe(status.UNAVAILABLE);
    expect(r.calls).toHaveLength(3);
    const cancelled = outcome(r.s.submit(spec('k2'), undefined));
    r.last().fail(status.CANCELLED, 'reset');
    await settle();
    expect(cancelled.error?.code).toBe(status.CANCELLED);
  });

  it('a stream refused for one of its messages (a tenant): every unanswered submit goes alone down the unary path', async () => {
    const r = rig();
    const outs = ['k1', 'k2', 'k3'].map((k) => outcome(r.s.submit(spec(k), undefined)));
    r.last().answer(1, { taskId: 't1' });
    r.last().fail(status.PERMISSION_DENIED, 'tenant x');
    await settle();
    expect(r.fallbacks.map((f) => f.spec.idempotencyKey)).toEqual(['k2', 'k3']);
    expect(outs.map((o) => o.done)).toEqual([true, true, true]);
    // The next submit opens a new stream at once.
    void r.s.submit(spec('k4'), undefined);
    expect(r.calls).toHaveLength(2);
  });

  it('a cell without SubmitStream (UNIMPLEMENTED): this submit and every later one take the unary path', async () => {
    const r = rig();
    const o = outcome(r.s.submit(spec('k1'), undefined));
    r.last().fail(status.UNIMPLEMENTED, 'unknown method');
    await settle();
    expect(o.value?.taskId).toBe('u-k1');
    expect(r.s.off).toBe(true);
    await r.s.submit(spec('k2'), undefined);
    expect(r.calls).toHaveLength(1);
    expect(r.fallbacks).toHaveLength(2);
    // A spec without a key never rides the stream (a resend must be safe).
    const fresh = rig();
    await fresh.s.submit(spec(''), undefined);
    expect(fresh.calls).toHaveLength(0);
  });
});

describe('SharedSubmit: backpressure and idle streams', () => {
  it('at most maxInFlight sent and unanswered; the rest wait in order', async () => {
    const r = rig({ maxInFlight: 2 });
    const outs = [1, 2, 3, 4, 5].map((i) => outcome(r.s.submit(spec(`k${i}`), undefined)));
    const c = r.last();
    expect(c.writes).toHaveLength(2);
    c.answer(1, { taskId: 't1' });
    expect(c.writes).toHaveLength(3);
    expect(r.s.sent).toBe(2);
    for (let id = 2; id <= 5; id++) c.answer(id, { taskId: `t${id}` });
    await settle();
    expect(outs.map((o) => o.value?.taskId)).toEqual(['t1', 't2', 't3', 't4', 't5']);
    expect(c.writes.map((w) => w.task!.idempotencyKey)).toEqual(['k1', 'k2', 'k3', 'k4', 'k5']);
  });

  it('an idle stream is half-closed after lingerMs; the next submit opens another', async () => {
    const r = rig();
    void r.s.submit(spec('k1'), undefined);
    r.last().answer(1, { taskId: 't1' });
    r.clock.advance(249);
    expect(r.calls[0]!.ended).toBe(false);
    void r.s.submit(spec('k2'), undefined); // in time: same stream
    expect(r.calls).toHaveLength(1);
    r.last().answer(2, { taskId: 't2' });
    r.clock.advance(250);
    expect(r.calls[0]!.ended).toBe(true);
    r.calls[0]!.fail(status.OK, '');
    void r.s.submit(spec('k3'), undefined);
    expect(r.calls).toHaveLength(2);
    expect(r.s.stats.broken).toBe(0);
  });
});

describe('SharedSubmit: every submit settles once, no task twice (seed ' + SEED + ')', () => {
  type Op =
    | { t: 'submit'; deadline: number }
    | { t: 'answer'; pick: number; how: 'ok' | 'bad' | 'busy' }
    | { t: 'break'; code: status }
    | { t: 'tick'; ms: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ t: fc.constant('submit' as const), deadline: fc.constantFrom(300, 2000, 10_000) }),
    fc.record({
      t: fc.constant('answer' as const),
      pick: fc.nat(),
      how: fc.constantFrom('ok' as const, 'ok' as const, 'bad' as const, 'busy' as const),
    }),
    fc.record({
      t: fc.constant('break' as const),
      code: fc.constantFrom(status.UNAVAILABLE, status.CANCELLED, status.INTERNAL, status.PERMISSION_DENIED, status.OK),
    }),
    fc.record({ t: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 400 }) }),
  );

  it('holds over random schedules of submits, answers, breaks and time', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), fc.boolean(), async (ops, acceptOnArrival) => {
        // The cell: one task per key, whichever path or attempt brings it.
        const ledger = new Map<string, string>();
        const accept = (key: string): { taskId: string; existing: boolean } => {
          const had = ledger.get(key);
          if (had) return { taskId: had, existing: true };
          ledger.set(key, `t-${key}`);
          return { taskId: `t-${key}`, existing: false };
        };
        const fallback = (s: TaskSpec): Promise<SubmitResponse> => {
          const a = accept(s.idempotencyKey);
          return Promise.resolve({ ...a, state: TaskState.TASK_STATE_QUEUED });
        };
        const r = rig({ maxInFlight: 3, fallback });
        const settled: number[] = [];
        const results: (string | undefined)[] = [];
        let n = 0;
        const keysSent = new Map<number, Set<string>>();
        const arrived = new Set<SubmitStreamRequest>();
        // Requests reach the cell as written; with acceptOnArrival it takes them at once, so a
        // break loses only their answers (the resend must find the same task).
        const onWrites = (): void => {
          for (const c of r.calls)
            for (const w of c.writes) {
              if (arrived.has(w)) continue;
              arrived.add(w);
              const key = w.task!.idempotencyKey;
              const i = Number(key.slice(1));
              (keysSent.get(i) ?? keysSent.set(i, new Set()).get(i)!).add(key);
              if (acceptOnArrival) accept(key);
            }
        };
        for (const o of ops) {
          if (o.t === 'submit') {
            const i = n++;
            settled[i] = 0;
            r.s.submit(spec(`k${i}`), o.deadline).then(
              (v) => {
                settled[i]!++;
                results[i] = v.taskId;
              },
              () => settled[i]!++,
            );
          } else if (o.t === 'answer') {
            const c = r.calls.find((x) => !x.over && x.unanswered.length > 0);
            const w = c?.unanswered[o.pick % c.unanswered.length];
            if (c && w) {
              if (o.how === 'ok') c.answer(w.requestId, accept(w.task!.idempotencyKey));
              else if (o.how === 'bad') c.answer(w.requestId, { code: status.INVALID_ARGUMENT, message: 'bad' });
              else c.answer(w.requestId, { code: status.UNAVAILABLE, message: 'no leader' });
            }
          } else if (o.t === 'break') {
            const c = r.calls.find((x) => !x.over);
            c?.fail(o.code, 'broken');
          } else r.clock.advance(o.ms);
          onWrites();
          await settle();
        }
        // Drain: answer everything still open, then let every deadline pass.
        for (let round = 0; round < 50; round++) {
          for (const c of r.calls)
            if (!c.over) for (const w of c.unanswered) c.answer(w.requestId, accept(w.task!.idempotencyKey));
          r.clock.advance(500);
          onWrites();
          await settle();
        }
        r.s.close();
        await settle();
        for (let i = 0; i < n; i++) {
          expect(settled[i], `submit ${i}`).toBe(1);
          // Every send of a submit carried its one key: the cell holds at most one task for it.
          expect(keysSent.get(i)?.size ?? 0).toBeLessThanOrEqual(1);
          if (results[i] !== undefined) expect(results[i]).toBe(ledger.get(`k${i}`));
        }
      }),
      { seed: SEED, numRuns: 150 },
    );
  });
});
