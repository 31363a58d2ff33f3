// The log in front of the home ledger (ledger.ts): how a cell commits its
// decisions. LocalLedgerLog applies at once on the one replica of a cell;
// RaftLedgerLog (raft-ledger-log.ts) replicates through the cell's Raft group
// first. Apart from ledger.ts, which re-exports both, so the state machine
// file holds the transitions only.
import type { ApplyResult, LedgerCommand } from './ledger-record.js';

/**
 * The log in front of the ledger. propose() resolves once the commands are
 * committed and applied, with one ApplyResult[] per command, in order.
 */
export interface LedgerLog {
  propose(cmds: readonly LedgerCommand[]): Promise<ApplyResult[][]>;
  /** Whether this replica may propose (the leader). */
  isLeader(): boolean;
  /** True when propose() applies at once (nothing waits for a commit: start-at-accept.ts gains nothing). */
  readonly immediate?: boolean;
}

/** One replica per cell: commit is applying. */
export class LocalLedgerLog implements LedgerLog {
  readonly immediate: boolean = true;

  constructor(private readonly ledger: { apply(cmd: LedgerCommand): ApplyResult[] }) {}

  propose(cmds: readonly LedgerCommand[]): Promise<ApplyResult[][]> {
    try {
      return Promise.resolve(cmds.map((c) => this.ledger.apply(c)));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  isLeader(): boolean {
    return true;
  }
}
