// What the admin API says about placement: the circuit breakers a cell holds
// for its targets (ListAgents, GetCell), and why a task went where it went
// (ExplainTask): the home cell's decision about the task's latest attempt,
// then the decision of each cell it was sent to, asked one hop each (the
// cell's leader answers from its ring of recent decisions, dispatcher-trail.ts).
import {
  BreakerState,
  type Breaker,
  type ExplainTaskRequest,
  type ExplainTaskResponse,
  type PlacementDecision,
} from '../gen/meshlb/v1/admin.js';
import type { Cell } from '../mesh/cell.js';
import type { BreakerInfo } from '../mesh/dispatcher-breakers.js';
import { TRAIL_DECISIONS, type Decision } from '../mesh/dispatcher-trail.js';
import { notFound } from '../util/errors.js';
import { clip } from '../util/limits.js';
import { checkTaskId } from './admin-tasks.js';

/** Cells a trail may pass: down four tiers, or up and down again after a spill-up. */
const MAX_HOPS = 8;

/** This cell's own decision about the task, as the trail shows it. */
export function decisionHere(cell: Cell, taskId: string): PlacementDecision | undefined {
  const d = cell.dispatcher.trail.latest(taskId);
  return d === undefined ? undefined : decisionMessage(cell, d);
}

function decisionMessage(cell: Cell, d: Decision): PlacementDecision {
  const e = d.explanation;
  return {
    cell: cell.path,
    tier: cell.tier,
    policy: d.policy,
    attempt: d.attempt,
    kind: d.kind,
    atUnixMs: d.atMs,
    action: d.action,
    chosen: d.chosen,
    score: e?.score ?? '',
    rule: e?.rule ?? (d.action === 'parent' ? 'spill up: hand the task to the parent' : ''),
    why: e?.why ?? d.note,
    candidates: (e?.candidates ?? []).map((c) => ({ ...c, credits: Math.max(0, Math.floor(c.credits)) })),
    total: e?.total ?? 0,
    eligible: e?.eligible ?? 0,
  };
}

/**
 * The trail of a task homed at `cell` (its leader answers): its decision, then
 * each next cell's, asked with `ask` (here_only), until an agent, a cell with
 * no decision about this attempt, or MAX_HOPS.
 */
export async function explainTask(
  cell: Cell,
  req: ExplainTaskRequest,
  ask: (cell: string, req: ExplainTaskRequest) => Promise<ExplainTaskResponse>,
): Promise<ExplainTaskResponse> {
  checkTaskId(req.taskId);
  const taskId = req.taskId;
  const here = decisionHere(cell, taskId);
  if (req.hereOnly) {
    return { taskId, homeCell: '', attempt: here?.attempt ?? 0, trail: here ? [here] : [], note: '' };
  }
  const rec = cell.ledger.get(taskId);
  if (!rec) throw notFound(`task ${clip(taskId)} not found at cell ${cell.path} (its home, or evicted after it ended)`);
  const out: ExplainTaskResponse = { taskId, homeCell: cell.path, attempt: here?.attempt ?? 0, trail: [], note: '' };
  if (!here) {
    out.note = `${cell.path} holds no placement of it: not placed yet, or out of its last ${TRAIL_DECISIONS} decisions`;
    return out;
  }
  out.trail.push(here);
  const seen = new Set([cell.path]);
  let d = here;
  while (d.action !== 'agent') {
    const next = d.chosen;
    if (!next || seen.has(next) || out.trail.length >= MAX_HOPS) {
      out.note = `the trail stops at ${d.cell}: it would revisit ${next || 'no cell'}`;
      return out;
    }
    seen.add(next);
    let there: PlacementDecision | undefined;
    try {
      there = (await ask(next, { taskId, cell: next, hereOnly: true })).trail[0];
    } catch (err) {
      out.note = `${next} did not answer: ${(err as Error).message}`;
      return out;
    }
    if (!there || there.attempt !== out.attempt) {
      const has = there ? `its latest is of attempt ${there.attempt}` : `none in its last ${TRAIL_DECISIONS}`;
      out.note = `${next} holds no placement of attempt ${out.attempt} (${has}): it may still be queued there`;
      return out;
    }
    out.trail.push(there);
    d = there;
  }
  return out;
}

const STATES: Record<BreakerInfo['state'], BreakerState> = {
  closed: BreakerState.BREAKER_STATE_CLOSED,
  open: BreakerState.BREAKER_STATE_OPEN,
  'half-open': BreakerState.BREAKER_STATE_HALF_OPEN,
};

/** A breaker as the admin API shows it; a target with no breaker yet is closed and unlimited. */
export function breakerMessage(b: BreakerInfo | undefined): Breaker {
  if (b === undefined) {
    return {
      state: BreakerState.BREAKER_STATE_CLOSED,
      consecutiveFailures: 0,
      errorRate: 0,
      outcomes: 0,
      openedUnixMs: 0,
      share: 1,
      trips: 0,
    };
  }
  return {
    state: STATES[b.state],
    consecutiveFailures: b.consecutiveFailures,
    errorRate: b.errorRate,
    outcomes: b.outcomes,
    openedUnixMs: b.openedAtMs,
    share: b.share,
    trips: b.trips,
  };
}
