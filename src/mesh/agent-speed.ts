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
// agents still placed by a report when the overhead moves by a fifth; a node
// cell's AgentSessions owns its Speeds and forgets a session when it is lost. The
// node's first measurement of an agent replaces its report outright: an agent
// that reported wrongly costs only the tasks it got before its first result;
// a report that arrives after that changes nothing.
import type { AgentSpeed } from '../gen/meshlb/v1/agent.js';
import type { TaskResult } from '../gen/meshlb/v1/task.js';
import { ResultStatus } from '../gen/meshlb/v1/task.js';
import { Ewma, type AgentSession } from './agent-session.js';
import type { CellPort } from './port.js';

/** Figures above this (an hour) count as this. */
export const MAX_RUN_MS = 3_600_000;
/** The agents placed by a report are re-read when the overhead moved by this share since. */
const REREAD_SHARE = 0.2;

type Cell = Pick<CellPort, 'agentChanged'>;

/** The latency figure the node places `s` by: measured, else reported plus the overhead, else 0 (unknown). */
export function latencyOf(s: AgentSession): number {
  const r = s.reported;
  return s.latencyMs.seeded || r === undefined ? s.latencyMs.value : r.runMs + r.overhead.value;
}

/**
 * The node's measure of `s`'s attempts of `kind` alone, for an agent of several kinds (0: none yet, or one
 * kind: latencyOf). One EWMA over an agent's kinds took a kind mix for speed: an agent that ran mostly 40
 * ms tasks of one kind looked slow for its 13 ms tasks of another (docs/policies.md, node-score).
 */
export function kindLatencyOf(s: AgentSession, kind: string): number {
  return s.kindLatencyMs?.get(kind)?.value ?? 0;
}

/** Why the node refuses the figure, or '' to take it (0 is "unknown"). */
export function speedRefusal(m: AgentSpeed): string {
  return Number.isFinite(m.runMs) && m.runMs >= 0 ? '' : `speed.run_ms must be a finite number >= 0, got ${m.runMs}`;
}

/** A node cell's overhead per attempt (the sessions' weight), and the sessions still placed by their report. */
export class Speeds {
  readonly overhead = new Ewma(0.1, 0);
  readonly reported = new Set<AgentSession>();
  private told = 0;

  constructor(private readonly cell: Cell) {}

  /**
   * Agent `s`'s figure, to place it by while the node has measured it not (the picker is told at
   * once); a refused one goes to `refuse` (the stream ends).
   */
  take(s: AgentSession, m: AgentSpeed, refuse: (why: string) => void): void {
    const why = speedRefusal(m);
    if (why !== '') return refuse(why);
    if (!(m.runMs > 0) || s.latencyMs.seeded) return;
    s.reported = { runMs: Math.min(m.runMs, MAX_RUN_MS), overhead: this.overhead };
    this.reported.add(s);
    if (s.usable) this.cell.agentChanged(s.id);
  }

  /** The node's own measure of an attempt of `s` of `kind` that ended with `r`: dispatch to result, `ms`. */
  measured(s: AgentSession, ms: number, r: TaskResult, kind: string): void {
    s.latencyMs.add(ms);
    // Per kind only for its declared kinds (bounded: an agent serves few, fixed at its hello).
    if (s.kinds.length > 1 && s.kinds.includes(kind)) {
      const m = (s.kindLatencyMs ??= new Map());
      let e = m.get(kind);
      if (e === undefined) m.set(kind, (e = new Ewma(0.1, 0)));
      e.add(ms);
    }
    s.success.add(r.status === ResultStatus.RESULT_STATUS_OK ? 1 : 0);
    if (s.reported !== undefined) this.forget(s);
    if (r.runMicros > 0) this.addOverhead(Math.max(0, ms - r.runMicros / 1000));
  }

  /** `s` is placed by its report no more: measured, or lost (AgentSessions.lost). */
  forget(s: AgentSession): void {
    s.reported = undefined;
    this.reported.delete(s);
  }

  private addOverhead(ms: number): void {
    this.overhead.add(ms);
    const v = this.overhead.value;
    if (Math.abs(v - this.told) <= REREAD_SHARE * Math.max(this.told, 1)) return;
    this.told = v;
    for (const s of this.reported) if (s.usable) this.cell.agentChanged(s.id);
  }
}
