// Accepting tasks at their home cell — the part of Home (home.ts) a client
// waits on: idempotency keys answered from the ledger, the capacity check,
// task ids, specs split into proposals a Raft entry can carry, and answers in
// the caller's order. Apart from home.ts, which runs what was accepted
// (attempts, results, failures, timers), so each fits in a head.
//
// Invariant: a task is queued here only once its `accepted` command is
// committed and only while this replica still leads; otherwise the new leader
// queues it from its ledger. A task placed as it is accepted starts in the
// same entry instead (start-at-accept.ts) and is not queued.
import { status } from '@grpc/grpc-js';
import type { TaskSpec, TaskState } from '../gen/meshlb/v1/task.js';
import { MeshError, resourceExhausted } from '../util/errors.js';
import {
  isLogged,
  type AcceptedTask,
  type ApplyResult,
  type Ledger,
  type LedgerLog,
  type TaskRecord,
} from './ledger.js';
import type { Scheduler } from './scheduler.js';
import { keyedRefusal } from '../flow/admission.js';
import { gangRefusal, gangsOf } from './gang-index.js';
import type { CellSettings } from './settings.js';
import type { CellTimers } from './timers.js';
import type { CellTracer, SubmitTrace } from './tracer.js';
import type { StartAtAccept } from './start-at-accept.js';
import type { Logger } from '../util/log.js';

/** Specs per `accepted` proposal stay under this many bytes (payloads plus a fixed allowance per task). */
const MAX_PROPOSAL_BYTES = 1 << 20;
const PER_TASK_BYTES = 256;

export interface SubmitOutcome {
  readonly id: string;
  readonly existing: boolean;
  readonly state: TaskState;
}

/** What accepting uses of Home (home.ts implements it). */
export interface SubmitHost {
  readonly path: string;
  readonly log: Logger;
  readonly scheduler: Scheduler;
  /** Ids of the tasks this replica accepts. */
  readonly ids: TaskIds;
  readonly d: {
    readonly ledger: Ledger;
    readonly ledgerLog: LedgerLog;
    readonly settings: CellSettings;
    readonly timers: CellTimers;
    readonly tracer: CellTracer;
    wake(): void;
    leading(): boolean;
  };
  mustLead(): void;
  retryHintMs(): number;
  enqueue(rec: TaskRecord): void;
  /** Stop a task's attempt wherever it is (a singleton key's CANCEL ended it). */
  dropAttempt(rec: TaskRecord, why: string): void;
  /** Tasks started in their `accepted` entry (start-at-accept.ts). */
  readonly atAccept: Pick<StartAtAccept, 'plan' | 'committed' | 'failed'>;
  /** Debounced tasks held out of the queue (debounce-hold.ts). */
  readonly debounce: { accepted(rec: TaskRecord | undefined, atMs: number): void };
}

/** Task ids: a random prefix drawn once, the leader's term (see leadTerm), a sequence number. */
export class TaskIds {
  private seq = 0;
  private prefix: string;
  private readonly randomPrefix: string;

  constructor(random: () => number) {
    this.randomPrefix = Math.floor(random() * 36 ** 6)
      .toString(36)
      .padStart(6, '0');
    this.prefix = this.randomPrefix;
  }

  /**
   * This replica leads `term` (0: an unreplicated cell). Ids name the term
   * after the random part: one leader per term, so ids of a replicated cell
   * never repeat across leaders or restarts, whatever the random draw.
   */
  leadTerm(term: number): void {
    this.prefix = term > 0 ? `${this.randomPrefix}${term.toString(36)}-` : this.randomPrefix;
    this.seq = 0;
  }

  next(): string {
    return `${this.prefix}${(++this.seq).toString(36).padStart(6, '0')}`;
  }
}

/** acceptSpecs under a submit span when the cell traces. */
export function submitTraced(
  h: SubmitHost,
  ids: TaskIds,
  specs: readonly TaskSpec[],
  tracer: CellTracer,
): Promise<SubmitOutcome[]> {
  if (!tracer.enabled) return acceptSpecs(h, ids, specs);
  const t = tracer.submits();
  return acceptSpecs(h, ids, specs, t).then(
    (outcomes) => {
      t.end();
      return outcomes;
    },
    (err: unknown) => {
      t.end(err);
      throw err;
    },
  );
}

