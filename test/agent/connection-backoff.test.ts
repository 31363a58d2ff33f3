// The agent's reconnect backoff across a connect storm (fake timers, a fake
// stream): a node that cuts welcomed streams before their first load (it was
// swamped by hellos) sees those agents come back later and later, spread by
// the full jitter, not within the initial backoff every time; a stream that
// carried a load starts the backoff afresh when it breaks.
import { EventEmitter } from 'node:events';
import { status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Connection, type ConnectionStats } from '../../src/agent/connection.js';
import type { AgentCall } from '../../src/agent/transport.js';
import type { ConnectResponse } from '../../src/gen/meshlb/v1/agent.js';
import pino from 'pino';

const log = pino({ level: 'silent' });

function harness() {
  const opened: number[] = [];
  const cuts: number[] = [];
  let call: EventEmitter & { writes: number } = Object.assign(new EventEmitter(), { writes: 0 });
  const stats: ConnectionStats = {
    connects: 0,
    disconnects: 0,
    messagesSent: 0,
    heartbeatsSent: 0,
    welcomeTimeouts: 0,
    heartbeatIntervalMs: 0,
  };
  const conn = new Connection(
    {
      addresses: ['node:1'],
      backoff: { initialMs: 100, maxMs: 5000 },
      random: () => 0.999, // the top of each jitter range: the cap shows
      maxMessageBytes: 1 << 20,
      welcomeTimeoutMs: 30_000,
      openStream: () => {
        opened.push(Date.now());
        call = Object.assign(new EventEmitter(), { writes: 0 });
        const c = call;
        return Object.assign(c, {
          write: () => (c.writes++, true),
          end: () => undefined,
          cancel: () => undefined,
        }) as unknown as AgentCall;
      },
      logger: () => log,
    },
    stats,
    {
      hello: () => ({
        agentId: 'a',
        kinds: ['k'],
        slots: 1,
        labels: [],
        version: '',
        mesh: '',
        meshId: '',
        nodeCell: '',
        running: [],
      }),
      welcomed: () => undefined,
      message: () => undefined,
      broken: () => undefined,
      writable: () => undefined,
      load: () => ({ inFlight: 0, draining: false }),
    },
  );
  const welcome = (): void => {
    const m: ConnectResponse = {
      msg: {
        $case: 'welcome',
        value: {
          nodeCell: '/n',
          replicaId: 'n-1',
          heartbeatIntervalMs: 1000,
          heartbeatTimeoutMs: 3000,
          maxMessageBytes: 0,
          maxCheckpointBytes: 0,
          takesSpeed: false,
          mesh: '',
          meshId: '',
        },
      },
    };
    call.emit('data', m);
  };
  const cut = (): void =>
    void (
      cuts.push(Date.now()),
      call.emit('status', { code: status.DEADLINE_EXCEEDED, details: 'cut', metadata: null })
    );
  /** Delays from each cut to the next stream opened (ms). */
  const gaps = (): number[] => cuts.map((t, i) => opened[i + 1]! - t);
  return { conn, stats, welcome, cut, gaps, opened };
}

describe('agent reconnects after a connect storm', () => {
  beforeEach(() => void vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => void vi.useRealTimers());

  it('keeps the backoff growing for streams cut before their first load', () => {
    const h = harness();
    h.conn.connect();
    for (let k = 0; k < 5; k++) {
      h.welcome();
      h.cut(); // before its first load (due 1 s after the Welcome)
      vi.advanceTimersByTime(10_000);
    }
    expect(h.stats.connects).toBe(5);
    expect(h.stats.heartbeatsSent).toBe(0);
    // 0.999 of the caps 100, 200, 400, 800, 1,600 (not 99 every time).
    expect(h.gaps()).toEqual([99, 199, 399, 799, 1598]);
    h.conn.close();
  });

  it('starts the backoff afresh once a welcomed stream carried a load', () => {
    const h = harness();
    h.conn.connect();
    for (let k = 0; k < 3; k++) {
      h.welcome();
      h.cut();
      vi.advanceTimersByTime(10_000);
    }
    h.welcome();
    vi.advanceTimersByTime(1000); // its first load
    expect(h.stats.heartbeatsSent).toBe(1);
    h.cut();
    vi.advanceTimersByTime(10_000);
    expect(h.gaps()).toEqual([99, 199, 399, 99]);
    h.conn.close();
  });
});
