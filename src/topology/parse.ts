// The topology file: YAML in, a validated Topology out (docs/topology.md has
// the format). Every problem is collected, not just the first, and each line
// names the file, the cell path and the field, so an operator fixes a file in
// one pass. Parsing is pure: no IO except in loadTopology.
import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node as YamlNode } from 'yaml';
// Importing the policies' index registers every policy, so validation knows
// their names and checks each cell's policyConfig with the policy's own parser.
import { DEFAULT_POLICY_BY_TIER, getPolicy, listPolicies } from '../policies/index.js';
import {
  TIERS,
  type CellSpec,
  type Label,
  type MeshDefaults,
  type ReplicaSpec,
  type Tier,
  type Topology,
} from './types.js';

export const DEFAULTS: MeshDefaults = {
  maxMessageBytes: 4 * 1024 * 1024,
  maxPayloadBytes: 4 * 1024 * 1024,
  summaryIntervalMs: 150,
  linkTimeoutMs: 2000,
  heartbeatIntervalMs: 1000,
  heartbeatTimeoutMs: 3000,
  taskTimeoutMs: 30_000,
  maxAttempts: 3,
  queueCapacity: 100_000,
  dataDir: '.data',
};

/** The tier defaults of the design (seed 002's per-tier algorithms). */
export const DEFAULT_TIER_POLICY: Readonly<Record<Tier, string>> = DEFAULT_POLICY_BY_TIER;

/** The policy names of the design; the registry (listPolicies) is the authority, these the fallback. */
export const BUILTIN_POLICIES: readonly string[] = [
  'global-geo',
  'region-wrr',
  'zone-least-conn',
  'node-score',
  'random',
  'round-robin',
  'p2c',
  'least-loaded',
];

export const REPLICA_COUNTS: readonly number[] = [1, 3, 5];
export const MAX_DEPTH = TIERS.length; // "/" is depth 0 = global; node = depth 3
/** A path segment: lowercase DNS-label characters, since it names containers and StatefulSets. */
export const SEGMENT_RE = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;
const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,50}[a-z0-9])?$/;

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

export interface ParseOptions {
  /**
   * Policy names to accept instead of the registry's (then policyConfig is not
   * checked, since those policies may not be registered).
   */
  policies?: readonly string[];
}

const TOP_KEYS = ['name', 'defaults', 'tiers', 'addressing', 'cells'];
const TIER_KEYS = ['policy', 'policyConfig', 'replicas'];
const ADDRESSING_KEYS = ['host', 'basePort', 'port'];
const CELL_KEYS = ['name', 'tier', 'policy', 'policyConfig', 'labels', 'replicas', 'children'];
const REPLICA_KEYS = ['address'];

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** "/" + segments; the root is "/". */
export function joinPath(parent: string, segment: string): string {
  return parent === '/' ? `/${segment}` : `${parent}/${segment}`;
}

export function depthOf(path: string): number {
  return path === '/' ? 0 : path.split('/').length - 1;
}

/** A name safe for DNS, containers and StatefulSets: "/" → "root", "/eu/west-1a" → "eu-west-1a". */
export function cellSlug(path: string): string {
  return path === '/' ? 'root' : path.slice(1).replaceAll('/', '-');
}

/** Split "host:port" ("[::1]:7000" too); undefined if malformed. */
export function splitAddress(address: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  return { host: m[1]!, port: Number(m[2]) };
}

interface Addressing {
  host: string;
  basePort?: number;
  port?: number;
}

class Collector {
  readonly issues: string[] = [];
  /** Line of each cell's mapping and each top-level key, to point at the problem. */
  constructor(private readonly lines: ReadonlyMap<string, number> = new Map()) {}
  add(where: string, msg: string): void {
    const line = this.lineOf(where);
    this.issues.push(`${line ? `line ${line}: ` : ''}${where ? `${where}: ` : ''}${msg}`);
  }
  private lineOf(where: string): number | undefined {
    const cell = /^cell "([^"]+)"/.exec(where);
    if (cell) return this.lines.get(cell[1]!);
    const field = /^field "([a-zA-Z]+)/.exec(where);
    if (field) return this.lines.get(field[1]!);
    return undefined;
  }
  keys(where: string, o: Obj, allowed: readonly string[]): void {
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k)) this.add(where, `unknown key "${k}" (allowed: ${allowed.join(', ')})`);
    }
  }
}

