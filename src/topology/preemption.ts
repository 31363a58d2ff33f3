// The topology's optional `preemption:` section (docs/flow-control.md,
// "Preemption"), the same for every cell of the mesh:
//   preemption:
//     enabled: true          # default false when the section is absent, true when present
//     minPriority: critical  # critical (default) | high | normal: who may preempt
//     graceMs: 5000          # the victim's time to stop; then its slot counts as free
//     maxPerSecond: 10       # preemptions per node cell per second at most
import { Collector, describe, isObj, type Obj } from './format.js';
import type { PreemptionSpec } from './types.js';

const KEYS = ['enabled', 'minPriority', 'graceMs', 'maxPerSecond'];
const PRIORITIES: readonly PreemptionSpec['minPriority'][] = ['critical', 'high', 'normal'];

export function parsePreemption(raw: unknown, c: Collector): PreemptionSpec | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isObj(raw)) {
    c.add('field "preemption"', `must be a mapping, got ${describe(raw)}`);
    return undefined;
  }
  c.keys('field "preemption"', raw, KEYS);
  const int = (key: string, min: number, max: number, dflt: number): number => {
    const v = raw[key];
    if (v === undefined) return dflt;
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max) return v;
    c.add(`field "preemption.${key}"`, `must be an integer ${min}..${max}, got ${describe(v)}`);
    return dflt;
  };
  let enabled = true;
  if (raw.enabled !== undefined) {
    if (typeof raw.enabled === 'boolean') enabled = raw.enabled;
    else c.add('field "preemption.enabled"', `must be true or false, got ${describe(raw.enabled)}`);
  }
  let minPriority: PreemptionSpec['minPriority'] = 'critical';
  if (raw.minPriority !== undefined) {
    if (PRIORITIES.includes(raw.minPriority as PreemptionSpec['minPriority']))
      minPriority = raw.minPriority as PreemptionSpec['minPriority'];
    else
      c.add(
        'field "preemption.minPriority"',
        `must be one of ${PRIORITIES.join(', ')}, got ${describe(raw.minPriority)}`,
      );
  }
  return {
    enabled,
    minPriority,
    graceMs: int('graceMs', 0, 600_000, 5000),
    maxPerSecond: int('maxPerSecond', 1, 100_000, 10),
  };
}

/** The section as YAML-ready data (topologyToDocument), or undefined when absent. */
export function preemptionToDocument(p: PreemptionSpec | undefined): Obj | undefined {
  return p ? { ...p } : undefined;
}
