// A small SVG line chart for benchmark results (latency against offered rate):
// log-scale axes, one polyline per series, no dependencies. A point whose
// value is not a positive finite number is left out of its line.

export interface Series {
  readonly name: string;
  readonly color: string;
  /** [x, y] pairs, x ascending. */
  readonly points: readonly (readonly [number, number])[];
}

export interface ChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly width?: number;
  readonly height?: number;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const ok = (v: number): boolean => Number.isFinite(v) && v > 0;

/** Powers of ten and their 2x and 5x between lo and hi, for log axes. */
function ticks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  return out;
}

const label = (v: number): string => (v >= 1000 ? `${v / 1000}k` : String(v));

export function logLogChart(series: readonly Series[], o: ChartOptions): string {
  const W = o.width ?? 720;
  const H = o.height ?? 440;
  const pad = { l: 70, r: 150, t: 40, b: 55 };
  const xs = series.flatMap((s) => s.points.map((p) => p[0])).filter(ok);
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter(ok);
  if (xs.length === 0 || ys.length === 0)
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="60"><text x="10" y="30">${esc(o.title)}: no data</text></svg>\n`;
  const x0 = 10 ** Math.floor(Math.log10(Math.min(...xs)));
  const x1 = 10 ** Math.ceil(Math.log10(Math.max(...xs)));
  const y0 = 10 ** Math.floor(Math.log10(Math.min(...ys)));
  const y1 = 10 ** Math.ceil(Math.log10(Math.max(...ys)));
  const px = (x: number): number =>
    pad.l + ((Math.log10(x) - Math.log10(x0)) / Math.log10(x1 / x0)) * (W - pad.l - pad.r);
  const py = (y: number): number =>
    H - pad.b - ((Math.log10(y) - Math.log10(y0)) / Math.log10(y1 / y0)) * (H - pad.t - pad.b);
  const f = (n: number): string => n.toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(o.title)}</text>`,
  ];
  for (const t of ticks(x0, x1))
    out.push(
      `<line x1="${f(px(t))}" y1="${pad.t}" x2="${f(px(t))}" y2="${H - pad.b}" stroke="#ddd"/>`,
      `<text x="${f(px(t))}" y="${H - pad.b + 16}" text-anchor="middle">${label(t)}</text>`,
    );
  for (const t of ticks(y0, y1))
    out.push(
      `<line x1="${pad.l}" y1="${f(py(t))}" x2="${W - pad.r}" y2="${f(py(t))}" stroke="#ddd"/>`,
      `<text x="${pad.l - 6}" y="${f(py(t) + 4)}" text-anchor="end">${t}</text>`,
    );
  out.push(
    `<rect x="${pad.l}" y="${pad.t}" width="${W - pad.l - pad.r}" height="${H - pad.t - pad.b}" fill="none" stroke="#333"/>`,
    `<text x="${(pad.l + W - pad.r) / 2}" y="${H - 14}" text-anchor="middle">${esc(o.xLabel)}</text>`,
    `<text transform="translate(18 ${(pad.t + H - pad.b) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => ok(p[0]) && ok(p[1]));
    if (pts.length > 1)
      out.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.map((p) => `${f(px(p[0]))},${f(py(p[1]))}`).join(' ')}"/>`,
      );
    for (const p of pts) out.push(`<circle cx="${f(px(p[0]))}" cy="${f(py(p[1]))}" r="3" fill="${s.color}"/>`);
    const ly = pad.t + 10 + i * 20;
    out.push(
      `<line x1="${W - pad.r + 12}" y1="${ly}" x2="${W - pad.r + 32}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`,
      `<text x="${W - pad.r + 38}" y="${ly + 4}">${esc(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
