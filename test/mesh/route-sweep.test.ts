// Forwarded routes expire a lease and the slack after they came or were last
// sent on (routes.ts `lapsed`, relay.ts `fire`): swept from the route table by
// one wheel entry per cell, not one entry per attempt. The table's answer is
// checked against a model of the per-attempt entries it replaced (random
// operations, seeded), and the relay's sweep on virtual time.
import { describe, expect, it } from 'vitest';
import { Dispatch, TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import { Relay, type RelayDeps } from '../../src/mesh/relay.js';
import { RouteTable } from '../../src/mesh/routes.js';
import { CellTimers } from '../../src/mesh/timers.js';
import { makeItem, routeKey, type Origin, type WorkItem } from '../../src/mesh/types.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import { TaskQueue } from '../../src/queue/index.js';

const SLACK = 500;
const PARENT: Origin = { type: 'parent' };

/** mulberry32: a small seeded generator (the seed is printed on failure). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function forwarded(n: number, leaseMs: number, now: number, origin: Origin = PARENT): WorkItem {
  const spec = TaskSpec.fromPartial({ kind: 'k', timeoutMs: leaseMs });
  return makeItem(`t${n}`, 1, '/', spec, origin, undefined, routeKey(`t${n}`, 1), leaseMs, undefined, now);
}

describe('RouteTable.lapsed', () => {
  it('matches per-attempt expiry entries over random admits, sends and drops', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = rng(seed);
      const routes = new RouteTable(new TaskQueue<WorkItem>({ capacity: 10_000 }));
      /** The replaced design: per route, due = its last send (or arrival) + lease + slack. */
      const model = new Map<string, WorkItem>();
      let now = 0;
      let n = 0;
      for (let step = 0; step < 400; step++) {
        now += Math.floor(r() * 300);
        const op = r();
        if (op < 0.4) {
          const item = forwarded(n++, 500 + Math.floor(r() * 4000), now, r() < 0.2 ? { type: 'home' } : PARENT);
          if (item.origin.type === 'home') routes.sent(item);
          else expect(routes.admit(item, now).ok).toBe(true);
          model.set(item.key, item);
        } else if (op < 0.6 && model.size > 0) {
          const item = [...model.values()][Math.floor(r() * model.size)]!;
          item.via = { type: 'child', cell: '/c' };
          item.sentMs = now;
          routes.sent(item);
        } else if (op < 0.75 && model.size > 0) {
          const item = [...model.values()][Math.floor(r() * model.size)]!;
          routes.drop(item);
          model.delete(item.key);
        } else {
          const out: WorkItem[] = [];
          const next = routes.lapsed(now, SLACK, out);
          const forward = [...model.values()].filter((i) => i.origin.type !== 'home');
          const due = (i: WorkItem): number => i.sentMs + i.leaseMs + SLACK;
          const want = forward.filter((i) => due(i) <= now).map((i) => i.key);
          const rest = forward.filter((i) => due(i) > now).map(due);
          try {
            expect(out.map((i) => i.key).sort()).toEqual(want.sort());
            expect(next).toBe(rest.length > 0 ? Math.min(...rest) : Infinity);
          } catch (err) {
            throw new Error(`seed ${seed}, step ${step}: ${String(err)}`, { cause: err });
          }
          for (const item of out) {
            routes.drop(item);
            model.delete(item.key);
          }
        }
      }
    }
  });
});

