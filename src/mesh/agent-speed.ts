// An agent's own figure for how long its tasks run (ConnectRequest.speed,
// AgentSpeed): the mean over its recent tasks, or what its options declare.
// The node measures every agent itself (dispatch to result: the session's
// latency EWMA). Until it has, it places the agent by the reported run time
// plus what the node itself adds to every attempt (its overhead: dispatch to
// result minus the agent's run_micros, an EWMA over all its agents' results),
// so a reported figure compares with measured ones like with like. Without the
// overhead a cold or CPU-starved node, whose own part of a fast agent's
// turnover is several times its 20 ms run, saw slow agents (160 ms reported)
// as barely slower than fast ones and sent them work. The picker re-reads the
// agents still placed by a report when the overhead moves by a fifth. The
// node's first measurement of an agent replaces its report outright: an agent
// that reported wrongly costs only the tasks it got before its first result;
// a report that arrives after that changes nothing.
import type { AgentSpeed } from '../gen/meshlb/v1/agent.js';
import type { TaskResult } from '../gen/meshlb/v1/task.js';
import { ResultStatus } from '../gen/meshlb/v1/task.js';
import type { AgentSession } from './agent-session.js';
import type { CellPort } from './port.js';

/** Figures above this (an hour) count as this. */
export const MAX_RUN_MS = 3_600_000;
/** Weight of the newest sample in the overhead (as the sessions' EWMAs). */
const ALPHA = 0.1;
/** The agents placed by a report are re-read when the overhead moved by this share since. */
const REREAD_SHARE = 0.2;
/** Sessions gone before their first result are swept out of the reported set from this size on (amortized O(1)). */
const SWEEP_FLOOR = 1024;

type Cell = Pick<CellPort, 'agentChanged'>;

/** A node cell's overhead per attempt, and the sessions still placed by their report. */
class Overhead {
  value = 0;
  private seeded = false;
  private told = 0;
  readonly reported = new Set<AgentSession>();
  /** Sweep out the sessions gone since (never measured, never re-read) when the set reaches this. */
  private sweepAt = SWEEP_FLOOR;

  report(s: AgentSession): void {
    this.reported.add(s);
    if (this.reported.size < this.sweepAt) return;
    for (const x of this.reported) if (x.dead) this.reported.delete(x);
    this.sweepAt = Math.max(SWEEP_FLOOR, 2 * this.reported.size);
  }

  add(ms: number, cell: Cell): void {
    this.value = this.seeded ? this.value + ALPHA * (ms - this.value) : ms;
    this.seeded = true;
    if (Math.abs(this.value - this.told) <= REREAD_SHARE * Math.max(this.told, 1)) return;
    this.told = this.value;
    for (const s of this.reported) {
      if (s.dead) this.reported.delete(s);
      else if (s.usable) cell.agentChanged(s.id);
    }
  }
}

/** One per node cell (its port), kept as long as the cell is; exported for tests. */
const overheads = new WeakMap<object, Overhead>();
export function overheadOf(cell: Cell): Overhead {
  let o = overheads.get(cell);
  if (o === undefined) overheads.set(cell, (o = new Overhead()));
  return o;
}

/** The latency figure the node places `s` by: measured, else reported plus the overhead, else 0 (unknown). */
export function latencyOf(s: AgentSession): number {
  const r = s.reported;
  return s.latencyMs.seeded || r === undefined ? s.latencyMs.value : r.runMs + r.overhead.value;
}

/** Why the node refuses the figure, or '' to take it (0 is "unknown"). */
export function speedRefusal(m: AgentSpeed): string {
  return Number.isFinite(m.runMs) && m.runMs >= 0 ? '' : `speed.run_ms must be a finite number >= 0, got ${m.runMs}`;
}

/**
 * Agent `s`'s figure, to place it by while the node has measured it not (the picker is told at
 * once); a refused one goes to `refuse` (the stream ends).
 */
export function takeSpeed(s: AgentSession, m: AgentSpeed, cell: Cell, refuse: (why: string) => void): void {
  const why = speedRefusal(m);
  if (why !== '') return refuse(why);
  if (!(m.runMs > 0) || s.latencyMs.seeded) return;
  const overhead = overheadOf(cell);
  s.reported = { runMs: Math.min(m.runMs, MAX_RUN_MS), overhead };
  overhead.report(s);
  if (s.usable) cell.agentChanged(s.id);
}

/** The node's own measure of an attempt of `s` that ended with `r`: dispatch to result, `ms`. */
export function measured(s: AgentSession, ms: number, r: TaskResult, cell: Cell): void {
  s.latencyMs.add(ms);
  s.success.add(r.status === ResultStatus.RESULT_STATUS_OK ? 1 : 0);
  const overhead = overheadOf(cell);
  if (s.reported !== undefined) {
    s.reported = undefined;
    overhead.reported.delete(s);
  }
  if (r.runMicros > 0) overhead.add(Math.max(0, ms - r.runMicros / 1000), cell);
}
