// The agents of a process beat on one shared timer (src/agent/heartbeat-wheel.ts):
// a load goes on the first 250 ms tick at or after it is due, so the loads of
// thousands of agents go out in a few turns of the event loop a second, not one
// each (fake timers; seeded phases).
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { seededRandom } from '../../src/agent/index.js';
import { Connection, type ConnectionStats } from '../../src/agent/connection.js';
import { BEAT_TICK_MS, HeartbeatWheel } from '../../src/agent/heartbeat-wheel.js';
import type { AgentCall } from '../../src/agent/transport.js';
import type { ConnectResponse } from '../../src/gen/meshlb/v1/agent.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261207);
const log = pino({ level: 'silent' });

describe('the shared heartbeat wheel', () => {
  beforeEach(() => void vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => void vi.useRealTimers());

  it('beats each every interval on the first tick at or after it is due, never early, without drift', () => {
    const wheel = new HeartbeatWheel();
    const rnd = seededRandom(SEED);
    const interval = 18_000;
    const fired: number[][] = [];
    const firstDue: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const times: number[] = [];
      fired.push(times);
      const first = Math.floor(rnd() * interval);
      firstDue.push(performance.now() + first);
      wheel.start({ beat: () => void times.push(performance.now()) }, interval, first);
    }
    vi.advanceTimersByTime(10 * interval);
    const at = new Set<number>();
    for (const [i, times] of fired.entries()) {
      expect(times.length, `beat ${i} (seed ${SEED})`).toBe(10);
      for (const [k, t] of times.entries()) {
        const due = firstDue[i]! + k * interval;
        expect(t, `beat ${i} load ${k} (seed ${SEED})`).toBeGreaterThanOrEqual(due);
        expect(t - due).toBeLessThanOrEqual(BEAT_TICK_MS);
        at.add(t);
      }
    }
    // 10,000 loads in at most one turn per tick (a timer per agent: about one turn per load).
    expect(at.size).toBeLessThanOrEqual((10 * interval) / BEAT_TICK_MS + 1);
    expect(wheel.size).toBe(1000);
  });

  it('ticks at a quarter of a short interval; a beat stopped or restarted from a beat stands', () => {
    const wheel = new HeartbeatWheel();
    const times: number[] = [];
    const t0 = performance.now();
    const a = { beat: () => void times.push(performance.now() - t0) };
    wheel.start(a, 100, 10);
    vi.advanceTimersByTime(1000);
    expect(times.length).toBe(10);
    for (const [k, t] of times.entries()) expect(t - (10 + k * 100)).toBeLessThanOrEqual(25);
    // One beat stops another due in the same tick, and restarts itself further out.
    const log: string[] = [];
    const c = { beat: () => void log.push('c') };
    const b = {
      beat: () => {
        log.push('b');
        wheel.stop(c);
        wheel.start(b, 1000, 5000);
      },
    };
    wheel.stop(a);
    wheel.start(b, 1000, 1000);
    wheel.start(c, 1000, 1000);
    vi.advanceTimersByTime(1000);
    expect(log).toEqual(['b']);
    vi.advanceTimersByTime(4000);
    expect(log).toEqual(['b']);
    vi.advanceTimersByTime(1000);
    expect(log).toEqual(['b', 'b']);
    wheel.stop(b);
    expect(wheel.size).toBe(0);
  });

  it('sends the loads of 200 agents stretched to 18 s in a turn per tick, not one per load', () => {
    const rnd = seededRandom(SEED);
    const writes: number[] = [];
    const conns: Connection[] = [];
    const stats = (): ConnectionStats => ({
      connects: 0,
      disconnects: 0,
      messagesSent: 0,
      heartbeatsSent: 0,
      welcomeTimeouts: 0,
      heartbeatIntervalMs: 0,
    });
    for (let i = 0; i < 200; i++) {
      const call = Object.assign(new EventEmitter(), {
        write: (m: { msg?: { $case: string } }) => (m.msg?.$case === 'load' && writes.push(performance.now()), true),
        end: () => undefined,
        cancel: () => undefined,
      });
      const conn = new Connection(
        {
          addresses: ['node:1'],
          random: rnd,
          maxMessageBytes: 1 << 20,
          welcomeTimeoutMs: 30_000,
          openStream: () => call as unknown as AgentCall,
          logger: () => log,
        },
        stats(),
        {
          hello: () => ({
            agentId: `a${i}`,
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
      conn.connect();
      const welcome: ConnectResponse = {
        msg: {
          $case: 'welcome',
          value: {
            nodeCell: '/n',
            replicaId: 'n#1',
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
      call.emit('data', welcome);
      // The node holds many agents: it stretches the interval, each agent picks a random phase in it.
      call.emit('data', { msg: { $case: 'heartbeat', value: { intervalMs: 18_000, timeoutMs: 54_000 } } });
      conns.push(conn);
    }
    vi.advanceTimersByTime(36_000);
    for (const c of conns) c.close();
    expect(writes.length).toBeGreaterThanOrEqual(400 - 1);
    // A timer per agent wrote at ~400 distinct moments (seed-dependent); on the wheel, at most one per tick.
    expect(new Set(writes).size).toBeLessThanOrEqual(36_000 / BEAT_TICK_MS + 1);
  });
});
