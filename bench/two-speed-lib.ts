// The pure half of `npm run bench:two-speed` (bench/two-speed.ts): the
// topology it serves, the run order, the figures of one run and the table of
// all of them. No processes, no sockets: unit-tested in test/bench.
import { renderTable, type Cell } from './lib/table.js';

/** The node policy under test first; then the baselines it must beat. */
export const TWO_SPEED_POLICIES = ['node-score', 'random', 'round-robin', 'least-loaded', 'p2c'] as const;

export interface AgentGroup {
  /** agent-sim --id-prefix: the agents are `${prefix}-0` .. `${prefix}-${agents - 1}`. */
  readonly prefix: string;
  readonly agents: number;
  readonly slots: number;
  /** Mean service time, and its uniform jitter (+-), ms. */
  readonly serviceMs: number;
  readonly jitterMs: number;
}

export interface TwoSpeedOptions {
  readonly tasks: number;
  /** Submits per second, paced. */
  readonly rate: number;
  readonly rounds: number;
  readonly policies: readonly string[];
  readonly groups: readonly AgentGroup[];
}

/** The case: 10 agents x 4 slots at 20 ms, 10 x 4 at 160 ms, 4,000 tasks at 800/s, each policy twice. */
export const TWO_SPEED_DEFAULTS: TwoSpeedOptions = {
  tasks: 4000,
  rate: 800,
  rounds: 2,
  policies: TWO_SPEED_POLICIES,
  groups: [
    // Service times vary +-50%, as bench:sched's agents (work uniform in 0.5..1.5).
    { prefix: 'fast', agents: 10, slots: 4, serviceMs: 20, jitterMs: 10 },
    { prefix: 'slow', agents: 10, slots: 4, serviceMs: 160, jitterMs: 80 },
  ],
};

export const NODE_CELL = '/r/z/n';

/**
 * A four-tier chain whose node cell `/r/z/n` is the only one served: its
 * ancestors are named (a node cell is the fourth tier) at addresses nobody
 * listens on, so it is the home of the tasks submitted to it and tries its
 * parent link in the background, as a node whose zone is down would.
 * `addresses`: the four cells' host:port, root first.
 */
export function twoSpeedTopology(policy: string, addresses: readonly string[]): string {
  if (addresses.length !== 4) throw new Error('two-speed topology: four addresses, root first');
  const r = (i: number) => `replicas: [{ address: "${addresses[i]}" }]`;
  return [
    'name: two-speed',
    'defaults: { summaryIntervalMs: 150, heartbeatTimeoutMs: 3000 }',
    `tiers: { node: { policy: ${policy} } }`,
    'cells:',
    '  name: /',
    `  ${r(0)}`,
    '  children:',
    '    - name: r',
    `      ${r(1)}`,
    '      children:',
    '        - name: z',
    `          ${r(2)}`,
    '          children:',
    '            - name: n',
    `              ${r(3)}`,
    '',
  ].join('\n');
}

/** Run order: every policy once per round, so load on a shared machine falls on all alike. */
export function runOrder(policies: readonly string[], rounds: number): { policy: string; round: number }[] {
  const out: { policy: string; round: number }[] = [];
  for (let round = 1; round <= rounds; round++) for (const policy of policies) out.push({ policy, round });
  return out;
}

/** How many of `total` submits are due `elapsedMs` into a run paced at `rate` per second. */
export function dueBy(elapsedMs: number, rate: number, total: number): number {
  return Math.min(total, Math.max(0, Math.floor((elapsedMs * rate) / 1000) + 1));
}

/** The q-quantile (0..1) of sorted values, nearest rank; NaN when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export interface RunSample {
  /** Submit call to the final record, as the client saw it, ms. */
  readonly clientMs: number;
  /** The home's record: last update minus creation (accepted to completed), ms. */
  readonly meshMs: number;
  /** The agent that ran it ('' when it did not complete). */
  readonly agent: string;
  /** How long the agent ran it, as it reported (run_micros), ms. */
  readonly runMs?: number;
  /** When it was submitted, ms after the first submit. */
  readonly atMs?: number;
  readonly completed: boolean;
}

export interface RunFigures {
  readonly policy: string;
  readonly round: number;
  readonly tasks: number;
  readonly completed: number;
  /** Achieved submit rate, per second. */
  readonly submitRate: number;
  readonly clientP50: number;
  readonly clientP99: number;
  readonly clientP999: number;
  readonly meshP50: number;
  readonly meshP99: number;
  /** p99 of the tasks submitted after the first second (the node has measured its agents by then). */
  readonly clientP99After1s?: number;
  /** Completed tasks run by each group's agents, by prefix. */
  readonly byGroup: Record<string, number>;
  /**
   * Of the slowest 1% (client view): how many ran on each group's agents, how many were
   * submitted in the run's first second (a cold node's), and their median wait outside the
   * agent (client time minus run time), ms.
   */
  readonly tail?: { byGroup: Record<string, number>; firstSecond: number; waitP50: number; runP50: number };
  /** The node's CPU per task (µs) over the run's first second and after it: what a cold node costs more. */
  readonly nodeCpuUs?: { firstSecond: number; after: number };
  /** 1-minute load average at the start and the end of the run. */
  readonly loadBefore: number;
  readonly loadAfter: number;
  /** CPU each process used over the load phase, in cores. */
  readonly cores?: Record<string, number>;
  /** The node's latency EWMA of each group's agents at the end (dispatch to result, ms). */
  readonly ewma?: Record<string, number>;
}

