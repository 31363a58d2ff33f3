// A node stretches its agents' heartbeat interval with their number, so they
// send at most `heartbeatsPerSecond` loads a second together (heartbeatFor in
// src/mesh/agent-session.ts): new agents get the longer interval in their
// Welcome, those already connected a HeartbeatChange. It only ever lengthens
// them, so an agent that ignores the message (an older SDK, any agent written
// before it) keeps beating at its Welcome's interval and stays connected; an
// agent that falls silent is declared dead after its own stretched timeout.
// A node whose own process stalls past the timeout reads what waits in its
// sockets before it declares anyone dead.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, seededRandom } from '../../src/agent/index.js';
import { AgentServiceClient, type ConnectRequest, type ConnectResponse } from '../../src/gen/meshlb/v1/agent.js';
import { credentials, type ClientDuplexStream } from '@grpc/grpc-js';
import { heartbeatFor } from '../../src/mesh/agent-session.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { parseTopology } from '../../src/topology/parse.js';
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 4711);

describe('heartbeatFor', () => {
  const base = { intervalMs: 1000, timeoutMs: 3000 };
  it.each([
    [1, 1000, 3000],
    [1000, 1000, 3000],
    [1001, 2000, 6000],
    [2000, 2000, 6000],
    [2001, 3000, 9000],
    [5000, 5000, 15000],
    [5001, 8000, 24000],
    [12_500, 18_000, 54_000],
    [20_000, 27_000, 81_000],
  ])('%i agents at 1,000 loads/s: every %i ms, dead after %i ms', (agents, intervalMs, timeoutMs) => {
    expect(heartbeatFor(agents, base, 1000)).toEqual({ intervalMs, timeoutMs });
  });

  it('keeps the loads per second between half the bound and the bound once stretched', () => {
    for (let n = 1001; n <= 100_000; n += 997) {
      const { intervalMs } = heartbeatFor(n, base, 1000);
      const perSecond = (n * 1000) / intervalMs;
      expect(perSecond, `${n} agents`).toBeLessThanOrEqual(1000);
      expect(perSecond, `${n} agents`).toBeGreaterThanOrEqual(500);
    }
  });

  it('leaves a bad bound or interval alone', () => {
    expect(heartbeatFor(50_000, base, 0)).toBe(base);
    expect(heartbeatFor(50_000, { intervalMs: 0, timeoutMs: 3000 }, 1000).intervalMs).toBe(0);
  });
});

/** An agent that knows nothing of HeartbeatChange: hello, then a load every `everyMs` (0: silent). */
function rawAgent(address: string, id: string, everyMs: number) {
  const client = new AgentServiceClient(address, credentials.createInsecure());
  const call: ClientDuplexStream<ConnectRequest, ConnectResponse> = client.connect();
  const seen = { welcome: undefined as { intervalMs: number; timeoutMs: number } | undefined, changes: 0, ended: '' };
  call.on('data', (m: ConnectResponse) => {
    if (m.msg?.$case === 'welcome')
      seen.welcome = { intervalMs: m.msg.value.heartbeatIntervalMs, timeoutMs: m.msg.value.heartbeatTimeoutMs };
    if (m.msg?.$case === 'heartbeat') seen.changes++;
  });
  call.on('error', (e: Error) => (seen.ended = e.message));
  call.on('end', () => (seen.ended ||= 'end'));
  call.write({ msg: { $case: 'hello', value: helloOf(id) } });
  const load = { inFlight: 0, cpu: 0, memory: 0, gpu: 0, draining: false };
  const timer =
    everyMs > 0 ? setInterval(() => call.write({ msg: { $case: 'load', value: load } }), everyMs) : undefined;
  return {
    seen,
    close(): void {
      if (timer) clearInterval(timer);
      call.cancel();
      client.close();
    },
  };
}

const helloOf = (agentId: string) => ({
  agentId,
  kinds: ['k'],
  labels: [],
  slots: 1,
  version: 'raw',
  mesh: '',
  meshId: '',
  nodeCell: '',
  running: [],
});

