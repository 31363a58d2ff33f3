// The transport port: how a replica's messages reach its peers. send() never
// blocks and may drop (Raft tolerates loss); the transport tells the replica
// when a peer looks unreachable and how a snapshot transfer ended.
import type { Message, NodeId } from '../core/types.js';
import { realClock, type RaftClock } from './clock.js';

export interface ReplicaStatus {
  readonly id: NodeId;
  readonly role: 'follower' | 'preCandidate' | 'candidate' | 'leader';
  readonly term: number;
  readonly leader: NodeId;
  readonly leaderAddress: string;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  /** First index still in the log (entries before it are compacted into a snapshot). */
  readonly firstIndex: number;
}

/** A voter or learner of the group, as one replica knows it (RaftReplica.members). */
export interface RaftMember {
  readonly id: NodeId;
  readonly address: string;
  readonly voter: boolean;
  /** Leader only (0 elsewhere): the highest index known to be in this member's log. */
  readonly match: number;
  /** Leader only (false elsewhere): heard from within the last election timeout. */
  readonly recentActive: boolean;
}

/** The receiving side of a replica, as a transport sees it. */
export interface RaftEndpoint {
  readonly groupId: string;
  readonly id: NodeId;
  /** Messages addressed to this replica (snap messages carry their data). */
  deliver(msgs: readonly Message[]): void;
  reportUnreachable(peer: NodeId): void;
  /** A peer told us where it serves; used only if we have no address for it yet. */
  learnAddress?(peer: NodeId, address: string): void;
  reportSnapshot(peer: NodeId, ok: boolean): void;
  status(): ReplicaStatus;
}

export interface Transport {
  start(endpoint: RaftEndpoint): void;
  /** Queue one Ready's messages for one peer; they go out as one batch. */
  send(to: NodeId, msgs: readonly Message[]): void;
  setPeer(id: NodeId, address: string): void;
  removePeer(id: NodeId): void;
  close(): Promise<void>;
}

/** What a MemoryNetwork does to messages in flight; all off by default. */
export interface NetworkFaults {
  /** Probability that one message is lost (silently, as on a real network; a lost snapshot is reported failed). */
  drop: number;
  /** Probability that one message is delivered a second time, in a batch of its own. */
  duplicate: number;
  /** Each batch (and each duplicate) arrives after a delay drawn uniformly from [min, max] ms (rounded); later sends may overtake it. */
  delayMs: readonly [number, number];
}

export interface MemoryNetworkOptions {
  /** Deliveries run on it: a later turn (defer) without delay, a timer with one. realClock when absent. */
  readonly clock?: RaftClock;
  /** Source of the faults' dice; seed it to replay a run. Math.random when absent. */
  readonly random?: () => number;
  readonly faults?: Partial<NetworkFaults>;
}

const NO_FAULTS: NetworkFaults = { drop: 0, duplicate: 0, delayMs: [0, 0] };

/**
 * In-memory twin for tests and simulators: a network of endpoints in one
 * process. Delivery is always asynchronous, through the clock (never
 * re-entrant); cut() isolates a node or the link between two, and `faults`
 * loses, duplicates and delays messages, drawing from the injected random
 * source in send order, so a seeded run on a virtual clock replays exactly.
 * Cuts are checked at delivery: a partition also takes what is in flight.
 */
export class MemoryNetwork {
  private readonly endpoints = new Map<NodeId, RaftEndpoint>();
  private readonly cutNodes = new Set<NodeId>();
  /** Cut links, as "a|b" with a < b (a link is cut both ways). */
  private readonly cutLinks = new Set<string>();
  private readonly clock: RaftClock;
  private readonly random: () => number;
  /** May be changed at any time (e.g. all off for a simulation's liveness phase). */
  faults: NetworkFaults;
  delivered = 0;
  /** Messages lost to `faults.drop` (not those a cut stopped). */
  dropped = 0;
  /** Messages sent twice by `faults.duplicate`. */
  duplicated = 0;

  constructor(opts: MemoryNetworkOptions = {}) {
    this.clock = opts.clock ?? realClock;
    this.random = opts.random ?? Math.random;
    this.faults = { ...NO_FAULTS, ...opts.faults };
  }

  transport(self: NodeId): Transport {
    return {
      start: (ep) => void this.endpoints.set(self, ep),
      send: (to, msgs) => this.send(self, to, msgs),
      setPeer: () => undefined,
      removePeer: () => undefined,
      close: async () => void this.endpoints.delete(self),
    };
  }

  /** Isolate node `a` (everything to or from it is dropped), or with `b` only the link between them; until heal(). */
  cut(a: NodeId, b?: NodeId): void {
    if (b === undefined) this.cutNodes.add(a);
    else this.cutLinks.add(linkKey(a, b));
  }

  heal(a: NodeId, b?: NodeId): void {
    if (b === undefined) this.cutNodes.delete(a);
    else this.cutLinks.delete(linkKey(a, b));
  }

  /** Undo every cut, of nodes and links. */
  healAll(): void {
    this.cutNodes.clear();
    this.cutLinks.clear();
  }

  /** Whether a message from `a` to `b` would be stopped by a cut now. */
  isCut(a: NodeId, b: NodeId): boolean {
    return this.cutNodes.has(a) || this.cutNodes.has(b) || this.cutLinks.has(linkKey(a, b));
  }

  private send(from: NodeId, to: NodeId, msgs: readonly Message[]): void {
    const { drop, duplicate } = this.faults;
    if (drop <= 0 && duplicate <= 0) {
      this.schedule(from, to, msgs);
      return;
    }
    const kept: Message[] = [];
    const twice: Message[] = [];
    for (const m of msgs) {
      if (drop > 0 && this.random() < drop) {
        this.dropped++;
        // A snapshot travels on a call of its own, whose failure the sender sees.
        if (m.type === 'snap') this.schedule(from, to, [], m);
        continue;
      }
      kept.push(m);
      if (duplicate > 0 && this.random() < duplicate) {
        this.duplicated++;
        twice.push(m);
      }
    }
    if (kept.length > 0) this.schedule(from, to, kept);
    if (twice.length > 0) this.schedule(from, to, twice);
  }

  /** Deliver `msgs` on a later turn or after a drawn delay; a lost snapshot is only reported failed. */
  private schedule(from: NodeId, to: NodeId, msgs: readonly Message[], lostSnap?: Message): void {
    // The sender as it is now: reports go to the replica that sent, not to a later one restarted under its id.
    const src = this.endpoints.get(from);
    const [min, max] = this.faults.delayMs;
    // Whole milliseconds, as real timers take them (a virtual clock stays on integers).
    const delay = max > 0 ? Math.round(min + this.random() * (max - min)) : 0;
    const run = () => (lostSnap ? src?.reportSnapshot(to, false) : this.arrive(src, from, to, msgs));
    if (delay > 0) this.clock.setTimer(delay, run);
    else this.clock.defer(run);
  }

  private arrive(src: RaftEndpoint | undefined, from: NodeId, to: NodeId, msgs: readonly Message[]): void {
    const dst = this.endpoints.get(to);
    if (!dst || this.isCut(from, to)) {
      src?.reportUnreachable(to);
      for (const m of msgs) if (m.type === 'snap') src?.reportSnapshot(to, false);
      return;
    }
    this.delivered += msgs.length;
    dst.deliver(msgs);
    for (const m of msgs) if (m.type === 'snap') src?.reportSnapshot(to, true);
  }
}

function linkKey(a: NodeId, b: NodeId): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}
