// The soak's figures: samples per replica process, the least-squares slope of
// a series, and the table printed at the end (one row per sample time, one
// column per replica: resident MB / open fds).

export interface Sample {
  /** Seconds since the load started. */
  readonly t: number;
  readonly rssMb: number;
  readonly fds: number;
}

export interface ProcessFigures {
  /** cell#replica */
  readonly name: string;
  readonly samples: readonly Sample[];
  /** Least-squares slope after the warm-up. */
  readonly rssSlopeMbPerMin: number;
  readonly fdsSlopePerMin: number;
}

/** The least-squares slope of y over x (0 with fewer than two distinct x). */
export function fitSlope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** Text table: a header of replica names, a row per sample time ("*" marks warm-up rows), the slopes last. */
export function formatSamples(processes: readonly ProcessFigures[], warmupSec: number): string[] {
  const width = Math.max(12, ...processes.map((p) => p.name.length + 1));
  const cell = (s: string) => s.padStart(width);
  const times = [...new Set(processes.flatMap((p) => p.samples.map((s) => s.t)))].sort((a, b) => a - b);
  const lines = [`${'t (s)'.padStart(7)} ${processes.map((p) => cell(p.name)).join('')}`];
  lines.push(`${''.padStart(7)} ${processes.map(() => cell('RSS MB/fds')).join('')}`);
  for (const t of times) {
    const row = processes.map((p) => {
      const s = p.samples.find((x) => x.t === t);
      return cell(s ? `${s.rssMb.toFixed(1)}/${s.fds}` : '-');
    });
    lines.push(`${`${t}${t < warmupSec ? '*' : ''}`.padStart(7)} ${row.join('')}`);
  }
  lines.push(`${'MB/min'.padStart(7)} ${processes.map((p) => cell(p.rssSlopeMbPerMin.toFixed(2))).join('')}`);
  lines.push(`${'fds/min'.padStart(7)} ${processes.map((p) => cell(p.fdsSlopePerMin.toFixed(2))).join('')}`);
  return lines;
}
