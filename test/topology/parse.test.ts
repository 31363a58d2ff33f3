import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import {
  TopologyError,
  findReplica,
  formatTopology,
  loadTopology,
  parseTopology,
  topologyToDocument,
} from '../../src/topology/parse.js';
import { DEFAULTS } from '../../src/topology/defaults.js';
import { cellSlug } from '../../src/topology/paths.js';
import { stringify } from 'yaml';

const repo = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const topo = (name: string) => join(repo, 'deploy', 'topologies', name);

function errorsOf(yamlText: string): string[] {
  try {
    parseTopology(yamlText, 'bad.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(TopologyError);
    expect((err as Error).message).toContain('bad.yaml');
    return [...(err as TopologyError).issues];
  }
  throw new Error('expected parseTopology to fail');
}

const base = (cells: string, extra = '') => `name: t\naddressing: { basePort: 9000 }\n${extra}cells:\n${cells}`;

describe('example.yaml', () => {
  const t = loadTopology(topo('example.yaml'));
  it('has 1 global, 2 regions, 2 zones each, 2 nodes each, 1 replica per cell', () => {
    const byTier = (tier: string) => t.cells.filter((c) => c.tier === tier).map((c) => c.path);
    expect(byTier('global')).toEqual(['/']);
    expect(byTier('region')).toEqual(['/eu', '/us']);
    expect(byTier('zone')).toEqual(['/eu/west-1a', '/eu/west-1b', '/us/east-1a', '/us/east-1b']);
    expect(byTier('node')).toHaveLength(8);
    expect(t.cells.every((c) => c.replicas.length === 1)).toBe(true);
  });
  it('uses distinct loopback ports and the tier policies', () => {
    const addrs = t.cells.flatMap((c) => c.replicas.map((r) => r.address));
    expect(new Set(addrs).size).toBe(15);
    expect(addrs.every((a) => a.startsWith('127.0.0.1:'))).toBe(true);
    expect(t.byPath.get('/')!.policy).toBe('global-geo');
    expect(t.byPath.get('/eu')!.policy).toBe('region-wrr');
    expect(t.byPath.get('/eu/west-1a')!.policy).toBe('zone-least-conn');
    expect(t.byPath.get('/us/east-1b/n2')!.policy).toBe('node-score');
  });
  it('links parents and children and names replicas <path>#<n>', () => {
    expect(t.byPath.get('/eu')!.children).toEqual(['/eu/west-1a', '/eu/west-1b']);
    expect(t.byPath.get('/eu/west-1a/n1')!.parent).toBe('/eu/west-1a');
    expect(t.byPath.get('/')!.parent).toBe('');
    expect(t.byPath.get('/eu/west-1a')!.replicas[0]!.id).toBe('/eu/west-1a#1');
    expect(t.byPath.get('/eu')!.labels).toContainEqual({ key: 'location', value: 'eu-west' });
    // parents before children
    const idx = new Map(t.cells.map((c, i) => [c.path, i]));
    for (const c of t.cells) if (c.parent) expect(idx.get(c.parent)!).toBeLessThan(idx.get(c.path)!);
  });
  it('fills defaults', () => {
    expect(t.defaults.maxMessageBytes).toBe(4 * 1024 * 1024);
    expect(t.defaults.maxAttempts).toBe(DEFAULTS.maxAttempts);
  });
});

describe('ha.yaml', () => {
  it('has 3-replica balancer cells and 1-replica nodes', () => {
    const t = loadTopology(topo('ha.yaml'));
    for (const c of t.cells) expect(c.replicas.length).toBe(c.tier === 'node' ? 1 : 3);
    expect(t.byPath.get('/')!.replicas.map((r) => r.id)).toEqual(['/#1', '/#2', '/#3']);
  });
});

describe('valid variants', () => {
  it('accepts explicit addresses, a cells list, labels and policy overrides', () => {
    const t = parseTopology(`
name: small
cells:
  - name: /
    policy: p2c
    policyConfig: {}
    replicas: [{ address: "a:1" }, { address: "b:1" }, { address: "c:1" }]
    children:
      - name: r1
        tier: region
        replicas: [{ address: "[::1]:7000" }]
`);
    expect(t.name).toBe('small');
    expect(t.byPath.get('/')!.policy).toBe('p2c');
    expect(t.byPath.get('/')!.policyConfig).toEqual({});
    expect(t.byPath.get('/r1')!.replicas[0]!.address).toBe('[::1]:7000');
  });
  it('takes contextLoadBound in the config of any policy, beside its own keys', () => {
    const t = parseTopology(
      base(
        '  name: /',
        'tiers: { global: { policy: node-score, policyConfig: { load: 2, contextLoadBound: 1.15 } } }\n',
      ),
    );
    expect(t.byPath.get('/')!.policyConfig).toEqual({ load: 2, contextLoadBound: 1.15 });
  });
  it('generates hosts from a pattern with a fixed port', () => {
    const t = parseTopology(`
addressing: { host: "{cell}-{replica}.mesh", port: 7000 }
tiers: { global: { replicas: 3 } }
cells: { name: /, children: [{ name: eu }] }
`);
    expect(t.byPath.get('/')!.replicas.map((r) => r.address)).toEqual([
      'root-1.mesh:7000',
      'root-2.mesh:7000',
      'root-3.mesh:7000',
    ]);
    expect(t.byPath.get('/eu')!.replicas[0]!.address).toBe('eu-1.mesh:7000');
  });
  it('round-trips through topologyToDocument', () => {
    const t = loadTopology(topo('ha.yaml'));
    const again = parseTopology(stringify(topologyToDocument(t)), 'roundtrip');
    expect(again.cells.map((c) => [c.path, c.policy, c.replicas.map((r) => r.address)])).toEqual(
      t.cells.map((c) => [c.path, c.policy, c.replicas.map((r) => r.address)]),
    );
  });
  it('formats a tree and finds replicas', () => {
    const t = loadTopology(topo('example.yaml'));
    expect(formatTopology(t)).toContain('/eu/west-1a/n1  [node, node-score]');
    expect(findReplica(t, '/us', 1).replica.address).toBe('127.0.0.1:7108');
    expect(() => findReplica(t, '/nope')).toThrow(/unknown cell "\/nope"/);
    expect(() => findReplica(t, '/us', 2)).toThrow(/has no replica 2/);
    expect(cellSlug('/eu/west-1a/n1')).toBe('eu-west-1a-n1');
  });
  it('loadTopology names an unreadable file', () => {
    expect(() => loadTopology('/nonexistent/t.yaml')).toThrow(/\/nonexistent\/t.yaml: cannot read/);
  });
  it('knows every registered policy', () => {
    for (const p of [
      'global-geo',
      'region-wrr',
      'zone-least-conn',
      'node-score',
      'random',
      'round-robin',
      'p2c',
      'least-loaded',
    ]) {
      expect(parseTopology(`addressing: { basePort: 1 }\ncells: { name: /, policy: ${p} }`).cells[0]!.policy).toBe(p);
    }
  });
  it('accepts policies passed in explicitly', () => {
    const t = parseTopology('addressing: { basePort: 1 }\ncells: { name: /, policy: mine }', 's', {
      policies: ['mine', 'global-geo'],
    });
    expect(t.cells[0]!.policy).toBe('mine');
  });
});

describe('errors name the file, the cell and the field', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['invalid YAML', 'cells: [', /not valid YAML/],
    ['not a mapping', '- a\n- b', /the document must be a mapping, got a list/],
    ['unknown top-level key', base('  name: /', 'colour: red\n'), /unknown key "colour"/],
    ['unknown cell key', base('  name: /\n  colour: red'), /cell "\/": unknown key "colour"/],
    [
      'unknown defaults key',
      base('  name: /', 'defaults: { maxMessageByte: 5 }\n'),
      /field "defaults": unknown key "maxMessageByte"/,
    ],
    [
      'bad defaults value',
      base('  name: /', 'defaults: { maxAttempts: -1 }\n'),
      /field "defaults.maxAttempts": must be a positive integer/,
    ],
    [
      'heartbeat timeout below interval',
      base('  name: /', 'defaults: { heartbeatTimeoutMs: 500 }\n'),
      /heartbeatTimeoutMs.*must exceed heartbeatIntervalMs/,
    ],
    [
      'link timeout within two summaries',
      base('  name: /', 'defaults: { summaryIntervalMs: 200, linkTimeoutMs: 400 }\n'),
      /linkTimeoutMs.*must exceed twice summaryIntervalMs \(400\)/,
    ],
    ['root not named /', base('  name: root'), /cell "\/" field "name": the root cell's name must be "\/"/],
    [
      'segment with a slash',
      base('  name: /\n  children: [{ name: "eu/x" }]'),
      /cell "\/" field "children\[0\]" field "name": bad path segment/,
    ],
    ['uppercase segment', base('  name: /\n  children: [{ name: EU }]'), /bad path segment string "EU"/],
    ['missing segment', base('  name: /\n  children: [{ labels: {} }]'), /bad path segment nothing/],
    ['duplicate cell', base('  name: /\n  children: [{ name: eu }, { name: eu }]'), /cell "\/eu": duplicate cell/],
    [
      'duplicate address',
      'cells: { name: /, replicas: [{address: "h:1"}], children: [{ name: eu, replicas: [{address: "h:1"}] }] }',
      /cell "\/eu" field "replicas": duplicate address h:1 \(also \/#1\)/,
    ],
    ['replicas 2', base('  name: /\n  replicas: 2'), /cell "\/" field "replicas": must be 1, 3 or 5 replicas.*got 2/],
    [
      'replica list of 4',
      'cells: { name: /, replicas: [{address: "a:1"},{address: "a:2"},{address: "a:3"},{address: "a:4"}] }',
      /must be 1, 3 or 5 replicas.*got 4/,
    ],
    [
      'tier replicas 4',
      base('  name: /', 'tiers: { zone: { replicas: 4 } }\n'),
      /field "tiers.zone.replicas": must be 1, 3 or 5/,
    ],
    [
      'port out of range',
      'cells: { name: /, replicas: [{ address: "h:70000" }] }',
      /cell "\/" field "replicas\[0\].address": port out of range 1-65535: 70000/,
    ],
    ['port zero', 'cells: { name: /, replicas: [{ address: "h:0" }] }', /port out of range 1-65535: 0/],
    ['malformed address', 'cells: { name: /, replicas: [{ address: "nohost" }] }', /malformed address "nohost"/],
    [
      'basePort out of range',
      'addressing: { basePort: 70000 }\ncells: { name: / }',
      /field "addressing.basePort": port out of range/,
    ],
    [
      'generated port overflow',
      'addressing: { basePort: 65535 }\ncells: { name: /, children: [{ name: a }] }',
      /cell "\/a" field "replicas": generated port 65536 out of range/,
    ],
    ['no addresses at all', 'cells: { name: / }', /cell "\/" field "replicas": no address/],
    [
      'node with children',
      base(
        '  name: /\n  children: [{ name: a, children: [{ name: b, children: [{ name: c, children: [{ name: d }] }] }] }]',
      ),
      /cell "\/a\/b\/c" field "children": a node cell \(depth 3\) cannot have children/,
    ],
    [
      'tier mismatch',
      base('  name: /\n  children: [{ name: a, tier: zone }]'),
      /cell "\/a" field "tier": says string "zone" but a cell at depth 1 is tier "region"/,
    ],
    [
      'unknown policy',
      base('  name: /\n  policy: fastest'),
      /cell "\/" field "policy": unknown policy string "fastest" \(known: .*global-geo/,
    ],
    [
      'bad policyConfig (checked by the policy)',
      base('  name: /\n  policy: p2c\n  policyConfig: { bogus: 1 }'),
      /cell "\/" field "policyConfig": policy p2c: .*bogus/,
    ],
    [
      'context load bound below 1 (any policy takes it)',
      base('  name: /\n  policy: p2c\n  policyConfig: { contextLoadBound: 0.5 }'),
      /cell "\/" field "policyConfig": policy p2c: "contextLoadBound" must be >= 1, got 0.5/,
    ],
    [
      'bad tier policyConfig',
      base('  name: /', 'tiers: { global: { policy: p2c, policyConfig: { bogus: 1 } } }\n'),
      /field "tiers.global.policyConfig": policy p2c: .*bogus/,
    ],
    [
      'unknown tier policy',
      base('  name: /', 'tiers: { node: { policy: nope } }\n'),
      /field "tiers.node.policy": unknown policy/,
    ],
    ['unknown tier', base('  name: /', 'tiers: { planet: {} }\n'), /field "tiers": unknown key "planet"/],
    ['labels not a map', base('  name: /\n  labels: [a, b]'), /cell "\/" field "labels": must be a mapping/],
    ['children not a list', base('  name: /\n  children: { name: a }'), /cell "\/" field "children": must be a list/],
    ['missing cells', 'name: t', /field "cells": missing/],
    [
      'container name collision',
      base('  name: /\n  children: [{ name: root }]'),
      /cell "\/root": its container name "root" collides with cell "\/"/,
    ],
    ['bad name', base('  name: /').replace('name: t', 'name: "My Mesh"'), /field "name": must be lowercase/],
    ['duplicate YAML key', 'name: a\nname: b\ncells: { name: / }', /not valid YAML/],
  ];
  for (const [what, text, re] of cases) {
    it(what, () => {
      const issues = errorsOf(text);
      expect(
        issues.some((i) => re.test(i)),
        `issues were:\n${issues.join('\n')}`,
      ).toBe(true);
    });
  }
  it('points at the line of the cell or top-level field', () => {
    const issues = errorsOf(
      'name: t\naddressing: { basePort: 9000 }\ndefaults: { maxAttempts: 0 }\ncells:\n  name: /\n  children:\n    - name: eu\n      replicas: 2\n',
    );
    expect(issues).toContain('line 3: field "defaults.maxAttempts": must be a positive integer, got number 0');
    expect(issues.some((i) => i.startsWith('line 7: cell "/eu" field "replicas"'))).toBe(true);
    expect(errorsOf('name: a\nname: b\ncells: { name: / }')[0]).toMatch(
      /^line 2: not valid YAML: Map keys must be unique$/,
    );
  });
  it('reports every problem at once', () => {
    const issues = errorsOf(base('  name: /\n  replicas: 2\n  children: [{ name: A }, { name: b, policy: x }]'));
    expect(issues.length).toBeGreaterThanOrEqual(3);
  });
  it('rejects depth beyond node even via a node cell', () => {
    // a node cell's children are reported once and not descended into
    const issues = errorsOf(
      base(
        '  name: /\n  children: [{ name: a, children: [{ name: b, children: [{ name: c, children: [{ name: d, children: [{ name: e }] }] }] }] }]',
      ),
    );
    expect(issues).toHaveLength(1);
  });
  it('names the file when loading', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlb-topo-'));
    const f = join(dir, 'broken.yaml');
    writeFileSync(f, 'cells: { name: /, replicas: 2 }');
    expect(() => loadTopology(f)).toThrow(new RegExp(`${f.replaceAll('/', '\\/')}: .*cell "/" field "replicas"`));
  });
});
