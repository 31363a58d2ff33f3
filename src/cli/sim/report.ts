// What `meshlb sim` reports, computed from what it measured: failover times
// per tier, and the task accounting (acknowledged, lost, duplicate executions,
// outcomes recorded twice). Pure functions. A count the run cannot know is
// "n/a" with the reason, never a guess.
import { TIERS, type Tier } from '../../topology/types.js';

export interface Percentiles {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * Nearest-rank percentiles: the p-th percentile is the smallest sample with
 * at least p% of the samples at or below it (so p99 of fewer than 100 samples
 * is the max). null for no samples.
 */
export function percentiles(samples: readonly number[]): Percentiles | null {
  if (!samples.length) return null;
  const xs = [...samples].sort((a, b) => a - b);
  const at = (p: number) => xs[Math.max(0, Math.ceil((p / 100) * xs.length) - 1)]!;
  return { n: xs.length, p50: at(50), p99: at(99), max: xs[xs.length - 1]! };
}

/** One killed leader, as measured. */
export interface FailoverSample {
  tier: Tier;
  cell: string;
  /** kill -> a different replica of the cell reports leader: true. */
  failoverMs?: number;
  /** kill -> that replica's GetCell.dispatched grew. */
  dispatchResumedMs?: number;
  /** Why failoverMs is missing (e.g. the cell has one replica). */
  unmeasured?: string;
}

export interface TierFailover {
  kills: number;
  failover_ms: Percentiles | null;
  /** "n/a" when no replica reported GetCell.dispatched during the run. */
  dispatch_resumed_ms: Percentiles | null | 'n/a';
  /** Kills without a failover time, by reason. */
  not_measured: Record<string, number>;
}

export function failoverByTier(
  samples: readonly FailoverSample[],
  dispatchedReported: boolean,
): Record<Tier, TierFailover> {
  const out = {} as Record<Tier, TierFailover>;
  for (const tier of TIERS) {
    const mine = samples.filter((s) => s.tier === tier);
    const notMeasured: Record<string, number> = {};
    for (const s of mine) if (s.unmeasured) notMeasured[s.unmeasured] = (notMeasured[s.unmeasured] ?? 0) + 1;
    out[tier] = {
      kills: mine.length,
      failover_ms: percentiles(mine.flatMap((s) => (s.failoverMs === undefined ? [] : [s.failoverMs]))),
      dispatch_resumed_ms: dispatchedReported
        ? percentiles(mine.flatMap((s) => (s.dispatchResumedMs === undefined ? [] : [s.dispatchResumedMs])))
        : 'n/a',
      not_measured: notMeasured,
    };
  }
  return out;
}

/** One agent-sim process's final report (its --json line at exit), over all its incarnations. */
export interface AgentSimReport {
  name: string;
  /** How many times it was started (more than one: it was killed -9 and its counts died with it). */
  starts: number;
  /** `started` from its last incarnation's JSON, if it printed one. */
  started?: number;
  /** Assignments its agents refused for being over their slots (last incarnation): must be 0. */
  refused_over_slots?: number;
}

/** The home cell's counters (GetCell on the replica that leads the root at the end). */
export interface HomeCounters {
  accepted: number;
  completed: number;
  failed: number;
  deadLettered: number;
  /** Absent from older readings: then a home that accepted more than submit heard of stays n/a. */
  cancelled?: number;
  /** Tasks the home still holds (queued + in flight). */
  pending?: number;
}

export type Count = number | 'n/a';

export interface TaskAccount {
  /** Tasks the mesh acknowledged (submit's `accepted`). */
  acknowledged: Count;
  /** Acknowledged tasks with no terminal state by the end (submit's `unfinished`). */
  lost: number;
  /** Agent executions beyond one per finished task. */
  duplicate_executions: Count;
  /** Terminal outcomes the home recorded beyond one per finished task. */
  recorded_twice: Count;
  /** Why a count is n/a. */
  why_na: Record<string, string>;
}

const num = (o: Record<string, unknown> | null, k: string): number | undefined =>
  typeof o?.[k] === 'number' ? o[k] : undefined;

export function accountTasks(
  submit: Record<string, unknown> | null,
  agentSims: readonly AgentSimReport[],
  home: HomeCounters | undefined,
): TaskAccount {
  const why: Record<string, string> = {};
  const s = (k: string) => num(submit, k) ?? 0;
  const lost = Math.max(s('lost'), s('unfinished'));
  const accepted = num(submit, 'accepted');
  const finished = s('completed') + s('failed');
  const notDone = s('dead_lettered') + s('cancelled') + s('unfinished');

  let duplicates: Count = 'n/a';
  const killed = agentSims.find((a) => a.starts > 1);
  const silent = agentSims.find((a) => a.started === undefined);
  if (!submit || accepted === undefined) why.duplicate_executions = 'no submit result';
  else if (killed)
    why.duplicate_executions = `${killed.name} was killed -9: the counts of that incarnation died with it`;
  else if (silent) why.duplicate_executions = `${silent.name} printed no final report`;
  else if (notDone > 0)
    why.duplicate_executions = `${notDone} tasks did not end completed or failed: how often they ran is unknown`;
  else {
    const started = agentSims.reduce((n, a) => n + (a.started ?? 0), 0);
    if (started >= finished) duplicates = started - finished;
    else why.duplicate_executions = `the agents report ${started} starts for ${finished} finished tasks`;
  }

  let twice: Count = 'n/a';
  if (!submit || accepted === undefined) why.recorded_twice = 'no submit result';
  else if (!home) why.recorded_twice = "the home cell's counters could not be read (AdminService.GetCell)";
  else if (home.accepted > accepted && home.pending === 0 && home.cancelled !== undefined) {
    // Submits whose answer never reached submit (a deadline while a leader was being
    // replaced) were accepted all the same. Nothing is pending at the home, so every task
    // it accepted has ended: any outcome past one per accepted task was recorded twice.
    const homeTerminal = home.completed + home.failed + home.deadLettered + home.cancelled;
    if (homeTerminal >= home.accepted) twice = homeTerminal - home.accepted;
    else why.recorded_twice = `the home recorded ${homeTerminal} outcomes for ${home.accepted} accepted tasks`;
  } else if (home.accepted !== accepted)
    why.recorded_twice = `the home's counters cover ${home.accepted} accepted tasks, submit acknowledged ${accepted}${
      home.pending ? ` (${home.pending} still pending at the home)` : ''
    }`;
  else if (s('unfinished') + s('cancelled') > 0)
    why.recorded_twice = 'some tasks ended unseen by submit (unfinished or cancelled)';
  else {
    const homeTerminal = home.completed + home.failed + home.deadLettered;
    const seen = finished + s('dead_lettered');
    if (homeTerminal >= seen) twice = homeTerminal - seen;
    else why.recorded_twice = `the home recorded ${homeTerminal} outcomes, submit saw ${seen}`;
  }
  return {
    acknowledged: accepted ?? 'n/a',
    lost,
    duplicate_executions: duplicates,
    recorded_twice: twice,
    why_na: why,
  };
}

const ms = (p: Percentiles | null | 'n/a') =>
  p === 'n/a' ? 'n/a' : p ? `p50 ${p.p50} ms, p99 ${p.p99} ms, max ${p.max} ms (${p.n})` : 'none measured';

/** The failover lines of the human summary: one per tier that saw a kill. */
export function formatFailover(f: Record<Tier, TierFailover>): string[] {
  return TIERS.filter((t) => f[t].kills > 0).map((t) => {
    const x = f[t];
    const skipped = Object.entries(x.not_measured)
      .map(([why, n]) => `${n} ${why}`)
      .join(', ');
    return (
      `  ${t}: ${x.kills} leader kills; failover ${ms(x.failover_ms)}; dispatch resumed ${ms(x.dispatch_resumed_ms)}` +
      (skipped ? `; not measured: ${skipped}` : '')
    );
  });
}

export function formatCount(c: Count, why: string | undefined): string {
  return c === 'n/a' ? `n/a${why ? ` (${why})` : ''}` : String(c);
}
