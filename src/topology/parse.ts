// The topology file: YAML in, a validated Topology out (docs/topology.md has
// the format). Every problem is collected, not just the first, and each line
// names the file, the cell path and the field, so an operator fixes a file in
// one pass. Parsing is pure: no IO except in loadTopology.
//   defaults.ts  built-in values; the defaults, tiers and addressing sections
//   validate.ts  the tree of cells and the mesh-wide checks
//   format.ts    how a problem is written (line, cell, field)
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { defaultMeshId, knownPolicies, parseAddressing, parseDefaults, parseTiers } from './defaults.js';
import { Collector, describe, isObj, nodeLines, yamlSyntaxIssue, type Obj } from './format.js';
import type { CellSpec, ReplicaSpec, Topology } from './types.js';
import { parseSecurity } from './security.js';
import { flowToDocument, parseFlow } from './flow.js';
import { parsePreemption, preemptionToDocument } from './preemption.js';
import { checkMesh, parseBreaker, parseCell, type CellContext } from './validate.js';
import { BREAKER_DEFAULTS } from '../policies/index.js';

const TOP_KEYS = [
  'name',
  'id',
  'defaults',
  'tiers',
  'addressing',
  'cells',
  'security',
  'flow',
  'breakers',
  'preemption',
];
const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,50}[a-z0-9])?$/;
/** No '/': a Raft cluster id is the mesh id followed by the cell path. */
const ID_RE = /^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$/;

/** All problems found in one file; `issues` holds one line per problem. */
export class TopologyError extends Error {
  constructor(
    readonly source: string,
    readonly issues: readonly string[],
  ) {
    super(
      issues.length === 1
        ? `${source}: ${issues[0]}`
        : `${source}: ${issues.length} problems:\n${issues.map((i) => `  - ${i}`).join('\n')}`,
    );
    this.name = 'TopologyError';
  }
}

interface ParseOptions {
  /**
   * Policy names to accept instead of the registry's (then policyConfig is not
   * checked, since those policies may not be registered).
   */
  policies?: readonly string[];
}

/** Parse and validate a topology document. Throws TopologyError listing every problem. */
export function parseTopology(yamlText: string, source = '<topology>', opts: ParseOptions = {}): Topology {
  const lineCounter = new LineCounter();
  const parsed = parseDocument(yamlText, { uniqueKeys: true, lineCounter });
  const syntax = yamlSyntaxIssue(parsed);
  if (syntax !== undefined) throw new TopologyError(source, [syntax]);
  const doc: unknown = parsed.toJS();
  const c = new Collector(nodeLines(parsed.contents, lineCounter));
  if (!isObj(doc)) throw new TopologyError(source, [`the document must be a mapping, got ${describe(doc)}`]);
  c.keys('', doc, TOP_KEYS);
  const policies = knownPolicies(opts.policies);
  let name = 'meshlb';
  if (doc.name !== undefined) {
    if (typeof doc.name !== 'string' || !NAME_RE.test(doc.name)) {
      c.add('field "name"', `must be lowercase letters, digits and '-', got ${describe(doc.name)}`);
    } else name = doc.name;
  }
  let id = defaultMeshId(name);
  if (doc.id !== undefined) {
    if (typeof doc.id !== 'string' || !ID_RE.test(doc.id)) {
      c.add('field "id"', `must be 1-64 lowercase letters, digits and '-', got ${describe(doc.id)}`);
    } else id = doc.id;
  }
  const defaults = parseDefaults(doc.defaults, c);
  const checkConfigs = opts.policies === undefined;
  const tiers = parseTiers(doc.tiers, c, policies, checkConfigs);
  const addressing = parseAddressing(doc.addressing, c);
  const breaker = parseBreaker(doc.breakers, 'field "breakers"', BREAKER_DEFAULTS, c);
  const ctx: CellContext = { c, policies, checkConfigs, tiers, addressing, cells: [], nextPort: 0, breaker };
  let root: unknown = doc.cells;
  if (Array.isArray(root)) {
    if (root.length !== 1) c.add('field "cells"', `must hold exactly one root cell "/", got ${root.length}`);
    root = root[0];
  }
  if (root === undefined || root === null) c.add('field "cells"', 'missing: the tree of cells, rooted at "/"');
  else parseCell(root, '', 0, ctx);
  checkMesh(ctx.cells, c);
  const security = parseSecurity(doc.security, c);
  const flow = parseFlow(doc.flow, c);
  const preemption = parsePreemption(doc.preemption, c);
  if (c.issues.length) throw new TopologyError(source, c.issues);
  return {
    name,
    id,
    defaults,
    cells: ctx.cells,
    byPath: new Map(ctx.cells.map((x) => [x.path, x])),
    ...(security ? { security } : {}),
    ...(flow ? { flow } : {}),
    ...(preemption ? { preemption } : {}),
  };
}

