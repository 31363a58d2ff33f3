// Realistic bugs put into the real product code for the mutation tests
// (mutation.test.ts): each one breaks a promise one named check of the
// Checker (invariants.ts) watches, so a test can show that check fire. A
// mutation patches a prototype (every cell of the run, restarted replicas
// too) and returns the undo; the test undoes it in a finally.
//
// A bug the product fences twice shows only where the first fence has a gap:
// the home checks a task has not ended before it proposes an end, so a ledger
// that applies a second end is seen only with two ends in flight (Raft cells).
import { TaskState, type Dispatch, type TaskRef } from '../../../src/gen/meshlb/v1/task.js';
import type { DispatchAck, KindCapacity } from '../../../src/gen/meshlb/v1/link.js';
import { FlowState } from '../../../src/flow/flow-state.js';
import { KeyedTasks } from '../../../src/flow/keyed.js';
import { TenantGate } from '../../../src/flow/tenant-gate.js';
import { TenantShares } from '../../../src/flow/tenant-shares.js';
import { AgentSessions } from '../../../src/mesh/agent-sessions.js';
import { ChildLink } from '../../../src/mesh/child-link.js';
import { ChildLinks } from '../../../src/mesh/child-links.js';
import { Dispatcher } from '../../../src/mesh/dispatcher.js';
import { Trail, TRAIL_CANDIDATES } from '../../../src/mesh/dispatcher-trail.js';

/** What the trail mutation reaches inside a Trail (its ring slots and the figures of their rows). */
interface Internals {
  next: number;
  ring: Array<{ chosen: string; listed: number }>;
  figures: { ids: string[] };
}
import { Gangs } from '../../../src/mesh/gang.js';
import { Home } from '../../../src/mesh/home.js';
import { AffinityMatch, type PickResult } from '../../../src/policies/index.js';
import { TaskQueue, type Popped } from '../../../src/queue/index.js';
import { isTerminal, Ledger, type LedgerCommand, type TaskRecord } from '../../../src/mesh/ledger.js';
import { Relay } from '../../../src/mesh/relay.js';
import { SlotMap } from '../../../src/mesh/slot-map.js';
import { StringMap } from '../../../src/util/string-map.js';
import { Summarizer } from '../../../src/mesh/summary.js';
import type { WheelEntry } from '../../../src/mesh/timers.js';
import { routeKey, type WorkItem } from '../../../src/mesh/types.js';
import type { Check } from './invariants.js';

export interface Mutation {
  readonly check: Check;
  /** The bug, in a sentence (the test's name). */
  readonly what: string;
  /** Run the seeds with Raft cells (the bug needs a commit in flight) instead of --no-raft. */
  readonly raft?: boolean;
  /** Other checks the bug may trip as a consequence (each says why where it is set). */
  readonly alsoMay?: readonly Check[];
  /**
   * The seed that showed the check when it was last looked for, where that is not seed 1: tried first,
   * so the test does not re-run the seeds before it (they run to their end without the check). Only a
   * hint: when it no longer shows the check the test searches 1..SEARCH as before.
   */
  readonly seenAt?: number;
  /** Put the bug in; returns the undo. */
  readonly apply: () => () => void;
}

type Fn = (...args: never[]) => unknown;

/** Replace `proto[name]` (a method, private ones too) with `make(original)`; returns the undo. */
function patch<T extends object>(proto: T, name: string, make: (orig: Fn) => Fn): () => void {
  const p = proto as unknown as Record<string, Fn>;
  const orig = p[name];
  if (typeof orig !== 'function') throw new Error(`no method ${name} to mutate`);
  p[name] = make(orig);
  return () => {
    p[name] = orig;
  };
}

const both =
  (...undo: (() => void)[]) =>
  (): void => {
    for (const u of undo.reverse()) u();
  };

