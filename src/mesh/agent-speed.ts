// An agent's own figure for how long its tasks run (ConnectRequest.speed,
// AgentSpeed): the mean over its recent tasks, or what its options declare.
// The node measures every agent itself (dispatch to result: the session's
// latency EWMA). Until it has, the agent's figure is that EWMA's value, so
// node-score places the agent by it from its first task instead of trying it
// one task at a time, and the node's speed groups (node-completion.ts) and
// summaries count it. The node's first measurement replaces it outright: an
// agent that declared wrongly costs only the tasks it got before its first
// result. A figure that arrives after that first measurement changes nothing.
import type { AgentSpeed } from '../gen/meshlb/v1/agent.js';
import type { AgentSession } from './agent-session.js';
import type { CellPort } from './port.js';

/** Figures above this (an hour) count as this. */
export const MAX_RUN_MS = 3_600_000;

/** Why the node refuses the figure, or '' to take it (0 is "unknown"). */
export function speedRefusal(m: AgentSpeed): string {
  return Number.isFinite(m.runMs) && m.runMs >= 0 ? '' : `speed.run_ms must be a finite number >= 0, got ${m.runMs}`;
}

/**
 * Agent `s`'s figure, as its service time while the node has measured none (the picker is told
 * at once); a refused one goes to `refuse` (the stream ends).
 */
export function takeSpeed(
  s: AgentSession,
  m: AgentSpeed,
  cell: Pick<CellPort, 'agentChanged'>,
  refuse: (why: string) => void,
): void {
  const why = speedRefusal(m);
  if (why !== '') return refuse(why);
  if (m.runMs > 0 && s.latencyMs.prior(Math.min(m.runMs, MAX_RUN_MS)) && s.usable) cell.agentChanged(s.id);
}

/** The node's own measure of an attempt of `s`: dispatch to result (ms), and whether it succeeded. */
export function measured(s: AgentSession, ms: number, ok: boolean): void {
  s.latencyMs.add(ms);
  s.success.add(ok ? 1 : 0);
}
