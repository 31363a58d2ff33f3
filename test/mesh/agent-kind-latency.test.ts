// An agent of several kinds as its node places it (agent-candidate.ts) and reports it to its parent
// (node-completion.ts): by its measured time of each kind, not its one latency over all of them, which
// mixes the kinds it happened to run (docs/policies.md, node-score).
import { describe, expect, it } from 'vitest';
import { candidateOf } from '../../src/mesh/agent-candidate.js';
import { Ewma, type AgentSession } from '../../src/mesh/agent-session.js';
import { nodeSpeedGroups } from '../../src/mesh/node-completion.js';

function session(id: string, kinds: string[], latencyMs: number, byKind: Record<string, number> = {}): AgentSession {
  const ewma = (ms: number): Ewma => {
    const e = new Ewma(0.1, 0);
    e.add(ms);
    return e;
  };
  const s = {
    id,
    kinds,
    slots: 8,
    inFlight: 0,
    dead: false,
    draining: false,
    cpu: 0,
    memory: 0,
    success: new Ewma(0.1, 1),
    latencyMs: ewma(latencyMs),
    kindLatencyMs: new Map(Object.entries(byKind).map(([k, ms]) => [k, ewma(ms)])),
    reported: undefined,
    assigned: new Map(),
    carried: new Map(),
    lastSeenMs: 0,
  };
  return s as unknown as AgentSession;
}

describe('an agent of several kinds at its node', () => {
  it("offers each kind at that kind's measured time, and its own figure for a kind it has not run", () => {
    // Mostly 40 ms embed tasks: its one latency says 35 ms; its tool tasks take 13.
    const s = session('a', ['embed', 'tool', 'other'], 35, { embed: 40, tool: 13 });
    const c = candidateOf(s, 0, []);
    expect(c.latencyEwmaMs).toBe(35);
    expect(c.slots.get('tool')!.latencyEwmaMs).toBe(13);
    expect(c.slots.get('embed')!.latencyEwmaMs).toBe(40);
    expect(c.slots.get('other')!.latencyEwmaMs).toBe(0); // not run yet: node-score takes the agent's 35
  });

  it('reports its speed group per kind at that time', () => {
    const agents = new Map([
      ['a', session('a', ['embed', 'tool'], 35, { embed: 40, tool: 13 })],
      ['b', session('b', ['embed', 'tool'], 20)], // nothing per kind yet: its own figure for both
    ]);
    expect(nodeSpeedGroups(agents, 'tool', 0)!.serviceMs).toEqual([13, 20]);
    expect(nodeSpeedGroups(agents, 'embed', 0)!.serviceMs).toEqual([20, 40]);
  });
});