describe('Relay route sweep', () => {
  function relay() {
    const scheduler = new VirtualScheduler(1_000_000);
    const queue = new TaskQueue<WorkItem>({ capacity: 10_000 });
    const routes = new RouteTable(queue);
    const cancels: string[] = [];
    let scheduled = 0;
    const timers: CellTimers = new CellTimers(
      scheduler,
      10,
      (e) => {
        if (e.type === 'route') relayOf.fire(e);
      },
      () => {},
    );
    const schedule = timers.schedule.bind(timers);
    timers.schedule = (due, e) => {
      scheduled++;
      schedule(due, e);
    };
    const deps = {
      path: '/r',
      settings: { leaseSlackMs: SLACK, maxPayloadBytes: 1 << 20, forwardBuffer: 4096, taskTimeoutMs: 3000 },
      log: { debug: () => {} },
      scheduler,
      routes,
      timers,
      links: { children: { sendCancel: (_cell: string, ref: { taskId: string }) => cancels.push(ref.taskId) } },
      home: { ledger: { has: () => false } },
      meter: { rejected: () => {}, resultBack: () => {} },
      tracer: { enabled: false },
      wake: () => {},
      outcomes: { result: () => {}, lost: () => {}, handedBack: () => {} },
    } as unknown as RelayDeps;
    const relayOf = new Relay(deps);
    timers.start();
    const accept = (n: number, timeoutMs: number): void => {
      const spec = TaskSpec.fromPartial({ kind: 'k', timeoutMs });
      const acks = relayOf.acceptForwarded(
        [Dispatch.fromPartial({ taskId: `t${n}`, attempt: 1, homeCell: '/', spec })],
        PARENT,
      );
      expect(acks[0]!.accepted).toBe(true);
    };
    /** Take the route out of the queue and send it on to child /c (as the dispatcher does). */
    const send = (n: number): void => {
      const item = routes.get(routeKey(`t${n}`, 1))!;
      queue.remove(item.id);
      routes.taken(item);
      item.via = { type: 'child', cell: '/c' };
      item.sentMs = scheduler.now();
      routes.sent(item);
    };
    return { scheduler, routes, cancels, accept, send, scheduled: () => scheduled };
  }

  it('drops a forwarded route a lease and the slack after it was last sent on, with one wheel entry at a time', () => {
    const r = relay();
    // Each attempt's lease is its timeout and the slack (leaseFor), its route lasts the slack longer: 4,000 ms.
    for (let n = 0; n < 100; n++) r.accept(n, 3000);
    // One entry for all: the first sets the sweep's time, the others are due no earlier.
    expect(r.scheduled()).toBe(1);
    for (let n = 0; n < 100; n++) r.send(n);
    r.scheduler.advance(2000);
    r.send(7); // t7 sent on again 2 s later: its route lasts until then + 4,000
    r.scheduler.advance(2100); // 4.1 s: every other route lapsed
    expect(r.cancels.length).toBe(99);
    expect(r.cancels).not.toContain('t7');
    expect(r.routes.size).toBe(1);
    r.scheduler.advance(2000); // 6.1 s: t7's time came too
    expect(r.cancels).toContain('t7');
    expect(r.routes.size).toBe(0);
    // The first sweep found t7 left and armed the next for it; none since (the table is empty).
    expect(r.scheduled()).toBe(2);
  });

  it('keeps a route that ended before its time out of the sweep (nothing to cancel)', () => {
    const r = relay();
    r.accept(1, 3000);
    r.send(1);
    r.routes.drop(r.routes.get(routeKey('t1', 1))!); // its result went back
    r.scheduler.advance(5000);
    expect(r.cancels).toEqual([]);
    expect(r.scheduled()).toBe(1);
  });

  it('arms an earlier sweep for a route with a shorter lease that comes later', () => {
    const r = relay();
    r.accept(1, 10_000);
    r.scheduler.advance(100);
    r.accept(2, 1000); // due at 100 + 2,000 ms, before t1's 11,000
    expect(r.scheduled()).toBe(2);
    r.scheduler.advance(2100);
    expect(r.cancels).toEqual([]); // queued here, never sent on: dropped without a cancel downstream
    expect(r.routes.has(routeKey('t2', 1))).toBe(false);
    expect(r.routes.has(routeKey('t1', 1))).toBe(true);
    expect(r.scheduled()).toBe(3); // armed again, for t1
    r.scheduler.advance(9000);
    expect(r.routes.size).toBe(0);
  });

  it('sweeps at most once per half slack while routes lapse a few ms apart, each by half the slack after its time', () => {
    const r = relay();
    const cancelledAt = new Map<string, number>();
    const dueAt = new Map<string, number>();
    for (let n = 0; n < 200; n++) {
      r.accept(n, 3000);
      r.send(n);
      dueAt.set(`t${n}`, r.scheduler.now() + 3000 + SLACK + SLACK);
      r.scheduler.advance(5);
    }
    const before = r.scheduled();
    for (let step = 0; step < 100 && r.routes.size > 0; step++) {
      const seen = r.cancels.length;
      r.scheduler.advance(50);
      for (const id of r.cancels.slice(seen)) cancelledAt.set(id, r.scheduler.now());
    }
    expect(r.routes.size).toBe(0);
    expect(cancelledAt.size).toBe(200);
    // 1,000 ms of lapsing routes: one sweep per 250 ms and the last, not one per route (200 before).
    expect(r.scheduled() - before).toBeLessThanOrEqual(6);
    for (const [id, at] of cancelledAt) {
      expect(at, id).toBeGreaterThanOrEqual(dueAt.get(id)! - 50);
      expect(at, id).toBeLessThanOrEqual(dueAt.get(id)! + SLACK / 2 + 50);
    }
  });
});