/** Validate and accept specs at this (home) cell. Rejects with a MeshError for the batch as a whole. */
export async function acceptSpecs(
  h: SubmitHost,
  ids: TaskIds,
  specs: readonly TaskSpec[],
  trace?: SubmitTrace,
): Promise<SubmitOutcome[]> {
  return acceptNow(h, ids, specs, trace);
}

/**
 * acceptSpecs for the task service's own paths: the outcomes at once when no
 * spec is logged and the cell does not trace (nothing to wait for), else a
 * promise of them; throws a MeshError for the batch as a whole instead of
 * rejecting. At 500 tasks/s a SubmitStream's batches hold one task each, and
 * the promises, async frames and closures a batch went through were a fifth
 * of the root's heap allocation per task (docs/performance.md, "Session 11: the root").
 */
export function submitNow(h: SubmitHost, specs: readonly TaskSpec[]): SubmitOutcome[] | Promise<SubmitOutcome[]> {
  return h.d.tracer.enabled ? submitTraced(h, h.ids, specs, h.d.tracer) : acceptNow(h, h.ids, specs);
}

function acceptNow(
  h: SubmitHost,
  ids: TaskIds,
  specs: readonly TaskSpec[],
  trace?: SubmitTrace,
): SubmitOutcome[] | Promise<SubmitOutcome[]> {
  const { ledger, ledgerLog, settings } = h.d;
  h.mustLead();
  for (const spec of specs) {
    const why = keyedRefusal(spec, h.path, ledger.flow);
    if (why) throw new MeshError(why.code, why.message);
  }
  const gang = hasGang(specs) ? gangRefusalAt(h.path, ledger, specs) : undefined;
  if (gang) {
    h.log.warn({ code: gang.code, why: gang.message }, 'submit: gang refused');
    throw new MeshError(gang.code, gang.message);
  }
  const now = h.scheduler.now();
  const fresh: AcceptedTask[] = [];
  const out: (SubmitOutcome | number)[] = [];
  let newCount = 0;
  for (let spec of specs) {
    const known = spec.idempotencyKey ? ledger.idForKey(spec.idempotencyKey) : undefined;
    if (known !== undefined) {
      out.push({ id: known, existing: true, state: ledger.stateOf(known)! });
      continue;
    }
    newCount++;
    out.push(fresh.length);
    const id = ids.next();
    // A gang runs once (gang.ts): a failed member ends the gang, and the client submits it again.
    if (spec.gangId) spec = { ...spec, maxAttempts: 1 };
    // Traced: the ledger keeps the spec naming this task's submit span, under which its attempts go.
    fresh.push({ id, spec: trace ? trace.start(id, spec) : spec, homeCell: h.path, atMs: now });
  }
  if (newCount > 0 && ledger.liveCount + newCount > settings.queueCapacity) {
    throw resourceExhausted(
      `cell ${h.path} is saturated (${ledger.liveCount} live tasks, capacity ${settings.queueCapacity})`,
      h.retryHintMs(),
    );
  }
  // Answers by position in `fresh` (apply answers each command's tasks in order).
  const res: ApplyResult[] = new Array(fresh.length);
  const none: AcceptedTask[] = [];
  const noneAt: number[] = [];
  let logged: AcceptedTask[] | undefined;
  let loggedAt: number[] | undefined;
  for (let i = 0; i < fresh.length; i++) {
    const f = fresh[i]!;
    if (isLogged(f.spec)) {
      (logged ??= []).push(f);
      (loggedAt ??= []).push(i);
    } else {
      none.push(f);
      noneAt.push(i);
    }
  }
  if (none.length > 0) {
    const rs = ledger.apply({ type: 'accepted', tasks: none });
    for (let j = 0; j < rs.length; j++) res[noneAt[j]!] = rs[j]!;
  }
  if (logged === undefined) return outcomesOf(h, fresh, out, res);
  const at = loggedAt!;
  // One proposal per ~1 MiB of specs: a Raft entry must fit in one gRPC message to the followers.
  const chunks = chunkBySize(logged);
  // A task that can be placed now starts in the same entry (start-at-accept.ts): one commit, not two.
  const answers = Promise.all(
    chunks.map((c) => {
      const plan = h.atAccept.plan(c);
      return ledgerLog.propose([{ type: 'accepted', tasks: c }, ...plan.cmds]).then(
        (rs) => {
          h.atAccept.committed(plan, rs[1]);
          return rs;
        },
        (err: unknown) => {
          h.atAccept.failed(plan, err);
          throw err;
        },
      );
    }),
  );
  return answers.then((all) => {
    let j = 0;
    for (const [rs] of all) for (const r of rs!) res[at[j++]!] = r;
    return outcomesOf(h, fresh, out, res);
  });
}

