import { describe, expect, it } from 'vitest';
import type { CandidateInit } from '../../src/policies/index.js';
import { cand, picker, task } from './helpers.js';

// Two agents equal in everything but one attribute; the better one must win.
const cases: Array<[string, Partial<CandidateInit>, Partial<CandidateInit>]> = [
  ['availability', { slots: { a: [9, 10] } }, { slots: { a: [1, 10] } }],
  ['success rate', { successEwma: 0.99 }, { successEwma: 0.5 }],
  ['speed', { latencyEwmaMs: 10 }, { latencyEwmaMs: 500 }],
  ['cpu', { utilization: { cpu: 0.1 } }, { utilization: { cpu: 0.9 } }],
  ['memory', { utilization: { memory: 0.1 } }, { utilization: { memory: 0.9 } }],
];

describe('node-score', () => {
  it.each(cases)('prefers better %s', (_name, better, worse) => {
    // Both orders, so neither position nor tie-break can pass the test.
    expect(picker('node-score', [cand('good', better), cand('bad', worse)]).pick(task())).toEqual({ type: 'route', candidate: 'good' });
    expect(picker('node-score', [cand('bad', worse), cand('good', better)]).pick(task())).toEqual({ type: 'route', candidate: 'good' });
  });

  it('weights are configurable: cpu-only scoring ignores availability', () => {
    const roomyHot = cand('roomyHot', { slots: { a: [10, 10] }, utilization: { cpu: 0.9 } });
    const fullCool = cand('fullCool', { slots: { a: [1, 10] }, utilization: { cpu: 0.1 } });
    const cfg = { availability: 0, success: 0, speed: 0, cpu: 1, memory: 0 };
    expect(picker('node-score', [roomyHot, fullCool], cfg).pick(task())).toEqual({ type: 'route', candidate: 'fullCool' });
    expect(picker('node-score', [roomyHot, fullCool]).pick(task())).toEqual({ type: 'route', candidate: 'roomyHot' });
  });

  it('an agent with no latency data is not penalised', () => {
    const p = picker('node-score', [cand('new', { latencyEwmaMs: 0 }), cand('slow', { latencyEwmaMs: 50 })]);
    expect(p.pick(task())).toEqual({ type: 'route', candidate: 'new' });
  });

  it('rejects bad config', () => {
    expect(() => picker('node-score', [], { gpu: 1 })).toThrow(/unknown config key "gpu"/);
    expect(() => picker('node-score', [], { latencyRefMs: 0 })).toThrow(/latencyRefMs/);
    expect(() => picker('node-score', [], { availability: 0, success: 0, speed: 0, cpu: 0, memory: 0 })).toThrow(/not all be zero/);
  });
});
