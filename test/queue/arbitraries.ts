// Operations the queue's property tests share: a push of a task of kind a-c, tenant t1-t3,
// any priority, with a deadline from already past to 3 s away (or none), and a clock tick.
import fc from 'fast-check';
import { PRIORITIES } from '../../src/queue/index.js';

export type PushOp = {
  op: 'push';
  kind: string;
  tenant: string;
  priority: (typeof PRIORITIES)[number];
  ttl: number | null;
};
export type TickOp = { op: 'tick'; ms: number };

export const pushArb: fc.Arbitrary<PushOp> = fc.record({
  op: fc.constant('push' as const),
  kind: fc.constantFrom('a', 'b', 'c'),
  tenant: fc.constantFrom('t1', 't2', 't3'),
  priority: fc.constantFrom(...PRIORITIES),
  ttl: fc.option(fc.integer({ min: -10, max: 3000 }), { nil: null }),
});

export const tickArb: fc.Arbitrary<TickOp> = fc.record({
  op: fc.constant('tick' as const),
  ms: fc.integer({ min: 0, max: 1500 }),
});