/** The private parts of the classes a mutation reaches into. */
interface LedgerInside {
  /** A live task's record, a terminal one's handle in the compact store (src/mesh/ledger-tasks.ts). */
  tasks: Map<string, TaskRecord | number>;
  byKey: Map<string, string>;
  get(id: string): TaskRecord | undefined;
  finish(rec: TaskRecord, state: TaskState, reason: string, atMs: number): void;
  terminal(id: string, h: number): unknown;
}
interface SessionsInside {
  byId: AgentSessions['byId'];
  cell: { slotFreed(agentId: string, kind: string): void; capacityChanged(): void };
  capacity: { slotsTaken(s: unknown, d: number): void };
}
interface DispatcherInside {
  d: { queue: { kinds(): IterableIterator<string> }; links: { agents: unknown } };
}
interface RelayInside {
  d: {
    routes: { lapsed(now: number, slackMs: number, out: WorkItem[]): number };
    scheduler: { now(): number };
    settings: { leaseSlackMs: number };
  };
  cancelRoute(item: WorkItem, why: string): void;
}

/** A SlotMap that counts its entries, not their slots (the multislot mutation). */
function countEntries(): () => void {
  const has = (m: StringMap<unknown>, k: string): boolean => StringMap.prototype.has.call(m, k);
  return both(
    patch(
      SlotMap.prototype,
      'set',
      () =>
        function (this: SlotMap<unknown>, key: string, value: unknown): SlotMap<unknown> {
          if (!has(this, key)) this.used += 1;
          StringMap.prototype.set.call(this, key, value);
          return this;
        },
    ),
    patch(
      SlotMap.prototype,
      'delete',
      () =>
        function (this: SlotMap<unknown>, key: string): boolean {
          if (has(this, key)) this.used -= 1;
          return StringMap.prototype.delete.call(this, key);
        },
    ),
  );
}

