import { describe, expect, it } from 'vitest';
import { PolicyConfigError } from '../../src/policies/index.js';
import { cand, picker, tally, task } from './helpers.js';

const eu = (free: number, extra = {}) =>
  cand('/eu', { labels: { region: 'eu' }, slots: { a: [free, 10] }, rttMs: 80, ...extra });
const us = (free: number, extra = {}) =>
  cand('/us', { labels: { region: 'us' }, slots: { a: [free, 10] }, rttMs: 80, ...extra });

describe('global-geo', () => {
  it('prefers the local region while it has capacity', () => {
    expect(picker('global-geo', [us(10), eu(5)]).pick(task('a', { location: 'eu' }))).toEqual({
      type: 'route',
      candidate: '/eu',
    });
  });

  it('falls over to the remote region when local is full', () => {
    expect(picker('global-geo', [us(10), eu(0)]).pick(task('a', { location: 'eu' }))).toEqual({
      type: 'route',
      candidate: '/us',
    });
  });

  it('fills local first, then spills to remote within one snapshot', () => {
    expect(tally(picker('global-geo', [us(10), eu(4)]), 6, task('a', { location: 'eu' }))).toEqual({
      '/eu': 4,
      '/us': 2,
    });
  });

  it('without a preferred location, lower rtt wins', () => {
    const p = picker('global-geo', [eu(10, { rttMs: 200 }), us(10, { rttMs: 10 })]);
    expect(p.pick(task())).toEqual({ type: 'route', candidate: '/us' });
  });

  it('cheaper wins when locality and capacity are equal', () => {
    const p = picker('global-geo', [eu(10, { costPerTask: 3 }), us(10, { costPerTask: 1 })]);
    expect(p.pick(task())).toEqual({ type: 'route', candidate: '/us' });
  });

  it('only labels under localityKeys count as location', () => {
    const owner = cand('/x', { labels: { owner: 'eu' }, slots: { a: [10, 10] }, rttMs: 5 });
    const p = picker('global-geo', [owner, us(10, { rttMs: 1 })], { localityKeys: ['region'] });
    expect(p.pick(task('a', { location: 'eu' }))).toEqual({ type: 'route', candidate: '/us' });
  });

  it('weights are configurable: locality 0 lets capacity decide', () => {
    const p = picker('global-geo', [eu(5), us(10)], { locality: 0 });
    expect(p.pick(task('a', { location: 'eu' }))).toEqual({ type: 'route', candidate: '/us' });
  });

  it.each([
    [{ localty: 1 }, /unknown config key "localty"/],
    [{ locality: -1 }, /"locality" must be >= 0/],
    [{ locality: 0, capacity: 0, cost: 0 }, /must not all be zero/],
    [{ localityKeys: 'region' }, /"localityKeys" must be a list/],
    [{ remoteLocality: 2 }, /"remoteLocality" must be <= 1/],
    [[1], /config must be an object/],
  ])('rejects bad config %j', (cfg, msg) => {
    expect(() => picker('global-geo', [], cfg)).toThrow(PolicyConfigError);
    expect(() => picker('global-geo', [], cfg)).toThrow(msg);
  });
});
