// The durable Raft log on lmdb. Entries live in their own database keyed by
// index (lmdb's ordered-binary number keys sort numerically); hard state, the
// log base (compaction point) and small runtime records live under meta keys.
//
// Durability: lmdb-js defaults to `overlappingSync` on Linux (a commit resolves
// when VISIBLE, the fsync comes later); we turn it off, so LMDB's commit itself
// fsyncs (`noSync`/`noMetaSync` are never set). Writes do not block the event loop: a write is lmdb-js asynchronous single
// operations (put/remove) issued in one event turn, which lmdb-js commits as
// ONE transaction on its writer thread (eventTurnBatching, its default); the
// promise resolves after that commit, fsync included. (transactionSync, used
// before, stopped the event loop for every fsync: docs/raft.md.) Within a
// write, any prefix of the operations is a valid log (belt and braces): a
// conflicting suffix goes first, the hard state after the entries it covers,
// a base before the entries below it. Writes run in call order. Group commit
// is the runtime's: what arrives while one Ready is written joins the next.
//
// Reads are synchronous (the core's LogReader contract): recent entries from an
// in-memory tail cache (always holding the entries of a write in flight), older
// ones from lmdb. In-memory state is updated when a write is issued (values are
// captured then); durability is what the promise reports.
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import {
  CompactedError,
  UnavailableError,
  type ConfState,
  type NodeId,
  type Entry,
  type HardState,
  type Snapshot,
  type SnapshotMeta,
} from '../core/types.js';
import { silentLogger, type RaftLogger } from '../logger.js';
import { bootstrapLog } from './bootstrap.js';
import { decodeEntry, decodeMeta, encodeEntry, encodeMeta } from './codec.js';
import { EMPTY_CONF, EMPTY_HARD_STATE, StorageCorruptionError, type LogStore, type SnapshotStore } from './ports.js';
import { FileSnapshotStore } from './snapshot-store.js';

export interface LmdbStorageOptions {
  /** Directory holding raft.lmdb and snapshots/. */
  readonly dir: string;
  /**
   * Initial voters (id -> address) of a NEW group: on first open of an empty
   * log, write the core's bootstrap entries (one committed addVoter per voter at
   * term 1, in id order, so every initial member holds the same log). Ignored
   * once the log has anything. A replica joining an existing group passes none.
   */
  readonly bootstrap?: Readonly<Record<NodeId, string>>;
  readonly snapshots?: SnapshotStore;
  /** Entries kept in memory for the core's reads (the tail of the log). */
  readonly cacheEntries?: number;
  /** Silent when absent. */
  readonly log?: RaftLogger;
}

interface Base {
  index: number;
  term: number;
}

/** What moving to a snapshot's position changes on disk, in order (see snapshotPlan). */
interface SnapshotPlan {
  apply(remove: (index: number) => void, put: (key: string, value: Buffer) => void): void;
}

const K_HARD = 'hardState';
const K_BASE = 'base';

export class LmdbStorage implements LogStore {
  readonly snapshots: SnapshotStore;
  private readonly root: RootDatabase;
  private readonly ents: Database<Buffer, number>;
  private readonly meta: Database<Buffer, string>;
  private readonly log: RaftLogger;
  private readonly cacheMax: number;
  private hard: HardState = EMPTY_HARD_STATE;
  private base: Base = { index: 0, term: 0 };
  private last = 0;
  /** Contiguous tail of the log: cache[k].index === last - cache.length + 1 + k. */
  private cache: Entry[] = [];
  private failed: Error | undefined;
  /** A commit-only hard state not yet written (see append); flushed with the next write or by a timer. */
  private hardDirty = false;
  private hardTimer: NodeJS.Timeout | undefined;
  /** Side records as last written (lmdb shows a write only once it committed). */
  private readonly metaValues = new Map<string, string>();

  /** Opens (creating if needed) and verifies the log: see recover(). Throws StorageCorruptionError. */
  static open(opts: LmdbStorageOptions): LmdbStorage {
    return new LmdbStorage(opts);
  }

