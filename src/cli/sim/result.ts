// The result of `meshlb sim`: the --json object, and the human summary printed
// without --json. `ok` = the workload finished, no acknowledged task was lost,
// no outcome was recorded twice (a count the run could not establish is not
// ok), and no process exited on its own.
import type { Tier } from '../../topology/types.js';
import type { ChaosEvent } from './inject.js';
import {
  formatCount,
  formatFailover,
  type AgentSimReport,
  type Count,
  type HomeCounters,
  type TierFailover,
} from './report.js';

export interface SimResult {
  topology: string;
  /** Same seed, same chaos schedule. */
  seed: number;
  /** How `partition` cut: real blackhole routes between namespaces, or SIGSTOP on loopback. */
  partition_mode: 'netns' | 'sigstop';
  /** The namespace lab's id (names start with it), null without --netns. */
  netns: string | null;
  replicas: number;
  agent_processes: number;
  agents: number;
  chaos: ChaosEvent[];
  restarts: number;
  /** Per tier: kill of a leader -> another replica leads (and its dispatching grows). */
  failover: Record<Tier, TierFailover>;
  acknowledged: Count;
  /** Acknowledged tasks with no terminal state at the end (submit's `unfinished`). */
  lost: number;
  duplicate_executions: Count;
  recorded_twice: Count;
  why_na: Record<string, string>;
  /** Processes that exited on their own, with their last line of output. */
  unexpected_exits: Array<{ name: string; code: number; last: string }>;
  submit_exit_code: number;
  submit: Record<string, unknown> | null;
  agent_sims: AgentSimReport[];
  home: HomeCounters | null;
  /** The replicas' data root (deleted at the end unless data_kept). */
  data_dir: string;
  data_kept: boolean;
  duration_s: number;
  ok: boolean;
  /** Why not ok. */
  problems: string[];
}

function describeEvent(e: ChaosEvent): string {
  const extra = [
    e.leaderKnown === false ? 'leader unknown, took replica 1' : '',
    e.failoverMs !== undefined ? `failover ${e.failoverMs} ms` : '',
    e.dispatchResumedMs !== undefined ? `dispatch resumed ${e.dispatchResumedMs} ms` : '',
    e.linkDownSeenMs !== undefined ? `link down seen after ${e.linkDownSeenMs} ms` : '',
    e.backMs !== undefined ? `SERVING ${e.backMs} ms after restart` : '',
  ].filter(Boolean);
  return (
    `  #${e.seq} ${(e.atMs / 1000).toFixed(1)} s ${e.kind} ${e.target} (${e.tier}, ${e.how}, ${e.downMs} ms)` +
    (extra.length ? `: ${extra.join(', ')}` : '')
  );
}

/** The summary without --json, one line per item. */
export function formatSimResult(r: SimResult): string[] {
  const lines = [
    `sim: ${r.ok ? 'ok' : 'FAILED'} in ${r.duration_s.toFixed(1)} s; ${r.topology}, seed ${r.seed}; ` +
      `partitions by ${r.partition_mode === 'netns' ? `network namespaces (${r.netns})` : 'SIGSTOP'}; ` +
      `${r.chaos.length} chaos events, ${r.restarts} restarts; submit exit ${r.submit_exit_code}`,
    `sim: tasks acknowledged ${r.acknowledged}, lost ${r.lost}, ` +
      `duplicate executions ${formatCount(r.duplicate_executions, r.why_na.duplicate_executions)}, ` +
      `recorded twice ${formatCount(r.recorded_twice, r.why_na.recorded_twice)}`,
  ];
  const failover = formatFailover(r.failover);
  if (failover.length) lines.push('sim: failover by tier (kill -> another replica leads)', ...failover);
  if (r.chaos.length) lines.push('sim: chaos', ...r.chaos.map(describeEvent));
  lines.push(r.submit ? `sim: submit ${JSON.stringify(r.submit)}` : 'sim: no submit result');
  if (r.data_kept) lines.push(`sim: data kept in ${r.data_dir}`);
  for (const p of r.problems) lines.push(`sim: problem: ${p}`);
  return lines;
}
