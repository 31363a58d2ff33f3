// The agent's run-time report (src/agent/speed.ts): after each welcome, the
// mean of its recent successful runs, else the declared figure, else nothing;
// and the node's side (src/mesh/agent-speed.ts): a figure, plus the node's
// own overhead per attempt, stands in for the latency EWMA until the node's
// first measurement.
import { describe, expect, it } from 'vitest';
import { RunTimes } from '../../src/agent/speed.js';
import type { AgentSpeed, ConnectRequest, Welcome } from '../../src/gen/meshlb/v1/agent.js';
import { ResultStatus, type TaskResult } from '../../src/gen/meshlb/v1/task.js';
import { Agent } from '../../src/agent/index.js';
import { Ewma, type AgentSession } from '../../src/mesh/agent-session.js';
import { kindLatencyOf, latencyOf, MAX_RUN_MS, speedRefusal, Speeds } from '../../src/mesh/agent-speed.js';
import { dispatch, FakeNode } from '../helpers/fake-node.js';
import { waitFor } from '../helpers/wait.js';

function port(connected = true) {
  const sent: AgentSpeed[] = [];
  const p = {
    up: connected,
    connected: () => p.up,
    write: (m: ConnectRequest) => {
      if (m.msg?.$case === 'speed') sent.push(m.msg.value);
    },
  };
  return { p, sent };
}

const welcome = (takesSpeed = true): Welcome => ({
  nodeCell: '/n',
  replicaId: 'n#1',
  heartbeatIntervalMs: 1000,
  heartbeatTimeoutMs: 3000,
  maxMessageBytes: 0,
  mesh: '',
  meshId: '',
  maxCheckpointBytes: 0,
  takesSpeed,
});

const result = (runMs: number, status = ResultStatus.RESULT_STATUS_OK): TaskResult => ({
  taskId: 't',
  attempt: 1,
  status,
  output: Buffer.alloc(0),
  error: '',
  agentId: 'a',
  nodeCell: '/n',
  runMicros: Math.round(runMs * 1000),
  meshFailure: 0,
  retryAfterMs: 0,
});

describe('RunTimes (agent side)', () => {
  it('announces the declared figure until it has run a task, then its own mean', () => {
    const { p, sent } = port();
    const rt = new RunTimes(p, 20);
    rt.announce(welcome());
    expect(sent).toEqual([{ runMs: 20, measured: false }]);
    rt.seen(result(100));
    rt.seen(result(50, ResultStatus.RESULT_STATUS_ERROR)); // a failure says nothing of the run time
    rt.seen(result(200));
    rt.announce(welcome());
    expect(sent[1]).toEqual({ runMs: 110, measured: true }); // 100, then 100 + 0.1 * (200 - 100)
  });

  it('says nothing when it knows nothing, to a node that does not take it, or while disconnected', () => {
    const { p, sent } = port();
    new RunTimes(p, undefined).announce(welcome());
    new RunTimes(p, 0).announce(welcome());
    new RunTimes(p, 30).announce(welcome(false)); // an older node would end the stream on it
    p.up = false;
    new RunTimes(p, 30).announce(welcome());
    expect(sent).toEqual([]);
  });

  it('refuses a declared figure that is not a finite number >= 0', () => {
    const { p } = port();
    expect(() => new RunTimes(p, -1)).toThrow(TypeError);
    expect(() => new RunTimes(p, Number.NaN)).toThrow(/expectedRunMs/);
  });
});

