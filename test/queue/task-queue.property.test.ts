// Model-based properties: random operation sequences against a plain model.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PRIORITIES, PRIORITY_RANK, TaskQueue, type QueueTask } from '../../src/queue/index.js';
import { assertProperty } from '../policies/arbitraries.js';
import { pushArb, tickArb, type PushOp, type TickOp } from './arbitraries.js';

type Op = PushOp | { op: 'pop'; kinds: string[] | null } | { op: 'remove'; pick: number } | { op: 'expire' } | TickOp;

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: pushArb },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('pop' as const),
      kinds: fc.option(fc.subarray(['a', 'b', 'c']), { nil: null }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('expire' as const) }) },
  { weight: 2, arbitrary: tickArb },
);

const AGING = 1000;
const effRank = (task: QueueTask, at: number, now: number) =>
  Math.max(0, PRIORITY_RANK[task.priority] - Math.floor(Math.max(0, now - at) / AGING));

describe('TaskQueue properties', () => {
  it('never loses or duplicates, respects capacity, serves by effective priority, never returns expired', () => {
    assertProperty(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(opArb, { maxLength: 150 }), (capacity, ops) => {
        const queue = new TaskQueue<QueueTask>({ capacity, agingMs: AGING });
        const model = new Map<string, { task: QueueTask; at: number }>();
        const outcome = new Map<string, string>(); // id → popped/removed/expired
        let now = 0;
        let seq = 0;
        const finish = (id: string, how: string) => {
          expect(outcome.has(id), `${id} ended twice`).toBe(false);
          expect(model.has(id), `${id} ended but was not queued`).toBe(true);
          outcome.set(id, how);
          model.delete(id);
        };
        for (const o of ops) {
          if (o.op === 'push') {
            const task: QueueTask = {
              id: `x${seq++}`,
              kind: o.kind,
              tenant: o.tenant,
              priority: o.priority,
              ...(o.ttl !== null ? { deadline: now + o.ttl } : {}),
            };
            const r = queue.push(task, now);
            if (o.ttl !== null && o.ttl <= 0) expect(r).toEqual({ ok: false, reason: 'expired' });
            else if (model.size >= capacity) expect(r).toMatchObject({ ok: false, reason: 'full' });
            else expect(r).toEqual({ ok: true });
            if (r.ok) model.set(task.id, { task, at: now });
          } else if (o.op === 'pop') {
            const accept = o.kinds === null ? undefined : (k: string) => o.kinds!.includes(k);
            const live = [...model.values()].filter(
              (e) => (e.task.deadline ?? Infinity) > now && (accept === undefined || accept(e.task.kind)),
            );
            const p = queue.pop(now, accept);
            for (const x of queue.takeExpired()) {
              expect(x.deadline!).toBeLessThanOrEqual(now);
              finish(x.id, 'expired');
            }
            if (live.length === 0) {
              expect(p).toBeUndefined();
            } else {
              expect(p).toBeDefined();
              const got = p!.task;
              expect(got.deadline ?? Infinity).toBeGreaterThan(now);
              expect(accept === undefined || accept(got.kind)).toBe(true);
              // Its lane (kind, priority) holds a task at the best effective rank.
              const best = Math.min(...live.map((e) => effRank(e.task, e.at, now)));
              const lane = live.filter((e) => e.task.kind === got.kind && e.task.priority === got.priority);
              expect(Math.min(...lane.map((e) => effRank(e.task, e.at, now)))).toBe(best);
              expect(p!.enqueuedAt).toBe(model.get(got.id)!.at);
              finish(got.id, 'popped');
            }
          } else if (o.op === 'remove') {
            const ids = [...model.keys()];
            const id = ids.length ? ids[o.pick % ids.length]! : 'nope';
            const r = queue.remove(id);
            if (ids.length) {
              expect(r?.id).toBe(id);
              finish(id, 'removed');
            } else expect(r).toBeUndefined();
          } else if (o.op === 'expire') {
            const want = [...model.values()].filter((e) => (e.task.deadline ?? Infinity) <= now).map((e) => e.task.id);
            const got = queue.expire(now).map((x) => x.id);
            expect(new Set(got)).toEqual(new Set(want));
            got.forEach((id) => finish(id, 'expired'));
          } else {
            now += o.ms;
          }
          expect(queue.size).toBe(model.size);
          expect(queue.size).toBeLessThanOrEqual(capacity);
        }
        // Everything still queued is retrievable exactly once.
        const rest = [...model.keys()].filter((id) => queue.has(id));
        expect(rest.length).toBe(model.size);
      }),
      300,
    );
  });

  it('drains a random backlog by effective priority (aging), oldest lane first on ties', () => {
    assertProperty(
      fc.property(
        fc.array(fc.record({ priority: fc.constantFrom(...PRIORITIES), at: fc.integer({ min: 0, max: 5000 }) }), {
          minLength: 1,
          maxLength: 60,
        }),
        fc.integer({ min: 0, max: 5000 }),
        fc.integer({ min: 0, max: 200 }),
        (pushes, extra, step) => {
          const queue = new TaskQueue<QueueTask>({ capacity: 100, agingMs: AGING });
          const sorted = pushes.map((p, i) => ({ ...p, i })).sort((a, b) => a.at - b.at);
          const model = new Map<string, { task: QueueTask; at: number }>();
          for (const p of sorted) {
            const task: QueueTask = { id: `z${p.i}`, kind: 'k', tenant: 'one', priority: p.priority };
            queue.push(task, p.at);
            model.set(task.id, { task, at: p.at });
          }
          let now = sorted[sorted.length - 1]!.at + extra;
          for (let p = queue.pop(now); p; p = queue.pop(now)) {
            const live = [...model.values()];
            const laneMin = (pr: string) =>
              Math.min(...live.filter((e) => e.task.priority === pr).map((e) => effRank(e.task, e.at, now)));
            const best = Math.min(...live.map((e) => effRank(e.task, e.at, now)));
            expect(laneMin(p.task.priority)).toBe(best);
            const oldest = (pr: string) => Math.min(...live.filter((e) => e.task.priority === pr).map((e) => e.at));
            const tied = PRIORITIES.filter((pr) => live.some((e) => e.task.priority === pr) && laneMin(pr) === best);
            expect(oldest(p.task.priority)).toBe(Math.min(...tied.map(oldest)));
            model.delete(p.task.id);
            now += step;
          }
          expect(model.size).toBe(0);
        },
      ),
    );
  });

  it('tenant fairness: between two pops of a backlogged tenant, no other tenant is served twice', () => {
    assertProperty(
      fc.property(
        fc.array(fc.oneof(fc.constantFrom('t1', 't2', 't3', 't4'), fc.constant(null)), { maxLength: 200 }),
        (ops) => {
          // One kind, one priority, no aging: only the tenant DRR decides.
          const queue = new TaskQueue<QueueTask>({ capacity: 1000, agingMs: Infinity });
          const backlog = new Map<string, number>();
          const sinceLast = new Map<string, Map<string, number>>(); // tenant → others served since its last pop
          let i = 0;
          for (const o of ops) {
            if (o !== null) {
              queue.push({ id: `y${i++}`, kind: 'k', tenant: o, priority: 'normal' }, 0);
              if (!backlog.get(o)) sinceLast.set(o, new Map());
              backlog.set(o, (backlog.get(o) ?? 0) + 1);
              continue;
            }
            const p = queue.pop(0);
            if (!p) {
              expect([...backlog.values()].every((n) => n === 0)).toBe(true);
              continue;
            }
            const who = p.task.tenant;
            backlog.set(who, backlog.get(who)! - 1);
            sinceLast.set(who, new Map());
            for (const [tenant, seen] of sinceLast) {
              if (tenant === who || !backlog.get(tenant)) continue;
              const n = (seen.get(who) ?? 0) + 1;
              seen.set(who, n);
              expect(n, `${who} served ${n}x while ${tenant} waited`).toBeLessThanOrEqual(1);
            }
          }
        },
      ),
      300,
    );
  });
});
