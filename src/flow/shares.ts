// Shares of the slots, by subject (docs/flow-control.md, "Tenant shares" and
// "Key shares"): per subject — a tenant (tenant-shares.ts) or a concurrency
// key (FlowState.keyShares) — a weight, a guaranteed minimum of slots and a
// ceiling, from the topology or set at runtime through the ledger (over the
// topology's, replicated and in snapshots). This table holds only the
// settings; what counts a subject's slots is its owner's: a tenant's own
// permits, a key's concurrency permits.
import type { ShareSpec } from '../topology/types.js';

/** A subject's minimum and ceiling (0: none) and its DRR weight (0 or absent: not set here). */
export interface Share {
  readonly min: number;
  readonly max: number;
  readonly weight?: number;
}

export const NO_SHARE: Share = { min: 0, max: 0 };

/** A share names something: a minimum, a ceiling or a weight. */
export const isShare = (s: Share): boolean => s.min > 0 || s.max > 0 || (s.weight ?? 0) > 0;

export class ShareTable {
  /** Shares set at runtime (AdminService), over the topology's. */
  private readonly runtime = new Map<string, Share>();

  constructor(private readonly topology: ReadonlyMap<string, ShareSpec> | undefined) {}

  /** Nothing configured nor set: no subject has a share (a cheap test on hot paths). */
  get empty(): boolean {
    return this.runtime.size === 0 && !this.topology?.size;
  }

  /** The subject's share now: runtime over topology. */
  share(subject: string): Share {
    return this.runtime.get(subject) ?? this.topology?.get(subject) ?? NO_SHARE;
  }

  /** The subject has a share (a minimum, a ceiling or a weight). */
  has(subject: string): boolean {
    return !this.empty && isShare(this.share(subject));
  }

  hasRuntime(subject: string): boolean {
    return this.runtime.has(subject);
  }

  /** The topology's weight for the subject, 1 by default. */
  topologyWeight(subject: string): number {
    return this.topology?.get(subject)?.weight || 1;
  }

  /** Subjects with a minimum (the dispatcher serves them first while under it). */
  *withMinimum(): IterableIterator<[string, number]> {
    for (const [t, s] of this.runtime) if (s.min > 0) yield [t, s.min];
    for (const [t, s] of this.topology ?? []) if (s.min > 0 && !this.runtime.has(t)) yield [t, s.min];
  }

  /** Subjects with a share, the topology's or set at runtime. */
  subjects(): Set<string> {
    const out = new Set<string>(this.runtime.keys());
    for (const [t, s] of this.topology ?? []) if (isShare(s)) out.add(t);
    return out;
  }

  /** An operator set the subject's share; one naming nothing returns it to the topology's. */
  set(subject: string, share: Share): void {
    if (isShare(share)) this.runtime.set(subject, share);
    else this.runtime.delete(subject);
  }

  /** The shares set at runtime, in the order they were set (snapshots). */
  runtimeEntries(): [string, Share][] {
    return [...this.runtime];
  }

  /** Replace the runtime shares (a snapshot's). */
  load(entries: Iterable<readonly [string, Share]>): void {
    this.runtime.clear();
    for (const [subject, s] of entries) this.set(subject, s);
  }
}
