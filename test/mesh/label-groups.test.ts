// The label sets summaries carry per kind (src/mesh/label-groups.ts): bounded at
// every tier, merged upward, kept incrementally at a node, and never excluding a
// subtree that holds a matching agent (docs/mesh.md, "Affinity through the tiers").
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KindCapacity } from '../../src/gen/meshlb/v1/link.js';
import type { Label } from '../../src/gen/meshlb/v1/task.js';
import {
  fitGroups,
  MAX_LABEL_CHARS,
  MAX_LABEL_GROUPS,
  MAX_UNKNOWN_KEYS,
  mergeLabels,
  NodeLabels,
  summaryMayMatch,
  type LabelsOfKind,
} from '../../src/mesh/label-groups.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261207);
const RUNS = { seed: SEED, numRuns: 150 };

interface Agent {
  kinds: string[];
  labels: Label[];
  slots: number;
}

const label = fc.record({
  key: fc.constantFrom('gpu', 'zone', 'host', 'disk', 'arch'),
  value: fc.constantFrom('a', 'b', 'c', 'h100', 'x'.repeat(300)),
});
const agent: fc.Arbitrary<Agent> = fc.record({
  kinds: fc.subarray(['k0', 'k1'], { minLength: 1 }),
  labels: fc.array(label, { maxLength: 5 }),
  // A host name makes every agent's label set its own: the bound must leave the key out.
  slots: fc.integer({ min: 1, max: 4 }),
});
const agents = fc.array(agent, { minLength: 1, maxLength: 40 });

/** A kind's description as a summary carries it. */
const wire = (kind: string, d: LabelsOfKind): KindCapacity =>
  ({ kind, labelGroups: d.groups, unknownLabelKeys: d.unknownKeys, labelsKnown: d.known }) as unknown as KindCapacity;

function nodeOf(list: readonly Agent[], hosts: boolean): NodeLabels {
  const n = new NodeLabels();
  list.forEach((a, i) => {
    const s = { ...a, labels: hosts ? [...a.labels, { key: 'host', value: `h${i}` }] : a.labels };
    n.account(s, 1, a.slots);
  });
  return n;
}

function withinBounds(d: LabelsOfKind): void {
  if (!d.known) return expect(d.groups).toEqual([]);
  expect(d.groups.length).toBeLessThanOrEqual(MAX_LABEL_GROUPS);
  expect(d.unknownKeys.length).toBeLessThanOrEqual(MAX_UNKNOWN_KEYS);
  const chars = d.groups.reduce((n, g) => n + g.labels.reduce((m, l) => m + l.key.length + l.value.length, 0), 0);
  expect(chars).toBeLessThanOrEqual(MAX_LABEL_CHARS);
}