function knownPolicies(opts: ParseOptions): Set<string> {
  if (opts.policies) return new Set(opts.policies);
  const registered = listPolicies();
  return new Set(registered.length ? registered : BUILTIN_POLICIES);
}

/** Check a policyConfig with the policy's own parser (when the policy is registered). */
function checkPolicyConfig(where: string, policy: string, config: Obj, c: Collector, enabled: boolean): void {
  if (!enabled) return;
  const factory = getPolicy(policy);
  if (!factory) return;
  try {
    factory.parseConfig(config);
  } catch (err) {
    c.add(where, (err as Error).message);
  }
}

function parseDefaults(raw: unknown, c: Collector): MeshDefaults {
  if (raw === undefined || raw === null) return DEFAULTS;
  if (!isObj(raw)) {
    c.add('field "defaults"', `must be a mapping, got ${describe(raw)}`);
    return DEFAULTS;
  }
  c.keys('field "defaults"', raw, Object.keys(DEFAULTS));
  const out: Record<string, unknown> = { ...DEFAULTS };
  for (const [k, def] of Object.entries(DEFAULTS)) {
    const v = raw[k];
    if (v === undefined) continue;
    if (typeof def === 'number') {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
        c.add(`field "defaults.${k}"`, `must be a positive integer, got ${describe(v)}`);
        continue;
      }
    } else if (typeof v !== 'string' || v === '') {
      c.add(`field "defaults.${k}"`, `must be a non-empty string, got ${describe(v)}`);
      continue;
    }
    out[k] = v;
  }
  const d = out as unknown as MeshDefaults;
  if (d.heartbeatTimeoutMs <= d.heartbeatIntervalMs) {
    c.add('field "defaults.heartbeatTimeoutMs"', `must exceed heartbeatIntervalMs (${d.heartbeatIntervalMs})`);
  }
  if (d.linkTimeoutMs <= 2 * d.summaryIntervalMs) {
    c.add('field "defaults.linkTimeoutMs"', `must exceed twice summaryIntervalMs (${2 * d.summaryIntervalMs})`);
  }
  return d;
}

interface TierDefaults {
  policy: string;
  policyConfig: Obj;
  replicas: number;
}

function parseTiers(
  raw: unknown,
  c: Collector,
  policies: Set<string>,
  checkConfigs: boolean,
): Record<Tier, TierDefaults> {
  const out = Object.fromEntries(
    TIERS.map((t) => [t, { policy: DEFAULT_TIER_POLICY[t], policyConfig: {}, replicas: 1 }]),
  ) as Record<Tier, TierDefaults>;
  if (raw === undefined || raw === null) return out;
  if (!isObj(raw)) {
    c.add('field "tiers"', `must be a mapping of tier → settings, got ${describe(raw)}`);
    return out;
  }
  c.keys('field "tiers"', raw, TIERS);
  for (const tier of TIERS) {
    const t = raw[tier];
    if (t === undefined) continue;
    const where = `field "tiers.${tier}"`;
    if (!isObj(t)) {
      c.add(where, `must be a mapping, got ${describe(t)}`);
      continue;
    }
    c.keys(where, t, TIER_KEYS);
    if (t.policy !== undefined) {
      if (typeof t.policy !== 'string' || !policies.has(t.policy)) {
        c.add(`field "tiers.${tier}.policy"`, unknownPolicyMsg(t.policy, policies));
      } else out[tier].policy = t.policy;
    }
    if (t.policyConfig !== undefined) {
      if (!isObj(t.policyConfig))
        c.add(`field "tiers.${tier}.policyConfig"`, `must be a mapping, got ${describe(t.policyConfig)}`);
      else {
        out[tier].policyConfig = t.policyConfig;
        checkPolicyConfig(`field "tiers.${tier}.policyConfig"`, out[tier].policy, t.policyConfig, c, checkConfigs);
      }
    }
    if (t.replicas !== undefined) {
      if (typeof t.replicas !== 'number' || !REPLICA_COUNTS.includes(t.replicas)) {
        c.add(`field "tiers.${tier}.replicas"`, `must be 1, 3 or 5, got ${describe(t.replicas)}`);
      } else out[tier].replicas = t.replicas;
    }
  }
  return out;
}

function unknownPolicyMsg(v: unknown, policies: Set<string>): string {
  return `unknown policy ${describe(v)} (known: ${[...policies].sort().join(', ')})`;
}

