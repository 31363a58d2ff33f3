// The circuit breakers of a cell's targets (its agents, or its child cells),
// between the outcomes the relay sees and the candidates the picker gets.
// Breakers (src/policies/breaker.ts) decide; this module applies them: a
// candidate whose breaker limits it gets its credits cut to the breaker's
// allowance (0 open, the probes left half-open, a growing share in slow
// start). It stays a candidate, so when every target is open a task is
// queued (the picker answers `queue`), never spilled or dead-lettered for it.
//
// What counts (relay.ts calls `outcome`): an agent's own result, OK or ERROR
// (FATAL is the task's fault, not the target's); at a node, an attempt lost
// with its agent. The mesh's failures passing up from a child (requeue, lost,
// unplaceable) do not count against the child: they name capacity or a link,
// and the child's own breakers judge its agents.
import { ResultStatus, MeshFailure, type TaskResult } from '../gen/meshlb/v1/task.js';
import {
  Breakers,
  makeCandidate,
  type BreakerConfig,
  type BreakerCounts,
  type BreakerInfo,
  type Candidate,
  type KindSlots,
} from '../policies/index.js';
import type { Via } from './types.js';

export type { BreakerInfo };

/** How often a slow start's share is re-read into the picker. */
const RAMP_REFRESH_MS = 250;

export class BreakerGate {
  readonly breakers: Breakers;
  /** Free slots per kind that limited targets do not get (summaries leave them out). */
  private held = new Map<string, number>();
  private present: ReadonlySet<string> = new Set();
  private rampKickMs = Number.NEGATIVE_INFINITY;
  private readonly blocked = new Set<string>();

  constructor(
    config: BreakerConfig,
    clock: () => number,
    /** A breaker changed state: the picker must be rebuilt. */
    private readonly changed: () => void,
  ) {
    this.breakers = new Breakers(config, clock);
  }

  /** The result of an attempt that went `via`; see the header for what counts. */
  result(via: Via, r: TaskResult): void {
    if (via.type === 'parent' || !this.breakers.enabled) return;
    if (r.meshFailure === MeshFailure.MESH_FAILURE_REQUEUE) this.handedBack(via);
    if (r.meshFailure !== MeshFailure.MESH_FAILURE_UNSPECIFIED) return;
    if (r.status === ResultStatus.RESULT_STATUS_OK) this.record(target(via), true);
    else if (r.status === ResultStatus.RESULT_STATUS_ERROR) this.record(target(via), false);
  }

  /** An attempt came back unrun (refused for capacity): it was no probe. */
  handedBack(via: Via): void {
    if (via.type !== 'parent') this.breakers.unsent(target(via));
  }

  /** An attempt lost with its agent (node cells). */
  lost(via: Via): void {
    if (via.type === 'agent' && this.breakers.enabled) this.record(via.agentId, false);
  }

  private record(id: string, ok: boolean): void {
    if (this.breakers.record(id, ok)) this.changed();
  }

  /** An attempt was routed to `id`. */
  sent(id: string): void {
    this.breakers.sent(id);
  }

  /** The live picker must not get `id`'s freed credit back: its breaker caps it (rebuild instead). */
  limits(id: string): boolean {
    return this.breakers.limits(id);
  }

  /**
   * From the cell's tick: cool-downs that ended make the picker stale, and so
   * does a slow start's growing share (every RAMP_REFRESH_MS while one ramps).
   */
  sweep(now: number): void {
    if (this.breakers.advance()) this.changed();
    else if (now - this.rampKickMs >= RAMP_REFRESH_MS && this.breakers.ramping()) {
      this.rampKickMs = now;
      this.changed();
    }
  }

  /** The candidates as the picker should see them: limited ones with their credits capped. */
  apply(cands: Candidate[]): Candidate[] {
    this.breakers.advance();
    const present = new Set<string>();
    for (const c of cands) present.add(c.id);
    this.present = present;
    this.breakers.prune(present);
    this.held = new Map();
    this.blocked.clear();
    if (!this.breakers.active) return cands;
    // Kinds whose every target is shut by its breaker (no credit allowed at all).
    const open = new Set<string>();
    const served = new Set<string>();
    for (let i = 0; i < cands.length; i++) {
      const c = cands[i]!;
      const limited = this.breakers.limits(c.id);
      if (limited) cands[i] = this.cap(c);
      const shut = limited && this.breakers.allowance(c.id, 1, 1) === 0;
      if (c.draining) continue;
      for (const [kind, s] of c.slots) if (s.total > 0) (shut ? open : served).add(kind);
    }
    for (const kind of open) if (!served.has(kind)) this.blocked.add(kind);
    return cands;
  }

  /** Every target that serves `kind` is shut by its breaker (as of the last picker built). */
  blocks(kind: string): boolean {
    return this.blocked.has(kind);
  }

  private cap(c: Candidate): Candidate {
    const pool = c.sharedSlots;
    let room = pool ? this.breakers.allowance(c.id, pool.total, pool.free) : Infinity;
    const slots = new Map<string, KindSlots>();
    let cut = false;
    for (const [kind, s] of c.slots) {
      const allow = Math.min(room, this.breakers.allowance(c.id, s.total, s.free));
      const free = Math.max(0, Math.min(s.free, allow));
      if (free < s.free) {
        cut = true;
        this.held.set(kind, (this.held.get(kind) ?? 0) + (s.free - free));
      }
      slots.set(kind, { ...s, free });
    }
    if (pool && room < pool.free) cut = true;
    if (!cut) return room > 0 ? makeCandidate({ ...c, limited: true }) : c;
    room = Math.max(0, Math.min(room, pool?.free ?? Infinity));
    return makeCandidate({
      ...c,
      limited: true,
      slots,
      ...(pool ? { sharedSlots: { free: room, total: pool.total } } : {}),
    });
  }

  /** Free slots of `kind` that breakers hold back now (left out of the summary's credit). */
  heldBack(kind: string): number {
    return this.held.get(kind) ?? 0;
  }

  /** Targets whose breaker is not closed (the summary's breakers_open). */
  notClosed(): number {
    const c = this.counts();
    return c.open + c.halfOpen;
  }

  counts(): BreakerCounts {
    return this.breakers.counts(this.present);
  }

  info(id: string): BreakerInfo | undefined {
    return this.breakers.info(id);
  }

  get trips(): number {
    return this.breakers.trips;
  }
}

const target = (via: Exclude<Via, { type: 'parent' }>): string => (via.type === 'agent' ? via.agentId : via.cell);
