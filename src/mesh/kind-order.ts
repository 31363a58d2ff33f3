// The order a pump serves its kinds in. Kinds can draw on the same free slots (an agent serving several kinds;
// a node's summary counts its free slots once per kind), and the kind served first takes them every pump: in
// the order kinds first entered the queue (a Map's order, as before), one kind could keep another waiting for as
// long as it had work (docs/policies.md, finding 6). A pump serves them as the queue's own pop() chooses among
// them instead: the kind whose next task has the lowest effective rank (priority, lifted by aging) first, then
// the one whose oldest task of that rank waited longest. Aging bounds how long a kind waits behind others'
// better priorities; within a rank, oldest first takes turns. What orders the tasks of one kind (guaranteed
// tenants, priorities, DRR, EDF, gangs, held lines) is untouched. Cost: a sort of the kinds with queued tasks
// per pump, O(k log k) comparisons of O(1) each (four lanes per kind), none per task.

/** What the order reads of the queue (src/queue/task-queue.ts). */
export interface KindQueue {
  /** A fresh array the order may sort in place. */
  kinds(): string[];
  servesBefore(a: string, b: string, now: number): boolean;
}

/** The kinds with queued tasks, in the order a pump at `now` serves them (the mesh's dispatcher and bench:sched). */
export function kindOrder(queue: KindQueue, now: number): string[] {
  const kinds = queue.kinds();
  if (kinds.length > 1) kinds.sort((a, b) => (a === b ? 0 : queue.servesBefore(a, b, now) ? -1 : 1));
  return kinds;
}
