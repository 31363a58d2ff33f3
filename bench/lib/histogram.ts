// Latency histograms for benchmarks (HdrHistogram, microsecond resolution).
import * as hdr from 'hdr-histogram-js';

export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
}

export class LatencyHistogram {
  private readonly h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });

  /** Record one latency in microseconds. */
  recordUs(us: number): void {
    this.h.recordValue(Math.max(1, Math.round(us)));
  }

  recordMs(ms: number): void {
    this.recordUs(ms * 1000);
  }

  summary(): LatencySummary {
    const ms = (us: number) => Math.round(us) / 1000;
    return {
      count: this.h.totalCount,
      p50Ms: ms(this.h.getValueAtPercentile(50)),
      p90Ms: ms(this.h.getValueAtPercentile(90)),
      p99Ms: ms(this.h.getValueAtPercentile(99)),
      p999Ms: ms(this.h.getValueAtPercentile(99.9)),
      maxMs: ms(this.h.maxValue),
      meanMs: ms(this.h.mean),
    };
  }
}
