// The topology file's model: the single source for `meshlb serve`, `dev`,
// `sim`, docker-compose and Kubernetes manifests. Parsed and validated by
// ./parse.ts; see docs/topology.md for the YAML format.

import type { BreakerConfig } from '../policies/breaker.js';

export type Tier = 'global' | 'region' | 'zone' | 'node';

/** A cell's tier is its depth: "/" global, "/eu" region, "/eu/a" zone, "/eu/a/n1" node. */
export const TIERS: readonly Tier[] = ['global', 'region', 'zone', 'node'];

export interface ReplicaSpec {
  /** 1-based replica number within the cell. */
  readonly replica: number;
  /** Stable id, e.g. "/eu/west-1a#2". */
  readonly id: string;
  /** host:port this replica listens on (gRPC, all services on one port). */
  readonly address: string;
}

export interface Label {
  readonly key: string;
  readonly value: string;
}

export interface CellSpec {
  readonly path: string;
  readonly tier: Tier;
  /** Parent path; '' for the root "/". */
  readonly parent: string;
  readonly children: readonly string[];
  /** Routing policy name (src/policies registry) and its config. */
  readonly policy: string;
  readonly policyConfig: Readonly<Record<string, unknown>>;
  readonly replicas: readonly ReplicaSpec[];
  /** Free-form metadata: location, cost, ... reported in summaries. */
  readonly labels: readonly Label[];
  /**
   * Circuit breakers of this cell's targets (its agents, or its children):
   * the file's `breakers` section with the cell's `breaker` over it. Absent:
   * the built-in defaults (src/policies/breaker.ts).
   */
  readonly breaker?: BreakerConfig;
}

export interface MeshDefaults {
  readonly maxMessageBytes: number; // default 4 MiB
  readonly maxPayloadBytes: number; // default 4 MiB
  readonly summaryIntervalMs: number; // default 150
  /** A parent-child link silent this long (no message either way) is declared dead. Default 2000; > 2 × summaryIntervalMs. */
  readonly linkTimeoutMs: number; // default 2000
  readonly heartbeatIntervalMs: number; // default 1000
  readonly heartbeatTimeoutMs: number; // default 3000
  readonly taskTimeoutMs: number; // default 30000
  readonly maxAttempts: number; // default 3
  readonly queueCapacity: number; // default 100000 per cell
  /**
   * How long a task of a kind no agent serves waits where it cannot go further
   * (the root, or a cell cut off from its parent) before it is dead-lettered
   * with the reason "no agent of kind X". Default 300000 (5 minutes).
   */
  readonly unplaceableTimeoutMs: number;
  readonly dataDir: string; // default ".data"
  /**
   * New agent streams each node replica admits per second, a burst of half a second's worth; the rest are
   * told when to come back (RESOURCE_EXHAUSTED with a retry hint; docs/agent-protocol.md). Default 2000.
   */
  readonly helloRatePerSecond: number;
  /**
   * Nodes size the queue room they offer their parent (prefetch) by their
   * arrival forecast, up to their slots (docs/policies.md, "Forecasts and scale
   * recommendations"). Default true; false keeps the static prefetch share.
   */
  readonly forecastPrefetch: boolean;
}

export interface Topology {
  readonly name: string;
  /**
   * The mesh's identity on the wire: every link, Raft and agent hello names it
   * (with `name`) and a peer of another mesh is refused. The file's `id:`, else
   * derived from the name (defaultMeshId), so every process reading the same
   * file agrees with no shared state.
   */
  readonly id: string;
  readonly defaults: MeshDefaults;
  /** Every cell, parents before children. */
  readonly cells: readonly CellSpec[];
  readonly byPath: ReadonlyMap<string, CellSpec>;
  /** The `security:` section (docs/security.md); absent: plaintext and open. */
  readonly security?: SecuritySpec;
  /** The `flow:` section (docs/flow-control.md): concurrency and rate limits per key. */
  readonly flow?: FlowSpec;
  /** The `preemption:` section (docs/flow-control.md, "Preemption"); absent: off. */
  readonly preemption?: PreemptionSpec;
}

