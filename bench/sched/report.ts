// bench:sched output: the table (each run as ratios to the default run of the
// same scenario, measured in the same process) and a hand-written SVG chart:
// per scenario and varied tier (the first variant), completion-time CDFs (log time, "nines" up the
// y axis so the tail shows) and each policy's mean utilization with its
// spread across agents.

import { renderTable, type Cell } from '../lib/table.js';
import type { ForecastError } from './forecast.js';
import type { RunMetrics } from './metrics.js';
import type { PolicyByTier, SimTier } from './types.js';

export interface RunRecord {
  readonly scenario: string;
  /** 0 for the scenario as written; n > 0 redraws its seeded parts. */
  readonly variant: number;
  /** The tier whose policy differs from the defaults ('default': none). */
  readonly tier: SimTier | 'default';
  readonly policy: string;
  readonly policies: PolicyByTier;
  readonly wallMs: number;
  readonly metrics: RunMetrics;
}

const pct = (x: number | null): string => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Per (tier, policy) of one scenario: its runs in variant order, and the default run of each variant. */
function groups(runs: readonly RunRecord[]): { key: RunRecord; runs: RunRecord[]; bases: RunMetrics[] }[] {
  const base = new Map<number, RunMetrics>();
  for (const r of runs) if (r.tier === 'default') base.set(r.variant, r.metrics);
  const out = new Map<string, { key: RunRecord; runs: RunRecord[]; bases: RunMetrics[] }>();
  for (const r of runs) {
    const k = `${r.tier}\0${r.policy}`;
    let g = out.get(k);
    if (!g) out.set(k, (g = { key: r, runs: [], bases: [] }));
    g.runs.push(r);
    g.bases.push(base.get(r.variant)!);
  }
  return [...out.values()];
}

/** Mean over variants of each run's ratio to the default run of the same variant (the same tasks). */
export function meanRatio(g: { runs: RunRecord[]; bases: RunMetrics[] }, f: (m: RunMetrics) => number): number {
  return mean(g.runs.map((r, i) => f(r.metrics) / f(g.bases[i]!)));
}

/**
 * One table per scenario: the default first, then every other policy per
 * tier; "x" columns are ratios to the default run of the same tasks (below 1:
 * better than the default for times, worse for throughput), averaged over
 * variants; the rest are means of the values.
 */
export function renderScenarioTable(runs: readonly RunRecord[]): string {
  const variants = new Set(runs.map((r) => r.variant)).size;
  const header = [
    'run',
    'p99 ms',
    'p50 x',
    'p99 x',
    'p99.9 x',
    'thr x',
    'util',
    'util cv',
    'share err',
    'inv>aging',
    'misses',
    'load max/mean',
    'sum/task',
  ];
  if (variants > 1) header.splice(4, 0, 'p99 x range');
  const rows: Cell[][] = groups(runs).map((g) => {
    const ms = g.runs.map((r) => r.metrics);
    const probes = ms.filter((m) => m.probes.length).map((m) => m.probes[Math.floor(m.probes.length / 2)]!.maxOverMean);
    const shares = ms.map((m) => m.tenantShareError).filter((x): x is number => x !== null);
    const p99s = g.runs.map((r, i) => r.metrics.p99Ms / g.bases[i]!.p99Ms);
    const row: Cell[] = [
      g.key.tier === 'default' ? `default (${g.key.policy})` : `${g.key.tier}: ${g.key.policy}`,
      mean(ms.map((m) => m.p99Ms)),
      meanRatio(g, (m) => m.p50Ms),
      meanRatio(g, (m) => m.p99Ms),
      meanRatio(g, (m) => m.p999Ms),
      meanRatio(g, (m) => m.throughput),
      mean(ms.map((m) => m.utilizationMean)),
      mean(ms.map((m) => m.utilizationCv)),
      shares.length ? pct(mean(shares)) : '-',
      mean(ms.map((m) => m.inversionsBeyondAging)),
      mean(ms.map((m) => m.deadlineMisses)),
      probes.length ? mean(probes).toFixed(2) : '-',
      mean(ms.map((m) => m.summariesPerTask)).toFixed(2),
    ];
    if (variants > 1) row.splice(4, 0, `${Math.min(...p99s).toFixed(2)}-${Math.max(...p99s).toFixed(2)}`);
    return row;
  });
  return renderTable(header, rows);
}

