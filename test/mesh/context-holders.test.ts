// What agents report holding warm (src/mesh/context-holders.ts): most recent
// holder first, bounded per agent and per key, forgotten with the agent; and
// a picker sends a keyed task to a reported holder before the ring's choice.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CONTEXTS_PER_AGENT,
  ContextHolders,
  HOLDERS_PER_KEY,
  contextsOverLimits,
} from '../../src/mesh/context-holders.js';
import { ContextRing } from '../../src/policies/context.js';
import { cand, picker, task } from '../policies/helpers.js';

const report = (held: string[], dropped: string[] = [], reset = false) => ({ held, dropped, reset });

describe('ContextHolders', () => {
  it('lists holders most recent first; drop and forget remove them', () => {
    const h = new ContextHolders();
    h.apply('a1', report(['k']));
    h.apply('a2', report(['k', 'j']));
    expect(h.holders('k')).toEqual(['a2', 'a1']);
    h.apply('a1', report(['k'])); // reported again: newest
    expect(h.holders('k')).toEqual(['a1', 'a2']);
    h.apply('a1', report([], ['k']));
    expect(h.holders('k')).toEqual(['a2']);
    h.forget('a2');
    expect(h.holders('k')).toBeUndefined();
    expect(h.holders('j')).toBeUndefined();
    expect(h.size).toBe(0);
  });

  it('reset replaces what an agent held', () => {
    const h = new ContextHolders();
    h.apply('a1', report(['x', 'y']));
    h.apply('a1', report(['z'], [], true));
    expect(h.heldBy('a1')).toEqual(['z']);
    expect(h.holders('x')).toBeUndefined();
  });

  it('stays bounded per agent and per key whatever is reported (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            agent: fc.integer({ min: 0, max: 12 }),
            held: fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 6 }),
            dropped: fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 3 }),
            reset: fc.boolean(),
            gone: fc.boolean(),
          }),
          { maxLength: 80 },
        ),
        (ops) => {
          const h = new ContextHolders();
          for (const o of ops) {
            const id = `a${o.agent}`;
            if (o.gone) h.forget(id);
            else h.apply(id, report(o.held.map(String), o.dropped.map(String), o.reset));
          }
          // Both indexes agree, and no key lists more than HOLDERS_PER_KEY agents.
          for (let k = 0; k <= 30; k++) {
            const ids = h.holders(String(k)) ?? [];
            expect(ids.length).toBeLessThanOrEqual(HOLDERS_PER_KEY);
            expect(new Set(ids).size).toBe(ids.length);
            for (const id of ids) expect(h.heldBy(id)).toContain(String(k));
          }
          for (let a = 0; a <= 12; a++) for (const k of h.heldBy(`a${a}`)) expect(h.holders(k)).toContain(`a${a}`);
        },
      ),
      { seed: 7117, numRuns: 200 },
    );
  });

  it('an agent holds at most CONTEXTS_PER_AGENT keys: the oldest goes', () => {
    const h = new ContextHolders();
    h.apply('a', report(Array.from({ length: CONTEXTS_PER_AGENT }, (_, i) => `k${i}`)));
    h.apply('a', report(['new']));
    expect(h.heldBy('a')).toHaveLength(CONTEXTS_PER_AGENT);
    expect(h.holders('k0')).toBeUndefined();
    expect(h.holders('new')).toEqual(['a']);
  });

  it('refuses empty, over-long and too many keys', () => {
    expect(contextsOverLimits(report(['ok']))).toBe('');
    expect(contextsOverLimits(report(['']))).toMatch(/empty key/);
    expect(contextsOverLimits(report(['k'.repeat(257)]))).toMatch(/257 bytes \(at most 256\)/);
    const many = Array.from({ length: CONTEXTS_PER_AGENT + 1 }, (_, i) => `k${i}`);
    expect(contextsOverLimits(report(many))).toMatch(/4097 keys in one message/);
  });
});

describe('a picker with reported holders', () => {
  const names = Array.from({ length: 8 }, (_, i) => `agent-${i}`);
  const agents = (free = 4) => names.map((id) => cand(id, { slots: { a: [free, 4] } }));
  const ringHolder = (key: string) => names[new ContextRing(names).walk(key, () => true)]!;
  const other = (key: string) => names.find((n) => n !== ringHolder(key))!;

  for (const policy of ['node-score', 'random', 'round-robin', 'least-loaded', 'p2c']) {
    it(`${policy}: a soft key goes to its reported holder, not the ring's`, () => {
      const h = new ContextHolders();
      const key = 'conversation-5';
      h.apply(other(key), report([key]));
      const p = picker(policy, agents());
      p.contexts = h;
      for (let i = 0; i < 10; i++) {
        expect(p.pick(task('a', { contextKey: key }))).toEqual({ type: 'route', candidate: other(key) });
        p.release(other(key), 'a');
      }
      // Without the report the ring decides.
      p.contexts = undefined;
      expect(p.pick(task('a', { contextKey: key }))).toEqual({ type: 'route', candidate: ringHolder(key) });
    });
  }

  it('a reported holder past the load bound overflows along the ring', () => {
    const h = new ContextHolders();
    const key = 'hot';
    const holder = other(key);
    h.apply(holder, report([key]));
    const p = picker('node-score', agents());
    p.contexts = h;
    const seen = new Map<string, number>();
    for (let i = 0; i < 16; i++) {
      const r = p.pick(task('a', { contextKey: key }));
      expect(r.type).toBe('route');
      const c = (r as { candidate: string }).candidate;
      seen.set(c, (seen.get(c) ?? 0) + 1);
    }
    expect(seen.get(holder)).toBeGreaterThan(0);
    expect(seen.size).toBeGreaterThan(1);
  });

  it('hard: the reported holder is the holder; the task waits while it is full', () => {
    const h = new ContextHolders();
    const key = 'dataset-9';
    h.apply(other(key), report([key]));
    const p = picker('node-score', agents(1));
    p.contexts = h;
    expect(p.pick(task('a', { contextKey: key, contextHard: true }))).toEqual({
      type: 'route',
      candidate: other(key),
    });
    expect(p.pick(task('a', { contextKey: key, contextHard: true }))).toEqual({
      type: 'queue',
      reason: "the context key's holder is full",
    });
  });
});
