// A seeded mesh shape for one simulated run: the cell tree (cells sit at a
// tier by depth, so every mesh has the four tiers; width and replica counts
// vary), the kinds, and the agents of every node with their slots, speeds,
// failure rates and labels.
import type { Label } from '../../../src/gen/meshlb/v1/task.js';
import { parseTopology } from '../../../src/topology/parse.js';
import type { Topology } from '../../../src/topology/types.js';
import type { Rng } from '../../../src/util/rng.js';
import type { AgentShape } from './agent.js';

export interface Shape {
  readonly topology: Topology;
  readonly kinds: readonly string[];
  readonly agents: readonly AgentShape[];
  /** Labels some agents carry and some tasks require. */
  readonly gpuLabels: readonly Label[];
}

export interface ShapeOptions {
  /** Replicas per cell are drawn from 1..maxReplicas (1 = no Raft groups). */
  readonly maxReplicas: number;
  /** The topology's `flow:` section as YAML lines (flow.ts draws it from its own stream). */
  readonly flowYaml?: readonly string[];
}

const POLICIES = {
  global: ['global-geo', 'least-loaded', 'round-robin', 'p2c', 'random'],
  region: ['region-wrr', 'least-loaded', 'p2c'],
  zone: ['zone-least-conn', 'least-loaded', 'round-robin'],
  node: ['node-score', 'least-loaded', 'p2c', 'random'],
};

export function makeShape(rng: Rng, o: ShapeOptions): Shape {
  const replicas = (): number => (o.maxReplicas <= 1 ? 1 : rng.pick([1, 1, 3, 3, 5].filter((n) => n <= o.maxReplicas)));
  const lines: string[] = [];
  const cell = (indent: string, name: string, depth: number, tierPolicy: string): void => {
    lines.push(`${indent}${name === '/' ? 'name: /' : `- name: ${name}`}`);
    const pad = name === '/' ? indent : `${indent}  `;
    const n = replicas();
    if (n > 1) lines.push(`${pad}replicas: ${n}`);
    if (rng.chance(0.3)) lines.push(`${pad}policy: ${tierPolicy}`);
    if (depth === 3) return;
    const width = depth === 0 ? rng.int(1, 2) : rng.int(1, depth === 2 ? 3 : 2);
    lines.push(`${pad}children:`);
    const tier = (['region', 'zone', 'node'] as const)[depth]!;
    for (let i = 0; i < width; i++) cell(`${pad}  `, `${tier[0]}${i}`, depth + 1, rng.pick(POLICIES[tier]));
  };
  cell('  ', '/', 0, rng.pick(POLICIES.global));
  const yaml = [
    `name: sim`,
    `tiers:`,
    `  global: { policy: ${rng.pick(POLICIES.global)} }`,
    `  region: { policy: ${rng.pick(POLICIES.region)} }`,
    `  zone: { policy: ${rng.pick(POLICIES.zone)} }`,
    `  node: { policy: ${rng.pick(POLICIES.node)} }`,
    `addressing: { host: 127.0.0.1, basePort: 20000 }`,
    ...(o.flowYaml ?? []),
    `cells:`,
    ...lines,
  ].join('\n');
  const topology = parseTopology(yaml);
  const kinds = ['k0', 'k1', 'k2'].slice(0, rng.int(1, 3));
  const gpuLabels: Label[] = [
    { key: 'gpu', value: 'a100' },
    { key: 'gpu', value: 't4' },
  ];
  const agents: AgentShape[] = [];
  for (const spec of topology.cells) {
    if (spec.tier !== 'node') continue;
    const count = rng.int(0, 4);
    for (let i = 0; i < count; i++) {
      const mine = kinds.filter(() => rng.chance(0.6));
      if (mine.length === 0) mine.push(rng.pick(kinds));
      agents.push({
        id: `${spec.path.slice(1).replaceAll('/', '.')}.a${i}`,
        node: spec.path,
        kinds: mine,
        labels: rng.chance(0.3) ? [rng.pick(gpuLabels)] : [],
        slots: rng.int(1, 4),
        // Heterogeneous speeds: x1 to x8.
        serviceMs: 20 * rng.pick([1, 1, 2, 4, 8]),
        failRate: rng.pick([0, 0, 0.02, 0.1]),
      });
    }
  }
  return { topology, kinds, agents, gpuLabels };
}