describe('label groups: what a summary says of its agents labels, per kind', () => {
  it('a node with few label sets lists each with its free and total slots, exactly', () => {
    const n = new NodeLabels();
    const h100 = { kinds: ['llm'], labels: [{ key: 'gpu', value: 'h100' }], slots: 2 };
    const cpu = { kinds: ['llm', 'tool'], labels: [], slots: 4 };
    n.account(h100, 1, 2);
    n.account(cpu, 1, 4);
    n.taken(h100, 1);
    const d = n.describe('llm');
    expect(d.known).toBe(true);
    expect(d.unknownKeys).toEqual([]);
    expect(d.groups).toEqual([
      { labels: [], freeSlots: 4, totalSlots: 4 },
      { labels: [{ key: 'gpu', value: 'h100' }], freeSlots: 1, totalSlots: 2 },
    ]);
    expect(n.describe('tool').groups).toEqual([{ labels: [], freeSlots: 4, totalSlots: 4 }]);
    // The agent leaves: its set goes with it.
    n.account(h100, -1, 1);
    expect(n.describe('llm').groups).toEqual([{ labels: [], freeSlots: 4, totalSlots: 4 }]);
    expect(n.describe('nope').known).toBe(false);
  });

  it('past the bound, the key with the most distinct values (a host name) is left out and named unknown', () => {
    const list = Array.from({ length: 20 }, (_, i) => ({
      kinds: ['llm'],
      labels: [
        { key: 'host', value: `h${i}` },
        { key: 'gpu', value: i < 3 ? 'h100' : 'none' },
      ],
      slots: 1,
    }));
    const n = nodeOf(list, false);
    const d = n.describe('llm');
    expect(d.known).toBe(true);
    expect(d.unknownKeys).toEqual(['host']);
    expect(d.groups.map((g) => [g.labels.map((l) => `${l.key}=${l.value}`).join(), g.totalSlots])).toEqual([
      ['gpu=none', 17],
      ['gpu=h100', 3],
    ]);
    // gpu=h100 is told apart still; host=h5 may match anywhere (its key is unknown), host-less affinity is exact.
    const k = wire('llm', d);
    expect(summaryMayMatch({ kinds: [k] }, 'llm', [{ key: 'gpu', value: 'h100' }])).toBe(true);
    expect(summaryMayMatch({ kinds: [k] }, 'llm', [{ key: 'gpu', value: 'a100' }])).toBe(false);
    expect(summaryMayMatch({ kinds: [k] }, 'llm', [{ key: 'host', value: 'h5' }])).toBe(true);
    // A kind not described (a peer that predates the fields): any affinity may match.
    expect(summaryMayMatch({ kinds: [] }, 'llm', [{ key: 'gpu', value: 'a100' }])).toBe(true);
  });

  it('property: bounded at a node and at every tier above, and never excludes a subtree with a matching agent', () => {
    fc.assert(
      fc.property(fc.array(agents, { minLength: 1, maxLength: 4 }), fc.boolean(), (nodes, hosts) => {
        // Nodes, then zones of two nodes, then one region over the zones.
        const nodeDs = nodes.map((list) => nodeOf(list, hosts).describe('k0'));
        for (const d of nodeDs) withinBounds(d);
        const zones: LabelsOfKind[] = [];
        for (let i = 0; i < nodeDs.length; i += 2)
          zones.push(
            mergeLabels(
              nodeDs
                .slice(i, i + 2)
                .filter((d) => d !== undefined)
                .map((d) => wire('k0', d)),
            ),
          );
        for (const z of zones) withinBounds(z);
        const region = mergeLabels(zones.map((z) => wire('k0', z)));
        withinBounds(region);
        // Soundness: every agent of k0 anywhere, with any subset of its labels as affinity, may match at every tier.
        nodes.forEach((list, ni) =>
          list.forEach((a, ai) => {
            if (!a.kinds.includes('k0')) return;
            const labels = hosts ? [...a.labels, { key: 'host', value: `h${ai}` }] : a.labels;
            for (const d of [nodeDs[ni]!, zones[Math.floor(ni / 2)]!, region])
              expect(summaryMayMatch({ kinds: [wire('k0', d)] }, 'k0', labels)).toBe(true);
          }),
        );
        // Slots are neither lost nor made up: the groups' totals are the agents' slots (when described).
        const slots = nodes.flat().reduce((n, a) => n + (a.kinds.includes('k0') ? a.slots : 0), 0);
        if (region.known) expect(region.groups.reduce((n, g) => n + g.totalSlots, 0)).toBe(slots);
      }),
      RUNS,
    );
  });

  it('property: a node kept incrementally describes what one built afresh from its live agents does', () => {
    const op = fc.oneof(
      fc.record({ t: fc.constant('add' as const), a: agent }),
      fc.record({ t: fc.constant('drop' as const), i: fc.nat() }),
      fc.record({ t: fc.constant('take' as const), i: fc.nat(), n: fc.integer({ min: -2, max: 2 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const n = new NodeLabels();
        const live: { a: Agent; free: number }[] = [];
        for (const o of ops) {
          if (o.t === 'add') {
            live.push({ a: o.a, free: o.a.slots });
            n.account(o.a, 1, o.a.slots);
          } else if (live.length > 0) {
            const x = live[o.i % live.length]!;
            if (o.t === 'drop') {
              n.account(x.a, -1, x.free);
              live.splice(live.indexOf(x), 1);
            } else {
              const d = Math.max(-(x.a.slots - x.free), Math.min(o.n, x.free)); // within [0, slots]
              x.free -= d;
              n.taken(x.a, d);
            }
          }
        }
        const fresh = new NodeLabels();
        for (const x of live) fresh.account(x.a, 1, x.free);
        for (const kind of ['k0', 'k1']) expect(n.describe(kind)).toEqual(fresh.describe(kind));
      }),
      RUNS,
    );
  });

  it('a child that does not describe a kind makes its parent not describe it either (may match)', () => {
    const known = wire('k0', { groups: [], unknownKeys: [], known: true });
    expect(mergeLabels([known, wire('k0', { groups: [], unknownKeys: [], known: false })]).known).toBe(false);
    expect(mergeLabels([known]).known).toBe(true);
    // Too many unknown keys: not described.
    const keys = Array.from({ length: MAX_UNKNOWN_KEYS + 1 }, (_, i) => `k${i}`);
    expect(fitGroups([{ labels: [] }], keys).known).toBe(false);
  });
});

describe('label groups from a peer past the bounds', () => {
  it('a child reporting more groups than the bound is taken as not describing the kind (any affinity may match)', () => {
    const groups = Array.from({ length: MAX_LABEL_GROUPS + 1 }, (_, i) => ({
      labels: [{ key: 'gpu', value: `g${i}` }],
      freeSlots: 1,
      totalSlots: 1,
    }));
    const k = wire('k0', { groups, unknownKeys: [], known: true });
    expect(mergeLabels([k]).known).toBe(false);
    expect(summaryMayMatch({ kinds: [k] }, 'k0', [{ key: 'gpu', value: 'nope' }])).toBe(true);
  });
});