/** The answers in the caller's order, once every new task's `accepted` applied; queues what is to be queued. */
function outcomesOf(
  h: SubmitHost,
  fresh: readonly AcceptedTask[],
  out: readonly (SubmitOutcome | number)[],
  res: readonly ApplyResult[],
): SubmitOutcome[] {
  const ledger = h.d.ledger;
  const outcomes: SubmitOutcome[] = [];
  for (const o of out) {
    if (typeof o !== 'number') {
      outcomes.push(o);
      continue;
    }
    const f = fresh[o]!;
    // Two specs with one key in one batch: apply answers the second with the first's id (existing).
    const r = res[o];
    if (!r || !r.ok) throw new MeshError(status.INTERNAL, `accept failed for ${f.id}`);
    // A singleton key's CANCEL ended the live task in the same command: stop its attempt.
    const replaced = r.replaced !== undefined && h.d.leading() ? ledger.get(r.replaced) : undefined;
    if (replaced) h.dropAttempt(replaced, replaced.reason);
    if (r.id !== f.id || r.existing) {
      outcomes.push({ id: r.id, existing: true, state: r.state });
      // Folded into a debounced task: its window, pushed, is held from now by this leader's timers.
      if (f.spec.debounceKey) h.debounce.accepted(ledger.live(r.id), f.atMs);
      continue;
    }
    outcomes.push({ id: f.id, existing: false, state: r.state });
    // Committed after this replica stopped leading: the new leader queues it from its ledger.
    if (!h.d.leading()) continue;
    const rec = ledger.get(f.id)!;
    if (rec.spec.deadlineUnixMs > 0) h.d.timers.schedule(rec.spec.deadlineUnixMs, { type: 'deadline', id: rec.id });
    // Attempt 0: not started in its `accepted` entry, so it waits in the queue.
    if (rec.attempt === 0) h.enqueue(rec);
    if (rec.spec.debounceKey) h.debounce.accepted(rec, f.atMs);
  }
  h.d.wake();
  return outcomes;
}

/** Whether any spec names a gang (most batches: none, and nothing more to check). */
function hasGang(specs: readonly TaskSpec[]): boolean {
  for (const s of specs) if (s.gangId) return true;
  return false;
}

/** gang-index.ts's refusal for a batch at this cell, if any. */
function gangRefusalAt(path: string, ledger: Ledger, specs: readonly TaskSpec[]): ReturnType<typeof gangRefusal> {
  const repeated = (s: TaskSpec): boolean => s.idempotencyKey !== '' && ledger.idForKey(s.idempotencyKey) !== undefined;
  const shared = (s: TaskSpec): boolean => ledger.flow.shares.applies(s);
  return gangRefusal(specs, path, gangsOf(ledger), repeated, shared);
}

function chunkBySize(tasks: AcceptedTask[]): AcceptedTask[][] {
  const out: AcceptedTask[][] = [];
  let cur: AcceptedTask[] = [];
  let bytes = 0;
  for (const t of tasks) {
    const b = PER_TASK_BYTES + t.spec.payload.length;
    if (cur.length > 0 && bytes + b > MAX_PROPOSAL_BYTES) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(t);
    bytes += b;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
