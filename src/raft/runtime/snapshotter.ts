// The replica's own snapshots: every `snapshotEvery` applied entries the state
// machine is snapshotted, saved in the background (the pump goes on), and the
// log compacted to `snapshotKeep` entries behind it. At most one is written at
// a time; stop() waits for it (bounded), so a replica restarted on the same
// directory never starts while its predecessor is still writing there.
import type { ConfState, Snapshot } from '../core/types.js';
import type { RaftLogger } from '../logger.js';
import type { LogStore, SnapshotStore } from '../storage/ports.js';
import type { RaftClock, RaftTimer } from './clock.js';
import type { RaftLimits } from './defaults.js';

export interface SnapshotterDeps {
  readonly snaps: SnapshotStore;
  readonly log: LogStore;
  readonly limits: Pick<RaftLimits, 'snapshotEvery' | 'snapshotKeep'>;
  readonly logger: RaftLogger;
  /** Once stopped the log is closed: a save that ends later must not compact it. */
  readonly closed: () => boolean;
  /** settle()'s bound runs on it (virtual in a simulation). */
  readonly clock: RaftClock;
}

export class Snapshotter {
  /** Index of the latest snapshot taken or restored here. */
  private index = 0;
  private inFlight: Promise<void> | undefined;

  constructor(private readonly deps: SnapshotterDeps) {}

  /** A snapshot (from disk on start, or from the leader) now holds the state up to `index`. */
  restored(index: number): void {
    this.index = index;
  }

  /** Snapshot if `snapshotEvery` entries were applied since the last one; `data` is read now, saved later. */
  maybeTake(applied: number, conf: ConfState, data: () => Uint8Array): void {
    if (this.inFlight || applied - this.index < this.deps.limits.snapshotEvery) return;
    const snap: Snapshot = { meta: { index: applied, term: this.deps.log.term(applied), conf }, data: data() };
    const write = this.write(snap);
    this.inFlight = write;
    void write.finally(() => {
      if (this.inFlight === write) this.inFlight = undefined;
    });
  }

  /** Wait for the snapshot being written, at most `timeoutMs`; false if it is still going. */
  async settle(timeoutMs: number): Promise<boolean> {
    const write = this.inFlight;
    if (!write) return true;
    let timer: RaftTimer | undefined;
    const expired = new Promise<false>(
      (resolve) => (timer = this.deps.clock.setTimer(timeoutMs, () => resolve(false))),
    );
    try {
      return await Promise.race([write.then(() => true), expired]);
    } finally {
      timer?.cancel();
    }
  }

  private async write(snap: Snapshot): Promise<void> {
    const { snaps, log, limits, logger, closed } = this.deps;
    try {
      await snaps.save(snap);
      // A newer snapshot from the leader may have been restored meanwhile.
      this.index = Math.max(this.index, snap.meta.index);
      const compactTo = snap.meta.index - limits.snapshotKeep;
      if (!closed() && compactTo > log.firstIndex()) await log.compact(compactTo);
    } catch (err) {
      logger.error({ err }, 'snapshot failed');
    }
  }
}