/** Read and parse a topology file; errors name the file. */
export function loadTopology(file: string, opts: ParseOptions = {}): Topology {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TopologyError(file, [`cannot read: ${(err as Error).message}`]);
  }
  return parseTopology(text, file, opts);
}

/** Look up a replica; errors say which cells/replicas exist. */
export function findReplica(topology: Topology, path: string, replica = 1): { cell: CellSpec; replica: ReplicaSpec } {
  const cell = topology.byPath.get(path);
  if (!cell) {
    throw new TopologyError(topology.name, [
      `unknown cell "${path}" (cells: ${topology.cells.map((x) => x.path).join(', ')})`,
    ]);
  }
  const r = cell.replicas.find((x) => x.replica === replica);
  if (!r)
    throw new TopologyError(topology.name, [
      `cell "${path}" has no replica ${replica} (it has ${cell.replicas.length})`,
    ]);
  return { cell, replica: r };
}

/**
 * The topology as explicit YAML (every address spelled out, policies resolved),
 * re-parseable by parseTopology. `mapAddress` rewrites addresses, e.g. to the
 * service DNS names of docker-compose or Kubernetes.
 */
export function topologyToDocument(
  t: Topology,
  mapAddress: (cell: CellSpec, r: ReplicaSpec) => string = (_c, r) => r.address,
): Obj {
  const cellDoc = (cell: CellSpec): Obj => {
    const o: Obj = { name: cell.path === '/' ? '/' : cell.path.slice(cell.path.lastIndexOf('/') + 1) };
    o.tier = cell.tier;
    o.policy = cell.policy;
    if (Object.keys(cell.policyConfig).length) o.policyConfig = cell.policyConfig;
    if (cell.labels.length) o.labels = Object.fromEntries(cell.labels.map((l) => [l.key, l.value]));
    if (cell.breaker && JSON.stringify(cell.breaker) !== JSON.stringify(BREAKER_DEFAULTS))
      o.breaker = { ...cell.breaker };
    o.replicas = cell.replicas.map((r) => ({ address: mapAddress(cell, r) }));
    if (cell.children.length) o.children = cell.children.map((p) => cellDoc(t.byPath.get(p)!));
    return o;
  };
  const root = t.byPath.get('/');
  const flow = flowToDocument(t.flow);
  const preemption = preemptionToDocument(t.preemption);
  return {
    name: t.name,
    id: t.id,
    defaults: { ...t.defaults },
    ...(flow ? { flow } : {}),
    ...(preemption ? { preemption } : {}),
    cells: root ? cellDoc(root) : null,
  };
}

/** A human-readable tree, for `meshlb topology show`. */
export function formatTopology(t: Topology): string {
  const lines = [
    `topology ${t.name} (id ${t.id}): ${t.cells.length} cells, ${t.cells.reduce((n, x) => n + x.replicas.length, 0)} replicas`,
  ];
  const walk = (path: string, indent: string): void => {
    const cell = t.byPath.get(path)!;
    const labels = cell.labels.length ? ` {${cell.labels.map((l) => `${l.key}=${l.value}`).join(', ')}}` : '';
    lines.push(
      `${indent}${cell.path}  [${cell.tier}, ${cell.policy}]${labels}  ${cell.replicas.map((r) => r.address).join(' ')}`,
    );
    for (const ch of cell.children) walk(ch, `${indent}  `);
  };
  if (t.byPath.has('/')) walk('/', '  ');
  return lines.join('\n');
}
