// fast-check arbitraries for ledger commands, shared by the codec, snapshot and
// replicated-log tests. Two flavours: `anyCommand` draws every field from its
// whole wire range (codec round trips); a `script` of steps becomes commands
// against a ledger's current state (`commandFor`), so that sequences really
// accept, dispatch, fail, finish and evict tasks (state machine properties).
import fc from 'fast-check';
import {
  Durability,
  Priority,
  ResultStatus,
  TaskCheckpoint,
  TaskSpec,
  TaskResult,
  type Label,
} from '../../src/gen/meshlb/v1/task.js';
import type { Ledger, LedgerCommand } from '../../src/mesh/ledger.js';

/** The seed of every property here; override with MESHLB_SEED to replay or explore. fast-check prints it on failure. */
export const SEED = Number(process.env.MESHLB_SEED ?? 20_251_207);

const UINT32_MAX = 0xffff_ffff;
/** fc.record, but plain objects as code builds them (its default null prototype fails toStrictEqual). */
const record = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> =>
  fc.record(model, { noNullPrototype: true });
const text = (maxLength = 8) => fc.string({ unit: 'grapheme', maxLength });
const bytes = fc.uint8Array({ maxLength: 24 }).map((u) => Buffer.from(u));
const label: fc.Arbitrary<Label> = record({ key: text(4), value: text(4) });
/** Any clock value: whole ms as Date.now() gives, or a fractional virtual clock. */
const ms = fc.oneof(fc.integer({ min: 0, max: 2 ** 45 }), fc.double({ min: 0, max: 1e13, noNaN: true }));

interface Pools {
  ids: fc.Arbitrary<string>;
  keys: fc.Arbitrary<string>;
  attempt: fc.Arbitrary<number>;
  maxAttempts: fc.Arbitrary<number>;
}

const wide: Pools = {
  ids: text(),
  keys: text(),
  attempt: fc.integer({ min: 0, max: UINT32_MAX }),
  maxAttempts: fc.integer({ min: 0, max: UINT32_MAX }),
};

const small: Pools = {
  ids: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g'),
  keys: fc.constantFrom('', '', 'k1', 'k2', 'k3'),
  attempt: fc.integer({ min: 0, max: 5 }),
  maxAttempts: fc.integer({ min: 0, max: 3 }),
};

