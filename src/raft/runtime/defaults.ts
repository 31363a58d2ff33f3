// Timing and flow-control defaults (see docs/raft.md "Defaults" for the why).
//
// Failover budget: a follower notices the leader is gone when its randomized
// election timeout, [electionTick, 2*electionTick) ticks = [500, 1000) ms, runs
// out since the last heartbeat; with two survivors the first of them fires on
// average ~670 ms after the last heartbeat and never later than ~1 s, then a
// pre-vote and a vote round on loopback (each one fsync + one RTT, ~2 ms) make
// it leader. Heartbeats every tick (50 ms) keep followers' timers far from the
// 500 ms floor even with a few ticks of event-loop lag under load, so a busy
// but live leader is not deposed.
export interface RaftTiming {
  /** Wall-clock length of one core tick. */
  readonly tickMs: number;
  readonly electionTick: number;
  readonly heartbeatTick: number;
}

export const DEFAULT_TIMING: RaftTiming = { tickMs: 50, electionTick: 10, heartbeatTick: 1 };

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
