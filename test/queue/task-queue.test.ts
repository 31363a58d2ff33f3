import { describe, expect, it } from 'vitest';
import { TaskQueue, type QueueTask } from '../../src/queue/index.js';
import type { Priority } from '../../src/queue/index.js';

let n = 0;
const t = (priority: Priority = 'normal', extra: Partial<QueueTask> = {}): QueueTask => ({
  id: `t${n++}`,
  kind: 'a',
  tenant: 'acme',
  priority,
  ...extra,
});

const q = (opts: Partial<ConstructorParameters<typeof TaskQueue>[0]> = {}) =>
  new TaskQueue<QueueTask>({ capacity: 100, ...opts });

function drain(queue: TaskQueue<QueueTask>, now: number, accept?: (k: string) => boolean): QueueTask[] {
  const out: QueueTask[] = [];
  for (let p = queue.pop(now, accept); p; p = queue.pop(now, accept)) out.push(p.task);
  return out;
}

describe('TaskQueue', () => {
  it('serves higher priority first, FIFO within a priority', () => {
    const queue = q();
    const tasks = [t('low'), t('normal'), t('high'), t('critical'), t('normal'), t('critical')];
    tasks.forEach((x) => expect(queue.push(x, 0)).toEqual({ ok: true }));
    expect(drain(queue, 0).map((x) => x.priority)).toEqual(['critical', 'critical', 'high', 'normal', 'normal', 'low']);
    expect(drain(queue, 0)).toEqual([]);
  });

  it('orders by earliest deadline within a priority and tenant', () => {
    const queue = q();
    const none = t('normal');
    const late = t('normal', { deadline: 500 });
    const soon = t('normal', { deadline: 100 });
    [none, late, soon].forEach((x) => queue.push(x, 0));
    expect(drain(queue, 0)).toEqual([soon, late, none]);
  });

  it('a task without deadline is not starved by later deadline tasks (soft deadline)', () => {
    const queue = q({ softDeadlineMs: 1000 });
    const old = t('normal');
    queue.push(old, 0);
    queue.push(t('normal', { deadline: 5000 }), 900); // key 1900 > old key 1000
    expect(queue.pop(900)?.task).toBe(old);
  });

  it('ages: a waiting low task climbs one level per agingMs', () => {
    const queue = q({ agingMs: 1000 });
    const low = t('low');
    queue.push(low, 0);
    expect(queue.effectivePriority(low.id, 999)).toBe('low');
    expect(queue.effectivePriority(low.id, 1000)).toBe('normal');
    expect(queue.effectivePriority(low.id, 10_000)).toBe('critical');
    const crit = t('critical');
    queue.push(crit, 2500);
    expect(queue.pop(2500)?.task).toBe(crit); // low is only 'high' by now
    queue.push(crit, 2999);
    expect(queue.pop(3000)?.task).toBe(low); // both critical now; low waited longer
  });

  it('low never starves under a steady stream of critical work', () => {
    const queue = q({ agingMs: 1000 });
    const low = t('low');
    queue.push(low, 0);
    let now = 0;
    for (;;) {
      now += 100;
      queue.push(t('critical'), now);
      queue.push(t('critical'), now); // arrivals outpace service
      if (queue.pop(now)!.task === low) break;
      expect(now).toBeLessThanOrEqual(3000);
    }
    expect(now).toBe(3000);
  });

  it('removes expired tasks and reports them; pop never returns one', () => {
    const queue = q();
    const a = t('critical', { deadline: 100 });
    const b = t('normal', { deadline: 300 });
    const c = t('low');
    [a, b, c].forEach((x) => queue.push(x, 0));
    expect(queue.expire(50)).toEqual([]);
    expect(queue.expire(100)).toEqual([a]);
    expect(queue.pop(400)?.task).toBe(c);
    expect(queue.takeExpired()).toEqual([b]);
    expect(queue.size).toBe(0);
    expect(queue.push(t('normal', { deadline: 10 }), 10)).toEqual({ ok: false, reason: 'expired' });
  });

  it('shares a priority fairly across tenants (round robin)', () => {
    const queue = q();
    for (let i = 0; i < 10; i++) queue.push(t('normal', { tenant: 'big' }), 0);
    for (let i = 0; i < 3; i++) queue.push(t('normal', { tenant: 'small' }), 1);
    expect(
      drain(queue, 2)
        .map((x) => x.tenant)
        .slice(0, 7),
    ).toEqual(['big', 'small', 'big', 'small', 'big', 'small', 'big']);
  });

  it('weights tenants by quantum (deficit round robin)', () => {
    const queue = q({ tenantQuantum: (tenant) => (tenant === 'gold' ? 2 : 1) });
    for (let i = 0; i < 6; i++) queue.push(t('normal', { tenant: 'gold' }), 0);
    for (let i = 0; i < 6; i++) queue.push(t('normal', { tenant: 'free' }), 0);
    expect(
      drain(queue, 0)
        .map((x) => x.tenant[0])
        .join(''),
    ).toBe('ggfggfggffff');
  });

  it('a tenant whose queue emptied and filled again waits its turn like a newcomer', () => {
    const queue = q();
    for (let i = 0; i < 4; i++) queue.push(t('normal', { tenant: 'big' }), 0);
    queue.push(t('normal', { tenant: 'small' }), 0);
    // small takes its one task and goes idle; back with two, it joins at the end of the round.
    expect(
      drain(queue, 0)
        .map((x) => x.tenant[0])
        .slice(0, 2),
    ).toEqual(['b', 's']);
    for (let i = 0; i < 4; i++) queue.push(t('normal', { tenant: 'big' }), 1);
    queue.push(t('normal', { tenant: 'small' }), 1);
    const first = queue.pop(1)!.task.tenant;
    queue.push(t('normal', { tenant: 'small' }), 2);
    expect([first, ...drain(queue, 2).map((x) => x.tenant)].map((x) => x[0]).join('')).toBe('bsbsbb');
  });

  it('keeps at most a bounded number of emptied kinds and tenants (memory bounded by queued tasks)', () => {
    const queue = q();
    for (let i = 0; i < 500; i++) {
      queue.push(t('normal', { kind: `k${i}`, tenant: `t${i}` }), i);
      expect(queue.pop(i)?.task.kind).toBe(`k${i}`);
    }
    const inside = queue as unknown as { kindLanes: Map<string, unknown>; perTenant: Map<string, number> };
    expect(inside.kindLanes.size).toBeLessThanOrEqual(33);
    expect(inside.perTenant.size).toBeLessThanOrEqual(33);
    expect([...queue.kinds()]).toEqual([]);
    expect(queue.sizeOfKind('k499')).toBe(0);
    // An emptied kind still serves, and tenant caps still count from 0.
    const capped = q({ maxPerTenant: 1 });
    capped.push(t('normal', { tenant: 'x' }), 0);
    capped.pop(0);
    expect(capped.push(t('normal', { tenant: 'x' }), 0).ok).toBe(true);
    expect(capped.push(t('normal', { tenant: 'x' }), 0).ok).toBe(false);
  });

  it('is bounded: full and tenant-full answers carry a retry hint', () => {
    const queue = q({ capacity: 3, maxPerTenant: 2, minRetryAfterMs: 10, maxRetryAfterMs: 900 });
    expect(queue.push(t('normal', { tenant: 'x' }), 0).ok).toBe(true);
    expect(queue.push(t('normal', { tenant: 'x' }), 0).ok).toBe(true);
    expect(queue.push(t('normal', { tenant: 'x' }), 0)).toEqual({
      ok: false,
      reason: 'tenant-full',
      retryAfterMs: 900,
    });
    expect(queue.push(t('normal', { tenant: 'y' }), 0).ok).toBe(true);
    expect(queue.push(t('normal', { tenant: 'z' }), 0)).toEqual({ ok: false, reason: 'full', retryAfterMs: 900 });
    expect(queue.size).toBe(3);
  });

  it('derives the retry hint from the recent drain rate', () => {
    const queue = q({ capacity: 1000 });
    for (let i = 0; i < 200; i++) queue.push(t(), 0);
    for (let i = 1; i <= 150; i++) queue.pop(i * 10); // 0.1 pops/ms
    while (queue.size < 1000) queue.push(t(), 2000);
    // 1% of capacity = 10 tasks at 0.1/ms → 100 ms.
    expect(queue.push(t(), 2000)).toEqual({ ok: false, reason: 'full', retryAfterMs: 100 });
    // Pops stopped at t=1500: the open window (49 pops since t=1010) slows the estimate.
    expect(queue.push(t(), 4000)).toEqual({ ok: false, reason: 'full', retryAfterMs: Math.ceil(10 / (49 / 2990)) });
    expect(queue.push(t(), 1e7)).toEqual({ ok: false, reason: 'full', retryAfterMs: 5000 });
  });

  it('rejects a duplicate id', () => {
    const queue = q();
    const a = t();
    queue.push(a, 0);
    expect(queue.push({ ...a }, 1)).toEqual({ ok: false, reason: 'duplicate' });
    expect(queue.size).toBe(1);
  });

  it('cancels by id', () => {
    const queue = q();
    const [a, b] = [t('high'), t('high', { deadline: 50 })];
    queue.push(a, 0);
    queue.push(b, 0);
    expect(queue.remove(b.id)).toBe(b);
    expect(queue.remove(b.id)).toBeUndefined();
    expect(queue.expire(100)).toEqual([]); // a removed task never expires
    expect(drain(queue, 100)).toEqual([a]);
  });

  it('gives per-kind access and keeps kind indexes bounded', () => {
    const queue = q();
    const a = t('critical', { kind: 'a' });
    const b = t('low', { kind: 'b' });
    queue.push(a, 0);
    queue.push(b, 0);
    expect(queue.sizeOfKind('b')).toBe(1);
    expect(queue.popKind('b', 0)?.task).toBe(b);
    expect(queue.pop(0, (k) => k === 'b')).toBeUndefined();
    expect([...queue.kinds()]).toEqual(['a']);
    expect(queue.pop(0)?.task).toBe(a);
    expect([...queue.kinds()]).toEqual([]);
  });

  it('reports depth per priority', () => {
    const queue = q();
    ['critical', 'low', 'low', 'normal'].forEach((p) => queue.push(t(p as Priority), 0));
    expect(queue.depthByPriority()).toEqual({ critical: 1, high: 0, normal: 1, low: 2 });
    queue.pop(0);
    expect(queue.depthByPriority()).toEqual({ critical: 0, high: 0, normal: 1, low: 2 });
  });

  it('requeue keeps the original age', () => {
    const queue = q({ agingMs: 1000 });
    const low = t('low');
    queue.push(low, 0);
    const popped = queue.pop(2000)!;
    expect(popped).toEqual({ task: low, enqueuedAt: 0, waitedMs: 2000 });
    queue.push(t('high'), 2000);
    expect(queue.requeue(low, popped.enqueuedAt)).toBe(true);
    expect(queue.requeue(low, popped.enqueuedAt)).toBe(false);
    expect(queue.effectivePriority(low.id, 2000)).toBe('high');
    expect(queue.pop(2000)?.task).toBe(low); // same level, waited longer
  });

  it('validates options', () => {
    expect(() => new TaskQueue({ capacity: 0 })).toThrow(/capacity/);
    expect(() => new TaskQueue({ capacity: 1, agingMs: 0 })).toThrow(/agingMs/);
  });
});
