// The paced sweep's table and chart (bench/lib/sweep.ts, bench/lib/chart.ts): pure functions of the points.
import { describe, expect, it } from 'vitest';
import { logLogChart } from '../../bench/lib/chart.js';
import { NO_LAT, NO_PACED } from '../../bench/lib/phases.js';
import { pointSeconds, sweepChart, sweepTable, type SweepPoint } from '../../bench/lib/sweep.js';

const point = (rate: number, p99Ms: number, why = 'fixed'): SweepPoint => ({
  ...NO_PACED,
  rate,
  mode: 'batch',
  tasks: rate,
  completed: rate,
  submitToResult: { ...NO_LAT, count: rate, p50Ms: p99Ms / 4, p99Ms, p999Ms: p99Ms * 2 },
  dispatch: { ...NO_LAT, count: rate, p99Ms: p99Ms / 2 },
  cpuUsPerTask: 1000 / rate,
  cpuUsPerTaskByProcess: { client: 1, 'cell /': 2, 'cell /r': 4 },
  wakeupsPerTask: { 'cell /': 1, 'cell /r': 2, agents: 9 },
  messagesPerTask: { 'cell /': 0.5, 'cell /r': 1.5 },
  why,
});

describe('paced sweep output', () => {
  it('a point runs long enough for its p99.9 and no longer than the bound', () => {
    expect(pointSeconds(100, false)).toBe(10);
    expect(pointSeconds(500, false)).toBe(3);
    expect(pointSeconds(100, true)).toBe(5);
    expect(pointSeconds(8000, true)).toBe(2);
  });

  it('the table has a row per point, marks half of peak and averages the cells only', () => {
    const t = sweepTable([point(100, 4), point(1500, 9, 'half of peak')]);
    const lines = t.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[3]).toContain('1500 (½ peak)');
    // Per cell: mean of 'cell /' and 'cell /r' (3.00), wakeups 1.50 (agents left out), messages 1.00.
    expect(lines[2]).toMatch(/3\.00\s+1\.50\s+1\.00$/);
  });

  it('the chart draws a line per series through the points it can place on log axes', () => {
    const svg = sweepChart([point(100, 4), point(500, 6), point(2000, 20)], 'a <title>');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('a &lt;title&gt;');
    expect(svg.match(/<polyline/g)).toHaveLength(4);
    expect(svg.match(/<circle/g)).toHaveLength(12);
  });

  it('a value that is not positive and finite is left out of its line', () => {
    const svg = logLogChart(
      [
        {
          name: 's',
          color: '#000',
          points: [
            [1, 1],
            [10, Number.NaN],
            [100, 0],
            [1000, 10],
          ],
        },
      ],
      { title: 't', xLabel: 'x', yLabel: 'y' },
    );
    expect(svg.match(/<circle/g)).toHaveLength(2);
    expect(svg).not.toContain('NaN');
    expect(logLogChart([], { title: 'empty', xLabel: 'x', yLabel: 'y' })).toContain('no data');
  });
});
