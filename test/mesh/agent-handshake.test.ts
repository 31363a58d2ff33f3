// A connect storm at a node replica, on virtual time: many agent streams
// arrive at once and their hellos and first loads come late (the agents'
// processes are short of CPU). The node waits longer for streams in their
// handshake — the more of them there are, the longer (agent-handshake.ts) —
// instead of cutting them and making them reconnect into the same storm.
// Once an agent has spoken after its hello, its plain heartbeat timeout holds
// again, and an agent that never speaks is still found dead.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { ConnectRequest, type ConnectResponse } from '../../src/gen/meshlb/v1/agent.js';
import { helloDeadlineMs, silenceLimitMs, stormGraceMs, STORM_MS_PER_STREAM } from '../../src/mesh/agent-handshake.js';
import { AgentSessions } from '../../src/mesh/agent-sessions.js';
import { Cell } from '../../src/mesh/cell.js';
import { meshOf } from '../../src/mesh/mesh-identity.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { parseTopology } from '../../src/topology/parse.js';

const HB = { intervalMs: 1000, timeoutMs: 3000 };

describe('handshake deadlines', () => {
  it('stretch with the streams in their handshake, within a bound', () => {
    expect(stormGraceMs(0)).toBe(0);
    expect(stormGraceMs(500)).toBe(500 * STORM_MS_PER_STREAM);
    expect(stormGraceMs(10_000_000)).toBe(30_000);
    expect(helloDeadlineMs(3000, 0)).toBe(3000);
    expect(helloDeadlineMs(3000, 1000)).toBe(3000 + 1000 * STORM_MS_PER_STREAM);
    // Before its first load: one interval more, and the storm's grace; after: the plain timeout.
    expect(silenceLimitMs(HB, false, 0)).toBe(4000);
    expect(silenceLimitMs(HB, false, 1000)).toBe(4000 + 1000 * STORM_MS_PER_STREAM);
    expect(silenceLimitMs(HB, true, 1000)).toBe(3000);
  });
});

/**
 * A node cell on virtual time with AgentSessions, and agent streams as objects that record how they ended.
 * Unstarted (`start` false), no tick sweeps: the test calls `sessions.sweep` itself, late when it likes.
 */
function node(start = true) {
  const topo = parseTopology(chainTopologyYaml({ name: 'storm', nodes: ['n'], basePort: 7950 }));
  const spec = topo.byPath.get('/r/z/n')!;
  const vs = new VirtualScheduler(1_000_000);
  const cell = new Cell(topo, spec, 1, {
    scheduler: vs,
    seed: 1,
    log: pino({ level: 'silent' }),
    heartbeatIntervalMs: HB.intervalMs,
    heartbeatTimeoutMs: HB.timeoutMs,
  });
  const sessions = new AgentSessions(cell, meshOf(topo));
  cell.attach({ agents: sessions });
  if (start) cell.start();
  const ended = new Map<number, string>();
  const calls: EventEmitter[] = [];
  const open = (i: number): void => {
    const call = new EventEmitter() as EventEmitter & Record<string, unknown>;
    call.write = (_m: ConnectResponse, cb?: () => void) => (cb?.(), true);
    call.end = () => undefined;
    call.getPeer = () => `agent-${i}`;
    call.on('error', (e: { details?: string; message?: string }) => ended.set(i, e.details ?? e.message ?? ''));
    calls[i] = call;
    sessions.connect(call as never);
  };
  const send = (i: number, msg: ConnectRequest['msg']): void => void calls[i]!.emit('data', { msg });
  const hello = (i: number): void =>
    send(i, {
      $case: 'hello',
      value: {
        agentId: `a${i}`,
        kinds: ['k'],
        slots: 1,
        labels: [],
        version: '',
        mesh: topo.name,
        meshId: meshOf(topo).id,
        nodeCell: spec.path,
        running: [],
      },
    });
  const load = (i: number): void =>
    send(i, { $case: 'load', value: { cpu: 0, memory: 0, gpu: 0, inFlight: 0, draining: false } });
  /** Move virtual time by `ms` in steps of 50 ms (the cell's tick runs the sweeps). */
  const wait = (ms: number): void => {
    for (let t = 0; t < ms; t += 50) vs.advance(50);
  };
  return { sessions, ended, open, hello, load, wait, vs };
}

describe('a connect storm at a node replica (virtual time)', () => {
  it('keeps welcomed agents whose first load comes past the plain timeout, and judges them plainly after it', () => {
    const n = node();
    const N = 400; // 400 in their handshake: 800 ms more
    for (let i = 0; i < N; i++) {
      n.open(i);
      n.hello(i);
    }
    expect(n.sessions.byId.size).toBe(N);
    // Silent for 3.5 s after the Welcome: past the 3 s timeout (the node used to cut them all here),
    // within timeout + interval + the storm's grace.
    n.wait(3500);
    expect(n.ended.size, [...n.ended.values()][0]).toBe(0);
    for (let i = 0; i < N; i++) n.load(i);
    // Spoken once: from now on the plain timeout. Half of them keep beating, half fall silent.
    for (let k = 0; k < 5; k++) {
      n.wait(1000);
      for (let i = 0; i < N / 2; i++) n.load(i);
    }
    expect(n.ended.size).toBe(N / 2);
    expect([...n.ended.keys()].every((i) => i >= N / 2)).toBe(true);
    expect([...n.ended.values()][0]).toMatch(/missed heartbeats for 3000 ms/);
    expect(n.sessions.byId.size).toBe(N / 2);
  });

  it('still finds an agent that never speaks after its hello dead, once the storm has passed', () => {
    const n = node();
    n.open(0);
    n.hello(0);
    n.wait(3900);
    expect(n.ended.has(0)).toBe(false); // one interval more for its first load
    n.wait(400);
    expect(n.ended.get(0)).toMatch(/missed heartbeats for 4000 ms/);
    expect(n.sessions.byId.size).toBe(0);
  });

  it('waits longer for hellos when many streams wait for theirs', () => {
    const n = node();
    const N = 600; // 600 waiting: 1.2 s more
    for (let i = 0; i < N; i++) n.open(i);
    n.wait(3600);
    expect(n.ended.size).toBe(0); // the plain deadline (3 s) would have cut every one
    for (let i = 0; i < N - 1; i++) n.hello(i);
    expect(n.sessions.byId.size).toBe(N - 1);
    for (let i = 0; i < N - 1; i++) n.load(i);
    // The last one never says hello: once the others are through, its deadline is the plain one again.
    n.wait(500);
    expect([...n.ended.keys()]).toEqual([N - 1]);
    expect(n.ended.get(N - 1)).toMatch(/no hello within 3000 ms/);
  });
});

