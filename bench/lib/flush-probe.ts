// BENCH_FLUSH=1: per link kind of a cell process, how long a written message's first item waited in the
// link's batcher (push to flush: a linger or a deferral) and how long its write took (flush to the write's
// callback: the HTTP/2 send), as histograms (batcher.ts calls LinkMeter.flushed only when a meter has it).
import type { CellMeter, LinkKind, LinkMeter, MeterFactory } from '../../src/mesh/meter.js';
import { LatencyHistogram, type LatencySummary } from './histogram.js';

const KINDS: readonly LinkKind[] = ['parent', 'child', 'agent'];

interface Probe {
  wait: LatencyHistogram;
  write: LatencyHistogram;
}

export class FlushProbe {
  private probes = new Map<LinkKind, Probe>();

  /** A meter factory for the cells of this process: counts nothing else. */
  readonly meter: MeterFactory = (): CellMeter => {
    const link = (kind: LinkKind): LinkMeter => ({
      sent: () => undefined,
      received: () => undefined,
      flushed: (waitMs, writeMs) => {
        const p = this.probe(kind);
        p.wait.recordMs(waitMs);
        p.write.recordMs(writeMs);
      },
    });
    return {
      parent: link('parent'),
      child: link('child'),
      agent: link('agent'),
      resultBack: () => undefined,
      rejected: () => undefined,
      close: () => undefined,
    };
  };

  private probe(kind: LinkKind): Probe {
    let p = this.probes.get(kind);
    if (!p) this.probes.set(kind, (p = { wait: new LatencyHistogram(), write: new LatencyHistogram() }));
    return p;
  }

  reset(): void {
    this.probes = new Map();
  }

  /** Per link kind that wrote since the reset (parent: up, results; child: down, dispatches; agent). */
  summary(): Record<string, { wait: LatencySummary; write: LatencySummary }> {
    const out: Record<string, { wait: LatencySummary; write: LatencySummary }> = {};
    for (const k of KINDS) {
      const p = this.probes.get(k);
      if (p) out[k] = { wait: p.wait.summary(), write: p.write.summary() };
    }
    return out;
  }
}
