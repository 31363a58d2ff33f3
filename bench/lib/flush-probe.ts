// BENCH_FLUSH=1: per link kind of a cell process, how long a written message's first item waited in the
// link's batcher (push to flush: a linger or a deferral) and how long its write took (flush to the write's
// callback: the HTTP/2 send), as histograms (batcher.ts calls LinkMeter.flushed only when a meter has it).
import type { CellMeter, LinkKind, LinkMeter, MeterFactory } from '../../src/mesh/meter.js';
import { LatencyHistogram, type LatencySummary } from './histogram.js';

const KINDS: readonly LinkKind[] = ['parent', 'child', 'agent'];

interface Probe {
  wait: LatencyHistogram;
  write: LatencyHistogram;
  /** Deferred flushes only: deferral to run. */
  turn: LatencyHistogram;
  /** Flushes the linger timer ran. */
  lingered: number;
}

export interface FlushSummary {
  /** Per message: its flush's first item, push to flush. */
  wait: LatencySummary;
  /** Per message: flush to the write's callback. */
  write: LatencySummary;
  /** Per message of a deferred flush: deferral to flush (the turn it waited behind). */
  turn: LatencySummary;
  /** Messages of flushes the linger timer ran. */
  lingered: number;
}

export class FlushProbe {
  private probes = new Map<LinkKind, Probe>();

  /** A meter factory for the cells of this process: counts nothing else. */
  readonly meter: MeterFactory = (): CellMeter => {
    const link = (kind: LinkKind): LinkMeter => ({
      sent: () => undefined,
      received: () => undefined,
      flushed: (waitMs, writeMs, turnMs) => {
        const p = this.probe(kind);
        p.wait.recordMs(waitMs);
        p.write.recordMs(writeMs);
        if (turnMs === turnMs) p.turn.recordMs(turnMs);
        else p.lingered++;
      },
    });
    return {
      parent: link('parent'),
      child: link('child'),
      agent: link('agent'),
      resultBack: () => undefined,
      rejected: () => undefined,
      streamEnded: () => undefined,
      close: () => undefined,
    };
  };

  private probe(kind: LinkKind): Probe {
    let p = this.probes.get(kind);
    if (!p) {
      p = { wait: new LatencyHistogram(), write: new LatencyHistogram(), turn: new LatencyHistogram(), lingered: 0 };
      this.probes.set(kind, p);
    }
    return p;
  }

  reset(): void {
    this.probes = new Map();
  }

  /** Per link kind that wrote since the reset (parent: up, results; child: down, dispatches; agent). */
  summary(): Record<string, FlushSummary> {
    const out: Record<string, FlushSummary> = {};
    for (const k of KINDS) {
      const p = this.probes.get(k);
      if (p)
        out[k] = { wait: p.wait.summary(), write: p.write.summary(), turn: p.turn.summary(), lingered: p.lingered };
    }
    return out;
  }
}
