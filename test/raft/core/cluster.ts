// A synchronous in-process cluster for unit tests and golden scripts (in the
// manner of etcd's network harness): MemoryStorage per node, a message queue,
// and cut/isolate/drop filters. Every node's randomness is seeded.

import { RawNode } from '../../../src/raft/core/raft.js';
import { MemoryStorage } from '../../../src/raft/core/memory-storage.js';
import { decodeConfChange } from '../../../src/raft/core/confchange.js';
import type { TestingKnobs } from '../../../src/raft/core/core.js';
import {
  EntryType,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type RaftConfig,
  type ReadState,
  type Ready,
} from '../../../src/raft/core/types.js';
import { Rng } from '../../../src/util/rng.js';

export interface ClusterOptions {
  preVote?: boolean;
  checkQuorum?: boolean;
  electionTick?: number;
  heartbeatTick?: number;
  maxInflight?: number;
  maxSizePerMsg?: number;
  maxUncommitted?: number;
  seed?: number;
  knobs?: TestingKnobs;
  /** Nodes hand their leader appends out in Ready.earlyMessages (the harness sends them first). */
  earlyMessages?: boolean;
  observer?: (id: NodeId, rd: Ready, member: Member) => void;
}

export interface Member {
  node: RawNode;
  storage: MemoryStorage;
  /** Normal entries applied to the "state machine", in order (data decoded as text). */
  applied: Entry[];
  readStates: ReadState[];
  conf: ConfState;
}

const dec = new TextDecoder();
export const text = (e: Pick<Entry, 'data'>): string => dec.decode(e.data);

export function fmtEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange) {
    const cc = decodeConfChange(e.data);
    return `${e.index}@${e.term} ${cc.type}(${cc.node})`;
  }
  return e.data.length === 0 ? `${e.index}@${e.term}` : `${e.index}@${e.term} ${text(e)}`;
}

/** One line per message, stable enough for golden files. */
export function fmtMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  const ctx = m.context !== undefined ? ` ctx=${m.context}` : '';
  switch (m.type) {
    case 'app':
      return `${head} prev=${m.index}@${m.logTerm} commit=${m.commit} entries=[${m.entries.map(fmtEntry).join(', ')}]`;
    case 'appResp':
      return m.reject
        ? `${head} reject index=${m.index} hint=${m.rejectHint}@${m.hintTerm ?? 0}`
        : `${head} index=${m.index}`;
    case 'vote':
    case 'preVote':
      return `${head} last=${m.index}@${m.logTerm}${ctx}`;
    case 'voteResp':
    case 'preVoteResp':
      return `${head} ${m.reject ? 'reject' : 'grant'}`;
    case 'heartbeat':
      return `${head} commit=${m.commit}${ctx}`;
    case 'snap':
      return `${head} snapshot=${m.snapshot?.meta.index}@${m.snapshot?.meta.term}`;
    case 'prop':
      return `${head} entries=[${m.entries.map((e) => (e.type === EntryType.ConfChange ? 'confchange' : text(e))).join(', ')}]`;
    case 'readIndexResp':
      return `${head} index=${m.index}${ctx}`;
    default:
      return `${head}${ctx}`;
  }
}

export class Cluster {
  readonly members = new Map<NodeId, Member>();
  /** Messages sent and not yet delivered, in send order. */
  queue: Message[] = [];
  private readonly cut = new Set<string>();
  private readonly dropTypes = new Set<string>();
  private readonly rng: Rng;
  /** Called after each Ready of `id` was persisted, applied and advanced (for invariant checkers). */
  observer: ((id: NodeId, rd: Ready, member: Member) => void) | undefined;
  /** When set, a human-readable trace of role changes, applies and reads (golden scripts print it). */
  trace: string[] | undefined;

  constructor(
    voters: readonly NodeId[],
    readonly opts: ClusterOptions = {},
  ) {
    this.rng = new Rng(opts.seed ?? 1);
    this.observer = opts.observer;
    for (const id of voters) this.start(id, MemoryStorage.bootstrap(voters));
  }

  config(id: NodeId, storage: MemoryStorage, applied = 0): RaftConfig {
    const o = this.opts;
    const rng = this.rng.fork();
    return {
      id,
      storage,
      electionTick: o.electionTick ?? 10,
      heartbeatTick: o.heartbeatTick ?? 1,
      preVote: o.preVote ?? false,
      checkQuorum: o.checkQuorum ?? false,
      maxInflight: o.maxInflight ?? 256,
      maxSizePerMsg: o.maxSizePerMsg ?? 1 << 20,
      maxUncommitted: o.maxUncommitted ?? 0,
      applied,
      random: () => rng.next(),
      ...(o.earlyMessages ? { earlyMessages: true } : {}),
    };
  }

  /** Start (or restart from its storage) node `id`. */
  start(id: NodeId, storage: MemoryStorage): Member {
    const applied = storage.firstIndex() - 1;
    const m: Member = {
      node: new RawNode(this.config(id, storage, applied), this.opts.knobs),
      storage,
      applied: [],
      readStates: [],
      conf: storage.snapshot().meta.conf,
    };
    this.members.set(id, m);
    this.process(id);
    return m;
  }

