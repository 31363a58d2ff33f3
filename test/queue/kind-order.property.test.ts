// The order a pump serves kinds in (src/mesh/kind-order.ts, over TaskQueue.servesBefore) is the
// queue's own pop() order among kinds: its first kind is the kind pop() serves next, priorities and
// aging included, and the order is a strict one (servesBefore one way only).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { kindOrder } from '../../src/mesh/kind-order.js';
import { TaskQueue, type QueueTask } from '../../src/queue/index.js';
import { assertProperty } from '../policies/arbitraries.js';
import { pushArb, tickArb, type PushOp, type TickOp } from './arbitraries.js';

type Op = PushOp | { op: 'pop' } | TickOp;

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: pushArb },
  { weight: 3, arbitrary: fc.constant({ op: 'pop' as const }) },
  { weight: 2, arbitrary: tickArb },
);

const task = (id: string, kind: string, priority: QueueTask['priority']): QueueTask => ({
  id,
  kind,
  tenant: 't',
  priority,
});

describe('the order of kinds in a pump', () => {
  it('starts with the kind pop() serves next, and is a strict order of the kinds with tasks', () => {
    assertProperty(
      fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
        const q = new TaskQueue<QueueTask>({ capacity: 64, agingMs: 1000 });
        let now = 0;
        let seq = 0;
        for (const o of ops) {
          if (o.op === 'tick') now += o.ms;
          else if (o.op === 'push') {
            const deadline = o.ttl === null ? {} : { deadline: now + o.ttl };
            q.push({ ...task(`x${seq++}`, o.kind, o.priority), tenant: o.tenant, ...deadline }, now);
          } else {
            q.expire(now); // an expired head is not served: pop() drops it first
            const order = kindOrder(q, now);
            expect(new Set(order)).toEqual(new Set(q.kinds()));
            for (let i = 0; i + 1 < order.length; i++) {
              expect(q.servesBefore(order[i]!, order[i + 1]!, now)).toBe(true);
              expect(q.servesBefore(order[i + 1]!, order[i]!, now)).toBe(false);
            }
            expect(q.pop(now)?.task.kind).toBe(order[0]);
          }
        }
      }),
    );
  });

  it('puts a better priority first, an older task first within one, and an aged task first past its aging', () => {
    const q = new TaskQueue<QueueTask>({ capacity: 10, agingMs: 1000 });
    q.push(task('old-low', 'a', 'low'), 0); // kind a enters first
    q.push(task('normal', 'b', 'normal'), 100);
    q.push(task('new-low', 'c', 'low'), 200);
    expect(kindOrder(q, 300)).toEqual(['b', 'a', 'c']);
    // At 1,000 ms a's task has waited one aging period: normal, and older than b's.
    expect(kindOrder(q, 1000)).toEqual(['a', 'b', 'c']);
    expect(q.servesBefore('a', 'none', 1000)).toBe(true);
    expect(q.servesBefore('none', 'a', 1000)).toBe(false);
  });
});
