// An agent (or agent-sim) given the address of a cell that is not a node cell
// fails fast with the reason: no AgentService is served there (UNIMPLEMENTED),
// so retrying cannot help. Before, it retried for ever in silence (the reason
// only at debug level, no event) and agent-sim said "no agent ever connected".
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { Agent, type StreamStatus } from '../../src/agent/index.js';
import { runAgentSim } from '../../src/cli/agent-sim.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { parseTopology } from '../../src/topology/parse.js';

const TOPOLOGY = parseTopology(`
name: wrongcell
addressing: { host: 127.0.0.1, basePort: 7500 }
cells:
  name: /
  children:
    - name: eu
      children:
        - { name: west, children: [{ name: n1 }] }
`);

describe('an agent pointed at a cell that is not a node', () => {
  let mesh: MeshHarness;
  beforeAll(async () => {
    mesh = await startMesh(TOPOLOGY, { seed: 3 });
  });
  afterAll(async () => {
    await mesh?.close();
  });

  it('start() rejects at once with the reason, after a `disconnected` event naming UNIMPLEMENTED; the agent closes', async () => {
    const zone = mesh.address('/eu/west');
    const agent = new Agent({ address: zone, agentId: 'a1', slots: 1, kinds: ['echo'] });
    const events: string[] = [];
    let status: StreamStatus | undefined;
    agent.on('disconnected', (s) => {
      status = s;
      events.push('disconnected');
    });
    agent.on('closed', () => events.push('closed'));
    const t0 = performance.now();
    await expect(agent.start()).rejects.toThrow(`${zone} is not a node cell replica`);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(status).toMatchObject({ codeName: 'UNIMPLEMENTED' });
    expect(status!.details).toContain('give the agent the address of a node cell');
    expect(events).toEqual(['disconnected', 'closed']);
    expect(agent.state).toBe('closed');
    expect(agent.stats.connects).toBe(0);
  });

  it('with a node cell among its addresses it is not given up: it connects there', async () => {
    const agent = new Agent({
      address: [mesh.address('/eu'), mesh.address('/eu/west/n1')],
      agentId: 'a2',
      slots: 1,
      kinds: ['echo'],
      backoff: { initialMs: 10, maxMs: 50 },
    });
    await agent.start();
    expect(agent.state).toBe('connected');
    expect(agent.welcome?.nodeCell).toBe('/eu/west/n1');
    agent.close();
  });

  it('agent-sim says why and exits 1 at once, not at its duration', async () => {
    const lines: string[] = [];
    const out: string[] = [];
    const t0 = performance.now();
    const code = await runAgentSim({
      address: mesh.address('/'),
      agents: 3,
      durationS: 60,
      statsIntervalMs: 0,
      stderr: (l) => lines.push(l),
      stdout: (l) => out.push(l),
    });
    expect(code).toBe(1);
    expect(performance.now() - t0).toBeLessThan(10_000);
    const reason = lines.filter((l) => l.includes('is not a node cell replica'));
    expect(reason, lines.join('\n')).toHaveLength(1);
    expect(lines.join('\n')).not.toContain('no agent ever connected');
    expect(out.join('\n')).toMatch(/^agent-sim: 3 agents, completed 0/);
  });

  it('agent-sim, when nothing listens, says so with the last status', async () => {
    const lines: string[] = [];
    const code = await runAgentSim({
      address: '127.0.0.1:1',
      agents: 1,
      durationS: 0.5,
      statsIntervalMs: 0,
      stderr: (l) => lines.push(l),
      stdout: () => undefined,
    });
    expect(code).toBe(1);
    expect(lines.at(-1)).toMatch(/^agent-sim: no agent ever connected to 127\.0\.0\.1:1 \(last: UNAVAILABLE: /);
  });
});