describe(`a node stretches its agents' heartbeats (seed ${SEED})`, () => {
  const NODE = '/r/z/n1';
  let mesh: MeshHarness;
  const agents: Agent[] = [];
  const raws: ReturnType<typeof rawAgent>[] = [];

  beforeAll(async () => {
    mesh = await startMesh(parseTopology(chainTopologyYaml({ name: 'heartbeat-stretch' })), {
      heartbeatIntervalMs: 100,
      heartbeatTimeoutMs: 300,
    });
    // 20 loads/s: at 100 ms, past 2 agents the interval stretches (200 ms for 3-4, 300 ms for 5-6, 500 ms for 7-10).
    mesh.replicas.get(NODE)!.cell.agents!.heartbeatsPerSecond = 20;
  });

  afterAll(async () => {
    for (const a of agents) a.close();
    for (const r of raws) r.close();
    await mesh?.close();
  });

  it('tells new agents the stretched interval, lengthens the others, and keeps agents that ignore it', async () => {
    const sessions = mesh.replicas.get(NODE)!.cell.agents!;
    const address = mesh.address(NODE);
    // The first agent is an old one: it beats every 100 ms whatever it is told.
    const old = rawAgent(address, 'old', 100);
    raws.push(old);
    await waitFor(() => old.seen.welcome, { what: 'welcome of the old agent' });
    expect(old.seen.welcome).toEqual({ intervalMs: 100, timeoutMs: 300 });
    const welcomed: number[] = [];
    for (let i = 0; i < 7; i++) {
      const a = new Agent({ address, agentId: `sdk-${i}`, kinds: ['k'], slots: 1, random: seededRandom(SEED + i) });
      a.handle('k', () => undefined);
      agents.push(a);
      await a.start();
      welcomed.push(a.welcome!.heartbeatIntervalMs);
    }
    // Agents 2..8 of the node: the interval for that many.
    expect(welcomed).toEqual([100, 200, 200, 300, 300, 500, 500]);
    // Everyone connected before the last step was told 500 ms (timeout 1,500 ms); the old agent ignores it.
    await waitFor(() => agents.every((a) => a.stats.heartbeatIntervalMs === 500), { what: 'SDK agents at 500 ms' });
    for (const s of sessions.byId.values()) expect(s.heartbeat).toEqual({ intervalMs: 500, timeoutMs: 1500 });
    expect(old.seen.changes).toBeGreaterThan(0);
    // Three more loads from every SDK agent at the new interval (over a second: past the base 300 ms
    // timeout several times); nobody was declared dead, nobody reconnected.
    const sent = agents.map((a) => a.stats.heartbeatsSent);
    await waitFor(() => agents.every((a, i) => a.stats.heartbeatsSent >= sent[i]! + 3), {
      timeoutMs: 15_000,
      what: 'three loads from every SDK agent',
    });
    expect(sessions.byId.size).toBe(8);
    expect(agents.map((a) => a.stats.connects)).toEqual(agents.map(() => 1));
    expect(old.seen.ended).toBe('');
  });

  it('declares a silent agent dead after its own stretched timeout, not the configured one', async () => {
    const sessions = mesh.replicas.get(NODE)!.cell.agents!;
    const silent = rawAgent(mesh.address(NODE), 'silent', 0);
    raws.push(silent);
    const w = await waitFor(() => silent.seen.welcome, { what: 'welcome of the silent agent' });
    const since = Date.now();
    expect(w).toEqual({ intervalMs: 500, timeoutMs: 1500 });
    await waitFor(() => !sessions.byId.has('silent') && silent.seen.ended, {
      timeoutMs: 10_000,
      what: 'silent agent dead',
    });
    // Not before its 1,500 ms (the configured 300 ms would have dropped it five times over).
    expect(Date.now() - since).toBeGreaterThanOrEqual(1400);
    expect(silent.seen.ended).toMatch(/DEADLINE_EXCEEDED|missed heartbeats/);
    expect(sessions.byId.size).toBe(8);
  });
});

describe(`a node stalled for longer than the heartbeat timeout (seed ${SEED})`, () => {
  const NODE = '/r/z/n1';
  let mesh: MeshHarness;
  let agent: Agent | undefined;

  beforeAll(async () => {
    mesh = await startMesh(parseTopology(chainTopologyYaml({ name: 'heartbeat-stall' })), {
      heartbeatIntervalMs: 100,
      heartbeatTimeoutMs: 300,
    });
  });

  afterAll(async () => {
    agent?.close();
    await mesh?.close();
  });

  it('reads the loads waiting in its sockets before it declares anyone dead (a stall of its own is not silence)', async () => {
    const sessions = mesh.replicas.get(NODE)!.cell.agents!;
    agent = new Agent({
      address: mesh.address(NODE),
      agentId: 'a',
      kinds: ['k'],
      slots: 1,
      random: seededRandom(SEED),
    });
    agent.handle('k', () => undefined);
    await agent.start();
    const a = agent;
    await waitFor(() => a.stats.heartbeatsSent >= 2, { what: 'two loads' });
    // The process (node and agent alike) is descheduled for over twice the timeout: when it runs
    // again its timers fire before it reads the loads the agent sends.
    const until = Date.now() + 700;
    while (Date.now() < until) {
      // busy: a stalled event loop
    }
    const sent = a.stats.heartbeatsSent;
    await waitFor(() => a.stats.heartbeatsSent >= sent + 5, { timeoutMs: 10_000, what: 'five more loads' });
    expect(a.lastStatus?.details ?? '', JSON.stringify(a.lastStatus)).toBe('');
    expect(a.stats.disconnects).toBe(0);
    expect(a.stats.connects).toBe(1);
    expect(sessions.byId.has('a')).toBe(true);
  });
});
