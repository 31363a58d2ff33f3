// Deadlines for agents in their handshake: a stream waiting for its hello, and
// a session welcomed that has not spoken since (its first load comes one
// heartbeat interval after the Welcome). In a connect storm — thousands of
// streams opened at once, by agent processes that are themselves short of
// CPU — hellos and first loads arrive late, and cutting them only makes the
// agents reconnect into the same storm (docs/performance.md, Scale: 20,000 agents
// over the example mesh on 2 cores did not converge). So both deadlines
// stretch with the number of other streams in their handshake at the node
// replica, by STORM_MS_PER_STREAM each, up to MAX_STORM_GRACE_MS; a session that has
// spoken once is judged by its plain heartbeat timeout again.
import type { Heartbeat } from './agent-session.js';
import type { StallClock } from './stall-clock.js';

/** Each stream in its handshake at a node replica gives the others this much longer (ms). */
export const STORM_MS_PER_STREAM = 2;
/** At most this much longer (ms): the SDK gives up waiting for a Welcome after 30 s anyway. */
export const MAX_STORM_GRACE_MS = 30_000;

/** The extra time, ms, while `handshakes` other streams wait for their hello or their first load. */
export const stormGraceMs = (handshakes: number): number =>
  Math.min(MAX_STORM_GRACE_MS, Math.max(0, handshakes) * STORM_MS_PER_STREAM);

/** How long after its stream arrived a hello may come (`timeoutMs`: the configured heartbeat timeout). */
export const helloDeadlineMs = (timeoutMs: number, handshakes: number): number => timeoutMs + stormGraceMs(handshakes);

/**
 * How long a session may stay silent: its heartbeat timeout once it has spoken
 * since its hello; before that, one interval more (its first load is due one
 * interval after the Welcome) and the storm's grace.
 */
export const silenceLimitMs = (hb: Heartbeat, heard: boolean, handshakes: number): number =>
  heard ? hb.timeoutMs : hb.timeoutMs + hb.intervalMs + stormGraceMs(handshakes);

/** The streams of a node replica in their handshake: awaiting their hello, or their first message after it. */
export class Handshakes<Call> {
  /** Streams waiting for their hello, since when (ms). */
  readonly pending = new Map<Call, number>();
  /** Live sessions that have not spoken since their hello. */
  unheard = 0;

  /** Streams in their handshake besides the one judged. */
  get others(): number {
    return this.pending.size + this.unheard - 1;
  }

  /**
   * End (`fail`) the streams whose hello is past its deadline (`timeoutMs`: the configured heartbeat timeout),
   * counted without this process's own stalls (`stalls`, stall-clock.ts): a hello sent during one waits unread.
   */
  expireHellos(
    stalls: StallClock,
    now: number,
    timeoutMs: number,
    fail: (call: Call, deadlineMs: number) => void,
  ): void {
    const deadline = helloDeadlineMs(timeoutMs, this.others);
    for (const [call, since] of this.pending) {
      if (stalls.silence(since, now) <= deadline) continue;
      this.pending.delete(call);
      fail(call, deadline);
    }
  }
}
