// The smallest topology that still has all four tiers: "/" → "/r" → "/r/z" →
// node cells under the zone. Tests and benchmarks use it where the example's
// 15 cells would only add noise; it is generated as YAML so it goes through
// the same parser and validation as a user's file (and can be written to a
// file for child processes).
import type { Tier } from './types.js';

interface ChainOptions {
  name?: string;
  /** Node cell names under "/r/z" (default ["n1"]). */
  nodes?: readonly string[];
  /** Policy per tier; tiers left out use the tier's default policy. */
  policies?: Partial<Record<Tier, string>>;
  /** Topology `defaults` (camelCase MeshDefaults fields). */
  defaults?: Readonly<Record<string, number | string>>;
  basePort?: number;
  /** Labels of the region cell "/r" (e.g. { location: 'eu-west' }). */
  regionLabels?: Readonly<Record<string, string>>;
}

export function chainTopologyYaml(o: ChainOptions = {}): string {
  const flow = (m: Readonly<Record<string, unknown>>) =>
    `{ ${Object.entries(m)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ')} }`;
  const tiers = Object.entries(o.policies ?? {}).map(([tier, policy]) => `${tier}: { policy: ${policy} }`);
  const nodes = (o.nodes ?? ['n1']).map((n) => `{ name: ${n} }`).join(', ');
  return [
    `name: ${o.name ?? 'chain'}`,
    ...(o.defaults ? [`defaults: ${flow(o.defaults)}`] : []),
    ...(tiers.length ? [`tiers: { ${tiers.join(', ')} }`] : []),
    `addressing: { host: 127.0.0.1, basePort: ${o.basePort ?? 7000} }`,
    'cells:',
    '  name: /',
    '  children:',
    '    - name: r',
    ...(o.regionLabels ? [`      labels: ${flow(o.regionLabels)}`] : []),
    `      children: [{ name: z, children: [${nodes}] }]`,
    '',
  ].join('\n');
}
