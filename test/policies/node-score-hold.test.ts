// node-score's hold-back (src/policies/hold-back.ts) through the picker: a task
// the dispatcher keeps (queuedAhead set) waits for a full faster agent's slot
// rather than go to an idle slow one, read from the live index (the picker's own
// routes, releases and update()), and never when it could not go at all, nor
// past maxHoldMs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NODE_SCORE_DEFAULTS, QUEUE_HELD, type Candidate } from '../../src/policies/index.js';
import { assertProperty, candidatesArb, taskArb } from './arbitraries.js';
import { cand, picker, task } from './helpers.js';

// Fast: 4 agents of 4 slots at 20 ms, all full (16 busy: they free 0.8 slots a ms).
// Slow: one idle agent at 160 ms. Waiting for a fast slot: (k + 1)/0.8 + 20·1.75 ms, held
// while that plus a quarter of 20·1.75 (35 / HOLD_GAIN) is under 160 ms: up to k = 91.
const fleet = (): Candidate[] => [
  ...[0, 1, 2, 3].map((i) => cand(`fast-${i}`, { slots: { a: [0, 4] }, active: 4, latencyEwmaMs: 20 })),
  cand('slow', { slots: { a: [4, 4] }, latencyEwmaMs: 160 }),
];
const held = { type: 'queue', reason: 'waiting for a faster candidate to free a slot' };
const kept = (queuedAhead: number, waitedMs: number) => task('a', { queuedAhead, waitedMs });

