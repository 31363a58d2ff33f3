import { describe, expect, it } from 'vitest';
import { createPolicy, seededRandom } from '../../src/policies/index.js';
import { cand, picker, tally, task } from './helpers.js';

describe('zone-least-conn', () => {
  it('prefers the idler node', () => {
    const p = picker('zone-least-conn', [
      cand('busy', { active: 8, slots: { a: [2, 10] } }),
      cand('idle', { active: 1, slots: { a: [9, 10] } }),
    ]);
    expect(p.pick(task())).toEqual({ type: 'route', candidate: 'idle' });
  });

  it('counts queue depth as load', () => {
    const p = picker('zone-least-conn', [
      cand('queued', { active: 1, queueDepth: 10 }),
      cand('running', { active: 3 }),
    ]);
    expect(p.pick(task())).toEqual({ type: 'route', candidate: 'running' });
  });

  it('queueWeight 0 ignores queue depth', () => {
    const p = picker(
      'zone-least-conn',
      [cand('queued', { active: 1, queueDepth: 10 }), cand('running', { active: 3 })],
      {
        queueWeight: 0,
      },
    );
    expect(p.pick(task())).toEqual({ type: 'route', candidate: 'queued' });
  });

  it('normalises by capacity', () => {
    const big = cand('big', { active: 20, slots: { a: [80, 100] } });
    const small = cand('small', { active: 5, slots: { a: [5, 10] } });
    expect(picker('zone-least-conn', [small, big]).pick(task())).toEqual({ type: 'route', candidate: 'big' });
  });

  it('counts its own dispatches, so a burst spreads evenly', () => {
    expect(tally(picker('zone-least-conn', [cand('x'), cand('y')]), 10)).toEqual({ x: 5, y: 5 });
  });

  it('breaks ties at random, reproducibly per seed', () => {
    const firsts = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) {
      const r = picker('zone-least-conn', [cand('x'), cand('y')], undefined, seed).pick(task());
      if (r.type === 'route') firsts.add(r.candidate);
    }
    expect(firsts).toEqual(new Set(['x', 'y']));
  });

  it('counts what it sent across picker rebuilds until the summary of the child shows it', () => {
    const policy = createPolicy('zone-least-conn', undefined, { random: seededRandom(3) });
    // t=0: both summaries taken at -100 ms.
    const p0 = policy.buildPicker([cand('x', { summaryAgeMs: 100 }), cand('y', { summaryAgeMs: 100 })], 0);
    expect(tally(p0, 10)).toEqual({ x: 5, y: 5 });
    // t=10: y reports its 5 (a fresh summary), x's is still the old one. Without the carried count
    // x would look idle and take the next 10 alone.
    const p1 = policy.buildPicker([cand('x', { summaryAgeMs: 110 }), cand('y', { active: 5, summaryAgeMs: 0 })], 10);
    expect(tally(p1, 10)).toEqual({ x: 5, y: 5 });
    // t=20: x's summary taken at 5 shows the routes of the picker built at 0, not those of the one
    // built at 10: x is at 5 + 5, like y. Counting the first 5 again would send both picks to y.
    const p2 = policy.buildPicker(
      [cand('x', { active: 5, summaryAgeMs: 15 }), cand('y', { active: 10, summaryAgeMs: 0 })],
      20,
    );
    expect(tally(p2, 2)).toEqual({ x: 1, y: 1 });
    // t=30: a summary taken at 25 shows all ten; nothing is unseen any more.
    const p3 = policy.buildPicker(
      [cand('x', { active: 11, summaryAgeMs: 5 }), cand('y', { active: 11, summaryAgeMs: 5 })],
      30,
    );
    expect(tally(p3, 2)).toEqual({ x: 1, y: 1 });
  });

  it('with stale summaries, picks spread over the plausible best instead of herding on one', () => {
    const kids = (ageMs: number) => [
      cand('idle', { slots: { a: [100, 100] }, summaryAgeMs: ageMs, latencyEwmaMs: 100 }),
      ...['b', 'c', 'd', 'e'].map((id) =>
        cand(id, { active: 2, slots: { a: [98, 100] }, summaryAgeMs: ageMs, latencyEwmaMs: 100 }),
      ),
    ];
    // Fresh: the least loaded takes every pick until it catches up (2 picks), then all five share.
    expect(tally(picker('zone-least-conn', kids(0)), 2)).toEqual({ idle: 2 });
    // 500 ms old with 100 ms tasks: the others may have finished theirs, so all five are plausible
    // and the first pick is the better of two drawn from them (idle wins only when drawn: 2 in 5).
    const first: Record<string, number> = {};
    for (let seed = 1; seed <= 1000; seed++) {
      const r = picker('zone-least-conn', kids(500), undefined, seed).pick(task());
      if (r.type === 'route') first[r.candidate] = (first[r.candidate] ?? 0) + 1;
    }
    expect(first['idle']).toBeGreaterThan(300);
    expect(first['idle']).toBeLessThan(500);
    for (const id of ['b', 'c', 'd', 'e']) expect(first[id]).toBeGreaterThan(100);
  });

  it('rejects bad config', () => {
    expect(() => picker('zone-least-conn', [], { choices: 0 })).toThrow(/"choices" must be >= 1/);
    expect(() => picker('zone-least-conn', [], { choices: 1.5 })).toThrow(/"choices" must be an integer/);
    expect(() => picker('zone-least-conn', [], { queueWeight: -1 })).toThrow(/>= 0/);
    expect(() => picker('zone-least-conn', [], { weight: 1 })).toThrow(
      /unknown config key "weight"; known keys: queueWeight/,
    );
  });
});
