// The operator's settings of a cell (drain, routing policy, cordoned agents)
// are commands in the cell's ledger log (ledger.ts `config`), so every replica
// applies them in log order and a new leader, or a replica restarted from its
// snapshot, holds the same. This module makes the cell follow them on every
// replica: the drain flag, the dispatcher's policy, the node's cordons.
// AdminService (src/admin/admin-cell.ts) proposes them.
import { createPolicy, type Policy } from '../policies/index.js';
import type { CellConfig } from './ledger.js';
import type { Cell } from './cell.js';

/** The policy an operator set, or the topology's: throws PolicyConfigError or a JSON SyntaxError. */
export function policyFor(cell: Pick<Cell, 'spec' | 'random'>, name: string, configJson: string): Policy {
  if (!name) return createPolicy(cell.spec.policy, cell.spec.policyConfig, { random: cell.random });
  const raw: unknown = configJson ? JSON.parse(configJson) : undefined;
  return createPolicy(name, raw, { random: cell.random });
}

/** Follow the ledger's config from now on (and apply what it holds already). */
export function followCellConfig(cell: Cell): void {
  let drained = false;
  let policyKey = '\n';
  const apply = (c: CellConfig): void => {
    if (c.draining !== drained) {
      drained = c.draining;
      cell.log.info({ drain: c.draining, reason: c.drainReason }, 'cell drain set by operator');
      cell.setDraining(c.draining);
    }
    const key = `${c.policy}\n${c.policyConfigJson}`;
    if (key !== policyKey) {
      policyKey = key;
      try {
        cell.dispatcher.setPolicy(policyFor(cell, c.policy, c.policyConfigJson));
        cell.log.info({ policy: c.policy || cell.spec.policy, overridden: c.policy !== '' }, 'routing policy set');
      } catch (err) {
        // Checked before it was proposed; a policy this build does not know (a newer leader's) keeps the old one.
        cell.log.error({ policy: c.policy, err: String(err) }, 'routing policy from the log refused; keeping the last');
      }
    }
    cell.agents?.setCordoned(c.cordoned);
  };
  cell.ledger.onConfig(apply);
  if (cell.ledger.config.draining || cell.ledger.config.policy || cell.ledger.config.cordoned.size > 0) {
    apply(cell.ledger.config);
  }
}