  private constructor(opts: LmdbStorageOptions) {
    this.log = opts.log ?? silentLogger;
    this.cacheMax = opts.cacheEntries ?? 16_384;
    this.snapshots = opts.snapshots ?? new FileSnapshotStore(path.join(opts.dir, 'snapshots'));
    this.root = open({
      path: path.join(opts.dir, 'raft.lmdb'),
      overlappingSync: false,
      noSync: false,
      maxDbs: 4,
      mapSize: 1 << 30,
    });
    this.ents = this.root.openDB<Buffer, number>({ name: 'entries', encoding: 'binary' });
    this.meta = this.root.openDB<Buffer, string>({ name: 'meta', encoding: 'binary' });
    try {
      this.recover(opts.bootstrap);
    } catch (err) {
      void this.root.close();
      throw err;
    }
  }

  /**
   * Load meta records, verify every entry's checksum and contiguity, then:
   *  - a bad record above the durable commit index is a torn/corrupt TAIL that
   *    no quorum can depend on from us alone: truncate it (and log it);
   *  - a bad record at or below the commit index is committed data lost:
   *    refuse to start, an operator must replace this replica's data.
   * Finally catch up with a snapshot that was saved but not yet recorded here.
   */
  private recover(bootstrap: Readonly<Record<NodeId, string>> | undefined): void {
    const hard = this.readMeta<HardState>(K_HARD);
    const base = this.readMeta<Base>(K_BASE);
    if (hard) this.hard = hard;
    if (base) this.base = base;
    if (bootstrap && !hard && !base && this.snapshots.latestMeta() === undefined && this.ents.getKeysCount() === 0) {
      const { entries: ents, hardState } = bootstrapLog(bootstrap);
      this.hard = hardState;
      this.root.transactionSync(() => {
        for (const e of ents) this.ents.putSync(e.index, encodeEntry(e));
        this.meta.putSync(K_HARD, encodeMeta(this.hard));
      });
    }
    let expect = this.base.index + 1;
    let bad: number | undefined;
    const tail: Entry[] = [];
    for (const { key, value } of this.ents.getRange({ start: expect })) {
      const e = key === expect ? decodeEntry(key, value) : undefined;
      if (!e) {
        bad = expect;
        break;
      }
      tail.push(e);
      if (tail.length > this.cacheMax) tail.shift();
      expect++;
    }
    if (bad !== undefined) {
      if (bad <= this.hard.commit) {
        throw new StorageCorruptionError(
          `raft log entry ${bad} is corrupt or missing but the durable commit index is ${this.hard.commit}: ` +
            `committed data is damaged, refusing to start; restore this replica from a peer (wipe its data dir)`,
        );
      }
      const dropped = [...this.ents.getKeys({ start: bad })];
      this.log.warn(
        { from: bad, records: dropped.length, commit: this.hard.commit },
        'truncating corrupt uncommitted log tail',
      );
      this.root.transactionSync(() => {
        for (const k of dropped) this.ents.removeSync(k);
      });
    }
    this.last = expect - 1;
    this.cache = tail;
    const snap = this.snapshots.latestMeta();
    if (snap && snap.index > this.base.index) {
      this.log.info({ index: snap.index }, 'recording snapshot saved before a crash');
      const plan = this.snapshotPlan(snap);
      this.root.transactionSync(() =>
        plan.apply(
          (i) => void this.ents.removeSync(i),
          (k, v) => void this.meta.putSync(k, v),
        ),
      );
    }
  }

  private readMeta<T>(key: string): T | undefined {
    const v = decodeMeta<T>(this.meta.getBinary(key));
    if (v === 'corrupt') throw new StorageCorruptionError(`raft meta record '${key}' fails its checksum`);
    return v;
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
    return this.last;
  }

  term(i: number): number {
    if (i === this.base.index) return this.base.term;
    if (i < this.base.index) throw new CompactedError(i);
    if (i > this.last) throw new UnavailableError(i);
    return this.entry(i).term;
  }

