// Tenant shares in the simulated runs (docs/flow-control.md, "Tenant
// shares"): one or two tenants with a ceiling (and now and then a minimum and
// a weight) in the topology's `flow.tenants`, drawn from a random stream of
// their own (so the draws of the topology, agents, workload and faults stay
// as they were), and bursts of their tasks at the root, LOGGED (a NONE task
// is not counted against its tenant's share). The Checker counts each capped
// tenant's attempts running at the agents after every start (`share`): never
// above its ceiling, through failovers, crashes and partitions; at the end
// none run and the root's ledger holds none of their slots. Key shares the
// same way, from a stream of their own: one or two concurrency keys with a
// limit that never binds (10) and a ceiling of 1-3 (now and then a minimum and
// a weight) under `flow.concurrency`, named by half of those tasks; the
// `share` check counts each such key's attempts running at the agents too.
import { Durability, Priority, TaskSpec } from '../../../src/gen/meshlb/v1/task.js';
import type { Ledger } from '../../../src/mesh/ledger.js';
import { Rng } from '../../../src/util/rng.js';

export interface SharePlan {
  readonly rng: Rng;
  /** Tenant → its ceiling. */
  readonly ceilings: ReadonlyMap<string, number>;
  /** Lines of the topology's `flow:` section (under `tenants:`). */
  readonly yaml: readonly string[];
  /** Key shares: their own stream, key → its ceiling, lines under `flow.concurrency:`. */
  readonly keyRng: Rng;
  readonly keyCeilings: ReadonlyMap<string, number>;
  readonly keyYaml: readonly string[];
}

export function planShares(seed: number): SharePlan {
  const rng = new Rng((Math.imul(seed, 0xc2b2ae35) ^ 0x5a4e) >>> 0);
  const ceilings = new Map<string, number>();
  const yaml = ['  tenants:'];
  for (let i = rng.int(1, 2); i > 0; i--) {
    const tenant = `s${ceilings.size}`;
    const max = rng.int(1, 4);
    const min = rng.chance(0.5) ? rng.int(1, max) : 0;
    ceilings.set(tenant, max);
    yaml.push(`    ${tenant}: { weight: ${rng.int(1, 5)}, min: ${min}, max: ${max} }`);
  }
  const keyRng = new Rng((Math.imul(seed, 0x27d4eb2f) ^ 0x4b5) >>> 0);
  const keyCeilings = new Map<string, number>();
  const keyYaml: string[] = [];
  for (let i = keyRng.int(1, 2); i > 0; i--) {
    const key = `ks${keyCeilings.size}`;
    const max = keyRng.int(1, 3);
    const min = keyRng.chance(0.5) ? keyRng.int(1, max) : 0;
    keyCeilings.set(key, max);
    keyYaml.push(`    ${key}: { limit: 10, weight: ${keyRng.int(1, 5)}, min: ${min}, max: ${max} }`);
  }
  return { rng, ceilings, yaml, keyRng, keyCeilings, keyYaml };
}

/** A task of a tenant with a share: homed at the root, LOGGED. */
export function shareSpec(p: SharePlan, kinds: readonly string[], seq: number): TaskSpec {
  const r = p.rng;
  return TaskSpec.fromPartial({
    idempotencyKey: `s${seq}`,
    kind: r.pick(kinds),
    priority: r.pick([Priority.PRIORITY_LOW, Priority.PRIORITY_NORMAL, Priority.PRIORITY_HIGH]),
    tenant: r.pick([...p.ceilings.keys()]),
    timeoutMs: r.chance(0.3) ? r.int(500, 3000) : 0,
    maxAttempts: r.chance(0.5) ? r.int(1, 4) : 0,
    durability: Durability.DURABILITY_LOGGED,
    concurrencyKey: p.keyRng.chance(0.5) ? p.keyRng.pick([...p.keyCeilings.keys()]) : '',
  });
}

/** share: a tenant, or a key with a share, never has more attempts running at the agents than its ceiling. */
export class ShareWatch {
  /** By subject: a tenant's name, or `key <key>`. */
  private readonly running = new Map<string, Set<string>>();
  readonly peak = new Map<string, number>();
  readonly starts = new Map<string, number>();
  private readonly ceilings: ReadonlyMap<string, number>;

  constructor(tenants: ReadonlyMap<string, number>, keys: ReadonlyMap<string, number> = new Map()) {
    this.ceilings = new Map([...tenants, ...[...keys].map(([k, n]) => [`key ${k}`, n] as const)]);
  }

  /** An attempt started at an agent; the violations' texts (none: empty). */
  started(tenant: string, at: string, key = ''): string[] {
    const out: string[] = [];
    for (const subject of key ? [tenant, `key ${key}`] : [tenant]) {
      const max = this.ceilings.get(subject);
      if (max === undefined) continue;
      let set = this.running.get(subject);
      if (!set) this.running.set(subject, (set = new Set()));
      set.add(at);
      this.starts.set(subject, (this.starts.get(subject) ?? 0) + 1);
      this.peak.set(subject, Math.max(this.peak.get(subject) ?? 0, set.size));
      const what = subject.startsWith('key ') ? subject : `tenant ${subject}`;
      if (set.size > max) out.push(`${what} has ${set.size} running at agents, ceiling ${max}: ${[...set].join(' ')}`);
    }
    return out;
  }

  finished(at: string): void {
    for (const set of this.running.values()) set.delete(at);
  }

  /** Once drained: nothing of a capped tenant runs, and the root's ledger holds none of its slots. */
  atEnd(root: Ledger | undefined): string[] {
    const out: string[] = [];
    for (const [t, set] of this.running)
      if (set.size > 0)
        out.push(`${t.startsWith('key ') ? t : `tenant ${t}`} still has ${set.size} running at the end`);
    for (const [t, n] of root?.flow.shares.permits.counts() ?? [])
      out.push(`tenant ${t} still holds ${n} slots in the root's ledger at the end`);
    return out;
  }
}