describe('Speeds: take and measured (node side)', () => {
  function node() {
    const changed: string[] = [];
    const refused: string[] = [];
    const cell = { agentChanged: (id: string) => void changed.push(id) };
    const session = (id: string, kinds = ['work']) =>
      ({
        id,
        kinds,
        latencyMs: new Ewma(0.1, 0),
        success: new Ewma(0.1, 1),
        usable: true,
        dead: false,
      }) as unknown as AgentSession;
    const speeds = new Speeds(cell);
    const take = (s: AgentSession, m: AgentSpeed): void => speeds.take(s, m, (why) => void refused.push(why));
    const measured = (s: AgentSession, ms: number, r: TaskResult, kind = 'work'): void =>
      speeds.measured(s, ms, r, kind);
    return { changed, refused, speeds, session, take, measured };
  }

  it("places an agent by its report plus the node's overhead until the first measurement replaces it", () => {
    const { changed, refused, session, take, measured } = node();
    const fast = session('fast');
    const slow = session('slow');
    take(fast, { runMs: 20, measured: false });
    take(slow, { runMs: 160, measured: false });
    expect([latencyOf(fast), latencyOf(slow)]).toEqual([20, 160]); // no overhead known yet
    expect(changed).toEqual(['fast', 'slow']);
    changed.length = 0;
    // The node's first measure of fast: 50 ms from dispatch to result for a 20 ms run, 30 of them its own.
    measured(fast, 50, result(20));
    expect(latencyOf(fast)).toBe(50); // measured: the report is gone
    expect(latencyOf(slow)).toBe(190); // 160 + 30: like with like
    expect(changed).toEqual(['slow']); // the overhead moved (0 -> 30): the agents still on their report are re-read
    changed.length = 0;
    measured(fast, 52, result(20)); // 30 -> 30.2: within a fifth, nobody re-read
    expect(changed).toEqual([]);
    expect(latencyOf(slow)).toBeCloseTo(190.2, 6);
    take(fast, { runMs: 500, measured: true }); // a report after a measurement changes nothing
    expect(latencyOf(fast)).toBeCloseTo(50.2, 6);
    expect(changed).toEqual([]);
    expect(refused).toEqual([]);
  });

  it('measures an agent of several kinds per kind as well, and only its declared kinds', () => {
    const { session, measured } = node();
    const multi = session('multi', ['embed', 'tool']);
    for (let i = 0; i < 30; i++) measured(multi, 40, result(38), 'embed');
    for (let i = 0; i < 3; i++) measured(multi, 13, result(11), 'tool');
    measured(multi, 500, result(11), 'other'); // not declared: its own figure only
    // The agent's figure mixes its kinds (mostly embed, one 500 ms outlier); each kind's is its own.
    expect(latencyOf(multi)).toBeGreaterThan(60);
    expect(kindLatencyOf(multi, 'tool')).toBeCloseTo(13, 6);
    expect(kindLatencyOf(multi, 'embed')).toBeCloseTo(40, 6);
    expect(kindLatencyOf(multi, 'other')).toBe(0);
    expect([...multi.kindLatencyMs!.keys()].sort()).toEqual(['embed', 'tool']);
    const single = session('single', ['tool']);
    measured(single, 13, result(11), 'tool');
    expect(single.kindLatencyMs).toBeUndefined(); // one kind: its figure is the kind's
    expect(kindLatencyOf(single, 'tool')).toBe(0);
  });

  it('forgets agents gone before their first result (bounded however many come and go)', () => {
    const { changed, speeds, session, take, measured } = node();
    for (let i = 0; i < 5000; i++) {
      const s = session(`a${i}`);
      take(s, { runMs: 20, measured: false });
      speeds.forget(s); // gone before any result, as AgentSessions.lost does
    }
    expect(speeds.reported.size).toBeLessThanOrEqual(1024);
    changed.length = 0;
    measured(session('b'), 50, result(20)); // the overhead moves: nobody gone is re-read
    expect(changed).toEqual([]);
  });

  it('takes 0 as unknown, caps the figure, and refuses NaN, infinite or negative figures', () => {
    const { changed, refused, session, take } = node();
    const s = session('a');
    take(s, { runMs: 0, measured: false });
    expect(latencyOf(s)).toBe(0);
    expect(changed).toEqual([]);
    for (const runMs of [Number.NaN, Infinity, -5]) take(s, { runMs, measured: false });
    expect(refused).toHaveLength(3);
    for (const why of refused) expect(why).toMatch(/speed.run_ms must be a finite number >= 0/);
    expect(speedRefusal({ runMs: 1, measured: false })).toBe('');
    expect(latencyOf(s)).toBe(0);
    take(s, { runMs: 1e12, measured: false });
    expect(latencyOf(s)).toBe(MAX_RUN_MS);
  });
});

describe('an SDK agent and its node', () => {
  it('declares its figure to a node that takes it, and its own mean after a reconnect', async () => {
    const node = await FakeNode.start({ takesSpeed: true });
    const agent = new Agent({ address: node.address, agentId: 'a1', slots: 2, expectedRunMs: 40 });
    let open!: () => void;
    agent.handle('k', () => new Promise<void>((r) => (open = r)));
    try {
      await agent.start();
      const s1 = node.session('a1')!;
      await waitFor(() => s1.speeds.length === 1, { what: 'the declared speed' });
      expect(s1.speeds).toEqual([{ runMs: 40, measured: false }]);
      s1.assign([dispatch('t1', 'k', 'x')]);
      await waitFor(() => agent.inFlight === 1, { what: 't1 running' });
      open();
      const r = await waitFor(() => s1.resultFor('t1'), { what: 'the result of t1' });
      s1.kill();
      await waitFor(() => node.liveSessions().length === 1 && node.session('a1') !== s1, { what: 'a reconnect' });
      const s2 = node.session('a1')!;
      await waitFor(() => s2.speeds.length === 1, { what: 'the measured speed' });
      expect(s2.speeds).toEqual([{ runMs: r.runMicros / 1000, measured: true }]);
    } finally {
      agent.close();
      await node.stop();
    }
  });

  it('sends nothing to a node that does not take it, and stays connected', async () => {
    const node = await FakeNode.start();
    const agent = new Agent({ address: node.address, agentId: 'a1', slots: 1, expectedRunMs: 40 }).handle(
      'k',
      () => {},
    );
    try {
      await agent.start();
      const s = node.session('a1')!;
      s.assign([dispatch('t1', 'k', 'x')]); // a message after the welcome's, so anything sent with it has arrived
      await waitFor(() => s.resultFor('t1'), { what: 'the result of t1' });
      expect(s.speeds).toEqual([]);
      expect(agent.state).toBe('connected');
    } finally {
      agent.close();
      await node.stop();
    }
  });
});