const specOf = (p: Pools): fc.Arbitrary<TaskSpec> =>
  record({
    idempotencyKey: p.keys,
    kind: text(),
    labels: fc.array(label, { maxLength: 3 }),
    affinity: fc.array(label, { maxLength: 2 }),
    priority: fc.constantFrom(...[0, 1, 2, 3, 4].map((n) => n as Priority)),
    // Now and then a tenant the scripts give a share (tenantShareSet): its attempts hold tenant permits.
    tenant: fc.oneof(text(), fc.constantFrom('k1', 'k2')),
    deadlineUnixMs: fc.maxSafeInteger(),
    timeoutMs: fc.integer({ min: 0, max: UINT32_MAX }),
    maxAttempts: p.maxAttempts,
    payload: bytes,
    durability: fc.constantFrom(Durability.DURABILITY_UNSPECIFIED, Durability.DURABILITY_LOGGED),
    traceParent: fc.constantFrom('', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'),
    traceState: fc.constantFrom('', 'congo=t61rcWkgMzE'),
    // Keyed tasks take permits in the ledger (src/flow): snapshots and replays carry them.
    concurrencyKey: fc.constantFrom('', '', 'c1', 'c2'),
    rateLimitKey: fc.constantFrom('', 'r1'),
    rateUnits: fc.integer({ min: 0, max: 3 }),
    // Debounce and singleton keys fold accepts into live tasks (src/flow/keyed.ts): snapshots carry them.
    debounceKey: fc.constantFrom('', '', 'd1'),
    debouncePeriodMs: fc.constantFrom(0, 10, 1000),
    debounceMaxWaitMs: fc.constantFrom(0, 5000),
    singletonKey: fc.constantFrom('', '', 's1'),
    singletonMode: fc.constantFrom(0, 1, 2),
  }).map((s) => TaskSpec.fromPartial(s)); // every field the generated type has, including ones added later

const resultOf = (p: Pools): fc.Arbitrary<TaskResult> =>
  record({
    taskId: p.ids,
    attempt: p.attempt,
    status: fc.constantFrom(
      ResultStatus.RESULT_STATUS_OK,
      ResultStatus.RESULT_STATUS_ERROR,
      ResultStatus.RESULT_STATUS_FATAL,
    ),
    output: bytes,
    error: text(),
    agentId: text(),
    nodeCell: text(),
    runMicros: fc.integer({ min: 0, max: UINT32_MAX }),
  }).map((r) => TaskResult.fromPartial(r));

const commandOf = (p: Pools): fc.Arbitrary<LedgerCommand> => {
  const task = record({ id: p.ids, spec: specOf(p), homeCell: text(), atMs: ms });
  const ref = record({ id: p.ids, attempt: p.attempt });
  return fc.oneof(
    record({ type: fc.constant('accepted' as const), tasks: fc.array(task, { minLength: 1, maxLength: 3 }) }),
    record({ type: fc.constant('dispatched' as const), refs: fc.array(ref, { maxLength: 3 }), atMs: ms }),
    record({ type: fc.constant('running' as const), id: p.ids, attempt: p.attempt, atMs: ms }),
    record({ type: fc.constant('completed' as const), result: resultOf(p), atMs: ms }),
    fc.record(
      {
        type: fc.constant('attemptFailed' as const),
        id: p.ids,
        attempt: p.attempt,
        reason: text(),
        result: resultOf(p),
        counted: fc.boolean(),
        fatal: fc.boolean(),
        lapse: fc.boolean(),
        atMs: ms,
      },
      { requiredKeys: ['type', 'id', 'attempt', 'reason', 'counted', 'atMs'], noNullPrototype: true },
    ),
    record({ type: fc.constant('cancelled' as const), id: p.ids, reason: text(), atMs: ms }),
    record({ type: fc.constant('deadLettered' as const), id: p.ids, reason: text(), atMs: ms }),
    record({
      type: fc.constant('replayed' as const),
      ids: fc.array(p.ids, { maxLength: 3 }),
      reason: text(),
      atMs: ms,
    }),
    record({ type: fc.constant('cellDrained' as const), drain: fc.boolean(), reason: text(), atMs: ms }),
    record({ type: fc.constant('policySet' as const), policy: text(), configJson: text(), atMs: ms }),
    record({ type: fc.constant('agentCordoned' as const), agentId: p.ids, cordon: fc.boolean(), atMs: ms }),
    record({ type: fc.constant('permitReturned' as const), id: p.ids, attempt: p.attempt, atMs: ms }),
    record({
      type: fc.constant('flowLimitSet' as const),
      key: p.keys,
      limit: fc.integer({ min: 0, max: UINT32_MAX }),
      atMs: ms,
    }),
    record({ type: fc.constant('checkpointed' as const), checkpoint: checkpointOf(p), atMs: ms }),
    record({
      type: fc.constant('tenantWeightSet' as const),
      tenant: p.keys,
      weight: fc.integer({ min: 0, max: UINT32_MAX }),
      atMs: ms,
    }),
    record({
      type: fc.constant('tenantShareSet' as const),
      tenant: p.keys,
      // Small pools: ceilings that bind (tasks' tenants come from the same pool now and then).
      min: p.attempt,
      max: p.attempt,
      atMs: ms,
    }),
    record({
      type: fc.constant('keyShareSet' as const),
      // The specs' concurrency keys now and then: ceilings that bind the scripts' dispatches.
      key: fc.oneof(p.keys, fc.constantFrom('c1', 'c2')),
      weight: p.attempt,
      min: p.attempt,
      max: p.attempt,
      atMs: ms,
    }),
  );
};

const checkpointOf = (p: Pools): fc.Arbitrary<TaskCheckpoint> =>
  record({
    taskId: p.ids,
    attempt: p.attempt,
    data: bytes,
    progress: fc.double({ min: 0, max: 1, noNaN: true }),
    seq: fc.integer({ min: 0, max: 2 ** 40 }),
  }).map((c) => TaskCheckpoint.fromPartial(c));

/** Any command, every field over its whole range. */
export const anyCommand = commandOf(wide);

/**
 * One step of a ledger script: what to do to which tasks, with the attempt
 * number given relative to the ledger's current one (`commandFor`), so random
 * scripts really accept, dispatch, run, fail, finish and evict tasks rather
 * than being refused as stale. delta 0 means "the right attempt" (current + 1
 * for a dispatch, current for everything else).
 */
export interface Step {
  readonly op:
    | 'accept'
    | 'dispatch'
    | 'running'
    | 'complete'
    | 'fail'
    | 'cancel'
    | 'deadLetter'
    | 'replay'
    | 'drain'
    | 'policy'
    | 'cordon'
    | 'ramp'
    | 'checkpoint';
  readonly ids: readonly string[];
  readonly delta: number;
  readonly spec: TaskSpec;
  readonly result: TaskResult;
  readonly reason: string;
  readonly counted: boolean;
  readonly fatal: boolean;
  readonly lapse: boolean;
  readonly atMs: number;
}

const weighted = <T>(...pairs: [T, number][]): fc.Arbitrary<T> =>
  fc.oneof(...pairs.map(([v, weight]) => ({ arbitrary: fc.constant(v), weight })));

export const step: fc.Arbitrary<Step> = record({
  op: weighted<Step['op']>(
    ['accept', 4],
    ['dispatch', 5],
    ['running', 1],
    ['complete', 2],
    ['fail', 3],
    ['cancel', 1],
    ['deadLetter', 1],
    ['replay', 1],
    ['drain', 1],
    ['policy', 1],
    ['cordon', 1],
    ['ramp', 1],
    ['checkpoint', 2],
  ),
  ids: fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'), { minLength: 1, maxLength: 3 }),
  delta: weighted([0, 8], [-1, 1], [1, 1]),
  spec: specOf(small),
  result: resultOf(small),
  reason: text(),
  counted: weighted([true, 4], [false, 1]),
  fatal: weighted([false, 9], [true, 1]),
  lapse: fc.boolean(),
  atMs: ms,
});

/** A script of steps long enough to reach retention and eviction. */
export const script = (maxLength = 150): fc.Arbitrary<Step[]> =>
  fc.array(step, { minLength: 1, maxLength, size: 'max' });

/** The command a step means for a ledger in its current state. */
export function commandFor(s: Step, l: Ledger): LedgerCommand {
  const id = s.ids[0]!;
  const attempt = (taskId: string, next = 0) => Math.max(0, (l.get(taskId)?.attempt ?? 0) + next + s.delta);
  switch (s.op) {
    case 'accept':
      return {
        type: 'accepted',
        // Only the first task of a batch carries the key: one key, one task.
        tasks: s.ids.map((t, n) => ({
          id: t,
          spec: n === 0 ? s.spec : { ...s.spec, idempotencyKey: '' },
          homeCell: '/',
          atMs: s.atMs,
        })),
      };
    case 'dispatch':
      return { type: 'dispatched', refs: s.ids.map((t) => ({ id: t, attempt: attempt(t, 1) })), atMs: s.atMs };
    case 'running':
      return { type: 'running', id, attempt: attempt(id), atMs: s.atMs };
    case 'complete':
      return { type: 'completed', result: { ...s.result, taskId: id, attempt: attempt(id) }, atMs: s.atMs };
    case 'fail':
      return {
        type: 'attemptFailed',
        id,
        attempt: attempt(id),
        reason: s.reason,
        counted: s.counted,
        ...(s.fatal ? { fatal: true } : {}),
        ...(s.lapse ? { lapse: true } : {}),
        atMs: s.atMs,
      };
    case 'cancel':
      return { type: 'cancelled', id, reason: s.reason, atMs: s.atMs };
    case 'deadLetter':
      return { type: 'deadLettered', id, reason: s.reason, atMs: s.atMs };
    case 'replay':
      return { type: 'replayed', ids: s.ids, reason: s.reason, atMs: s.atMs };
    case 'drain':
      return { type: 'cellDrained', drain: s.counted, reason: s.reason, atMs: s.atMs };
    case 'policy':
      return { type: 'policySet', policy: s.fatal ? '' : 'p2c', configJson: s.reason, atMs: s.atMs };
    case 'cordon':
      return { type: 'agentCordoned', agentId: id, cordon: s.counted, atMs: s.atMs };
    case 'ramp':
      return { type: 'versionRampSet', kind: id, version: s.fatal ? '' : 'v2', percent: 5 + s.delta, atMs: s.atMs };
    case 'checkpoint': {
      const seq = s.result.runMicros % 100; // sometimes lower than the last: refused as stale
      const checkpoint = { taskId: id, attempt: attempt(id), data: s.result.output, progress: 0.5, seq };
      return { type: 'checkpointed', checkpoint: TaskCheckpoint.fromPartial(checkpoint), atMs: s.atMs };
    }
  }
}

/** A spec for hand-written commands in tests. */
export const spec = (p: Partial<TaskSpec> = {}): TaskSpec => TaskSpec.fromPartial({ kind: 'k', ...p });

/** The canonical form of a command (what decoding gives): false flags and absent results left out. */
export function canonical(c: LedgerCommand): LedgerCommand {
  if (c.type !== 'attemptFailed') return c;
  const { fatal, lapse, result, ...rest } = c;
  return { ...rest, ...(result ? { result } : {}), ...(fatal ? { fatal } : {}), ...(lapse ? { lapse } : {}) };
}
