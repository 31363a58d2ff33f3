// The peer address book: id -> RaftService address of every member this
// replica has heard of. Fed by the options' peers, conf changes (the address
// rides in the change's context), snapshots, and senders' own addresses; kept
// in the log's meta records so a restart can dial its peers before it has
// replayed the log. Every address it takes is handed to the transport.
import type { ConfChange, NodeId } from '../core/types.js';
import type { LogStore } from '../storage/ports.js';
import type { Transport } from './transport.js';

const META_KEY = 'addresses';

export class AddressBook {
  private readonly book: Record<NodeId, string>;

  constructor(
    private readonly transport: Transport,
    private readonly log: LogStore,
    peers: Readonly<Record<NodeId, string>>,
  ) {
    const saved = log.getMeta(META_KEY);
    this.book = { ...(saved ? (JSON.parse(saved) as Record<NodeId, string>) : {}), ...peers };
  }

  /** '' when unknown. */
  get(id: NodeId): string {
    return this.book[id] ?? '';
  }

  all(): Readonly<Record<NodeId, string>> {
    return this.book;
  }

  /** Hand every known address to the transport (on start). */
  dialAll(): void {
    for (const [id, addr] of Object.entries(this.book)) this.transport.setPeer(id, addr);
  }

  /** A sender told us where it serves: taken only if we have no address for it. */
  learn(peer: NodeId, address: string): void {
    if (this.book[peer]) return;
    this.book[peer] = address;
    this.transport.setPeer(peer, address);
  }

  /** A committed conf change: a removed peer is dropped by the transport, an added one dialled. */
  applyConfChange(cc: ConfChange, self: NodeId): void {
    if (cc.type === 'removeNode') {
      if (cc.node !== self) this.transport.removePeer(cc.node);
    } else if (cc.context) {
      this.book[cc.node] = cc.context;
      this.transport.setPeer(cc.node, cc.context);
    }
    void this.log.setMeta(META_KEY, JSON.stringify(this.book)).catch(() => undefined);
  }

  /** A snapshot's book: addresses we do not know yet are taken; every one is (re)given to the transport. */
  restore(addresses: Readonly<Record<NodeId, string>>): void {
    for (const [id, addr] of Object.entries(addresses)) {
      if (!(id in this.book)) this.book[id] = addr;
      this.transport.setPeer(id, this.book[id]!);
    }
  }
}
