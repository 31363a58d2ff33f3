// Gangs above a node cell (docs/gang.md): a gang homed at the root, a region or
// a zone goes down the tiers as one unit, to one child at each tier, until one
// node places it all-or-nothing on its agents (gang.ts).
//
// Two parts, both used by Gangs.place:
// - GangRoute.pass: one placement pass over a gang's members. At a node any
//   agent may take any member (one pick each). Above a node every member goes
//   to ONE child, one whose summary shows a node below it with room for every
//   member (KindCapacity.node_free: free slots at one node, no prefetch, per
//   kind, less gangs sent there since that summary). The policy picks the child
//   for the first member among those, and the rest are picked with every other
//   child excluded, so the child's credits (and for a member of several slots a
//   block that big at one agent) must hold them all. If they do not, the
//   credits the try took go back (Picker.release) and the next child the policy
//   prefers is tried, until one holds the gang or none is left: then the gang
//   waits whole here. N members take N credits together or none.
// - TransitGangs: which queued items are members of one gang that a parent
//   sent here (origin parent). They are not in this cell's ledger; a member
//   makes itself known each time the dispatcher pops it, and while a gang is
//   not known whole, the queue is looked through for the rest; its siblings
//   are then found by id. A gang key is its home and its id.
import type { Candidate, PickResult, Picker } from '../policies/index.js';
import type { Popped, TaskQueue } from '../queue/index.js';
import { slotsOf } from './slot-map.js';
import type { WorkItem } from './types.js';

/** One pick for member `m`; `exclude`: targets it must not get (the other children, to pin it). */
export type GangPick = (m: WorkItem, exclude?: readonly string[]) => PickResult;

/** Why a gang waits above a node: no child has room for every member now. */
export const gangNoChild = (n: number): string => `for its gang (no child with room for all ${n} members)`;

/** The key of `item`'s gang, unique in the mesh: its home and its id. */
export const gangKey = (item: WorkItem): string => `${item.homeCell}\n${item.spec.gangId}`;

export class GangRoute {
  /**
   * Per child: the summary its node_free came in (its time), and the slots per kind of gangs sent
   * there since: a second gang before the next summary sees the room the first one left.
   */
  private readonly sent = new Map<string, { stamp: number; slots: Map<string, number> }>();

  /**
   * Every member with its target, or undefined (every credit the pass took is back in `picker`).
   * `targets`: the children (above a node: all members go to one of them, one whose node_free
   * holds every member of each kind); undefined at a node. `now`: the candidates' time.
   */
  pass(
    members: readonly WorkItem[],
    picker: Picker,
    pick: GangPick,
    targets: (() => readonly Candidate[]) | undefined,
    now = 0,
  ): [WorkItem, string][] | undefined {
    if (!targets) return this.each(members, picker, pick);
    const need = new Map<string, number>();
    for (const m of members) need.set(m.kind, (need.get(m.kind) ?? 0) + slotsOf(m.spec));
    const cands = targets();
    const ids = cands.map((c) => c.id);
    // Children no node of which has room for the gang now are never tried.
    const tried = cands.filter((c) => !this.holds(c, need, now)).map((c) => c.id);
    // At most one try per child: the first member's pick, past the children tried, names the next.
    while (tried.length < ids.length) {
      const first = pick(members[0]!, tried);
      if (first.type !== 'route') return undefined;
      const c = first.candidate;
      if (!ids.includes(c)) {
        // A child the picker still knows whose link is gone: not a place for a gang.
        picker.release(c, members[0]!.kind, slotsOf(members[0]!.spec));
        tried.push(c);
        continue;
      }
      const others = ids.filter((id) => id !== c);
      const placed = this.each(members.slice(1), picker, (m) => pick(m, others));
      if (placed) {
        const s = this.sent.get(c)!;
        for (const [kind, n] of need) s.slots.set(kind, (s.slots.get(kind) ?? 0) + n);
        return [[members[0]!, c], ...placed];
      }
      picker.release(c, members[0]!.kind, slotsOf(members[0]!.spec));
      tried.push(c);
    }
    return undefined;
  }

  /** Whether one node below `c` has room for `need` (slots per kind), less gangs sent since its summary. */
  private holds(c: Candidate, need: ReadonlyMap<string, number>, now: number): boolean {
    const stamp = now - c.summaryAgeMs;
    let s = this.sent.get(c.id);
    if (!s || s.stamp !== stamp) this.sent.set(c.id, (s = { stamp, slots: new Map() }));
    for (const [kind, n] of need) if ((c.slots.get(kind)?.nodeFree ?? 0) - (s.slots.get(kind) ?? 0) < n) return false;
    return true;
  }

  /** One pick per member: all routed, or none (their credits back). */
  private each(members: readonly WorkItem[], picker: Picker, pick: GangPick): [WorkItem, string][] | undefined {
    const placed: [WorkItem, string][] = [];
    for (const m of members) {
      const r = pick(m);
      if (r.type !== 'route') break;
      placed.push([m, r.candidate]);
    }
    if (placed.length === members.length) return placed;
    for (const [m, c] of placed) picker.release(c, m.kind, slotsOf(m.spec));
    return undefined;
  }
}

/** Keys kept before the registry starts afresh (members make themselves known again as they are popped). */
const MAX_GANGS = 4096;

export class TransitGangs {
  private readonly byGang = new Map<string, Set<string>>();

  /**
   * The members of `item`'s gang (just popped) queued here, `item` first, and how many more
   * wait here set aside in this pump (`parked`: out of the queue until the pump puts them back;
   * the first member popped in a later pump finds them queued). A member neither queued nor
   * parked has gone (sent on, cancelled, expired): it is forgotten.
   */
  members(item: WorkItem, queue: TaskQueue<WorkItem>, parked: readonly Popped<WorkItem>[]): [WorkItem[], number] {
    const key = gangKey(item);
    let set = this.byGang.get(key);
    if (!set) {
      if (this.byGang.size >= MAX_GANGS) this.byGang.clear();
      this.byGang.set(key, (set = new Set()));
    }
    set.add(item.id);
    const out = [item];
    let aside = 0;
    for (const id of set) {
      if (id === item.id) continue;
      const m = queue.get(id);
      if (m) out.push(m);
      else if (parked.some((p) => p.task.id === id)) aside++;
      else set.delete(id);
    }
    // Not every member known: look through the queue (once a pump: Gangs.place). Members that came in
    // one batch are all queued before the first is popped, and no later pump need come to show them.
    if (out.length + aside < item.spec.gangSize)
      for (const m of queue.values())
        if (m.spec.gangId === item.spec.gangId && !set.has(m.id) && gangKey(m) === key) {
          set.add(m.id);
          out.push(m);
        }
    return [out, aside];
  }

  /** The gang left whole (or ended): forget it. */
  forget(item: WorkItem): void {
    this.byGang.delete(gangKey(item));
  }
}
