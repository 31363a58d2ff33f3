// The topology's `flow:` section (src/topology/flow.ts): concurrency and rate
// limits per key, every problem reported with its field, and the section kept
// by topologyToDocument (meshlb deploy writes it into the generated topology).
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseTopology, TopologyError, topologyToDocument } from '../../src/topology/parse.js';

const doc = (flow: string): string => `name: t\naddressing: { basePort: 9000 }\n${flow}cells:\n  name: /\n`;

function issues(yaml: string): string[] {
  try {
    parseTopology(yaml, 'bad.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(TopologyError);
    return [...(err as TopologyError).issues];
  }
  throw new Error('expected parseTopology to fail');
}

describe('topology flow section', () => {
  it('reads concurrency keys (strategy queue by default), rate limits (period 1 s, burst 1 by default) and the linger', () => {
    const t = parseTopology(
      doc(`flow:
  lingerMs: 2500
  concurrency:
    customer-42: { limit: 3 }
    crawl: { limit: 10, strategy: cancel-newest }
  rateLimits:
    llm: { units: 100, periodMs: 1000, burst: 20 }
    slow: { units: 2 }
`),
    );
    expect(t.flow?.lingerMs).toBe(2500);
    expect([...t.flow!.concurrency]).toEqual([
      ['customer-42', { limit: 3, strategy: 'queue' }],
      ['crawl', { limit: 10, strategy: 'cancel-newest' }],
    ]);
    expect([...t.flow!.rateLimits]).toEqual([
      ['llm', { units: 100, periodMs: 1000, burst: 20 }],
      ['slow', { units: 2, periodMs: 1000, burst: 1 }],
    ]);
    // The generated topology keeps it.
    const again = parseTopology(stringify(topologyToDocument(t)));
    expect(again.flow).toEqual(t.flow);
  });

  it('is optional, and the linger defaults to 5 s', () => {
    expect(parseTopology(doc('')).flow).toBeUndefined();
    expect(parseTopology(doc('flow: {}\n')).flow).toEqual({
      concurrency: new Map(),
      rateLimits: new Map(),
      lingerMs: 5000,
    });
  });

  it('names every bad field', () => {
    const got = issues(
      doc(`flow:
  lingerMs: -1
  bogus: 1
  concurrency:
    a: { limit: 0 }
    b: { strategy: newest-first }
    "bad key!": { limit: 1 }
  rateLimits:
    r: { periodMs: 0 }
    s: 7
`),
    );
    expect(got.join('\n')).toMatch(/flow.lingerMs.*integer >= 0/);
    expect(got.join('\n')).toMatch(/"bogus"/);
    expect(got.join('\n')).toMatch(/flow.concurrency.a.limit.*integer >= 1, got number 0/);
    expect(got.join('\n')).toMatch(/flow.concurrency.b.limit.*missing/);
    expect(got.join('\n')).toMatch(/flow.concurrency.b.strategy.*queue, cancel-newest, cancel-in-progress/);
    expect(got.join('\n')).toMatch(/flow.concurrency.*"bad key!"/);
    expect(got.join('\n')).toMatch(/flow.rateLimits.r.periodMs/);
    expect(got.join('\n')).toMatch(/flow.rateLimits.r.units.*missing/);
    expect(got.join('\n')).toMatch(/flow.rateLimits.s.*must be a mapping/);
  });

  it('reads tenant shares (weight 1, no minimum, no ceiling by default) and names their bad fields', () => {
    const t = parseTopology(
      doc(`flow:
  tenants:
    gold: { weight: 5, min: 10, max: 40 }
    free: { max: 2 }
`),
    );
    expect([...t.flow!.tenants!]).toEqual([
      ['gold', { weight: 5, min: 10, max: 40 }],
      ['free', { weight: 1, min: 0, max: 2 }],
    ]);
    expect(parseTopology(stringify(topologyToDocument(t))).flow).toEqual(t.flow);
    const got = issues(
      doc(`flow:
  tenants:
    a: { min: 5, max: 2 }
    b: { weight: 0 }
    c: { weight: 1001 }
    d: { limit: 1 }
`),
    ).join('\n');
    expect(got).toMatch(/flow.tenants.a.*min \(5\) must not exceed max \(2\)/);
    expect(got).toMatch(/flow.tenants.b.weight.*integer >= 1/);
    expect(got).toMatch(/flow.tenants.c.weight.*at most 1000/);
    expect(got).toMatch(/"limit"/);
  });

  it("reads key shares next to a key's limit (weight 1 by default) and refuses them on templates and bad values", () => {
    const t = parseTopology(
      doc(`flow:
  concurrency:
    batch: { limit: 20, weight: 2, min: 4, max: 10 }
    capped: { limit: 9, max: 3 }
    plain: { limit: 1 }
`),
    );
    expect([...t.flow!.concurrency]).toEqual([
      ['batch', { limit: 20, strategy: 'queue', share: { weight: 2, min: 4, max: 10 } }],
      ['capped', { limit: 9, strategy: 'queue', share: { weight: 1, min: 0, max: 3 } }],
      ['plain', { limit: 1, strategy: 'queue' }],
    ]);
    expect(parseTopology(stringify(topologyToDocument(t))).flow).toEqual(t.flow);
    const got = issues(
      doc(`flow:
  concurrency:
    a: { limit: 5, min: 5, max: 2 }
    b: { limit: 5, weight: 0 }
    "t:*": { limit: 5, weight: 2 }
    d: { weight: 2 }
`),
    ).join('\n');
    expect(got).toMatch(/flow.concurrency.a.*min \(5\) must not exceed max \(2\)/);
    expect(got).toMatch(/flow.concurrency.b.weight.*integer >= 1/);
    expect(got).toMatch(/flow.concurrency.t:\*.*a template cannot have a share/);
    expect(got).toMatch(/flow.concurrency.d.limit.*missing/);
  });
});
