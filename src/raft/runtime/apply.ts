// Applying what the core committed, in log order: normal entries go to the
// state machine (unwrapped from their request envelope, answering the proposer
// if it waits on this replica), conf changes to the core and the address book,
// and a snapshot from the leader replaces the state machine. `applied` and the
// configuration in force move only here.
import { decodeConfChange } from '../core/confchange.js';
import { EntryType, type ConfChange, type ConfState, type Entry, type NodeId, type Snapshot } from '../core/types.js';
import type { RaftLogger } from '../logger.js';
import type { AddressBook } from './address-book.js';
import { unwrap, unwrapSnapshot, wrapSnapshot } from './envelope.js';
import { ApplyError } from './errors.js';
import type { StateMachine } from './options.js';
import type { Requests } from './requests.js';

export interface ApplierDeps {
  readonly self: NodeId;
  readonly sm: StateMachine;
  readonly book: AddressBook;
  readonly requests: Requests;
  readonly logger: RaftLogger;
  /** The core's applyConfChange (the core is created after the state machine is restored). */
  readonly applyConfChange: (cc: ConfChange) => ConfState;
}

export class Applier {
  /** Highest index applied to the state machine; a restored snapshot's index counts. */
  applied = 0;
  /** Term of the entry at `applied` (the snapshot's when it was restored last). */
  appliedTerm = 0;
  /** The configuration as of `applied`. */
  conf: ConfState = { voters: [], learners: [] };

  constructor(private readonly deps: ApplierDeps) {}

  /** Apply committed entries up to `upTo`, in order, skipping what is already applied; returns how many. */
  applyCommitted(entries: readonly Entry[], upTo: number): number {
    let n = 0;
    for (const e of entries) {
      if (e.index > upTo) break;
      if (e.index <= this.applied) continue;
      if (e.type === EntryType.ConfChange) this.applyConf(decodeConfChange(e.data));
      else if (e.data.length > 0) this.applyNormal(e.index, e.data);
      this.applied = e.index;
      this.appliedTerm = e.term;
      n++;
    }
    return n;
  }

  /** Replace the state machine (and learn the snapshot's address book). */
  restore(snap: Snapshot): void {
    const { addresses, sm } = unwrapSnapshot(snap.data);
    this.deps.book.restore(addresses);
    this.deps.sm.restore(sm);
    this.applied = snap.meta.index;
    this.appliedTerm = snap.meta.term;
    this.conf = snap.meta.conf;
  }

  /** The state machine as of `applied`, with the address book, as a snapshot's data. */
  snapshotData(): Uint8Array {
    return wrapSnapshot(this.deps.book.all(), this.deps.sm.snapshot());
  }

  private applyNormal(index: number, data: Uint8Array): void {
    const { logger, requests, sm } = this.deps;
    let env: { id: string; payload: Uint8Array };
    try {
      env = unwrap(data);
    } catch (err) {
      logger.error({ index, err: String(err) }, 'skipping entry without a request envelope');
      return;
    }
    const p = requests.proposal(env.id);
    try {
      const result = sm.apply(env.payload, index);
      p?.resolve(result);
    } catch (err) {
      logger.error({ index, err: String(err) }, 'state machine apply failed');
      p?.reject(new ApplyError(index, err));
    }
  }

  private applyConf(cc: ConfChange): void {
    this.conf = this.deps.applyConfChange(cc);
    this.deps.book.applyConfChange(cc, this.deps.self);
  }
}