export function runFigures(
  policy: string,
  round: number,
  samples: readonly RunSample[],
  groups: readonly AgentGroup[],
  extra: {
    submitRate: number;
    loadBefore: number;
    loadAfter: number;
    cores?: Record<string, number>;
    ewma?: Record<string, number>;
    nodeCpuUs?: { firstSecond: number; after: number };
  },
): RunFigures {
  const done = samples.filter((s) => s.completed);
  const client = done.map((s) => s.clientMs).sort((a, b) => a - b);
  const mesh = done.map((s) => s.meshMs).sort((a, b) => a - b);
  const byGroup: Record<string, number> = {};
  for (const g of groups) byGroup[g.prefix] = done.filter((s) => s.agent.startsWith(`${g.prefix}-`)).length;
  const slowest = [...done].sort((a, b) => b.clientMs - a.clientMs).slice(0, Math.ceil(done.length / 100));
  const tailGroups: Record<string, number> = {};
  for (const g of groups) tailGroups[g.prefix] = slowest.filter((s) => s.agent.startsWith(`${g.prefix}-`)).length;
  const run = slowest.map((s) => s.runMs ?? NaN).sort((a, b) => a - b);
  const wait = slowest.map((s) => s.clientMs - (s.runMs ?? NaN)).sort((a, b) => a - b);
  return {
    policy,
    round,
    tasks: samples.length,
    completed: done.length,
    submitRate: extra.submitRate,
    clientP50: quantile(client, 0.5),
    clientP99: quantile(client, 0.99),
    clientP999: quantile(client, 0.999),
    meshP50: quantile(mesh, 0.5),
    meshP99: quantile(mesh, 0.99),
    clientP99After1s: quantile(
      done
        .filter((s) => (s.atMs ?? 0) >= 1000)
        .map((s) => s.clientMs)
        .sort((a, b) => a - b),
      0.99,
    ),
    byGroup,
    tail: {
      byGroup: tailGroups,
      firstSecond: slowest.filter((s) => (s.atMs ?? 0) < 1000).length,
      waitP50: quantile(wait, 0.5),
      runP50: quantile(run, 0.5),
    },
    loadBefore: extra.loadBefore,
    loadAfter: extra.loadAfter,
    ...(extra.cores ? { cores: extra.cores } : {}),
    ...(extra.ewma ? { ewma: extra.ewma } : {}),
    ...(extra.nodeCpuUs ? { nodeCpuUs: extra.nodeCpuUs } : {}),
  };
}

const range = (xs: readonly number[]): string => {
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  return lo === hi ? f(lo) : `${f(lo)}-${f(hi)}`;
};

/**
 * One row per policy: p50 and p99 of each round (client view and the home's
 * record), the slow agents' share of the tasks, how many of the slowest 1% were
 * submitted in the run's first second (a cold node's), and the ratio of its p99
 * to the default's in the same round (above 1: the default is better).
 */
export function twoSpeedTable(runs: readonly RunFigures[], defaultPolicy: string, slowPrefix = 'slow'): string {
  const policies = [...new Set(runs.map((r) => r.policy))];
  const rounds = [...new Set(runs.map((r) => r.round))].sort((a, b) => a - b);
  const def = (round: number) => runs.find((r) => r.policy === defaultPolicy && r.round === round);
  const rows: Cell[][] = policies.map((p) => {
    const mine = rounds.map((round) => runs.find((r) => r.policy === p && r.round === round)).filter((r) => r);
    const rs = mine as RunFigures[];
    const ratios = rs.map((r) => r.clientP99 / (def(r.round)?.clientP99 ?? NaN)).filter((x) => Number.isFinite(x));
    return [
      p === defaultPolicy ? `${p} (default)` : p,
      rs.map((r) => r.clientP50.toFixed(1)).join(' / '),
      rs.map((r) => r.clientP99.toFixed(1)).join(' / '),
      rs.map((r) => r.meshP99.toFixed(0)).join(' / '),
      rs.map((r) => `${((100 * (r.byGroup[slowPrefix] ?? 0)) / Math.max(1, r.completed)).toFixed(1)}%`).join(' / '),
      rs.map((r) => (r.tail ? String(r.tail.firstSecond) : '-')).join(' / '),
      rs.map((r) => `${r.completed}/${r.tasks}`).join(' / '),
      p === defaultPolicy ? '1' : ratios.length > 0 ? range(ratios) : '-',
    ];
  });
  return renderTable(
    [
      'node policy',
      'p50 ms (per round)',
      'p99 ms',
      'home p99 ms',
      'on slow agents',
      'slowest 1% from 1st s',
      'completed',
      'p99 / default p99',
    ],
    rows,
  );
}

/** The verdict of the target: the default's p99 under `limitMs` in every round and no baseline's below it in the same round. */
export function twoSpeedVerdict(
  runs: readonly RunFigures[],
  defaultPolicy: string,
  limitMs = 60,
): { met: boolean; why: string[] } {
  const why: string[] = [];
  for (const d of runs.filter((r) => r.policy === defaultPolicy)) {
    if (!(d.clientP99 < limitMs)) why.push(`round ${d.round}: ${defaultPolicy} p99 ${d.clientP99.toFixed(1)} ms`);
    if (d.completed < d.tasks) why.push(`round ${d.round}: ${defaultPolicy} completed ${d.completed}/${d.tasks}`);
    for (const b of runs.filter((r) => r.round === d.round && r.policy !== defaultPolicy))
      if (b.clientP99 < d.clientP99)
        why.push(`round ${d.round}: ${b.policy} p99 ${b.clientP99.toFixed(1)} ms < ${d.clientP99.toFixed(1)} ms`);
  }
  return { met: why.length === 0, why };
}
