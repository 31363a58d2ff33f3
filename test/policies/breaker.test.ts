import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Breaker,
  Breakers,
  BREAKER_DEFAULTS,
  parseBreakerConfig,
  PolicyConfigError,
  type BreakerConfig,
} from '../../src/policies/index.js';
import { assertProperty } from './arbitraries.js';

const CFG: BreakerConfig = {
  enabled: true,
  consecutiveFailures: 3,
  errorRate: 0.5,
  windowMs: 1000,
  minRequests: 10,
  cooldownMs: 500,
  halfOpenProbes: 2,
  slowStartMs: 1000,
  maxOpenShare: 1,
};

function clocked(cfg: BreakerConfig = CFG): { b: Breakers; at: (ms: number) => void } {
  let now = 1_000_000;
  const b = new Breakers(cfg, () => now);
  return { b, at: (ms) => (now = 1_000_000 + ms) };
}

describe('circuit breaker', () => {
  it('opens after consecutiveFailures in a row; a success in between resets the run', () => {
    const { b } = clocked();
    expect(b.record('a', false)).toBe(false);
    expect(b.record('a', false)).toBe(false);
    b.record('a', true);
    b.record('a', false);
    b.record('a', false);
    expect(b.state('a')).toBe('closed');
    expect(b.record('a', false)).toBe(true);
    expect(b.state('a')).toBe('open');
    expect(b.allowance('a', 4, 4)).toBe(0);
    expect(b.trips).toBe(1);
  });

  it('opens on the error rate over the window once it holds minRequests, not before', () => {
    const { b, at } = clocked({ ...CFG, consecutiveFailures: 0 });
    // 4 failures of 8: 50%, but below minRequests.
    for (let i = 0; i < 8; i++) b.record('a', i % 2 === 0);
    expect(b.state('a')).toBe('closed');
    b.record('a', true);
    expect(b.record('a', false)).toBe(true); // 5 of 10
    expect(b.state('a')).toBe('open');
    // Outcomes older than the window are forgotten.
    const { b: b2, at: at2 } = clocked({ ...CFG, consecutiveFailures: 0 });
    for (let i = 0; i < 9; i++) b2.record('x', false);
    at2(1500);
    for (let i = 0; i < 9; i++) b2.record('x', true);
    expect(b2.record('x', false)).toBe(false); // 1 failure of 10 in the window
    expect(b2.info('x')!.errorRate).toBeCloseTo(0.1);
    void at;
  });

  it('half-opens after the cool-down, lets halfOpenProbes through, closes on their successes with a slow start', () => {
    const { b, at } = clocked();
    for (let i = 0; i < 3; i++) b.record('a', false);
    at(499);
    expect(b.advance()).toBe(false);
    expect(b.state('a')).toBe('open');
    at(500);
    expect(b.advance()).toBe(true);
    expect(b.state('a')).toBe('half-open');
    expect(b.allowance('a', 8, 8)).toBe(2);
    b.sent('a');
    expect(b.allowance('a', 8, 7)).toBe(1);
    b.sent('a');
    expect(b.allowance('a', 8, 6)).toBe(0);
    expect(b.record('a', true)).toBe(false);
    expect(b.record('a', true)).toBe(true);
    expect(b.state('a')).toBe('closed');
    // Slow start: one task at first, then a growing share of the 8 slots.
    expect(b.allowance('a', 8, 8)).toBe(1);
    at(750); // a quarter of slowStartMs later
    expect(b.allowance('a', 8, 8)).toBe(2);
    expect(b.allowance('a', 8, 6)).toBe(0);
    at(1500);
    expect(b.advance()).toBe(true);
    expect(b.limits('a')).toBe(false);
    expect(b.allowance('a', 8, 0)).toBe(Infinity);
  });

  it('a failed probe opens it again for a new cool-down', () => {
    const { b, at } = clocked();
    for (let i = 0; i < 3; i++) b.record('a', false);
    at(600);
    expect(b.state('a')).toBe('half-open');
    b.sent('a');
    expect(b.record('a', false)).toBe(true);
    expect(b.state('a')).toBe('open');
    expect(b.trips).toBe(2);
    at(1099);
    expect(b.state('a')).toBe('open');
    at(1100);
    expect(b.state('a')).toBe('half-open');
  });

  it('maxOpenShare: no more than that share of the targets is shut at once', () => {
    const { b } = clocked({ ...CFG, maxOpenShare: 0.5 });
    b.prune(new Set(['a', 'b', 'c', 'd']));
    for (const id of ['a', 'b', 'c']) for (let i = 0; i < 3; i++) b.record(id, false);
    expect(b.counts(['a', 'b', 'c', 'd'])).toEqual({ closed: 2, open: 2, halfOpen: 0 });
    // One target alone is never shut at 0.5.
    const { b: one } = clocked({ ...CFG, maxOpenShare: 0.5 });
    one.prune(new Set(['only']));
    for (let i = 0; i < 10; i++) one.record('only', false);
    expect(one.state('only')).toBe('closed');
  });

  it('half-open probes that never answer are renewed each cool-down; a handed-back probe is returned', () => {
    const { b, at } = clocked();
    for (let i = 0; i < 3; i++) b.record('a', false);
    at(500);
    b.sent('a');
    b.sent('a');
    expect(b.allowance('a', 4, 4)).toBe(0);
    b.unsent('a');
    expect(b.allowance('a', 4, 4)).toBe(1);
    b.sent('a');
    at(999);
    expect(b.allowance('a', 4, 4)).toBe(0);
    at(1000);
    expect(b.advance()).toBe(true);
    expect(b.allowance('a', 4, 4)).toBe(2);
  });

  it('disabled: never opens', () => {
    const { b } = clocked({ ...CFG, enabled: false });
    for (let i = 0; i < 100; i++) b.record('a', false);
    expect(b.state('a')).toBe('closed');
    expect(b.active).toBe(false);
  });

  it('prune forgets closed breakers of targets gone, keeps those that left open', () => {
    const { b } = clocked();
    b.record('gone-closed', false);
    for (let i = 0; i < 3; i++) b.record('gone-open', false);
    b.prune(new Set());
    expect(b.info('gone-closed')).toBeUndefined();
    expect(b.state('gone-open')).toBe('open');
    expect(b.counts(['gone-open', 'x'])).toEqual({ closed: 1, open: 1, halfOpen: 0 });
  });

  it('property: allowance is 0 while open, at most halfOpenProbes while half-open, never above free once closed and limited', () => {
    const step = fc.oneof(
      fc.record({ t: fc.constant('ok' as const) }),
      fc.record({ t: fc.constant('fail' as const) }),
      fc.record({ t: fc.constant('sent' as const) }),
      fc.record({ t: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 800 }) }),
    );
    assertProperty(
      fc.property(fc.array(step, { maxLength: 60 }), fc.integer({ min: 1, max: 16 }), (steps, total) => {
        let now = 0;
        const br = new Breaker(CFG);
        let sentHalfOpen = 0;
        for (const s of steps) {
          if (s.t === 'wait') now += s.ms;
          else if (s.t === 'sent') {
            if (br.state(now) === 'half-open') sentHalfOpen++;
            br.sent(now);
          } else br.record(s.t === 'ok', now);
          const st = br.state(now);
          if (st !== 'half-open') sentHalfOpen = 0;
          for (let free = 0; free <= total; free++) {
            const a = br.allowance(now, total, free);
            if (st === 'open') expect(a).toBe(0);
            else if (st === 'half-open') expect(a).toBe(Math.max(0, CFG.halfOpenProbes - sentHalfOpen));
            else if (a !== Infinity) expect(a).toBeLessThanOrEqual(free);
          }
        }
      }),
    );
  });

  it('config: defaults, overrides over a base, and clear errors', () => {
    expect(parseBreakerConfig(undefined)).toEqual(BREAKER_DEFAULTS);
    const base = parseBreakerConfig({ cooldownMs: 100 });
    expect(parseBreakerConfig({ halfOpenProbes: 1 }, base)).toMatchObject({ cooldownMs: 100, halfOpenProbes: 1 });
    expect(() => parseBreakerConfig({ cooldown: 1 })).toThrow(PolicyConfigError);
    expect(() => parseBreakerConfig({ errorRate: 2 })).toThrow(/errorRate/);
    expect(() => parseBreakerConfig({ enabled: 'yes' })).toThrow(/enabled/);
  });
});