const COLORS = ['#1b1b1b', '#d62728', '#1f77b4', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const W = 460;
const H = 230;
const PAD = { l: 52, r: 12, t: 26, b: 34 };

/** CDF panel: x = completion time (log), y = nines (-log10(1-p)) up to 3 (p99.9). */
function cdfPanel(title: string, runs: readonly RunRecord[], colorOf: (r: RunRecord) => string): string {
  let lo = Infinity;
  let hi = 0;
  for (const r of runs) {
    for (const [, ms] of r.metrics.cdf) {
      if (ms > 0 && ms < lo) lo = ms;
      if (ms > hi) hi = ms;
    }
  }
  if (!(hi > 0)) return '';
  const lx0 = Math.floor(Math.log10(lo));
  const lx1 = Math.ceil(Math.log10(hi));
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const x = (ms: number): number => PAD.l + ((Math.log10(Math.max(ms, lo)) - lx0) / Math.max(1, lx1 - lx0)) * iw;
  const y = (p: number): number => PAD.t + ih - (Math.min(3, -Math.log10(Math.max(1e-9, 1 - p))) / 3) * ih;
  const out: string[] = [`<text x="${PAD.l}" y="16" font-size="12" font-weight="bold">${esc(title)}</text>`];
  for (let e = lx0; e <= lx1; e++) {
    const xv = x(10 ** e);
    out.push(`<line x1="${xv}" y1="${PAD.t}" x2="${xv}" y2="${PAD.t + ih}" stroke="#ddd"/>`);
    out.push(`<text x="${xv}" y="${H - 18}" font-size="10" text-anchor="middle">${fmtMs(10 ** e)}</text>`);
  }
  for (const [p, label] of [
    [0, '0'],
    [0.9, 'p90'],
    [0.99, 'p99'],
    [0.999, 'p99.9'],
  ] as const) {
    out.push(`<line x1="${PAD.l}" y1="${y(p)}" x2="${PAD.l + iw}" y2="${y(p)}" stroke="#ddd"/>`);
    out.push(`<text x="${PAD.l - 4}" y="${y(p) + 3}" font-size="10" text-anchor="end">${label}</text>`);
  }
  out.push(`<text x="${PAD.l + iw / 2}" y="${H - 4}" font-size="10" text-anchor="middle">completion time</text>`);
  for (const r of runs) {
    const pts = r.metrics.cdf
      .filter(([, ms]) => Number.isFinite(ms))
      .map(([p, ms]) => `${x(ms).toFixed(1)},${y(p).toFixed(1)}`);
    const bold = r.tier === 'default';
    out.push(
      `<polyline fill="none" stroke="${colorOf(r)}" stroke-width="${bold ? 2.5 : 1.2}" points="${pts.join(' ')}"/>`,
    );
  }
  return out.join('');
}

/** Utilization panel: per run a bar of the mean and a whisker of ±1 std across agents. */
function utilPanel(runs: readonly RunRecord[], colorOf: (r: RunRecord) => string): string {
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const bw = iw / Math.max(1, runs.length);
  const y = (u: number): number => PAD.t + ih - Math.max(0, Math.min(1, u)) * ih;
  const out: string[] = [`<text x="${PAD.l}" y="16" font-size="12">utilization per agent (mean, ±1 std)</text>`];
  for (const u of [0, 0.5, 1]) {
    out.push(`<line x1="${PAD.l}" y1="${y(u)}" x2="${PAD.l + iw}" y2="${y(u)}" stroke="#ddd"/>`);
    out.push(`<text x="${PAD.l - 4}" y="${y(u) + 3}" font-size="10" text-anchor="end">${u}</text>`);
  }
  runs.forEach((r, i) => {
    const m = r.metrics;
    const sd = m.utilizationCv * m.utilizationMean;
    const x0 = PAD.l + i * bw + bw * 0.15;
    const cx = x0 + bw * 0.35;
    out.push(
      `<rect x="${x0}" y="${y(m.utilizationMean)}" width="${bw * 0.7}" height="${y(0) - y(m.utilizationMean)}" fill="${colorOf(r)}" opacity="0.75"/>`,
    );
    out.push(
      `<line x1="${cx}" y1="${y(m.utilizationMean - sd)}" x2="${cx}" y2="${y(m.utilizationMean + sd)}" stroke="#000"/>`,
    );
    out.push(
      `<text x="${cx}" y="${H - 20}" font-size="9" text-anchor="end" transform="rotate(-35 ${cx} ${H - 20})">${esc(r.policy)}</text>`,
    );
  });
  return out.join('');
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`;
}

/** The whole chart: one row per (scenario, varied tier), CDFs left, utilization right. */
export function renderSvg(runs: readonly RunRecord[], policyNames: readonly string[]): string {
  const colorOf = (r: RunRecord): string => COLORS[policyNames.indexOf(r.policy) + 1] ?? '#000';
  const rows: { title: string; runs: RunRecord[] }[] = [];
  runs = runs.filter((r) => r.variant === 0);
  for (const sc of [...new Set(runs.map((r) => r.scenario))]) {
    const mine = runs.filter((r) => r.scenario === sc);
    const def = mine.find((r) => r.tier === 'default')!;
    for (const tier of [...new Set(mine.filter((r) => r.tier !== 'default').map((r) => r.tier))]) {
      const set = [def, ...mine.filter((r) => r.tier === tier)].sort(
        (a, b) => policyNames.indexOf(a.policy) - policyNames.indexOf(b.policy),
      );
      rows.push({ title: `${sc}: ${tier} tier policies (default bold)`, runs: set });
    }
  }
  const legendH = 30;
  const height = legendH + rows.length * H;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
  ];
  policyNames.forEach((p, i) => {
    const lx = 10 + i * ((2 * W - 20) / policyNames.length);
    parts.push(`<rect x="${lx}" y="10" width="12" height="12" fill="${COLORS[i + 1]}"/>`);
    parts.push(`<text x="${lx + 16}" y="20" font-size="11">${esc(p)}</text>`);
  });
  rows.forEach((row, i) => {
    const y0 = legendH + i * H;
    parts.push(`<g transform="translate(0 ${y0})">${cdfPanel(row.title, row.runs, colorOf)}</g>`);
    parts.push(`<g transform="translate(${W} ${y0})">${utilPanel(row.runs, colorOf)}</g>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Per scenario (means over seeds): sMAPE and MAPE of the forecaster and of the naive forecast, and their ratio. */
export function renderForecastTable(rows: readonly ForecastError[]): string {
  const by = new Map<string, ForecastError[]>();
  for (const r of rows) by.set(r.scenario, [...(by.get(r.scenario) ?? []), r]);
  const out: Cell[][] = [];
  for (const [scenario, rs] of by) {
    const m = (f: (r: ForecastError) => number): number => mean(rs.map(f));
    const holt = m((r) => r.holt.smape);
    const naive = m((r) => r.naive.smape);
    out.push([
      scenario,
      m((r) => r.meanRate),
      pct(holt),
      pct(naive),
      naive > 0 ? holt / naive : 1,
      pct(m((r) => r.holt.mape)),
      pct(m((r) => r.naive.mape)),
    ]);
  }
  return renderTable(
    ['scenario', 'tasks/s', 'sMAPE holt', 'sMAPE naive', 'holt/naive', 'MAPE holt', 'MAPE naive'],
    out,
  );
}
