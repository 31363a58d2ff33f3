import { afterEach, describe, expect, it } from 'vitest';
import { runAgentSim, startAgentSim } from '../../src/cli/agent-sim.js';
import { MeshClient, TaskState } from '../../src/client/index.js';
import { dispatch, FakeNode } from '../helpers/fake-node.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('agent-sim', () => {
  it('runs many agents on shared channels, within slots, seeded failures, and drains on stop', async () => {
    const node = await FakeNode.start({ heartbeatIntervalMs: 200 });
    cleanups.push(() => node.stop());
    node.autoDispatch = true;
    const sim = startAgentSim({
      address: node.address,
      agents: 50,
      slots: 2,
      kinds: ['default'],
      serviceTimeMs: 2,
      serviceJitterMs: 1,
      failureRate: 0.1,
      seed: 11,
      channels: 2,
    });
    cleanups.push(() => sim.stop({ graceful: false }));
    await sim.ready();
    expect(sim.stats().connected).toBe(50);
    expect(new Set(node.liveSessions().map((s) => s.hello!.agentId)).size).toBe(50);
    const client = new MeshClient({ address: node.address });
    cleanups.push(() => client.close());
    const items = await client.submitBatch(Array.from({ length: 600 }, () => ({ kind: 'default' })));
    await waitFor(
      () =>
        [...node.tasks.values()].every(
          (t) => t.state === TaskState.TASK_STATE_COMPLETED || t.state === TaskState.TASK_STATE_FAILED,
        ),
      {
        timeoutMs: 20_000,
        what: 'all 600 tasks finished',
      },
    );
    const st = sim.stats();
    expect(items.every((i) => i.ok)).toBe(true);
    expect(st.completed + st.failed).toBe(600);
    expect(st.failed).toBeGreaterThan(20);
    expect(st.failed).toBeLessThan(120);
    expect(st.refused_over_slots).toBe(0);
    expect(st.max_in_flight_per_agent).toBeLessThanOrEqual(2);
    const final = await sim.stop();
    expect(final.connected).toBe(0);
    await waitFor(() => node.liveSessions().length === 0, { what: 'all streams closed' });
  });

  it('declares its mean service time to a node that takes it, unless told 0 or another figure', async () => {
    const node = await FakeNode.start({ takesSpeed: true });
    cleanups.push(() => node.stop());
    const sims = [
      startAgentSim({ address: node.address, agents: 2, serviceTimeMs: 20, serviceJitterMs: 10, idPrefix: 'dflt' }),
      startAgentSim({ address: node.address, agents: 1, serviceTimeMs: 20, expectedRunMs: 0, idPrefix: 'none' }),
      startAgentSim({ address: node.address, agents: 1, serviceTimeMs: 20, expectedRunMs: 35, idPrefix: 'told' }),
      startAgentSim({ address: node.address, agents: 1, idPrefix: 'zero' }), // no service time: nothing to declare
    ];
    for (const sim of sims) cleanups.push(() => sim.stop({ graceful: false }));
    for (const sim of sims) await sim.ready();
    const byId = () => new Map(node.liveSessions().map((s) => [s.hello!.agentId, s.speeds]));
    await waitFor(() => byId().get('told-0')?.length === 1 && byId().get('dflt-1')?.length === 1, {
      what: 'the declared speeds',
    });
    // A message after the welcome's: anything sent with the welcome has arrived by its result.
    for (const [i, id] of ['none-0', 'zero-0'].entries()) {
      const s = node.liveSessions().find((x) => x.hello!.agentId === id)!;
      s.assign([dispatch(`t${i}`, 'default', 'x')]);
      await waitFor(() => s.resultFor(`t${i}`), { what: `the result of t${i}` });
    }
    const seen = byId();
    expect(seen.get('dflt-0')).toEqual([{ runMs: 20, measured: false }]);
    expect(seen.get('dflt-1')).toEqual([{ runMs: 20, measured: false }]);
    expect(seen.get('told-0')).toEqual([{ runMs: 35, measured: false }]);
    expect(seen.get('none-0')).toEqual([]);
    expect(seen.get('zero-0')).toEqual([]);
  });

  it('runAgentSim stops by itself after durationS and prints one JSON summary', async () => {
    const node = await FakeNode.start();
    cleanups.push(() => node.stop());
    const out: string[] = [];
    const err: string[] = [];
    const code = await runAgentSim({
      address: node.address,
      agents: 5,
      durationS: 0.3,
      json: true,
      statsIntervalMs: 100,
      stdout: (l) => out.push(l),
      stderr: (l) => err.push(l),
    });
    expect(code).toBe(0);
    expect(out).toHaveLength(1);
    const s = JSON.parse(out[0]!);
    expect(s).toMatchObject({ agents: 5, stop_reason: 'duration', refused_over_slots: 0 });
    expect(err.some((l) => l.startsWith('agent-sim '))).toBe(true);
  });

  it('runAgentSim returns 1 when no agent could connect', async () => {
    const dead = await FakeNode.start();
    const addr = dead.address;
    await dead.stop();
    const code = await runAgentSim({
      address: addr,
      agents: 2,
      durationS: 0.2,
      statsIntervalMs: 0,
      stdout: () => {},
      stderr: () => {},
    });
    expect(code).toBe(1);
  });
});