  entries(lo: number, hi: number, maxBytes = Number.POSITIVE_INFINITY): Entry[] {
    if (lo <= this.base.index) throw new CompactedError(lo);
    if (hi > this.last + 1) throw new UnavailableError(hi - 1);
    const out: Entry[] = [];
    let bytes = 0;
    const cacheFirst = this.last - this.cache.length + 1;
    if (lo < cacheFirst) {
      for (const { key, value } of this.ents.getRange({ start: lo, end: Math.min(hi, cacheFirst) })) {
        const e = this.decodeOrFail(key, value);
        bytes += e.data.length;
        if (out.length > 0 && bytes > maxBytes) return out;
        out.push(e);
      }
    }
    for (let i = Math.max(lo, cacheFirst); i < hi; i++) {
      const e = this.cache[i - cacheFirst]!;
      bytes += e.data.length;
      if (out.length > 0 && bytes > maxBytes) return out;
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

  private entry(i: number): Entry {
    const cacheFirst = this.last - this.cache.length + 1;
    if (i >= cacheFirst) return this.cache[i - cacheFirst]!;
    return this.decodeOrFail(i, this.ents.getBinary(i));
  }

  private decodeOrFail(i: number, value: Uint8Array | undefined): Entry {
    const e = decodeEntry(i, value);
    if (!e) throw new StorageCorruptionError(`raft log entry ${i} failed its checksum on read`);
    return e;
  }

  // ---- writes (asynchronous, issued by the runtime in Ready order) ----

  hardState(): HardState {
    return this.hard;
  }

  async append(entries: readonly Entry[], hardState?: HardState, opts: { sync?: boolean } = {}): Promise<void> {
    this.checkHealthy();
    const ents = entries.filter((e) => e.index > this.base.index);
    if (ents.length > 0 && ents[0]!.index > this.last + 1) {
      throw new Error(`raft storage: append at ${ents[0]!.index} leaves a gap after ${this.last}`);
    }
    if (ents.length === 0 && !hardState) return;
    if (hardState) this.hard = hardState;
    if (ents.length === 0 && !(opts.sync ?? true)) {
      // Only the commit index moved (etcd's mustSync=false). Every lmdb commit
      // is an fsync, so rather than a transaction of its own it rides along with
      // the next write; a timer bounds how stale the durable copy can get.
      this.hardDirty = true;
      this.hardTimer ??= setTimeout(() => {
        this.hardTimer = undefined;
        if (this.hardDirty && !this.failed) void this.write(() => [this.putHard()]).catch(() => undefined);
      }, 200).unref();
      return;
    }
    const oldLast = this.last;
    const newLast = ents.length > 0 ? ents.at(-1)!.index : this.last;
    if (ents.length > 0) this.updateCache(ents);
    await this.write(() => {
      // A conflicting suffix longer than the new entries: drop what is past them (first, see the header).
      const ops: Array<Promise<boolean>> = [];
      if (ents.length > 0) for (let i = newLast + 1; i <= oldLast; i++) ops.push(this.ents.remove(i));
      for (const e of ents) ops.push(this.ents.put(e.index, encodeEntry(e)));
      if (hardState || this.hardDirty) ops.push(this.putHard());
      return ops;
    });
  }

  /** Queue the hard state as it is NOW (captured at issue time, not when lmdb runs the write). */
  private putHard(): Promise<boolean> {
    this.hardDirty = false;
    return this.meta.put(K_HARD, encodeMeta(this.hard));
  }

  async setHardState(hs: HardState): Promise<void> {
    await this.append([], hs);
  }

  async compact(index: number): Promise<void> {
    this.checkHealthy();
    if (index <= this.base.index) return;
    if (index > this.last) throw new UnavailableError(index);
    const term = this.term(index);
    const from = this.base.index + 1;
    const base = (this.base = { index, term });
    const cacheFirst = this.last - this.cache.length + 1;
    if (index >= cacheFirst) this.cache = this.cache.slice(index - cacheFirst + 1);
    await this.write(() => {
      // The base moves first: entries below it are never read, so any prefix of this write is a valid log.
      const ops = [this.meta.put(K_BASE, encodeMeta(base))];
      for (let i = from; i <= index; i++) ops.push(this.ents.remove(i));
      return ops;
    });
  }

  async applySnapshot(meta: SnapshotMeta): Promise<void> {
    this.checkHealthy();
    if (meta.index <= this.base.index) return;
    const plan = this.snapshotPlan(meta);
    await this.write(() => {
      const ops: Array<Promise<boolean>> = [];
      plan.apply(
        (i) => ops.push(this.ents.remove(i)),
        (k, v) => ops.push(this.meta.put(k, v)),
      );
      return ops;
    });
  }

  /**
   * Moves memory to the snapshot's position now and returns the disk's part
   * (values captured now). Keeps the log suffix if it agrees with the snapshot.
   * Order, so that any prefix of it is a valid log: a conflicting suffix goes
   * first, then base and hard state move, then the entries below the base.
   */
  private snapshotPlan(meta: SnapshotMeta): SnapshotPlan {
    const keep = meta.index <= this.last && this.term(meta.index) === meta.term;
    const from = this.base.index + 1;
    const dropTo = keep ? meta.index : this.last;
    if (keep) {
      const cacheFirst = this.last - this.cache.length + 1;
      if (meta.index >= cacheFirst) this.cache = this.cache.slice(meta.index - cacheFirst + 1);
    } else {
      this.cache = [];
      this.last = meta.index;
    }
    this.base = { index: meta.index, term: meta.term };
    if (this.hard.commit < meta.index) this.hard = { ...this.hard, commit: meta.index };
    const base = encodeMeta(this.base);
    const hard = encodeMeta(this.hard);
    return {
      apply: (remove, put) => {
        for (let i = Math.max(from, meta.index + 1); i <= dropTo; i++) remove(i);
        put(K_BASE, base);
        put(K_HARD, hard);
        for (let i = from; i <= Math.min(dropTo, meta.index); i++) remove(i);
      },
    };
  }

  getMeta(key: string): string | undefined {
    return this.metaValues.get(key) ?? this.readMeta<string>(`x:${key}`);
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.checkHealthy();
    this.metaValues.set(key, value);
    await this.write(() => [this.meta.put(`x:${key}`, encodeMeta(value))]);
  }

  async close(): Promise<void> {
    if (this.hardTimer) clearTimeout(this.hardTimer);
    if (this.hardDirty && !this.failed) await this.write(() => [this.putHard()]);
    await this.root.close();
  }

  private updateCache(ents: readonly Entry[]): void {
    const first = ents[0]!.index;
    const cacheFirst = this.last - this.cache.length + 1;
    if (first <= cacheFirst) this.cache = [];
    else this.cache.length = first - cacheFirst; // drop the conflicting suffix
    for (const e of ents) this.cache.push(e);
    // Never trim the entries being written: lmdb shows them only once they committed.
    const keep = Math.max(this.cacheMax, ents.length);
    if (this.cache.length > keep) this.cache = this.cache.slice(this.cache.length - keep);
    this.last = ents.at(-1)!.index;
  }

  /**
   * One atomic, fsync'd lmdb transaction, committed on lmdb-js's writer thread:
   * `issue` queues its operations synchronously (one event turn, so one
   * transaction) and the promise resolves once lmdb committed them durably.
   */
  private async write(issue: () => Array<Promise<boolean>>): Promise<void> {
    try {
      await Promise.all(issue());
    } catch (err) {
      // A failed write leaves memory ahead of disk: nothing later may be trusted.
      this.failed ??= new StorageCorruptionError('raft storage write failed', { cause: err });
      this.log.error({ err }, 'raft storage write failed; replica must stop');
      throw this.failed;
    }
  }

  private checkHealthy(): void {
    if (this.failed) throw this.failed;
  }
}
