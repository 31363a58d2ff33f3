// The ledger's log entry format: a batch of LedgerCommands as one protobuf
// LedgerBatch (proto/meshlb/v1/ledger.proto). One propose() call is one Raft
// entry, so the commands a caller batched commit, and apply, together.
//
// Every replica applies the DECODED commands, the leader included, so what the
// proto can carry is what the ledger sees everywhere. Decoding is canonical:
// an attemptFailed's `fatal`/`lapse` come back only when true (absent and false
// mean the same to the ledger), and `result` only when one was sent.
// The snapshot format is the Ledger's own (Ledger.snapshot()/restore(), a
// LedgerSnapshot); raft-ledger-log.ts pairs the two as the Raft state machine.
import {
  LedgerBatch,
  type LedgerAcceptedTask,
  type LedgerAttemptFailed,
  type LedgerCommand as LedgerCommandMsg,
} from '../gen/meshlb/v1/ledger.js';
import { TaskSpec } from '../gen/meshlb/v1/task.js';
import type { AcceptedTask, LedgerCommand } from './ledger.js';

type AttemptFailed = Extract<LedgerCommand, { type: 'attemptFailed' }>;

/** Thrown for bytes that are not a ledger batch; the same on every replica, so deterministic. */
export class LedgerCodecError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LedgerCodecError';
  }
}

export function encodeCommands(cmds: readonly LedgerCommand[]): Uint8Array {
  return LedgerBatch.encode({ commands: cmds.map(toMsg) }).finish();
}

export function decodeCommands(bytes: Uint8Array): LedgerCommand[] {
  let batch: LedgerBatch;
  try {
    batch = LedgerBatch.decode(bytes);
  } catch (err) {
    throw new LedgerCodecError(`not a ledger batch: ${String(err)}`, { cause: err });
  }
  return batch.commands.map(fromMsg);
}

function toMsg(c: LedgerCommand): LedgerCommandMsg {
  switch (c.type) {
    case 'accepted':
      return {
        command: {
          $case: 'accepted',
          value: { tasks: c.tasks.map((t) => ({ id: t.id, spec: t.spec, homeCell: t.homeCell, atMs: t.atMs })) },
        },
      };
    case 'dispatched':
      return {
        command: {
          $case: 'dispatched',
          value: { refs: c.refs.map((r) => ({ taskId: r.id, attempt: r.attempt, slots: 0 })), atMs: c.atMs },
        },
      };
    case 'running':
      return { command: { $case: 'running', value: { taskId: c.id, attempt: c.attempt, atMs: c.atMs } } };
    case 'completed':
      return { command: { $case: 'completed', value: { result: c.result, atMs: c.atMs } } };
    case 'attemptFailed':
      return {
        command: {
          $case: 'attemptFailed',
          value: {
            taskId: c.id,
            attempt: c.attempt,
            reason: c.reason,
            result: c.result,
            counted: c.counted,
            fatal: c.fatal ?? false,
            lapse: c.lapse ?? false,
            atMs: c.atMs,
          },
        },
      };
    case 'cancelled':
      return { command: { $case: 'cancelled', value: { taskId: c.id, reason: c.reason, atMs: c.atMs } } };
    case 'deadLettered':
      return { command: { $case: 'deadLettered', value: { taskId: c.id, reason: c.reason, atMs: c.atMs } } };
    case 'replayed':
      return { command: { $case: 'replayed', value: { taskIds: [...c.ids], reason: c.reason, atMs: c.atMs } } };
    case 'cellDrained':
      return { command: { $case: 'cellDrained', value: { drain: c.drain, reason: c.reason, atMs: c.atMs } } };
    case 'policySet':
      return {
        command: { $case: 'policySet', value: { policy: c.policy, configJson: c.configJson, atMs: c.atMs } },
      };
    case 'agentCordoned':
      return {
        command: { $case: 'agentCordoned', value: { agentId: c.agentId, cordon: c.cordon, atMs: c.atMs } },
      };
    case 'permitReturned':
      return { command: { $case: 'permitReturned', value: { taskId: c.id, attempt: c.attempt, atMs: c.atMs } } };
    case 'flowLimitSet':
      return {
        command: {
          $case: 'flowLimitSet',
          value: { key: c.key, limit: c.limit, atMs: c.atMs, strategy: c.strategy ?? '' },
        },
      };
    case 'versionRampSet': {
      const value = { kind: c.kind, version: c.version, percent: c.percent, atMs: c.atMs };
      return { command: { $case: 'versionRampSet', value } };
    }
    case 'checkpointed':
      return { command: { $case: 'checkpointed', value: { checkpoint: c.checkpoint, atMs: c.atMs } } };
    case 'tenantWeightSet':
      return {
        command: { $case: 'tenantWeightSet', value: { tenant: c.tenant, weight: c.weight, atMs: c.atMs } },
      };
    case 'tenantShareSet': {
      const value = { tenant: c.tenant, minSlots: c.min, maxSlots: c.max, atMs: c.atMs };
      return { command: { $case: 'tenantShareSet', value } };
    }
    case 'keyShareSet': {
      const value = { key: c.key, weight: c.weight, minSlots: c.min, maxSlots: c.max, atMs: c.atMs };
      return { command: { $case: 'keyShareSet', value } };
    }
  }
}