export const MUTATIONS: readonly Mutation[] = [
  {
    check: 'checkpoint',
    what: "a retry forgets the task's checkpoint: the next attempt starts over though the ledger holds one",
    apply: () =>
      patch(
        Home.prototype,
        'started',
        (orig) =>
          function (this: Home, items: unknown, results: unknown, send: (item: WorkItem) => void): void {
            const forget = (item: WorkItem): void => {
              item.checkpoint = undefined;
              send(item);
            };
            orig.apply(this, [items, results, forget] as never);
          },
      ),
  },
  {
    check: 'gang',
    what: 'the gang pass routes each member as it fits, not all or none',
    seenAt: 2,
    apply: () =>
      patch(
        Gangs.prototype,
        'place',
        () =>
          function (
            this: Gangs,
            popped: Popped<WorkItem>,
            _picker: unknown,
            pick: (m: WorkItem) => PickResult,
            parked: Popped<WorkItem>[],
          ): [WorkItem, string][] {
            const r = pick(popped.task);
            if (r.type === 'route') return [[popped.task, r.candidate]];
            parked.push(popped);
            return [];
          },
      ),
  },
  {
    check: 'gang',
    what: 'a cell routes a gang member its parent sent as a plain task: a gang from above goes out split',
    seenAt: 10,
    apply: () =>
      patch(
        Gangs.prototype,
        'place',
        (orig) =>
          function (
            this: Gangs,
            popped: Popped<WorkItem>,
            picker: unknown,
            pick: (m: WorkItem) => PickResult,
            parked: Popped<WorkItem>[],
            targets: unknown,
          ): [WorkItem, string][] {
            if (popped.task.origin.type === 'home')
              return orig.apply(this, [popped, picker, pick, parked, targets] as never) as [WorkItem, string][];
            const r = pick(popped.task);
            if (r.type === 'route') return [[popped.task, r.candidate]];
            parked.push(popped);
            return [];
          },
      ),
  },
  {
    check: 'affinity',
    what: "cells above the nodes ignore their children's label sets: any child may match any affinity",
    // Sent where no agent matches, a task waits there for its lease and is retried: it may outlast the drain bound.
    alsoMay: ['ended'],
    apply: () => patch(AffinityMatch.prototype, 'roomOf', () => () => Infinity),
  },
  {
    check: 'debounce',
    what: "a debounced task may start at once: the ledger's window is forgotten (holdUntil answers 0)",
    apply: () => patch(KeyedTasks.prototype, 'holdUntil', () => () => 0),
  },
  {
    check: 'multislot',
    what: "a node counts an agent's attempts, not their slots (an attempt of 4 slots holds one)",
    seenAt: 9,
    // The slots it forgets are given to 1-slot tasks too: those assignments are the `slots` check's. And an
    // agent whose slots it miscounts may never show enough free at once for a big task, which then waits at
    // the root past the drain bound (`ended`: seed 9 since tasks with affinity are placed above the nodes).
    alsoMay: ['slots', 'ended'],
    apply: countEntries,
  },
  {
    check: 'flow',
    what: "a lost or stopped attempt's concurrency permit comes back at once (its agent may still run it)",
    seenAt: 4,
    // The returned permit lets another task of the key start while the lost attempt's agent still runs
    // it: the key then has more attempts running at agents than its limit, which is the share check's.
    alsoMay: ['share'],
    apply: () =>
      patch(
        FlowState.prototype,
        'stopped',
        () =>
          function (this: FlowState, _spec: unknown, taskId: string, attempt: number): void {
            this.ended(taskId, attempt);
          },
      ),
  },
  {
    check: 'share',
    what: "a key's ceiling is not checked (only its limit): the ledger and the leader's gate let the key past it",
    apply: () =>
      patch(
        FlowState.prototype,
        'cap',
        () =>
          function (this: FlowState, key: string): number {
            return this.limit(key);
          },
      ),
  },
  {
    check: 'share',
    what: "a tenant's ceiling is not checked: the ledger and the leader's gate let every attempt of it start",
    // The gate admitting without counting also leaves a tenant with a minimum under it for good: its
    // attempts all go guaranteed, past the home's bound (credits).
    alsoMay: ['credits'],
    apply: () =>
      both(
        patch(TenantShares.prototype, 'fits', () => () => true),
        patch(TenantGate.prototype, 'admit', () => () => true),
      ),
  },
  {
    check: 'slots',
    what: 'AgentSessions.cancel frees the slot at once (the agent still runs the attempt until it notices)',
    apply: () =>
      patch(
        AgentSessions.prototype,
        'cancel',
        (orig) =>
          function (this: SessionsInside, agentId: string, ref: TaskRef, why: string): void {
            orig.apply(this, [agentId, ref, why] as never);
            const s = this.byId.get(agentId);
            const key = routeKey(ref.taskId, ref.attempt);
            const item = s?.assigned.get(key);
            if (!s || !item) return;
            s.assigned.delete(key);
            this.capacity.slotsTaken(s, -1);
            this.cell.slotFreed(s.id, item.kind);
            this.cell.capacityChanged();
          },
      ),
  },
  {
    check: 'credits',
    what: 'ChildLink.acked decrements unacked twice (credits over-granted)',
    apply: () =>
      patch(
        ChildLink.prototype,
        'acked',
        (orig) =>
          function (this: ChildLink, a: DispatchAck): WorkItem | undefined {
            const item = orig.apply(this, [a] as never) as WorkItem | undefined;
            if (item !== undefined) {
              // The link's own helper (inc) clamps at zero: the count vanishes rather than go negative.
              const v = (this.unacked.get(item.kind) ?? 0) - 1;
              if (v <= 0) this.unacked.delete(item.kind);
              else this.unacked.set(item.kind, v);
            }
            return item;
          },
      ),
  },
  {
    check: 'capacity',
    what: 'Summarizer reports the prefetch as free slots (free 12 of 8, the bug of issue 8)',
    apply: () =>
      patch(
        Summarizer.prototype,
        'kinds',
        (orig) =>
          function (this: Summarizer, ...args: never[]): KindCapacity[] {
            const kinds = orig.apply(this, args) as KindCapacity[];
            for (const k of kinds) {
              k.freeSlots += k.prefetchSlots;
              k.prefetchSlots = 0;
            }
            return kinds;
          },
      ),
  },
  {
    check: 'place',
    what: 'ChildLinks.dispatch also sends the attempt to a second child of its kind',
    // The copy can go down a link that already awaits that attempt's ack: its unacked counts it twice.
    alsoMay: ['credits'],
    apply: () =>
      patch(
        ChildLinks.prototype,
        'dispatch',
        (orig) =>
          function (this: ChildLinks, child: string, item: WorkItem): void {
            orig.apply(this, [child, item] as never);
            for (const link of this.links.values())
              if (link.cell !== child && !link.closed && (link.total.get(item.kind) ?? 0) > 0) {
                link.dispatch(item);
                return;
              }
          },
      ),
  },
  {
    check: 'stale',
    what: "the ledger's attempt fence removed (a result for an ended or superseded attempt completes the task)",
    seenAt: 4,
    apply: () =>
      patch(
        Ledger.prototype,
        'current',
        () =>
          function (this: LedgerInside, id: string) {
            const rec = this.tasks.get(id);
            if (rec === undefined) return { ok: false, res: { ok: false, id, why: 'unknown' } };
            if (typeof rec === 'number') return { ok: false, res: this.terminal(id, rec) };
            return { ok: true, rec };
          },
      ),
  },
  {
    check: 'terminal',
    what: 'the ledger applies a cancel or dead-letter to a task that already ended',
    // The home checks a task has not ended before it proposes an end: only two ends in flight
    // at once (a Raft commit apart) reach the ledger, where its own check is the fence.
    raft: true,
    apply: () =>
      patch(
        Ledger.prototype,
        'apply',
        (orig) =>
          function (this: LedgerInside, cmd: LedgerCommand) {
            const ends = cmd.type === 'cancelled' || cmd.type === 'deadLettered';
            // A terminal task is held compact: the bug ends a copy of it a second time.
            const rec = ends ? this.get(cmd.id) : undefined;
            if (!ends || !rec || !isTerminal(rec.state)) return orig.apply(this, [cmd] as never);
            const to = cmd.type === 'cancelled' ? TaskState.TASK_STATE_CANCELLED : TaskState.TASK_STATE_DEAD_LETTERED;
            this.finish(rec, to, cmd.reason, cmd.atMs);
            return [{ ok: true, id: rec.id, state: rec.state, attempt: rec.attempt }];
          },
      ),
  },
  {
    check: 'attempts',
    what: 'Home commits every failed attempt as uncounted (retries past max_attempts)',
    // Uncounted, a task whose affinity no agent has lapses up to 20 more spilled leases: past the drain bound.
    alsoMay: ['ended'],
    apply: () =>
      patch(
        Home.prototype,
        'commit',
        (orig) =>
          function (this: Home, cmd: LedgerCommand, ...rest: never[]): void {
            const c = cmd.type === 'attemptFailed' ? { ...cmd, counted: false } : cmd;
            orig.apply(this, [c, ...rest] as never);
          },
      ),
  },
  {
    check: 'blocked',
    what: 'the node dispatcher skips one kind (its tasks wait beside idle agents)',
    apply: () => {
      // The victim: the first kind a node pumps; skipped from then on, at every node.
      let victim: string | undefined;
      return patch(
        Dispatcher.prototype,
        'pump',
        (orig) =>
          function (this: DispatcherInside): void {
            const q = this.d.queue;
            if (!this.d.links.agents) return void orig.apply(this, []);
            const kinds = q.kinds.bind(q);
            q.kinds = function* () {
              for (const k of kinds()) if ((victim ??= k) !== k) yield k;
            };
            try {
              orig.apply(this, []);
            } finally {
              q.kinds = kinds;
            }
          },
      );
    },
  },
  {
    check: 'ended',
    what: 'Home ignores lease expiries (an attempt whose result was lost is waited on forever)',
    apply: () =>
      patch(
        Home.prototype,
        'fire',
        (orig) =>
          function (this: Home, e: WheelEntry, now: number): void {
            if (e.type !== 'lease') orig.apply(this, [e, now] as never);
          },
      ),
  },
  {
    check: 'idempotency',
    what: "the ledger's idempotency index misses every key (a resubmit makes a new task)",
    apply: () => {
      // The run's ledgers stay blind after the undo: they go with the run.
      const blind = (l: LedgerInside): void => {
        l.byKey.get = () => undefined;
      };
      return both(
        patch(
          Ledger.prototype,
          'idForKey',
          (orig) =>
            function (this: LedgerInside, key: string) {
              blind(this);
              return orig.apply(this, [key] as never);
            },
        ),
        patch(
          Ledger.prototype,
          'apply',
          (orig) =>
            function (this: LedgerInside, cmd: LedgerCommand) {
              blind(this);
              return orig.apply(this, [cmd] as never);
            },
        ),
      );
    },
  },
  {
    check: 'trail',
    what: 'the dispatcher records the runner-up of a pick as the chosen candidate (ExplainTask would mislead)',
    apply: () =>
      patch(
        Trail.prototype,
        'scored',
        (orig) =>
          // The decision's figures came through scoring()'s sink: name its second row (the runner-up) instead.
          function (this: Trail, ...args: Parameters<Trail['scored']>): void {
            orig.apply(this, args as never);
            const t = this as unknown as Internals;
            const i = (t.next - 1 + this.capacity) % this.capacity;
            const s = t.ring[i]!;
            if (s.listed > 1) s.chosen = t.figures.ids[i * TRAIL_CANDIDATES + 1]!;
          },
      ),
  },
  {
    check: 'wire',
    what: "Relay.acceptForwarded marks a relayed dispatch's spec in place (lost: it goes on as the bytes it came as)",
    apply: () =>
      patch(
        Relay.prototype,
        'acceptForwarded',
        (orig) =>
          function (this: Relay, tasks: readonly Dispatch[], origin: unknown): unknown {
            for (const d of tasks) if (d.spec !== undefined) d.spec.traceState = 'relayed';
            return orig.call(this, tasks as never, origin as never);
          },
      ),
  },
  {
    check: 'crash',
    what: 'Relay.fire assumes the route whose due time armed the sweep is still there (TypeError)',
    // The run stops at the throw: what was in flight never ends (nor gives its concurrency permit, or its
    // tenant's slot, back).
    alsoMay: ['ended', 'flow', 'share'],
    apply: () =>
      patch(
        Relay.prototype,
        'fire',
        () =>
          function (this: RelayInside): void {
            const lapsed: WorkItem[] = [];
            this.d.routes.lapsed(this.d.scheduler.now(), this.d.settings.leaseSlackMs, lapsed);
            this.cancelRoute(lapsed[0]!, 'route expired');
          },
      ),
  },
  {
    check: 'credits',
    what: "TenantGate.underMin ignores the tenant's count (a minimum's guaranteed attempts unbounded)",
    apply: () =>
      patch(
        TenantGate.prototype,
        'underMin',
        () =>
          function (this: { shares: TenantShares }): readonly string[] {
            return [...this.shares.withMinimum()].map(([t]) => t).sort();
          },
      ),
  },
  {
    check: 'credits',
    what: 'TaskQueue.popGuaranteed hands out any task when no guaranteed one waits (sent past the credits)',
    apply: () =>
      patch(
        TaskQueue.prototype,
        'popGuaranteed',
        (orig) =>
          function (this: TaskQueue<WorkItem>, kind: string, now: number): Popped<WorkItem> | undefined {
            return (orig.apply(this, [kind, now] as never) as Popped<WorkItem> | undefined) ?? this.popKind(kind, now);
          },
      ),
  },
];
