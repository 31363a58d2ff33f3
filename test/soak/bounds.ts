// The soak's stated bounds: per replica process, the slope of a line fitted to
// its samples after the warm-up must stay below
//   - resident memory (VmRSS): 12 MB/min, 30 MB/min for the home (the root,
//     where every task is submitted);
//   - open file descriptors: 2 per minute.
// Why these. A healthy replica's RSS still climbs in its first minutes while
// V8 grows its heap lazily (3-6 MB/min over a 2-minute run, flat after about
// 100 s in 6-minute runs), and the home holds more by design: its ledger keeps
// the last 100,000 ended tasks (about 1.6 KB of heap each: at 40 tasks/s,
// roughly 4 MB/min of heap, 8-16 MB/min of RSS, until full) and its Raft log up
// to 10,000 entries between snapshots. A per-task leak of 5 KB at 40 tasks/s
// (12 MB/min), a leaked socket per agent churn (6 a minute) or a stream per
// task passes them. Longer runs can tighten them (npm run soak -- --rss-slope).
export interface SoakBounds {
  /** Resident memory growth per replica (relays and nodes), MB per minute. */
  readonly rssMbPerMin: number;
  /** The same for the home's replicas (the root cell), MB per minute. */
  readonly homeRssMbPerMin: number;
  /** Open file descriptor growth per replica, per minute. */
  readonly fdsPerMin: number;
}

export const DEFAULT_BOUNDS: SoakBounds = { rssMbPerMin: 12, homeRssMbPerMin: 30, fdsPerMin: 2 };