function fromMsg(m: LedgerCommandMsg): LedgerCommand {
  const c = m.command;
  switch (c?.$case) {
    case 'accepted':
      return { type: 'accepted', tasks: c.value.tasks.map(acceptedTask) };
    case 'dispatched':
      return {
        type: 'dispatched',
        refs: c.value.refs.map((r) => ({ id: r.taskId, attempt: r.attempt })),
        atMs: c.value.atMs,
      };
    case 'running':
      return { type: 'running', id: c.value.taskId, attempt: c.value.attempt, atMs: c.value.atMs };
    case 'completed':
      if (!c.value.result) throw new LedgerCodecError('completed command without a result');
      return { type: 'completed', result: c.value.result, atMs: c.value.atMs };
    case 'attemptFailed':
      return attemptFailed(c.value);
    case 'cancelled':
      return { type: 'cancelled', id: c.value.taskId, reason: c.value.reason, atMs: c.value.atMs };
    case 'deadLettered':
      return { type: 'deadLettered', id: c.value.taskId, reason: c.value.reason, atMs: c.value.atMs };
    case 'replayed':
      return { type: 'replayed', ids: c.value.taskIds, reason: c.value.reason, atMs: c.value.atMs };
    case 'cellDrained':
      return { type: 'cellDrained', drain: c.value.drain, reason: c.value.reason, atMs: c.value.atMs };
    case 'policySet':
      return { type: 'policySet', policy: c.value.policy, configJson: c.value.configJson, atMs: c.value.atMs };
    case 'agentCordoned':
      return { type: 'agentCordoned', agentId: c.value.agentId, cordon: c.value.cordon, atMs: c.value.atMs };
    case 'permitReturned':
      return { type: 'permitReturned', id: c.value.taskId, attempt: c.value.attempt, atMs: c.value.atMs };
    case 'flowLimitSet':
      return {
        type: 'flowLimitSet',
        key: c.value.key,
        limit: c.value.limit,
        ...(c.value.strategy ? { strategy: c.value.strategy } : {}),
        atMs: c.value.atMs,
      };
    case 'versionRampSet': {
      const { kind, version, percent, atMs } = c.value;
      return { type: 'versionRampSet', kind, version, percent, atMs };
    }
    case 'checkpointed':
      if (!c.value.checkpoint) throw new LedgerCodecError('checkpointed command without a checkpoint');
      return { type: 'checkpointed', checkpoint: c.value.checkpoint, atMs: c.value.atMs };
    case 'tenantWeightSet':
      return { type: 'tenantWeightSet', tenant: c.value.tenant, weight: c.value.weight, atMs: c.value.atMs };
    case 'tenantShareSet': {
      const { tenant, minSlots, maxSlots, atMs } = c.value;
      return { type: 'tenantShareSet', tenant, min: minSlots, max: maxSlots, atMs };
    }
    case 'keyShareSet': {
      const { key, weight, minSlots, maxSlots, atMs } = c.value;
      return { type: 'keyShareSet', key, weight, min: minSlots, max: maxSlots, atMs };
    }
    case undefined:
      // A command from a newer version this one does not know: refusing beats skipping it silently.
      throw new LedgerCodecError('ledger command of an unknown kind');
  }
}

function acceptedTask(t: LedgerAcceptedTask): AcceptedTask {
  return { id: t.id, spec: t.spec ?? TaskSpec.fromPartial({}), homeCell: t.homeCell, atMs: t.atMs };
}

function attemptFailed(v: LedgerAttemptFailed): AttemptFailed {
  // Optional fields appear only when they carry something, so a decoded command
  // is the canonical form of the one encoded (see the header).
  return {
    type: 'attemptFailed',
    id: v.taskId,
    attempt: v.attempt,
    reason: v.reason,
    ...(v.result ? { result: v.result } : {}),
    counted: v.counted,
    ...(v.fatal ? { fatal: true } : {}),
    ...(v.lapse ? { lapse: true } : {}),
    atMs: v.atMs,
  };
}
