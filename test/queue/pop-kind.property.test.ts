// popKind(kind) serves in pop()'s order restricted to the kind: two queues fed the same
// operations, one popped by popKind and one by pop with a kind filter, give the same tasks.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TaskQueue, type QueueTask } from '../../src/queue/index.js';
import { assertProperty } from '../policies/arbitraries.js';
import { pushArb, tickArb, type PushOp, type TickOp } from './arbitraries.js';

type Op = PushOp | { op: 'pop'; kind: string } | TickOp;

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: pushArb },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('pop' as const), kind: fc.constantFrom('a', 'b', 'c', 'd') }) },
  { weight: 2, arbitrary: tickArb },
);

describe('TaskQueue.popKind', () => {
  it('gives what pop gives restricted to the kind, in the same order, expiries and aging included', () => {
    assertProperty(
      fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
        const byKind = new TaskQueue<QueueTask>({ capacity: 64, agingMs: 1000 });
        const filtered = new TaskQueue<QueueTask>({ capacity: 64, agingMs: 1000 });
        let now = 0;
        let seq = 0;
        for (const o of ops) {
          if (o.op === 'tick') now += o.ms;
          else if (o.op === 'push') {
            const task: QueueTask = {
              id: `x${seq++}`,
              kind: o.kind,
              tenant: o.tenant,
              priority: o.priority,
              ...(o.ttl === null ? {} : { deadline: now + o.ttl }),
            };
            expect(byKind.push(task, now).ok).toBe(filtered.push(task, now).ok);
          } else {
            const a = byKind.popKind(o.kind, now);
            const b = filtered.pop(now, (k) => k === o.kind);
            expect(a?.task.id).toBe(b?.task.id);
            expect(a?.enqueuedAt).toBe(b?.enqueuedAt);
          }
          expect(byKind.size).toBe(filtered.size);
          expect(byKind.takeExpired().map((t) => t.id)).toEqual(filtered.takeExpired().map((t) => t.id));
        }
      }),
    );
  });
});
