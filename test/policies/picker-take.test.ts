// Picker.take: a credit taken for a placement made outside pick() (preemption,
// src/mesh/preemptor.ts), as a route would take it — never below zero, given
// back by release(), and drawn from an agent's shared slots for all its kinds.
import { describe, expect, it } from 'vitest';
import { cand, picker } from './helpers.js';

describe('Picker.take', () => {
  for (const name of ['least-loaded', 'node-score', 'round-robin', 'p2c', 'random', 'zone-least-conn']) {
    it(`${name}: takes one credit, never below zero; release gives it back`, () => {
      const p = picker(name, [cand('x', { slots: { a: [2, 2] } }), cand('y', { slots: { a: [1, 1] } })]);
      expect(p.credits('a')).toBe(3);
      p.take('x', 'a');
      expect(p.credits('a')).toBe(2);
      p.take('x', 'a');
      p.take('x', 'a'); // past its credits: takes none
      expect(p.credits('a')).toBe(1);
      p.take('no-such', 'a');
      p.take('x', 'no-such-kind');
      expect(p.credits('a')).toBe(1);
      p.release('x', 'a');
      expect(p.credits('a')).toBe(2);
    });
  }

  it("an agent's shared slots: a take for one kind leaves none for the other", () => {
    const p = picker('least-loaded', [cand('x', { slots: { a: [1, 1], b: [1, 1] }, sharedSlots: [1, 1] })]);
    expect(p.credits('a')).toBe(1);
    expect(p.credits('b')).toBe(1);
    p.take('x', 'a');
    expect(p.credits('a')).toBe(0);
    expect(p.credits('b')).toBe(0);
  });
});
