// The in-memory twins of LmdbStorage and FileSnapshotStore, for simulators and
// tests: the same LogStore/SnapshotStore semantics (append replaces a suffix,
// compaction keeps the base's term answerable, applySnapshot keeps an agreeing
// suffix) with nothing on disk. The objects play the disk: a simulator keeps
// them across a replica's crash and hands them to the next RaftReplica, which
// recovers its log, hard state and snapshot from them as from lmdb on restart.
// Every write is durable when issued (no torn or lost writes); the promises
// resolve as microtasks, so a replica on a virtual clock never waits for real
// time. Entries and snapshots are kept as given: the runtime never mutates them.
import {
  CompactedError,
  UnavailableError,
  type ConfState,
  type Entry,
  type HardState,
  type NodeId,
  type Snapshot,
  type SnapshotMeta,
} from '../core/types.js';
import { bootstrapLog } from './bootstrap.js';
import { EMPTY_CONF, EMPTY_HARD_STATE, type LogStore, type SnapshotStore } from './ports.js';

/** Snapshots in memory; the latest is the highest index saved, whatever the save order (as with files). */
export class MemorySnapshotStore implements SnapshotStore {
  private latest: Snapshot | undefined;
  /** Snapshots saved so far (taken here or received from a leader). */
  saves = 0;

  async save(snap: Snapshot): Promise<void> {
    this.saves++;
    if (!this.latest || snap.meta.index >= this.latest.meta.index) this.latest = snap;
  }

  load(): Snapshot | undefined {
    return this.latest;
  }

  latestMeta(): SnapshotMeta | undefined {
    return this.latest?.meta;
  }
}

export interface MemoryLogStoreOptions {
  /**
   * Initial voters (id -> address) of a NEW group: the store starts with the
   * same bootstrap entries LmdbStorage writes on a first open. A replica
   * joining an existing group passes none.
   */
  readonly bootstrap?: Readonly<Record<NodeId, string>>;
  /** Where the replica's snapshots live; a new MemorySnapshotStore when absent. */
  readonly snapshots?: SnapshotStore;
}

export class MemoryLogStore implements LogStore {
  readonly snapshots: SnapshotStore;
  private hard: HardState = EMPTY_HARD_STATE;
  /** The compaction point: entries up to it are gone, its term stays answerable. */
  private base = { index: 0, term: 0 };
  /** The log after the base: ents[k].index === base.index + 1 + k. */
  private ents: Entry[] = [];
  private readonly meta = new Map<string, string>();

  constructor(opts: MemoryLogStoreOptions = {}) {
    this.snapshots = opts.snapshots ?? new MemorySnapshotStore();
    if (opts.bootstrap) {
      const { entries, hardState } = bootstrapLog(opts.bootstrap);
      this.ents = entries;
      this.hard = hardState;
    }
  }

  // ---- LogReader (synchronous, used by the core) ----

  initialState(): { hardState: HardState; conf: ConfState } {
    // Without a snapshot the configuration is in the log (bootstrap entries); the core replays it.
    return { hardState: this.hard, conf: this.snapshots.latestMeta()?.conf ?? EMPTY_CONF };
  }

  firstIndex(): number {
    return this.base.index + 1;
  }

  lastIndex(): number {
    return this.base.index + this.ents.length;
  }

  term(i: number): number {
    if (i === this.base.index) return this.base.term;
    if (i < this.base.index) throw new CompactedError(i);
    if (i > this.lastIndex()) throw new UnavailableError(i);
    return this.ents[i - this.base.index - 1]!.term;
  }

  /** As LmdbStorage: at most maxBytes of entry data, but always at least one entry. */
  entries(lo: number, hi: number, maxBytes = Number.POSITIVE_INFINITY): Entry[] {
    if (lo <= this.base.index) throw new CompactedError(lo);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - this.base.index - 1]!;
      bytes += e.data.length;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  snapshot(): Snapshot {
    return (
      this.snapshots.load() ?? {
        meta: { index: this.base.index, term: this.base.term, conf: EMPTY_CONF },
        data: new Uint8Array(0),
      }
    );
  }

  hardState(): HardState {
    return this.hard;
  }

  // ---- writes (issued by the runtime in Ready order) ----

  async append(entries: readonly Entry[], hardState?: HardState): Promise<void> {
    const ents = entries.filter((e) => e.index > this.base.index);
    if (ents.length > 0 && ents[0]!.index > this.lastIndex() + 1) {
      throw new Error(`raft storage: append at ${ents[0]!.index} leaves a gap after ${this.lastIndex()}`);
    }
    if (hardState) this.hard = hardState;
    if (ents.length === 0) return;
    // Replace the suffix from the first new entry on (a conflicting one is dropped with it).
    this.ents.length = ents[0]!.index - this.base.index - 1;
    for (const e of ents) this.ents.push(e);
  }

  async setHardState(hs: HardState): Promise<void> {
    this.hard = hs;
  }

  async compact(index: number): Promise<void> {
    if (index <= this.base.index) return;
    if (index > this.lastIndex()) throw new UnavailableError(index);
    const term = this.term(index);
    this.ents = this.ents.slice(index - this.base.index);
    this.base = { index, term };
  }

  async applySnapshot(meta: SnapshotMeta): Promise<void> {
    this.moveTo(meta);
  }

  getMeta(key: string): string | undefined {
    return this.meta.get(key);
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.meta.set(key, value);
  }

  /**
   * The next replica opens this same store. LmdbStorage, on open, records a
   * snapshot that was saved but not yet applied to the log (a stop between the
   * two); doing it here leaves the next replica the state lmdb would show it.
   */
  async close(): Promise<void> {
    const snap = this.snapshots.latestMeta();
    if (snap) this.moveTo(snap);
  }

  /** Move the log to a snapshot's position, keeping the suffix after it if it agrees with the snapshot. */
  private moveTo(meta: SnapshotMeta): void {
    if (meta.index <= this.base.index) return;
    const keep = meta.index <= this.lastIndex() && this.term(meta.index) === meta.term;
    this.ents = keep ? this.ents.slice(meta.index - this.base.index) : [];
    this.base = { index: meta.index, term: meta.term };
    if (this.hard.commit < meta.index) this.hard = { ...this.hard, commit: meta.index };
  }
}