/**
 * Preemption: a task of `minPriority` or higher waiting for a slot of a
 * saturated kind takes one from a running attempt of lower priority, which is
 * cancelled with `graceMs` to stop and requeued uncounted; a node preempts at
 * most `maxPerSecond` attempts a second.
 */
export interface PreemptionSpec {
  readonly enabled: boolean;
  readonly minPriority: 'critical' | 'high' | 'normal';
  readonly graceMs: number;
  readonly maxPerSecond: number;
}

/**
 * What happens when a task finds its concurrency key at its limit: it waits
 * (queue); it ends CANCELLED (cancel-newest); or the oldest attempt of the key
 * in progress is cancelled and it goes once that one stopped (cancel-in-progress).
 * A round-robin key is a group: tasks name `group:member` keys, the limit
 * holds over all members together, and a freed permit goes to the members'
 * waiting tasks in turn (round-robin).
 */
export type ConcurrencyStrategy = 'queue' | 'cancel-newest' | 'cancel-in-progress' | 'round-robin';

export interface ConcurrencyKeySpec {
  readonly limit: number;
  readonly strategy: ConcurrencyStrategy;
  /** The key's share of the slots: its weight, minimum and ceiling (docs/flow-control.md, "Key shares"). */
  readonly share?: ShareSpec;
}

/** GCRA: `units` per `periodMs` sustained, `burst` at once from idle. */
export interface RateLimitSpec {
  readonly units: number;
  readonly periodMs: number;
  readonly burst: number;
}

export interface FlowSpec {
  readonly concurrency: ReadonlyMap<string, ConcurrencyKeySpec>;
  readonly rateLimits: ReadonlyMap<string, RateLimitSpec>;
  /**
   * How long past its timeout a lost or stopped attempt keeps its permit (its
   * agent may still run it). Default 5000 ms.
   */
  readonly lingerMs: number;
  /** Tenants' weights, guaranteed minimums and ceilings of slots (docs/flow-control.md, "Tenant shares"). */
  readonly tenants?: ReadonlyMap<string, TenantShareSpec>;
}

/**
 * A tenant's or a concurrency key's share of the slots its home cell
 * dispatches to: `weight` its DRR quantum (default 1), `min` slots it gets
 * ahead of weighted sharing while it has tasks waiting (0: none), `max` the
 * most of its attempts in flight at once (0: no ceiling).
 */
export interface ShareSpec {
  readonly weight: number;
  readonly min: number;
  readonly max: number;
}

export type TenantShareSpec = ShareSpec;

/** Paths as written in the file: relative ones are relative to the topology file's directory. */
export interface SecuritySpec {
  readonly tls?: {
    readonly ca: string;
    /** Patterns: {cell} is the cell's slug ("root", "eu-west-1a"), {replica} its number. */
    readonly cert: string;
    readonly key: string;
    readonly reloadIntervalMs: number;
  };
  readonly auth?: {
    /** Static tokens (sha256 of each token -> principal, roles, tenants); reloaded when it changes. */
    readonly tokens?: string;
    readonly jwt?: {
      readonly hs256SecretFile?: string | undefined;
      readonly rs256PublicKeyFile?: string | undefined;
      readonly issuer?: string | undefined;
      readonly audience?: string | undefined;
    };
  };
  /** Per-tenant limits at each home cell (src/security/quotas.ts); need no tls. */
  readonly quotas?: {
    readonly default?: TenantLimitsSpec;
    readonly tenants?: Readonly<Record<string, TenantLimitsSpec>>;
  };
}

export interface TenantLimitsSpec {
  readonly submitsPerSecond?: number;
  readonly burst?: number;
  readonly queuedTasks?: number;
}