describe('a node whose own sweeps come late (virtual time, sweeps called by hand)', () => {
  /** Agents 0 and 1 welcomed and heard at the start; returns the node and that time. */
  const twoHeard = () => {
    const n = node(false);
    for (const i of [0, 1]) {
      n.open(i);
      n.hello(i);
      n.load(i);
    }
    const t0 = n.vs.now();
    n.sessions.sweep(t0);
    return { n, t0 };
  };
  /** Sweeps on time (a tick every 10 ms) from `from` to `to`; agent 0 sends a load every interval. */
  const onTime = (n: ReturnType<typeof node>, from: number, to: number): void => {
    for (let t = from + 10; t <= to; t += 10) {
      n.vs.advanceTo(t);
      n.sessions.sweep(t);
      if ((t - from) % HB.intervalMs === 0) n.load(0);
    }
  };

  it('counts silence from a stall, not from before it: a load that waits a loop turn more is not a death', () => {
    const { n, t0 } = twoHeard();
    // Stalled for 5 s (past the 3 s timeout): the late sweep judges nobody.
    n.vs.advanceTo(t0 + 5000);
    n.sessions.sweep(t0 + 5000);
    expect(n.ended.size).toBe(0);
    // Ticks on time; agent 0's load is read a loop turn after the stall, and every interval after it.
    n.vs.advanceTo(t0 + 5010);
    n.sessions.sweep(t0 + 5010);
    n.load(0);
    onTime(n, t0 + 5010, t0 + 7700);
    expect(n.ended.size).toBe(0);
    // A timeout after the stall, less the 250 ms of it that count, agent 1 is still silent: dead.
    onTime(n, t0 + 7700, t0 + 8100);
    expect([...n.ended.keys()]).toEqual([1]);
    expect(n.ended.get(1)).toMatch(/missed heartbeats for 3000 ms/);
    expect(n.sessions.byId.has('a0')).toBe(true);
  });

  it('stalls in a row are each left out: a load read between them keeps its agent (judged plainly, it died)', () => {
    const { n, t0 } = twoHeard();
    // Three stalls of 3.5 s, each past the timeout; agent 0's load is read in the turn after each.
    for (let k = 1; k <= 3; k++) {
      n.vs.advanceTo(t0 + 3500 * k);
      n.sessions.sweep(t0 + 3500 * k);
      n.load(0);
    }
    expect(n.ended.size).toBe(0);
    expect(n.sessions.byId.has('a0')).toBe(true);
  });

  it("a hello read after a stall is taken: the stall is not the stream's wait (judged plainly, both were cut)", () => {
    const n = node(false);
    const t0 = n.vs.now();
    n.sessions.sweep(t0);
    n.open(0);
    n.open(1);
    // Stalled for 5 s, past the 3 s hello deadline: the late sweep cuts neither stream.
    n.vs.advanceTo(t0 + 5000);
    n.sessions.sweep(t0 + 5000);
    expect(n.ended.size).toBe(0);
    // Stream 0's hello and load are read in the turn after; stream 1 never says hello.
    n.hello(0);
    n.load(0);
    expect(n.sessions.byId.has('a0')).toBe(true);
    onTime(n, t0 + 5000, t0 + 7700);
    expect(n.ended.size).toBe(0);
    // A deadline after the stall, less the 250 ms of it that count: stream 1 is cut, agent 0 stays.
    onTime(n, t0 + 7700, t0 + 8100);
    expect([...n.ended.keys()]).toEqual([1]);
    expect(n.ended.get(1)).toMatch(/no hello within 3000 ms/);
    expect(n.sessions.byId.has('a0')).toBe(true);
  });

  it('a process that is always late still finds a silent agent dead (each stall counts its first 250 ms)', () => {
    const { n, t0 } = twoHeard();
    // Every sweep 2 s after the last: of each gap, 250 ms (a sweep's period) counts. Agent 0 keeps speaking.
    let k = 0;
    while (!n.ended.has(1) && k < 20) {
      k++;
      n.vs.advanceTo(t0 + 2000 * k);
      n.load(0);
      n.sessions.sweep(t0 + 2000 * k);
    }
    // 250 ms of each 2 s: past the 3 s timeout at the 13th sweep (26 s on the wall clock).
    expect(k).toBe(13);
    expect([...n.ended.keys()]).toEqual([1]);
    expect(n.sessions.byId.has('a0')).toBe(true);
  });
});
