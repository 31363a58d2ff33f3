// Holding a task back for a faster agent (node-score, issue 11 on real
// processes). A picker routes whenever some candidate has a credit, so a burst
// that arrives while every fast agent is full goes to idle slow agents, and
// their service time becomes the p99. For two server speeds the optimal rule
// is a queue threshold (Lin and Kumar, 1984): a task waits for a fast server
// while fewer than some number wait ahead of it. Here, with the faster full
// agents freeing slots at R = Σ busy/T per ms, the k-th task held back gets a
// slot after about (k + 1)/R ms and then runs in their delay D, so it waits
// while
//   (k + 1)/R + D / HOLD_GAIN < delay (what the slower agent offers now).
// HOLD_GAIN < 1: a task waits only for agents clearly faster (D under 80% of
// the delay offered), not for agents about as fast, whose EWMAs differ by
// noise: there a hold would buy little and cost a re-pump. The margin is a
// share of D, the figure a hold bets on, not of the delay offered: with
// `(k + 1)/R + D < HOLD_GAIN · delay` (sessions 7-10) a slower agent 8x slower
// kept a fifth of its own delay as margin, and a cold node whose fast agents'
// turnover was still that of cold code (their D high) sent its first second's
// overflow to slow agents 25% sooner than this rule. At D = HOLD_GAIN · delay
// both rules hold nothing; above it this one holds longer, by 0.2 · delay −
// 0.25 · D. What it waited already is spent either way, so it
// does not enter the comparison: counting it sent the tasks that had queued at
// a CPU-starved node to slow agents, whose service time then came on top of
// their wait. The hold is bounded by maxHoldMs of waiting at the cell (the
// estimate may be wrong: a full agent that hung frees nothing), so a held task
// always goes at last (liveness).
//
// A cold node has no measured speeds: every agent is on trial, one task at a
// time (node-score's delay()). A second task for an agent on trial waits, up to
// the fastest measured time (answerMs), for some other busy agent to answer;
// alone, nobody else can answer, so it does not wait.
//
// Pure decisions; node-score gathers their inputs from its index. They apply
// only when the dispatcher keeps a held task queued and says so (TaskInfo
// queuedAhead and waitedMs): elsewhere a picker stays work-conserving. A node's
// dispatcher says so for the tasks homed there only: their whole line is in its
// queue. One its parent sent stands for a backlog that waits above, unseen (the
// parent sends only what the node's credits allow), so k would never reach the
// threshold and the slower agents would idle while that backlog grew: with
// every task held, bench:sched's diurnal run (load up to 95%) had p99 13% worse,
// priorities-deadlines 5%, bursty 3%.
import type { PickResult, TaskInfo } from './types.js';

/** select()'s answer for a task held back although a member has a credit (BasePicker answers QUEUE_HELD). */
export const HELD = -4;

/** A task held back for a faster candidate's slot (node-score), though some candidate has a credit. */
export const QUEUE_HELD: PickResult = Object.freeze({
  type: 'queue',
  reason: 'waiting for a faster candidate to free a slot',
});

/** A hold waits only for agents whose delay is at most this share of the delay offered now (and keeps 1/HOLD_GAIN − 1 of theirs as margin). */
export const HOLD_GAIN = 0.8;

/** Members, fastest first, whose release rate a hold-back adds up: bounds its cost at large nodes. */
export const HOLD_SCAN = 64;

/** The faster full agents a task could wait for: their release rate (slots/ms) and soonest delay (ms). */
export interface Faster {
  rate: number;
  soonestMs: number;
}

/** Whether the task may be held at all: the dispatcher keeps held tasks, hold-back is on, and it has not waited its limit. */
export function mayHold(task: TaskInfo, maxHoldMs: number): boolean {
  return task.queuedAhead !== undefined && maxHoldMs > 0 && (task.waitedMs ?? 0) < maxHoldMs;
}

/**
 * Wait for a faster agent's slot rather than go now to one offering `delayMs`:
 * (k + 1)/R + D / HOLD_GAIN < delay, k the tasks of the kind held ahead of it.
 */
export function holdForFaster(task: TaskInfo, delayMs: number, faster: Faster): boolean {
  if (!(faster.rate > 0)) return false;
  return ((task.queuedAhead ?? 0) + 1) / faster.rate + faster.soonestMs / HOLD_GAIN < delayMs;
}

/**
 * A second task for an agent on trial (`running` > 0 of its slots busy) waits up to
 * `answerMs` while another agent is busy and may answer first.
 */
export function holdForAnswer(task: TaskInfo, running: number, othersBusy: boolean, answerMs: number): boolean {
  return running > 0 && othersBusy && (task.waitedMs ?? 0) < answerMs;
}
