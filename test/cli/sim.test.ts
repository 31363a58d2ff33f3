// runSim's orchestration against a fake meshlb (real processes, real gRPC
// health checks): health wait, agents, the workload, chaos with restarts, the
// result, and teardown with no process left behind.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom, simulate } from '../../src/cli/sim.js';
import { alive, freePort } from '../helpers/process.js';

const fake = fileURLToPath(new URL('./fixtures/fake-meshlb.mjs', import.meta.url));
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function topologyFile(): Promise<string> {
  const a = async () => `127.0.0.1:${await freePort()}`;
  const yaml = `name: simtest
cells:
  name: /
  replicas: [{ address: "${await a()}" }]
  children:
    - name: r
      replicas: [{ address: "${await a()}" }, { address: "${await a()}" }, { address: "${await a()}" }]
      children:
        - name: z
          replicas: [{ address: "${await a()}" }]
          children:
            - { name: n1, replicas: [{ address: "${await a()}" }] }
            - { name: n2, replicas: [{ address: "${await a()}" }] }
`;
  const dir = mkdtempSync(join(tmpdir(), 'meshlb-sim-'));
  dirs.push(dir);
  const f = join(dir, 'topology.yaml');
  writeFileSync(f, yaml);
  return f;
}

describe('meshlb sim (with a fake meshlb)', () => {
  it('runs the topology as processes, injects chaos, collects the result and leaves nothing running', async () => {
    const lines: string[] = [];
    process.env.FAKE_HOME_TASKS = '300'; // what the fake root's GetCell reports as accepted and completed
    const { result, pids } = await simulate({
      topologyFile: await topologyFile(),
      durationS: 2,
      agentsPerNode: 3,
      rate: 100,
      tasks: 300, // 3 s of fake submit
      chaos: { killLeaders: true, killAgents: true, partition: true },
      seed: 42,
      json: false,
      bin: fake,
      downMs: 200,
      progress: (l) => lines.push(l),
    }).finally(() => delete process.env.FAKE_HOME_TASKS);
    expect(result.ok, lines.join('\n')).toBe(true);
    expect(result.replicas).toBe(7);
    expect(result.agent_processes).toBe(2);
    expect(result.agents).toBe(6);
    expect(result.submit).toEqual({ submitted: 300, accepted: 300, completed: 300, failed: 0, unfinished: 0 });
    expect(result.lost).toBe(0);
    expect(result.chaos.map((c) => c.kind)).toEqual(
      expect.arrayContaining(['kill-leader', 'kill-agents', 'partition']),
    );
    // every kill was followed by a restart
    expect(result.restarts).toBe(result.chaos.filter((c) => c.kind !== 'partition').length);
    expect(result.unexpected_exits).toEqual([]);
    // 7 replicas + 2 agent-sims + submit + restarted processes
    expect(pids.length).toBe(10 + result.restarts);
    for (const pid of pids) expect(alive(pid), `pid ${pid} still alive`).toBe(false);
  });

  it('fails (and still tears down) when the workload reports lost tasks', async () => {
    process.env.FAKE_LOST = '2';
    try {
      const { result, pids } = await simulate({
        topologyFile: await topologyFile(),
        durationS: 1,
        agentsPerNode: 1,
        rate: 100,
        tasks: 10,
        chaos: { killLeaders: false, killAgents: false, partition: false },
        seed: 1,
        json: false,
        bin: fake,
        progress: () => undefined,
      });
      expect(result.ok).toBe(false);
      expect(result.lost).toBe(2);
      for (const pid of pids) expect(alive(pid)).toBe(false);
    } finally {
      delete process.env.FAKE_LOST;
    }
  });

  it('gives up quickly when a replica cannot start, leaving nothing running', async () => {
    const { result, pids } = await simulate({
      topologyFile: await topologyFile(),
      durationS: 1,
      agentsPerNode: 1,
      rate: 10,
      chaos: { killLeaders: false, killAgents: false, partition: false },
      seed: 1,
      json: false,
      bin: join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures', 'no-such-meshlb.mjs'),
      readyTimeoutMs: 20_000,
      progress: () => undefined,
    });
    expect(result.ok).toBe(false);
    expect(result.unexpected_exits.length).toBeGreaterThan(0);
    expect(result.submit).toBeNull();
    for (const pid of pids) expect(alive(pid)).toBe(false);
  });

  it('seeds its chaos choices', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });
});
