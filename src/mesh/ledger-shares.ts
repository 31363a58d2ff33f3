// The ledger's share commands (docs/flow-control.md, "Tenant weights",
// "Tenant shares", "Key shares"): operators' settings in the root's log, applied
// to its FlowState on every replica.
import { TaskState } from '../gen/meshlb/v1/task.js';
import type { FlowState } from '../flow/flow-state.js';
import type { OutRecord } from '../flow/tenant-shares.js';
import type { ApplyResult, LedgerCommand } from './ledger-record.js';

type ShareCommand = Extract<LedgerCommand, { type: 'tenantWeightSet' | 'tenantShareSet' | 'keyShareSet' }>;

/** Apply a share command; `records` are the ledger's (a tenant's share counts its attempts out now). */
export function applyShareSet(flow: FlowState, cmd: ShareCommand, records: Iterable<OutRecord>): ApplyResult {
  let id: string;
  if (cmd.type === 'keyShareSet') {
    flow.setKeyShare(cmd.key, { weight: cmd.weight, min: cmd.min, max: cmd.max });
    id = cmd.key;
  } else if (cmd.type === 'tenantShareSet') {
    flow.setShare(cmd.tenant, cmd.min, cmd.max, records);
    id = cmd.tenant;
  } else {
    flow.setWeight(cmd.tenant, cmd.weight);
    id = cmd.tenant;
  }
  return { ok: true, id, state: TaskState.TASK_STATE_UNSPECIFIED, attempt: 0 };
}
