// The tree of cells: each cell read and checked against its tier's defaults,
// its replicas given addresses, and the checks that span the whole mesh
// (unique addresses, container names that do not collide). Every problem goes
// to the Collector; a cell too broken to place is left out, its problems kept.
import {
  REPLICA_COUNTS,
  checkPolicyConfig,
  expandHost,
  unknownPolicyMsg,
  type Addressing,
  type TierDefaults,
} from './defaults.js';
import { parseBreakerConfig, type BreakerConfig } from '../policies/index.js';
import { Collector, describe, isObj, type Obj } from './format.js';
import { SEGMENT_RE, cellSlug, depthOf, joinPath, splitAddress } from './paths.js';
import { TIERS, type CellSpec, type Label, type ReplicaSpec, type Tier } from './types.js';

const MAX_DEPTH = TIERS.length; // "/" is depth 0 = global; node = depth 3
const CELL_KEYS = ['name', 'tier', 'policy', 'policyConfig', 'labels', 'replicas', 'children', 'breaker'];
const REPLICA_KEYS = ['address'];

export interface CellContext {
  c: Collector;
  policies: Set<string>;
  checkConfigs: boolean;
  tiers: Record<Tier, TierDefaults>;
  addressing: Addressing;
  /** Every cell placed so far, parents before children. */
  cells: CellSpec[];
  /** Next offset from addressing.basePort, one per generated replica address. */
  nextPort: number;
  /** The file's `breakers` section over the built-in defaults; a cell's `breaker` goes over it. */
  breaker: BreakerConfig;
}

/** A breaker section (the file's `breakers`, a cell's `breaker`) over `base`. */
export function parseBreaker(raw: unknown, where: string, base: BreakerConfig, c: Collector): BreakerConfig {
  if (raw === undefined || raw === null) return base;
  try {
    return parseBreakerConfig(raw, base);
  } catch (err) {
    c.add(where, (err as Error).message);
    return base;
  }
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

/** Read one cell and, recursively, its children into ctx.cells; parent '' means the root. */
export function parseCell(raw: unknown, parent: string, siblingIndex: number, ctx: CellContext): CellSpec | undefined {
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
  const breaker = parseBreaker(raw.breaker, `${where} field "breaker"`, ctx.breaker, c);
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
    breaker,
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

function parseReplicas(raw: unknown, path: string, tier: Tier, dflt: number, ctx: CellContext): ReplicaSpec[] {
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

/** Checks across the whole mesh, once every cell is placed. */
export function checkMesh(cells: readonly CellSpec[], c: Collector): void {
  // Addresses are unique across the whole mesh.
  const seen = new Map<string, string>();
  for (const cell of cells) {
    for (const r of cell.replicas) {
      const prev = seen.get(r.address);
      if (prev) c.add(`cell "${cell.path}" field "replicas"`, `duplicate address ${r.address} (also ${prev})`);
      else seen.set(r.address, r.id);
    }
  }
  // Cells also name containers, Services and StatefulSets (cellSlug): "/a-b" and "/a/b" would collide.
  const slugs = new Map<string, string>();
  for (const cell of cells) {
    const s = cellSlug(cell.path);
    const prev = slugs.get(s);
    if (prev) c.add(`cell "${cell.path}"`, `its container name "${s}" collides with cell "${prev}"; rename one`);
    else slugs.set(s, cell.path);
  }
}
