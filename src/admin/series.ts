// Counters and histograms for hot paths. prom-client's own inc() and
// observe() hash the label values into a string on every call (and observe()
// makes a closure), which per task and per link message is more than the
// count is worth. Here a labelled series is a small handle made once (per
// cell, per link kind); counting into it is a few additions, no allocation.
// The registry renders these like its own metrics: it asks a metric only for
// its name, help, type and values (get) and resets it (reset).
import type { Metric, Registry } from 'prom-client';

type Labels = Readonly<Record<string, string>>;

interface Value {
  readonly labels: Labels;
  readonly value: number;
  readonly metricName?: string;
}

export interface CounterSeries {
  inc(n?: number): void;
}

export interface HistogramSeries {
  observe(v: number): void;
}

/** Series by their label values (one series per label set, however often asked for). */
abstract class SeriesMetric<S> {
  readonly aggregator = 'sum';
  protected readonly byKey = new Map<string, S>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    registers: readonly Registry[],
  ) {
    for (const r of registers) r.registerMetric(this as unknown as Metric);
  }

  protected key(labels: Labels): string {
    for (const n of this.labelNames) if (labels[n] === undefined) throw new Error(`${this.name}: label ${n} missing`);
    return this.labelNames.map((n) => labels[n]).join('\u0000');
  }

  /** Back to zero (the registry's resetMetrics); the series and their handles stay. */
  reset(): void {
    for (const s of this.byKey.values()) this.zero(s);
  }

  protected abstract zero(s: S): void;
}

class CounterCell implements CounterSeries {
  value = 0;
  constructor(readonly labels: Labels) {}
  inc(n = 1): void {
    this.value += n;
  }
}

export class SeriesCounter extends SeriesMetric<CounterCell> {
  readonly type = 'counter';

  /** The series with these labels, made on first use; shown from then on (at 0 until counted). */
  series(labels: Labels): CounterSeries {
    const k = this.key(labels);
    let s = this.byKey.get(k);
    if (!s) this.byKey.set(k, (s = new CounterCell(labels)));
    return s;
  }

  protected zero(s: CounterCell): void {
    s.value = 0;
  }

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
    const values = [...this.byKey.values()].map((s) => ({ labels: s.labels, value: s.value }));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}

class HistogramCell implements HistogramSeries {
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last slot: above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(v: number): void {
    if (!Number.isFinite(v)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

export class SeriesHistogram extends SeriesMetric<HistogramCell> {
  readonly type = 'histogram';

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    /** Upper bounds, ascending; +Inf is added. */
    readonly buckets: readonly number[],
    registers: readonly Registry[],
  ) {
    super(name, help, labelNames, registers);
  }

  series(labels: Labels): HistogramSeries {
    const k = this.key(labels);
    let s = this.byKey.get(k);
    if (!s) this.byKey.set(k, (s = new HistogramCell(labels, this.buckets)));
    return s;
  }

  protected zero(s: HistogramCell): void {
    s.counts.fill(0);
    s.sum = 0;
    s.count = 0;
  }

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.byKey.values()) {
      let acc = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { ...s.labels, le: String(this.buckets[i]) }, value: acc, metricName: bucket });
      }
      values.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: bucket });
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}