function parseAddressing(raw: unknown, c: Collector): Addressing {
  const out: Addressing = { host: '127.0.0.1' };
  if (raw === undefined || raw === null) return out;
  if (!isObj(raw)) {
    c.add('field "addressing"', `must be a mapping, got ${describe(raw)}`);
    return out;
  }
  c.keys('field "addressing"', raw, ADDRESSING_KEYS);
  if (raw.host !== undefined) {
    if (typeof raw.host !== 'string' || raw.host === '')
      c.add('field "addressing.host"', `must be a host name or pattern, got ${describe(raw.host)}`);
    else out.host = raw.host;
  }
  for (const k of ['basePort', 'port'] as const) {
    const v = raw[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
      c.add(`field "addressing.${k}"`, `port out of range 1-65535: ${describe(v)}`);
    } else out[k] = v;
  }
  if (out.basePort !== undefined && out.port !== undefined) {
    c.add(
      'field "addressing"',
      'give either basePort (one port per replica) or port (the same port on distinct hosts), not both',
    );
  }
  return out;
}

interface Ctx {
  c: Collector;
  policies: Set<string>;
  checkConfigs: boolean;
  tiers: Record<Tier, TierDefaults>;
  addressing: Addressing;
  cells: CellSpec[];
  /** Cells whose replica addresses come from `addressing`, filled once the tree is known. */
  nextPort: number;
}

/** Expand the host pattern for one replica: {cell} slug, {replica}, {tier}. */
function expandHost(pattern: string, path: string, replica: number, tier: Tier): string {
  return pattern
    .replaceAll('{cell}', cellSlug(path))
    .replaceAll('{replica}', String(replica))
    .replaceAll('{tier}', tier);
}

function parseLabels(raw: unknown, where: string, c: Collector): Label[] {
  if (raw === undefined || raw === null) return [];
  if (!isObj(raw)) {
    c.add(`${where} field "labels"`, `must be a mapping of key: value, got ${describe(raw)}`);
    return [];
  }
  const out: Label[] = [];
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      c.add(`${where} field "labels.${key}"`, `must be a string, number or boolean, got ${describe(value)}`);
      continue;
    }
    out.push({ key, value: String(value) });
  }
  return out;
}

function parseCell(raw: unknown, parent: string, siblingIndex: number, ctx: Ctx): CellSpec | undefined {
  const { c } = ctx;
  const depth = parent === '' ? 0 : depthOf(parent) + 1;
  const parentWhere = parent === '' ? 'field "cells"' : `cell "${parent}" field "children[${siblingIndex}]"`;
  if (!isObj(raw)) {
    c.add(parentWhere, `a cell must be a mapping, got ${describe(raw)}`);
    return undefined;
  }
  // Path.
  let path: string;
  if (parent === '') {
    if (raw.name !== undefined && raw.name !== '/') {
      c.add('cell "/" field "name"', `the root cell's name must be "/", got ${describe(raw.name)}`);
    }
    path = '/';
  } else {
    const name = raw.name;
    if (typeof name !== 'string' || !SEGMENT_RE.test(name)) {
      c.add(
        `${parentWhere} field "name"`,
        `bad path segment ${describe(name)}: lowercase letters, digits and '-', 1-32 characters, no '/'`,
      );
      return undefined;
    }
    path = joinPath(parent, name);
  }
  const where = `cell "${path}"`;
  c.keys(where, raw, CELL_KEYS);
  if (depth >= MAX_DEPTH) {
    c.add(where, `too deep: depth ${depth + 1} > ${MAX_DEPTH} (tiers are ${TIERS.join(' > ')})`);
    return undefined;
  }
  const tier = TIERS[depth]!;
  if (raw.tier !== undefined && raw.tier !== tier) {
    c.add(`${where} field "tier"`, `says ${describe(raw.tier)} but a cell at depth ${depth} is tier "${tier}"`);
  }
  if (ctx.cells.some((x) => x.path === path)) {
    c.add(where, 'duplicate cell');
    return undefined;
  }
  // Policy.
  const td = ctx.tiers[tier];
  let policy = td.policy;
  if (raw.policy !== undefined) {
    if (typeof raw.policy !== 'string' || !ctx.policies.has(raw.policy))
      c.add(`${where} field "policy"`, unknownPolicyMsg(raw.policy, ctx.policies));
    else policy = raw.policy;
  }
  let policyConfig: Obj = raw.policy !== undefined && raw.policy !== td.policy ? {} : td.policyConfig;
  if (raw.policyConfig !== undefined) {
    if (!isObj(raw.policyConfig))
      c.add(`${where} field "policyConfig"`, `must be a mapping, got ${describe(raw.policyConfig)}`);
    else {
      policyConfig = raw.policyConfig;
      checkPolicyConfig(`${where} field "policyConfig"`, policy, policyConfig, c, ctx.checkConfigs);
    }
  }
  const labels = parseLabels(raw.labels, where, c);
  const replicas = parseReplicas(raw.replicas, path, tier, td.replicas, ctx);
  // Children.
  let rawChildren: unknown[] = [];
  if (raw.children !== undefined && raw.children !== null) {
    if (!Array.isArray(raw.children))
      c.add(`${where} field "children"`, `must be a list of cells, got ${describe(raw.children)}`);
    else rawChildren = raw.children;
  }
  if (tier === 'node' && rawChildren.length > 0) {
    c.add(`${where} field "children"`, 'a node cell (depth 3) cannot have children');
    rawChildren = [];
  }
  const cell: { -readonly [K in keyof CellSpec]: CellSpec[K] } = {
    path,
    tier,
    parent: parent === '' ? '' : parent,
    children: [],
    policy,
    policyConfig,
    replicas,
    labels,
  };
  ctx.cells.push(cell);
  const children: string[] = [];
  rawChildren.forEach((rc, i) => {
    const child = parseCell(rc, path, i, ctx);
    if (child) children.push(child.path);
  });
  cell.children = children;
  return cell;
}