describe('node-score holds a task back for a faster agent', () => {
  it('while waiting for a fast slot is the shorter delay; without queuedAhead it routes', () => {
    expect(QUEUE_HELD).toEqual(held);
    expect(picker('node-score', fleet()).pick(kept(0, 0))).toBe(QUEUE_HELD);
    // A dispatcher that does not keep held tasks: work-conserving as before.
    expect(picker('node-score', fleet()).pick(task())).toEqual({ type: 'route', candidate: 'slow' });
  });

  it('routes to the slow agent past the queue threshold, or once it waited maxHoldMs', () => {
    expect(picker('node-score', fleet()).pick(kept(91, 0))).toBe(QUEUE_HELD);
    expect(picker('node-score', fleet()).pick(kept(92, 0))).toEqual({ type: 'route', candidate: 'slow' });
    expect(picker('node-score', fleet()).pick(kept(0, 499))).toBe(QUEUE_HELD);
    expect(picker('node-score', fleet()).pick(kept(0, 500))).toEqual({ type: 'route', candidate: 'slow' });
  });

  it('never past maxHoldMs; maxHoldMs 0 turns it off', () => {
    const cfg = { maxHoldMs: 50 };
    expect(picker('node-score', fleet(), cfg).pick(kept(0, 49))).toBe(QUEUE_HELD);
    expect(picker('node-score', fleet(), cfg).pick(kept(0, 50))).toEqual({ type: 'route', candidate: 'slow' });
    expect(picker('node-score', fleet(), { maxHoldMs: 0 }).pick(kept(0, 0))).toEqual({
      type: 'route',
      candidate: 'slow',
    });
  });

  it('holds nothing back while a fast agent has a free slot, or among agents of one speed', () => {
    const cands = fleet();
    cands[0] = cand('fast-0', { slots: { a: [1, 4] }, active: 3, latencyEwmaMs: 20 });
    expect(picker('node-score', cands).pick(kept(0, 0))).toEqual({ type: 'route', candidate: 'fast-0' });
    const even = [cand('x', { slots: { a: [0, 4] }, active: 4, latencyEwmaMs: 20 }), cand('y', { latencyEwmaMs: 20 })];
    expect(picker('node-score', even).pick(kept(0, 0))).toEqual({ type: 'route', candidate: 'y' });
  });

  it('does not wait for agents about as fast: a hold must promise HOLD_GAIN of the offered delay', () => {
    // 20 full agents at 5 ms (16 slots a ms; one runs the task in 8.75 ms) against one at 5.5 ms
    // with 3 of 4 busy (9.6 ms now): waiting would win 0.8 ms, under the 20% a hold asks.
    const near = [
      ...Array.from({ length: 20 }, (_, i) => cand(`f${i}`, { slots: { a: [0, 4] }, active: 4, latencyEwmaMs: 5 })),
      cand('y', { slots: { a: [1, 4] }, active: 3, latencyEwmaMs: 5.5 }),
    ];
    expect(picker('node-score', near).pick(kept(0, 0))).toEqual({ type: 'route', candidate: 'y' });
  });

  it('sees fast agents fill and free through its own routes, releases and updates (the live index)', () => {
    const cands = [
      cand('f1', { slots: { a: [1, 1] }, latencyEwmaMs: 20 }),
      cand('f2', { slots: { a: [1, 1] }, latencyEwmaMs: 20 }),
      cand('slow', { slots: { a: [4, 4] }, latencyEwmaMs: 160 }),
    ];
    const p = picker('node-score', cands);
    expect(p.pick(kept(0, 0))).toMatchObject({ type: 'route', candidate: expect.stringMatching(/^f/) });
    expect(p.pick(kept(0, 0))).toMatchObject({ type: 'route', candidate: expect.stringMatching(/^f/) });
    // Both fast ones full (rate 2/20 a ms): 10 + 20 < 0.8 · 160.
    expect(p.pick(kept(0, 0))).toBe(QUEUE_HELD);
    p.release('f1', 'a');
    expect(p.pick(kept(0, 0))).toEqual({ type: 'route', candidate: 'f1' });
    // A heartbeat says f1 is free again and f2 got slow: nothing faster is full, the slow agent is second best.
    expect(p.update!(cand('f2', { slots: { a: [0, 1] }, active: 1, latencyEwmaMs: 400 }))).toBe(true);
    expect(p.update!(cand('f1', { slots: { a: [1, 1] }, latencyEwmaMs: 20 }))).toBe(true);
    expect(p.pick(kept(0, 0))).toEqual({ type: 'route', candidate: 'f1' });
    expect(p.pick(kept(0, 0))).toBe(QUEUE_HELD);
    expect(p.update!(cand('f1', { slots: { a: [0, 1] }, active: 1, latencyEwmaMs: 200 }))).toBe(true);
    expect(p.pick(kept(0, 0))).toEqual({ type: 'route', candidate: 'slow' });
  });

  it('on a cold node, an agent on trial takes a second task only after latencyRefMs with none answering', () => {
    const cold = [cand('p', { slots: { a: [4, 4] } }), cand('q', { slots: { a: [4, 4] } })];
    const p = picker('node-score', cold);
    expect(p.pick(kept(0, 0))).toMatchObject({ type: 'route' });
    expect(p.pick(kept(0, 0))).toMatchObject({ type: 'route' });
    // Both on trial with a task running: the third waits, up to latencyRefMs (100 ms).
    expect(p.pick(kept(0, 0))).toBe(QUEUE_HELD);
    expect(p.pick(kept(0, 99))).toBe(QUEUE_HELD);
    expect(p.pick(kept(0, 100))).toMatchObject({ type: 'route' });
    // One answers: off trial, it takes the next at once.
    p.release('p', 'a');
    expect(p.pick(kept(0, 0))).toEqual({ type: 'route', candidate: 'p' });
    // Alone, nobody else can answer: a second task goes to it at once.
    const alone = picker('node-score', [cand('r', { slots: { a: [4, 4] } })]);
    expect(alone.pick(kept(0, 0))).toEqual({ type: 'route', candidate: 'r' });
    expect(alone.pick(kept(0, 0))).toEqual({ type: 'route', candidate: 'r' });
  });

  it('holds only a task that could go now, never past maxHoldMs, and otherwise picks as without queuedAhead', () => {
    assertProperty(
      fc.property(
        candidatesArb,
        taskArb,
        fc.nat(200),
        fc.double({ min: 0, max: 2000, noNaN: true }),
        fc.integer({ min: 0, max: 6 }),
        (cands, t, ahead, waitedMs, fills) => {
          const a = picker('node-score', cands, undefined, 3);
          const b = picker('node-score', cands, undefined, 3);
          // Some routes first, on both alike, so members are full through the picker too.
          for (let i = 0; i < fills; i++) {
            const ra = a.pick(t);
            expect(b.pick(t)).toEqual(ra);
          }
          const r = a.pick({ ...t, queuedAhead: ahead, waitedMs });
          const plain = b.pick(t);
          if (r === QUEUE_HELD) {
            expect(plain.type).toBe('route');
            expect(waitedMs).toBeLessThan(NODE_SCORE_DEFAULTS.maxHoldMs);
          } else expect(r).toEqual(plain);
        },
      ),
    );
  });
});
