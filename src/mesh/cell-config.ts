// The operator's settings of a cell (drain, routing policy, cordoned agents)
// are commands in the cell's ledger log (ledger.ts `config`), so every replica
// applies them in log order and a new leader, or a replica restarted from its
// snapshot, holds the same. This module makes the cell follow them on every
// replica: the drain flag, the dispatcher's policy, the node's cordons and
// version ramps.
// AdminService (src/admin/admin-cell.ts) proposes them.
import { createPolicy, PolicyConfigError, type Policy } from '../policies/index.js';
import type { CellSpec } from '../topology/types.js';
import type { Logger } from '../util/log.js';
import type { CellConfig, Ledger } from './ledger.js';
import type { VersionRamps } from './version-ramps.js';

/** What of a cell following its config uses (the Cell; not imported, to keep cell.ts out of a circle). */
export interface ConfiguredCell {
  readonly spec: Pick<CellSpec, 'policy' | 'policyConfig'>;
  readonly random: () => number;
  readonly log: Logger;
  readonly ledger: Pick<Ledger, 'config' | 'onConfig'>;
  readonly dispatcher: { setPolicy(policy: Policy): void; invalidate(): void };
  readonly agents: { setCordoned(ids: ReadonlySet<string>): void; readonly versions: VersionRamps } | undefined;
  setDraining(drain: boolean): void;
}

/** A policy or its config refused by the policy's own checks (AdminService answers INVALID_ARGUMENT). */
export const isPolicyConfigError = (err: unknown): err is PolicyConfigError => err instanceof PolicyConfigError;

/** The policy an operator set, or the topology's: throws PolicyConfigError or a JSON SyntaxError. */
export function policyFor(cell: Pick<ConfiguredCell, 'spec' | 'random'>, name: string, configJson: string): Policy {
  if (!name) return createPolicy(cell.spec.policy, cell.spec.policyConfig, { random: cell.random });
  const raw: unknown = configJson ? JSON.parse(configJson) : undefined;
  return createPolicy(name, raw, { random: cell.random });
}

/** Follow the ledger's config from now on (and apply what it holds already). */
export function followCellConfig(cell: ConfiguredCell): void {
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
    // A ramp changed: the candidates carry new sides (version-ramps.ts).
    if (cell.agents?.versions.set(c.versionRamps)) {
      cell.log.info({ ramps: Object.fromEntries(c.versionRamps) }, 'version ramps set');
      cell.dispatcher.invalidate();
    }
  };
  cell.ledger.onConfig(apply);
  const c = cell.ledger.config;
  if (c.draining || c.policy || c.cordoned.size > 0 || c.versionRamps.size > 0) apply(c);
}
