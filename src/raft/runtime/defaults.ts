// Timing and flow-control defaults (see docs/raft.md "Defaults" for the why).
//
// Failover budget (design: a new leader within about a second; demo: p99 of
// kill -> new leader < 1.5 s). A follower campaigns when its randomized
// election timeout, [electionTick, 2*electionTick) ticks = [300, 600) ms, runs
// out since the last heartbeat. With two survivors the first fires ~400 ms
// after the last heartbeat on average; pre-vote + vote on loopback (one fsync
// and one RTT each) add a few ms. If both fire within those few ms they split
// the vote and both re-randomize: still <= 600 + 600 ms, inside the budget.
// The 10 ms tick matters as much as the range: the core randomizes in whole
// ticks, and with 50 ms ticks only 10 distinct timeouts exist, so survivors
// often fire in the same tick and split (seen in the demo: 1.7 s failovers).
// Heartbeats every 5 ticks (50 ms) leave 6 heartbeats of slack before the
// 300 ms floor, so a live leader with some event-loop lag is not deposed.
export interface RaftTiming {
  /** Wall-clock length of one core tick. */
  readonly tickMs: number;
  readonly electionTick: number;
  readonly heartbeatTick: number;
}

export const DEFAULT_TIMING: RaftTiming = { tickMs: 10, electionTick: 30, heartbeatTick: 5 };

export interface RaftLimits {
  readonly maxInflight: number;
  readonly maxSizePerMsg: number;
  readonly maxUncommitted: number;
  readonly snapshotEvery: number;
  readonly snapshotKeep: number;
  readonly requestTimeoutMs: number;
}

export const DEFAULT_LIMITS: RaftLimits = {
  /** Appends in flight per follower: pipelining depth before waiting for acks. */
  maxInflight: 256,
  /** Bytes of entries per append message (well under gRPC's 4 MiB receive limit). */
  maxSizePerMsg: 1 << 20,
  /** Uncommitted entries a leader holds before refusing proposals (back-pressure, bounded memory). */
  maxUncommitted: 50_000,
  /** Take a state-machine snapshot and compact after this many applied entries. */
  snapshotEvery: 10_000,
  /** Entries kept behind a snapshot so a briefly lagging follower catches up from the log. */
  snapshotKeep: 2_000,
  /** Default deadline of propose() and read(). */
  requestTimeoutMs: 5_000,
};
