import { describe, expect, it } from 'vitest';
import type { ChildLink } from '../../src/mesh/child-link.js';
import { ChildrenLoads } from '../../src/mesh/children-load.js';

/** What ChildrenLoad reads of a link, per kind: [credits, total, healthy, largest free, largest total, node free]. */
function link(kinds: Record<string, number[]>, draining = false): ChildLink {
  const m = (i: number) => new Map(Object.entries(kinds).map(([k, v]) => [k, v[i]!]));
  return {
    closed: false,
    summary: { healthyAgents: 2, latencyEwmaMs: 4, successEwma: 0.5, utilization: { cpu: 0.2 }, draining },
    total: m(1),
    healthy: m(2),
    nodeFree: m(5),
    credits: (k: string) => kinds[k]![0]!,
    largest: (k: string) => ({ free: kinds[k]![3]!, total: kinds[k]![4]! }),
  } as unknown as ChildLink;
}

describe('ChildrenLoads', () => {
  it('sums the links per kind, and a refresh forgets kinds no link reports any more', () => {
    const loads = new ChildrenLoads();
    const first = loads.of([link({ a: [3, 8, 2, 2, 4, 3], b: [1, 4, 1, 1, 4, 1] }), link({ a: [5, 8, 2, 4, 8, 5] })]);
    expect(Object.fromEntries(first.capacity)).toEqual({
      a: expect.objectContaining({ free: 8, total: 16, healthy: 4 }),
      b: expect.objectContaining({ free: 1, total: 4, healthy: 1 }),
    });
    expect(first.largest!('a')).toEqual({ free: 4, total: 8 });
    expect(first.nodeFree!('a')).toBe(5);
    expect(first.healthyAgents).toBe(4);
    expect(first.successEwma).toBe(0.5);

    // b gone, a's figures lower than before (not kept from the last refresh), one link draining.
    const second = loads.of([link({ a: [1, 8, 2, 1, 4, 1] }), link({ a: [5, 8, 2, 4, 8, 5] }, true)]);
    expect([...second.capacity.keys()]).toEqual(['a']);
    expect(second.capacity.get('a')).toEqual(expect.objectContaining({ free: 1, total: 16, healthy: 4 }));
    expect(second.largest!('a')).toEqual({ free: 1, total: 8 });
    expect(second.nodeFree!('a')).toBe(1);
    expect(second.largest!('b')).toEqual({ free: 0, total: 0 });
    expect(second.nodeFree!('b')).toBe(0);

    const none = loads.of([]);
    expect(none.capacity.size).toBe(0);
    expect(none.healthyAgents).toBe(0);
    expect(none.successEwma).toBe(1);
  });
});
