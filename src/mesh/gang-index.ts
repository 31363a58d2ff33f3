// Gangs (TaskSpec.gang_id and gang_size, docs/gang.md): tasks placed
// all-or-nothing at one node cell. This module holds what a submit checks and
// which tasks belong to which gang at its home; the placement pass and the rule
// that a gang runs once are in gang.ts, the way down from a home above a node
// in gang-route.ts.
//
// A gang is submitted whole, in one SubmitBatch, at any cell (its home):
// every member names the same id and size, the batch holds exactly `size` of
// them, and an id is reused only once every member of its last gang ended.
import { status } from '@grpc/grpc-js';
import { Durability, type TaskSpec } from '../gen/meshlb/v1/task.js';
import { isTerminal, type Ledger, type TaskRecord } from './ledger.js';

/** The fewest and most members of a gang. */
export const GANG_MIN = 2;
export const GANG_MAX = 64;

/** Why one spec cannot be a gang member, or '' (every replica checks, task-validate.ts). */
export function gangSpecProblem(spec: TaskSpec): string {
  if (!spec.gangId && spec.gangSize === 0) return '';
  if (!spec.gangId || spec.gangSize === 0) return 'task.gang_id and task.gang_size go together';
  if (spec.gangSize < GANG_MIN || spec.gangSize > GANG_MAX)
    return `task.gang_size ${spec.gangSize} is outside ${GANG_MIN}-${GANG_MAX}`;
  // A member waiting for its key's admission, its debounce window or its singleton would
  // hold the rest of its gang queued without end: not yet.
  if (spec.concurrencyKey || spec.rateLimitKey || spec.debounceKey || spec.singletonKey)
    return 'a gang member cannot name a concurrency, rate-limit, debounce or singleton key';
  // Members are placed together from the ledger's view of the gang: a NONE task is not in every replica's.
  if (spec.durability === Durability.DURABILITY_NONE) return 'a gang member must be durability LOGGED';
  return '';
}

/** Members per gang id, on every replica, kept from the ledger's changes. */
export class GangIndex {
  private readonly gangs = new Map<string, Set<string>>();

  constructor(private readonly ledger: Ledger) {
    for (const rec of ledger.records()) this.saw(rec);
    ledger.onChange((rec) => this.saw(rec));
    ledger.onRestored(() => {
      this.gangs.clear();
      for (const rec of ledger.records()) this.saw(rec);
    });
  }

  /** Task ids of gang `id` (empty if none is known). */
  members(id: string): ReadonlySet<string> {
    return this.gangs.get(id) ?? NONE;
  }

  /** Gang ids known (some member may still be live). */
  ids(): IterableIterator<string> {
    return this.gangs.keys();
  }

  /** Every member of `id` ended (or left the ledger): forget the gang. */
  forget(id: string): void {
    this.gangs.delete(id);
  }

  /** True if a member of gang `id` is live. */
  live(id: string): boolean {
    for (const m of this.members(id)) {
      if (this.ledger.live(m)) return true;
    }
    return false;
  }

  private saw(rec: TaskRecord): void {
    const id = rec.spec.gangId;
    if (!id) return;
    let set = this.gangs.get(id);
    // A new gang under an id whose last gang ended (the submit refuses one while it lives): a new set.
    if (set && !set.has(rec.id) && !this.live(id)) set = undefined;
    if (!set) this.gangs.set(id, (set = new Set()));
    set.add(rec.id);
    // Its last member ended: nothing is left to place or cancel (every replica forgets it alike).
    if (isTerminal(rec.state) && !this.live(id)) this.gangs.delete(id);
  }
}

const NONE: ReadonlySet<string> = new Set();
const indexes = new WeakMap<Ledger, GangIndex>();

/** The one gang index of a ledger (the submit checks it, the dispatcher places by it). */
export function gangsOf(ledger: Ledger): GangIndex {
  let ix = indexes.get(ledger);
  if (!ix) indexes.set(ledger, (ix = new GangIndex(ledger)));
  return ix;
}

/**
 * Why a batch's gangs cannot be accepted at this cell, or undefined. `known`: the spec's
 * idempotency key already names a task (a repeated submit, answered as `existing`). `shared`:
 * its tenant has a share here (src/flow/tenant-shares.ts), whose gate would let members go one
 * at a time: not yet.
 */
export function gangRefusal(
  specs: readonly TaskSpec[],
  path: string,
  index: GangIndex,
  known: (spec: TaskSpec) => boolean,
  shared: (spec: TaskSpec) => boolean = () => false,
): { readonly code: status; readonly message: string } | undefined {
  const groups = new Map<string, TaskSpec[]>();
  for (const s of specs) if (s.gangId) (groups.get(s.gangId) ?? groups.set(s.gangId, []).get(s.gangId)!).push(s);
  if (groups.size === 0) return undefined;
  const invalid = (message: string): { code: status; message: string } => ({ code: status.INVALID_ARGUMENT, message });
  for (const [id, members] of groups) {
    const size = members[0]!.gangSize;
    if (members.some((m) => m.gangSize !== size)) return invalid(`the members of gang ${id} disagree on gang_size`);
    if (members.some(shared)) return invalid(`a member of gang ${id} is of a tenant with a share at ${path}`);
    if (members.length !== size)
      return invalid(`gang ${id} has ${members.length} of its ${size} members in this batch: submit a gang whole`);
    const repeated = members.filter(known).length;
    if (repeated === size) continue; // the same gang submitted again: every member is answered `existing`
    if (repeated > 0) return invalid(`gang ${id} mixes members already submitted with new ones`);
    if (index.live(id))
      return { code: status.ALREADY_EXISTS, message: `gang ${id} has live members: reuse its id once they end` };
  }
  return undefined;
}