function parseReplicas(raw: unknown, path: string, tier: Tier, dflt: number, ctx: Ctx): ReplicaSpec[] {
  const { c } = ctx;
  const where = `cell "${path}" field "replicas"`;
  const make = (n: number, address: string): ReplicaSpec => ({ replica: n, id: `${path}#${n}`, address });
  const generated = (count: number): ReplicaSpec[] => {
    const out: ReplicaSpec[] = [];
    for (let n = 1; n <= count; n++) {
      const host = expandHost(ctx.addressing.host, path, n, tier);
      let port: number;
      if (ctx.addressing.port !== undefined) port = ctx.addressing.port;
      else if (ctx.addressing.basePort !== undefined) port = ctx.addressing.basePort + ctx.nextPort++;
      else {
        c.add(
          where,
          'no address: list `{ address: host:port }` per replica, or set addressing.basePort or addressing.port',
        );
        return [];
      }
      if (port > 65535) {
        c.add(where, `generated port ${port} out of range 1-65535 (lower addressing.basePort)`);
        return [];
      }
      out.push(make(n, `${host}:${port}`));
    }
    return out;
  };
  if (raw === undefined || raw === null) return generated(dflt);
  if (typeof raw === 'number') {
    if (!REPLICA_COUNTS.includes(raw)) {
      c.add(where, `must be 1, 3 or 5 replicas (a Raft group needs an odd majority), got ${raw}`);
      return [];
    }
    return generated(raw);
  }
  if (!Array.isArray(raw)) {
    c.add(where, `must be a count (1, 3, 5) or a list of { address }, got ${describe(raw)}`);
    return [];
  }
  if (!REPLICA_COUNTS.includes(raw.length)) {
    c.add(where, `must be 1, 3 or 5 replicas (a Raft group needs an odd majority), got ${raw.length}`);
  }
  const out: ReplicaSpec[] = [];
  raw.forEach((r, i) => {
    const w = `cell "${path}" field "replicas[${i}]"`;
    if (!isObj(r)) {
      c.add(w, `must be a mapping { address: host:port }, got ${describe(r)}`);
      return;
    }
    c.keys(w, r, REPLICA_KEYS);
    const a = r.address;
    if (typeof a !== 'string') {
      c.add(`cell "${path}" field "replicas[${i}].address"`, `must be a "host:port" string, got ${describe(a)}`);
      return;
    }
    const hp = splitAddress(a);
    if (!hp) {
      c.add(`cell "${path}" field "replicas[${i}].address"`, `malformed address "${a}" (want host:port)`);
      return;
    }
    if (hp.port < 1 || hp.port > 65535) {
      c.add(`cell "${path}" field "replicas[${i}].address"`, `port out of range 1-65535: ${hp.port}`);
      return;
    }
    out.push(make(i + 1, a));
  });
  return out;
}

