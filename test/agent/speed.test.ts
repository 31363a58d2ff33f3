// The agent's run-time report (src/agent/speed.ts): after each welcome, the
// mean of its recent successful runs, else the declared figure, else nothing;
// and the node's side (src/mesh/agent-speed.ts): a figure stands in for the
// latency EWMA only until the node's own first measurement.
import { describe, expect, it } from 'vitest';
import { RunTimes } from '../../src/agent/speed.js';
import type { AgentSpeed, ConnectRequest } from '../../src/gen/meshlb/v1/agent.js';
import { ResultStatus, type TaskResult } from '../../src/gen/meshlb/v1/task.js';
import { Ewma, type AgentSession } from '../../src/mesh/agent-session.js';
import { MAX_RUN_MS, speedRefusal, takeSpeed } from '../../src/mesh/agent-speed.js';

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
    rt.announce();
    expect(sent).toEqual([{ runMs: 20, measured: false }]);
    rt.seen(result(100));
    rt.seen(result(50, ResultStatus.RESULT_STATUS_ERROR)); // a failure says nothing of the run time
    rt.seen(result(200));
    rt.announce();
    expect(sent[1]).toEqual({ runMs: 110, measured: true }); // 100, then 100 + 0.1 * (200 - 100)
  });

  it('says nothing when it knows nothing, or while disconnected', () => {
    const { p, sent } = port();
    new RunTimes(p, undefined).announce();
    new RunTimes(p, 0).announce();
    p.up = false;
    new RunTimes(p, 30).announce();
    expect(sent).toEqual([]);
  });

  it('refuses a declared figure that is not a finite number >= 0', () => {
    const { p } = port();
    expect(() => new RunTimes(p, -1)).toThrow(TypeError);
    expect(() => new RunTimes(p, Number.NaN)).toThrow(/expectedRunMs/);
  });
});

describe('takeSpeed (node side)', () => {
  function session() {
    const changed: string[] = [];
    const s = { id: 'a', latencyMs: new Ewma(0.1, 0), usable: true } as unknown as AgentSession;
    return { s, changed, cell: { agentChanged: (id: string) => void changed.push(id) } };
  }

  it('stands in for the latency EWMA until the first measurement replaces it', () => {
    const { s, changed, cell } = session();
    expect(takeSpeed(s, { runMs: 160, measured: false }, cell)).toBe(true);
    expect(s.latencyMs.value).toBe(160);
    expect(changed).toEqual(['a']);
    s.latencyMs.add(25); // the node's own first measurement: the figure goes entirely
    expect(s.latencyMs.value).toBe(25);
    expect(takeSpeed(s, { runMs: 500, measured: true }, cell)).toBe(true); // later figures change nothing
    expect(s.latencyMs.value).toBe(25);
    expect(changed).toEqual(['a']);
  });

  it('takes 0 as unknown, caps the figure, and refuses NaN, infinite or negative figures', () => {
    const { s, changed, cell } = session();
    expect(takeSpeed(s, { runMs: 0, measured: false }, cell)).toBe(true);
    expect(s.latencyMs.value).toBe(0);
    expect(changed).toEqual([]);
    for (const runMs of [Number.NaN, Infinity, -5]) {
      expect(takeSpeed(s, { runMs, measured: false }, cell)).toBe(false);
      expect(speedRefusal({ runMs, measured: false })).toMatch(/finite number >= 0/);
    }
    expect(s.latencyMs.value).toBe(0);
    takeSpeed(s, { runMs: 1e12, measured: false }, cell);
    expect(s.latencyMs.value).toBe(MAX_RUN_MS);
  });
});
