// A node's speed groups for its summaries (agent-capacity.ts, node-completion.ts)
// cost O(agents): they are computed again when the capacity changed (an agent
// came, went or drained, a slot was taken or freed), else at most every
// SPEED_REFRESH_MS, so idle agents' loads do not make every periodic summary
// walk every agent; free slots are never stale.
import { describe, expect, it } from 'vitest';
import { AgentCapacity, SPEED_REFRESH_MS, subtreeLoad } from '../../src/mesh/agent-capacity.js';
import { Ewma, type AgentSession } from '../../src/mesh/agent-session.js';

/** What AgentCapacity and the speed groups read of a session. */
function session(id: string, slots: number, latencyMs: number, cpu = 0): AgentSession {
  const latency = new Ewma(0.1, 0);
  latency.add(latencyMs);
  const s = {
    id,
    kinds: ['k'],
    slots,
    inFlight: 0,
    dead: false,
    draining: false,
    cpu,
    memory: 0,
    success: new Ewma(0.1, 1),
    latencyMs: latency,
    reported: undefined,
  };
  return s as unknown as AgentSession;
}

function node() {
  const cap = new AgentCapacity();
  const agents = new Map<string, AgentSession>();
  const add = (s: AgentSession): void => {
    agents.set(s.id, s);
    cap.account(s, 1);
  };
  /** A slot of `s` taken (1) or freed (-1), as a pick or a result moves it. */
  const take = (s: AgentSession, delta: number): void => {
    (s as { inFlight: number }).inFlight += delta;
    cap.slotsTaken(s, delta);
  };
  const speed = (now: number, queued = 0) => subtreeLoad(agents, cap, now).speed!('k', queued)!;
  return { cap, agents, add, take, speed };
}

describe('speed groups in a node summary', () => {
  it('are computed once while only figures change, again after a slot moves or an agent comes', () => {
    const n = node();
    n.add(session('a', 4, 20));
    let computed = 0;
    const compute = () => {
      computed++;
      return { serviceMs: [20], slots: [4], free: [4], queued: 0 };
    };
    n.cap.speedGroups('k', 0, compute);
    n.cap.speedGroups('k', 100, compute);
    n.cap.speedGroups('k', SPEED_REFRESH_MS - 1, compute);
    expect(computed).toBe(1);
    n.take(n.agents.get('a')!, 1);
    n.cap.speedGroups('k', SPEED_REFRESH_MS - 1, compute);
    expect(computed).toBe(2);
    n.add(session('b', 4, 20));
    n.cap.speedGroups('k', SPEED_REFRESH_MS - 1, compute);
    expect(computed).toBe(3);
    // Nothing changed, but the figures may have: computed again once SPEED_REFRESH_MS passed.
    n.cap.speedGroups('k', 2 * SPEED_REFRESH_MS, compute);
    n.cap.speedGroups('k', 2 * SPEED_REFRESH_MS + 1, compute);
    expect(computed).toBe(4);
  });

  it('show a freed or taken slot at once, a new cpu figure within SPEED_REFRESH_MS, and the queue as asked', () => {
    const n = node();
    const fast = session('fast', 4, 10);
    const slow = session('slow', 4, 100);
    n.add(fast);
    n.add(slow);
    expect(n.speed(0)).toEqual({ serviceMs: [10, 100], slots: [4, 4], free: [4, 4], queued: 0 });
    n.take(fast, 1);
    expect(n.speed(10).free).toEqual([3, 4]);
    n.take(fast, -1);
    expect(n.speed(20, 7)).toEqual({ serviceMs: [10, 100], slots: [4, 4], free: [4, 4], queued: 7 });
    // A load's cpu (no capacity change): within the refresh the groups stand; after it they follow.
    (fast as { cpu: number }).cpu = 1;
    expect(n.speed(30).serviceMs).toEqual([10, 100]);
    expect(n.speed(30 + SPEED_REFRESH_MS).serviceMs[0]).toBeCloseTo(12, 6); // 10 ms · (1 + 0.2 · cpu)
  });
});
