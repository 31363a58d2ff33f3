// One simulated replica: a RawNode over a "disk" that models unsynced writes.
// The node reads `live` (everything written); `durable` is what survives a
// crash, refreshed only by sync(). The Ready contract says to sync before
// sending when mustSync, so a crash can only lose writes nothing depended on
// (a leader's early appends excepted: see Ready.earlyMessages).

import { RawNode } from '../../../src/raft/core/raft.js';
import { MemoryStorage } from '../../../src/raft/core/memory-storage.js';
import type { TestingKnobs } from '../../../src/raft/core/core.js';
import type { ConfState, NodeId, RaftConfig } from '../../../src/raft/core/types.js';
import { KvStore, fnv } from './kv.js';
import type { LogView } from './invariants.js';
import type { Rng } from '../../../src/util/rng.js';

export interface PendingOp {
  readonly client: number;
  readonly seq: number;
  readonly kind: 'put' | 'get';
  readonly key: string;
  readonly value: string | null;
  readonly call: number;
  readonly deadline: number;
  /** get: set once the node's ReadState for it arrived. */
  readIndex?: number;
}

export interface NodeParams {
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxInflight: number;
  readonly maxSizePerMsg: number;
  readonly maxUncommitted: number;
  /** The driver sends a leader's appends before syncing (Ready.earlyMessages). */
  readonly earlyMessages: boolean;
  readonly knobs: TestingKnobs;
}

export class Disk {
  durable: MemoryStorage;
  live: MemoryStorage;

  constructor(initial: MemoryStorage) {
    this.durable = initial.clone();
    this.live = initial;
  }

  sync(): void {
    this.durable = this.live.clone();
  }

  /** A crash: whatever was not synced is gone. */
  crash(): void {
    this.live = this.durable.clone();
  }
}

/** LogView over a storage, for the invariant checker. */
export function viewOf(s: MemoryStorage): LogView {
  return {
    term(i) {
      if (i === 0) return 0;
      try {
        return s.term(i);
      } catch {
        return undefined;
      }
    },
    fingerprint(i) {
      if (i < s.firstIndex() || i > s.lastIndex()) return undefined;
      const e = s.entries(i, i + 1)[0]!;
      return fnv(e.type + 1, e.data);
    },
    firstIndex: () => s.firstIndex(),
    lastIndex: () => s.lastIndex(),
  };
}

export class Replica {
  node!: RawNode;
  kv!: KvStore;
  conf!: ConfState;
  up = true;
  /** Left the cluster (removed or refused): never restarts. */
  removed = false;
  restartAt = 0;
  readonly pendingPuts = new Map<string, PendingOp>();
  readonly pendingReads = new Map<string, PendingOp>();
  view!: LogView;

  constructor(
    readonly id: NodeId,
    readonly disk: Disk,
    private readonly params: NodeParams,
    private readonly rng: Rng,
  ) {
    this.boot();
  }

  /** (Re)start from the durable disk: the state machine is rebuilt from the snapshot and log replay. */
  boot(): void {
    const s = this.disk.live;
    const snap = s.snapshot();
    this.kv = KvStore.restore(snap.data);
    if (this.kv.applied !== snap.meta.index) {
      throw new Error(`${this.id}: snapshot data at ${this.kv.applied} but meta at ${snap.meta.index}`);
    }
    this.conf = snap.meta.conf;
    const p = this.params;
    const cfg: RaftConfig = {
      id: this.id,
      storage: s,
      electionTick: p.electionTick,
      heartbeatTick: p.heartbeatTick,
      preVote: p.preVote,
      checkQuorum: p.checkQuorum,
      maxInflight: p.maxInflight,
      maxSizePerMsg: p.maxSizePerMsg,
      maxUncommitted: p.maxUncommitted,
      applied: this.kv.applied,
      random: () => this.rng.next(),
      earlyMessages: p.earlyMessages,
    };
    this.node = new RawNode(cfg, p.knobs);
    this.view = viewOf(s);
  }
}
