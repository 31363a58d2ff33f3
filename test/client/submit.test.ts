import { afterEach, describe, expect, it } from 'vitest';
import { startAgentSim } from '../../src/cli/agent-sim.js';
import { runSubmit, submitLoad } from '../../src/cli/submit.js';
import { FakeNode } from '../helpers/fake-node.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function meshWithAgents(agents = 10) {
  const node = await FakeNode.start();
  cleanups.push(() => node.stop());
  node.autoDispatch = true;
  const sim = startAgentSim({ address: node.address, agents, slots: 4, seed: 3, statsIntervalMs: 0 });
  cleanups.push(() => sim.stop({ graceful: false }));
  await sim.ready();
  return { node, sim };
}

describe('submit load generator', () => {
  it('submits a bounded count, waits for results and reports latency percentiles', async () => {
    const { node } = await meshWithAgents();
    const s = await submitLoad({
      address: node.address,
      tasks: 150,
      concurrency: 64,
      payloadBytes: 16,
      priority: 'high',
      statsIntervalMs: 0,
      stderr: () => {},
    });
    expect(s).toMatchObject({ submitted: 150, accepted: 150, rejected: 0, completed: 150, unfinished: 0 });
    expect(s.latency_ms.p50).toBeGreaterThan(0);
    expect(s.latency_ms.p99).toBeGreaterThanOrEqual(s.latency_ms.p50);
    expect(s.throughput_per_s).toBeGreaterThan(0);
    expect(node.submitted[0]!.payload.length).toBe(16);
    expect(node.submitted[0]!.priority).toBe(3);
  });

  it('batches submissions and counts rejections by code', async () => {
    const { node } = await meshWithAgents();
    node.exhausted = { count: 1000, retryAfterMs: 1 };
    const s = await submitLoad({
      address: node.address,
      tasks: 50,
      batch: 10,
      retryExhausted: false,
      statsIntervalMs: 0,
      stderr: () => {},
    });
    expect(s.submitted).toBe(50);
    expect(s.rejected).toBe(50);
    expect(s.rejected_by_code).toEqual({ RESOURCE_EXHAUSTED: 50 });
    expect(node.calls.submitBatch).toBe(5);
    node.exhausted.count = 0;
    // A batch larger than the concurrency still goes (alone): no deadlock.
    const ok = await submitLoad({
      address: node.address,
      tasks: 55,
      batch: 10,
      concurrency: 4,
      statsIntervalMs: 0,
      stderr: () => {},
    });
    expect(ok).toMatchObject({ accepted: 55, completed: 55 });
  });

  it('is paced by rate and bounded by durationS', async () => {
    const { node } = await meshWithAgents(2);
    const s = await submitLoad({
      address: node.address,
      tasks: 1_000_000,
      rate: 200,
      durationS: 0.25,
      wait: false,
      statsIntervalMs: 0,
      stderr: () => {},
    });
    expect(s.submitted).toBeGreaterThan(10);
    expect(s.submitted).toBeLessThan(100);
    expect(s.accepted).toBe(s.submitted);
  });

  it('runSubmit --json prints one JSON object; exit code 1 when results never come', async () => {
    const node = await FakeNode.start();
    cleanups.push(() => node.stop());
    node.autoDispatch = true; // but no agents: nothing ever finishes
    const out: string[] = [];
    const code = await runSubmit({
      address: node.address,
      tasks: 5,
      waitMs: 100,
      json: true,
      statsIntervalMs: 0,
      stdout: (l) => out.push(l),
      stderr: () => {},
    });
    expect(code).toBe(1);
    expect(out).toHaveLength(1);
    expect(JSON.parse(out[0]!)).toMatchObject({ submitted: 5, accepted: 5, unfinished: 5 });
  });
});

describe('submit options', () => {
  it('a bad priority is a usage error (exit 2) before any traffic', async () => {
    const err: string[] = [];
    const code = await runSubmit({
      address: '127.0.0.1:1',
      priority: 'urgent' as never,
      stdout: () => {},
      stderr: (l) => err.push(l),
    });
    expect(code).toBe(2);
    expect(err.join('\n')).toMatch(/unknown priority/);
  });
});
