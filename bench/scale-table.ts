// Pure helpers of bench:scale: splitting agents over processes, ratios against
// the reference (smallest) run.

/** `n` agents in chunks of at most `per` (the last one smaller): [5000, 5000, 2000] for 12,000 by 5,000. */
export function splitAgents(n: number, per: number): number[] {
  if (!(n > 0) || !(per > 0)) return [];
  const out: number[] = [];
  for (let left = n; left > 0; left -= per) out.push(Math.min(per, left));
  return out;
}

export interface Scaled {
  rssIdleMiB: number;
  nodeCpuUsPerTask: number;
  idleCoresNode: number;
  load: { tasksPerSecond: number; submitToResult: { p99Ms: number } };
}

const x = (a: number, b: number): number | string =>
  Number.isFinite(a) && Number.isFinite(b) && b > 0 ? Math.round((a / b) * 100) / 100 : '-';

/** RSS, idle node CPU, tasks/s, p99 and node CPU per task of `r` as multiples of `ref`'s. */
export function ratioRow(r: Scaled, ref: Scaled): (number | string)[] {
  return [
    x(r.rssIdleMiB, ref.rssIdleMiB),
    x(r.idleCoresNode, ref.idleCoresNode),
    x(r.load.tasksPerSecond, ref.load.tasksPerSecond),
    x(r.load.submitToResult.p99Ms, ref.load.submitToResult.p99Ms),
    x(r.nodeCpuUsPerTask, ref.nodeCpuUsPerTask),
  ];
}
