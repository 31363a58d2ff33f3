// The shapes a scheduling scenario is made of: a tree of cells over agents,
// a pre-drawn workload (so every policy sees the same tasks, service demands
// and failure draws: common random numbers), faults, and the mesh settings the
// simulator mirrors (summary period and staleness, prefetch, aging, retries).

import type { Label, Priority } from '../../src/policies/index.js';
import { SPEED_CHECK_MS, type SummaryRule } from './pacer.js';

export type SimTier = 'region' | 'zone' | 'node';

export interface AgentSpec {
  /** Unique over the scenario (the node-tier candidate id). */
  readonly id: string;
  readonly kinds: readonly string[];
  readonly slots: number;
  /** Service-time divisor: a task of base time B runs B·work/speed ms (x1 slowest .. x8). */
  readonly speed: number;
  /** Probability that an attempt fails (the agent answers an error after running it). */
  readonly failRate: number;
  /** After each (re)start tasks run `slowStartFactor` times slower for this long (cold caches). */
  readonly slowStartMs: number;
  readonly slowStartFactor: number;
  readonly labels: readonly Label[];
}

export interface CellSpec {
  /** The cell path, e.g. `/eu/z1/n3`. */
  readonly id: string;
  readonly tier: SimTier;
  readonly labels: readonly Label[];
  /** Child cells (empty at a node). */
  readonly children: readonly CellSpec[];
  /** Agents (only at a node). */
  readonly agents: readonly AgentSpec[];
}

export interface TaskSpec {
  readonly id: string;
  /** Arrival at the entry cell, ms. */
  readonly at: number;
  readonly kind: string;
  readonly tenant: string;
  readonly priority: Priority;
  /** Deadline relative to arrival, ms (none if undefined). */
  readonly deadlineMs?: number;
  readonly affinity?: readonly Label[];
  /** Service demand factor: base(kind)·work/speed ms on an agent (mean 1). */
  readonly work: number;
  /** One uniform draw per attempt: the attempt fails if draw < the agent's failRate. */
  readonly failDraws: readonly number[];
}

export interface Fault {
  readonly at: number;
  readonly durationMs: number;
  /** An agent id or a cell path (the whole subtree goes down). */
  readonly target: string;
}

export interface SimSettings {
  /** A child cell sends a summary at least this often (ms). */
  readonly summaryIntervalMs: number;
  /** ...and its parent gets it this much later: how stale the parent's view is. */
  readonly staleMs: number;
  /** One-way delay of a dispatch between cells, and of a result per hop. */
  readonly linkMs: number;
  /** Node prefetch: extra credit offered upward, min(forwardBuffer, ceil(slots·ratio)). */
  readonly prefetchRatio: number;
  readonly forwardBuffer: number;
  /** TaskQueue aging (ms per priority level). */
  readonly agingMs: number;
  /** A cell rebuilds its picker at least this often (the mesh: 250 ms). */
  readonly pickerRefreshMs: number;
  readonly maxAttempts: number;
  readonly retryBackoffMs: number;
  /** How long a parent takes to notice a dead child (link timeout). */
  readonly detectMs: number;
  /** Nodes report their agents by speed in summaries (KindCapacity speed_*; false: as peers that predate them). */
  readonly speedGroups: boolean;
  /** When a child cell sends a summary besides every summaryIntervalMs (./pacer.ts; `credit`: the mesh's rules). */
  readonly summaryRule: SummaryRule;
  /** The `speed` rule judges at most this often, and not sooner after a summary (ms). */
  readonly speedCheckMs: number;
  /** Nodes measure an agent of several kinds per kind (false: one EWMA over its kinds, as before session 12). */
  readonly kindLatency: boolean;
  /** A policy's config wherever it runs, by policy name (`--policy-config`; none: its defaults). */
  readonly policyConfig?: Readonly<Record<string, unknown>>;
  /** Added to every cell's policy seed (`--policy-seed`): the same tasks, other random draws. */
  readonly policySeed?: number;
}

export const DEFAULT_SETTINGS: SimSettings = {
  summaryIntervalMs: 50,
  staleMs: 20,
  linkMs: 1,
  prefetchRatio: 0.5,
  forwardBuffer: 64,
  agingMs: 5000,
  pickerRefreshMs: 250,
  maxAttempts: 3,
  retryBackoffMs: 20,
  detectMs: 1500,
  speedGroups: true,
  kindLatency: true,
  summaryRule: 'credit',
  speedCheckMs: SPEED_CHECK_MS,
};

export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly seed: number;
  /** The entry cell (tasks arrive here; it is every task's home). */
  readonly root: CellSpec;
  /** Base service time per kind at speed x1, ms. */
  readonly kinds: Readonly<Record<string, number>>;
  /** Tenant weights (the queue's DRR quantum). */
  readonly tenants: Readonly<Record<string, number>>;
  readonly tasks: readonly TaskSpec[];
  readonly faults: readonly Fault[];
  readonly settings: SimSettings;
  /** Tiers whose policy the bench varies (every tier present by default). */
  readonly tiers: readonly SimTier[];
  /** Sample per-agent load (running + its share of the node queue) at these times. */
  readonly probeAtMs?: readonly number[];
}

/** Which policy runs at each tier (the defaults unless overridden). */
export type PolicyByTier = Readonly<Record<SimTier, string>>;