/** Lines of the top-level keys and of every cell (by path), for error messages. */
function nodeLines(root: unknown, lc: LineCounter): Map<string, number> {
  const out = new Map<string, number>();
  const lineOf = (n: unknown) => {
    const r = (n as YamlNode | null)?.range;
    return r ? lc.linePos(r[0]).line : undefined;
  };
  if (!isMap(root)) return out;
  for (const pair of root.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
    const line = lineOf(pair.key);
    if (key && line) out.set(key, line);
  }
  const walk = (node: unknown, path: string) => {
    if (!isMap(node)) return;
    const line = lineOf(node);
    if (line && !out.has(path)) out.set(path, line);
    const children = node.get('children', true);
    if (!isSeq(children)) return;
    for (const ch of children.items) {
      if (!isMap(ch)) continue;
      const name = ch.get('name');
      if (typeof name === 'string' && SEGMENT_RE.test(name)) walk(ch, joinPath(path, name));
    }
  };
  let cells: unknown = root.get('cells', true);
  if (isSeq(cells)) cells = cells.items[0];
  walk(cells, '/');
  return out;
}

/** Parse and validate a topology document. Throws TopologyError listing every problem. */
export function parseTopology(yamlText: string, source = '<topology>', opts: ParseOptions = {}): Topology {
  const lineCounter = new LineCounter();
  const parsed = parseDocument(yamlText, { uniqueKeys: true, lineCounter });
  if (parsed.errors.length) {
    const e = parsed.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new TopologyError(source, [
      `${line ? `line ${line}: ` : ''}not valid YAML: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
    ]);
  }
  const doc: unknown = parsed.toJS();
  const c = new Collector(nodeLines(parsed.contents, lineCounter));
  if (!isObj(doc)) throw new TopologyError(source, [`the document must be a mapping, got ${describe(doc)}`]);
  c.keys('', doc, TOP_KEYS);
  const policies = knownPolicies(opts);
  let name = 'meshlb';
  if (doc.name !== undefined) {
    if (typeof doc.name !== 'string' || !NAME_RE.test(doc.name)) {
      c.add('field "name"', `must be lowercase letters, digits and '-', got ${describe(doc.name)}`);
    } else name = doc.name;
  }
  const defaults = parseDefaults(doc.defaults, c);
  const checkConfigs = opts.policies === undefined;
  const tiers = parseTiers(doc.tiers, c, policies, checkConfigs);
  const addressing = parseAddressing(doc.addressing, c);
  const ctx: Ctx = { c, policies, checkConfigs, tiers, addressing, cells: [], nextPort: 0 };
  let root: unknown = doc.cells;
  if (Array.isArray(root)) {
    if (root.length !== 1) c.add('field "cells"', `must hold exactly one root cell "/", got ${root.length}`);
    root = root[0];
  }
  if (root === undefined || root === null) c.add('field "cells"', 'missing: the tree of cells, rooted at "/"');
  else parseCell(root, '', 0, ctx);

  // Addresses are unique across the whole mesh.
  const seen = new Map<string, string>();
  for (const cell of ctx.cells) {
    for (const r of cell.replicas) {
      const prev = seen.get(r.address);
      if (prev) c.add(`cell "${cell.path}" field "replicas"`, `duplicate address ${r.address} (also ${prev})`);
      else seen.set(r.address, r.id);
    }
  }
  // Cells also name containers, Services and StatefulSets (cellSlug): "/a-b" and "/a/b" would collide.
  const slugs = new Map<string, string>();
  for (const cell of ctx.cells) {
    const s = cellSlug(cell.path);
    const prev = slugs.get(s);
    if (prev) c.add(`cell "${cell.path}"`, `its container name "${s}" collides with cell "${prev}"; rename one`);
    else slugs.set(s, cell.path);
  }
  if (c.issues.length) throw new TopologyError(source, c.issues);
  return {
    name,
    defaults,
    cells: ctx.cells,
    byPath: new Map(ctx.cells.map((x) => [x.path, x])),
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
    o.replicas = cell.replicas.map((r) => ({ address: mapAddress(cell, r) }));
    if (cell.children.length) o.children = cell.children.map((p) => cellDoc(t.byPath.get(p)!));
    return o;
  };
  const root = t.byPath.get('/');
  return { name: t.name, defaults: { ...t.defaults }, cells: root ? cellDoc(root) : null };
}

/** A human-readable tree, for `meshlb topology show`. */
export function formatTopology(t: Topology): string {
  const lines = [
    `topology ${t.name}: ${t.cells.length} cells, ${t.cells.reduce((n, x) => n + x.replicas.length, 0)} replicas`,
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
