// The mesh id: the topology file's `id:`, else derived from the name, so every
// process reading one file agrees and meshes with different names differ.
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { TopologyError, formatTopology, parseTopology, topologyToDocument } from '../../src/topology/parse.js';
import { defaultMeshId } from '../../src/topology/defaults.js';

const file = (head: string) => `${head}\naddressing: { basePort: 9000 }\ncells: { name: / }\n`;

function issues(text: string): readonly string[] {
  try {
    parseTopology(text, 'bad.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(TopologyError);
    return (err as TopologyError).issues;
  }
  throw new Error('expected parseTopology to fail');
}

describe('mesh id', () => {
  it('defaults to a hash of the name: the same in every parse, different for another name', () => {
    const a = parseTopology(file('name: alpha'));
    expect(a.id).toMatch(/^[0-9a-f]{16}$/);
    expect(a.id).toBe(defaultMeshId('alpha'));
    expect(parseTopology(file('name: alpha')).id).toBe(a.id);
    expect(parseTopology(file('name: beta')).id).not.toBe(a.id);
    // No name: the default name "meshlb", and its id.
    expect(parseTopology(file('')).id).toBe(defaultMeshId('meshlb'));
  });

  it('takes an explicit id, so two copies of one file (same name) can differ', () => {
    const staging = parseTopology(file('name: alpha\nid: alpha-staging'));
    const prod = parseTopology(file('name: alpha\nid: alpha-prod'));
    expect(staging.name).toBe(prod.name);
    expect([staging.id, prod.id]).toEqual(['alpha-staging', 'alpha-prod']);
  });

  it('refuses a malformed id, naming the line and the field', () => {
    for (const bad of ['"a/b"', 'Alpha', '""', '42', `"${'a'.repeat(65)}"`, '-a']) {
      const got = issues(file(`name: alpha\nid: ${bad}`));
      expect(got, bad).toHaveLength(1);
      expect(got[0], bad).toMatch(/^line 2: field "id": must be 1-64 lowercase letters, digits and '-', got /);
    }
  });

  it('is kept by topologyToDocument and shown by formatTopology', () => {
    const t = parseTopology(file('name: alpha\nid: alpha-1'));
    expect(parseTopology(stringify(topologyToDocument(t))).id).toBe('alpha-1');
    const d = parseTopology(file('name: alpha'));
    expect(topologyToDocument(d).id).toBe(d.id);
    expect(formatTopology(t).split('\n')[0]).toBe('topology alpha (id alpha-1): 1 cells, 1 replicas');
  });
});
