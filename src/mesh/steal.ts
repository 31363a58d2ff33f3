// Work stealing, the parent's half: when a child has room for a kind and nothing
// of it queued, while a sibling holds tasks of that kind in its queue, the parent
// asks the loaded sibling to give some back (link.proto Steal) and places them
// again itself, where its policy now sees room. The child's half is
// Dispatcher.giveBack: attempts the parent sent come back unstarted (GivenBack,
// taken out of the child's queue first, so an attempt is in one place at a time);
// tasks whose home is the child go up as ordinary spill-ups.
//
// Pure: the figures are the children's latest summaries (their queued counts and
// the credits the parent holds for them) and the parent's own queue. A child is
// asked again only once a newer summary shows what the last ask left queued.

/** What the parent knows of one child for one kind. */
export interface StealView {
  readonly cell: string;
  /** The parent's credit for the child (free and prefetch slots, less what is unacked). */
  readonly credit: number;
  /** Tasks of the kind waiting in the child's own queue, from its latest summary. */
  readonly queued: number;
  /** The child answered since the last ask (a newer summary): it may be asked again. */
  readonly askable: boolean;
}

export interface StealAsk {
  readonly cell: string;
  readonly kind: string;
  readonly max: number;
}

/**
 * The asks for one kind: idle room (credit at children with nothing queued) goes to
 * the most loaded children first, at most `batch` tasks from each. None while the
 * parent itself holds tasks of the kind (its own queue fills the room first), and
 * none when stealing is off (batch 0).
 */
export function planSteals(kind: string, views: readonly StealView[], ownQueued: number, batch: number): StealAsk[] {
  if (batch <= 0 || ownQueued > 0 || views.length < 2) return [];
  let idle = 0;
  for (const v of views) if (v.queued === 0 && v.credit > 0) idle += v.credit;
  if (idle === 0) return [];
  const loaded = views.filter((v) => v.queued > 0 && v.askable).sort((a, b) => b.queued - a.queued);
  const asks: StealAsk[] = [];
  for (const v of loaded) {
    if (idle <= 0) break;
    const max = Math.min(batch, v.queued, idle);
    asks.push({ cell: v.cell, kind, max });
    idle -= max;
  }
  return asks;
}