  /** Crash and restart `id` from its storage (which this harness always keeps synced). */
  restart(id: NodeId): Member {
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
    return this.start(id, this.get(id).storage);
  }

  /** A new node with an empty log (to be added by a conf change). */
  addEmpty(id: NodeId): Member {
    return this.start(id, new MemoryStorage());
  }

  get(id: NodeId): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no node ${id}`);
    return m;
  }

  node(id: NodeId): RawNode {
    return this.get(id).node;
  }

  /** Handle every pending Ready of `id` in the contract's order; returns the messages it produced. */
  process(id: NodeId): Message[] {
    const m = this.get(id);
    const out: Message[] = [];
    while (m.node.hasReady()) {
      const rd = m.node.ready();
      out.push(...(rd.earlyMessages ?? [])); // may go before the write (the harness's writes cannot fail)
      if (this.trace && rd.softState) {
        const st = m.node.status();
        this.trace.push(`${id} is ${rd.softState.role} term=${st.term} leader=${rd.softState.leader || '-'}`);
      }
      if (rd.snapshot) m.storage.applySnapshot(rd.snapshot);
      m.storage.append(rd.entries);
      if (rd.hardState) m.storage.setHardState(rd.hardState);
      out.push(...rd.messages);
      if (rd.snapshot) {
        m.applied = [];
        m.conf = rd.snapshot.meta.conf;
        this.trace?.push(`${id} installed snapshot ${rd.snapshot.meta.index}@${rd.snapshot.meta.term}`);
      }
      for (const e of rd.committedEntries) {
        if (e.type === EntryType.ConfChange) {
          m.conf = m.node.applyConfChange(decodeConfChange(e.data));
          this.trace?.push(
            `${id} applied ${e.index}@${e.term} conf voters=${m.conf.voters.join(',')} learners=${m.conf.learners.join(',')}`,
          );
        } else if (e.data.length > 0) {
          m.applied.push(e);
          this.trace?.push(`${id} applied ${e.index}@${e.term} ${text(e)}`);
        }
      }
      for (const rs of rd.readStates) this.trace?.push(`${id} read-state ${rs.context} index=${rs.index}`);
      m.readStates.push(...rd.readStates);
      m.node.advance(rd);
      this.observer?.(id, rd, m);
    }
    this.queue.push(...out);
    return out;
  }

  processAll(): void {
    for (const id of this.members.keys()) this.process(id);
  }

  private blocked(msg: Message): boolean {
    return this.cut.has(`${msg.from}>${msg.to}`) || this.dropTypes.has(msg.type) || !this.members.has(msg.to);
  }

  /** Deliver the queued messages (only those queued now); returns how many were delivered. */
  deliver(filter?: (m: Message) => boolean): number {
    const batch = this.queue;
    this.queue = [];
    let n = 0;
    for (const msg of batch) {
      if (filter && !filter(msg)) {
        this.queue.push(msg);
        continue;
      }
      if (this.blocked(msg)) {
        this.trace?.push(`drop ${fmtMessage(msg)}`);
        continue;
      }
      this.trace?.push(fmtMessage(msg));
      this.get(msg.to).node.step(msg);
      this.process(msg.to);
      n++;
    }
    return n;
  }

  /** Process and deliver until nothing is left to do. */
  stabilize(maxRounds = 1000): void {
    for (let i = 0; i < maxRounds; i++) {
      this.processAll();
      if (this.queue.length === 0) return;
      this.deliver();
    }
    throw new Error('cluster did not stabilize');
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.node(id).tick();
      this.process(id);
    }
  }

  campaign(id: NodeId): void {
    this.node(id).campaign();
    this.process(id);
  }

  propose(id: NodeId, data: string) {
    const r = this.node(id).propose(new TextEncoder().encode(data));
    this.process(id);
    return r;
  }

  /** Block traffic both ways between the two groups. */
  partition(a: readonly NodeId[], b: readonly NodeId[]): void {
    for (const x of a) for (const y of b) this.cut.add(`${x}>${y}`).add(`${y}>${x}`);
  }

  /** One-way cut. */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  isolate(id: NodeId): void {
    this.partition(
      [id],
      [...this.members.keys()].filter((x) => x !== id),
    );
  }

  dropType(type: string, on = true): void {
    if (on) this.dropTypes.add(type);
    else this.dropTypes.delete(type);
  }

  heal(): void {
    this.cut.clear();
    this.dropTypes.clear();
  }

  leader(): NodeId | undefined {
    let best: NodeId | undefined;
    let term = -1;
    for (const [id, m] of this.members) {
      const s = m.node.status();
      if (s.role === 'leader' && s.term > term) {
        best = id;
        term = s.term;
      }
    }
    return best;
  }

  /** Log of `id` as persisted: [firstIndex, lastIndex]. */
  log(id: NodeId): Entry[] {
    const s = this.get(id).storage;
    return s.entries(s.firstIndex(), s.lastIndex() + 1);
  }
}
