import { describe, expect, it } from 'vitest';
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

  it('rejects bad config', () => {
    expect(() => picker('zone-least-conn', [], { queueWeight: -1 })).toThrow(/>= 0/);
    expect(() => picker('zone-least-conn', [], { weight: 1 })).toThrow(
      /unknown config key "weight"; known keys: queueWeight/,
    );
  });
});
