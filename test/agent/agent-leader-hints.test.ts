// Leader hints to addresses an agent was not given (src/agent/leader-hints.ts), over real gRPC on real
// sockets: a node cell of three replicas (a Raft group on data dirs) in this one process. Given only a
// follower's address (as a Kubernetes Service landing on any replica would give), the agent follows
// the follower's hint to the leader; when that leader stops, it forgets the learned address, goes back
// to the follower it was given, and follows it to the new leader. With `leaderHints: 'given'` it keeps
// the strict rule and stays refused.
import { afterEach, describe, expect, it } from 'vitest';
import { credentials } from '@grpc/grpc-js';
import { Agent, type AgentOptions } from '../../src/agent/index.js';
import { AgentServiceClient } from '../../src/gen/meshlb/v1/agent.js';
import type { Replica } from '../../src/mesh/replica.js';
import { startNodeCell } from '../helpers/node-cell.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261208);
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Three replicas of node cell /r/z/n1, started. */
const nodeCell = (): Promise<Replica[]> => startNodeCell('leaderhints', SEED, cleanups);

/** The leader, once the live followers name it. */
async function settledLeader(nodes: readonly Replica[]): Promise<Replica> {
  const leader = await waitFor(() => nodes.find((r) => r.cell.leading), { timeoutMs: 15_000, what: 'a leader' });
  await waitFor(
    () => nodes.every((r) => r === leader || r.cell.leaderHint().leader === leader.cell.replicaId) || undefined,
    { timeoutMs: 10_000, what: 'followers that know the leader' },
  );
  return leader;
}

/** An agent whose every stream is recorded (the address it went to, in order). */
function agentOf(opts: Partial<AgentOptions> & Pick<AgentOptions, 'address'>, tried: string[]): Agent {
  const clients = new Map<string, AgentServiceClient>();
  cleanups.push(() => clients.forEach((c) => c.close()));
  const agent = new Agent({
    agentId: 'a1',
    kinds: ['echo'],
    slots: 2,
    backoff: { initialMs: 20, maxMs: 200 },
    clientFor: (address) => {
      tried.push(address);
      let c = clients.get(address);
      if (!c) clients.set(address, (c = new AgentServiceClient(address, credentials.createInsecure())));
      return c;
    },
    ...opts,
  });
  cleanups.push(() => agent.close());
  return agent;
}

describe(`leader hints to addresses not given (seed ${SEED})`, () => {
  it('an agent given one follower ends on the leader, and on the next leader after it stops', async () => {
    const nodes = await nodeCell();
    const leader = await settledLeader(nodes);
    const follower = nodes.find((r) => r !== leader)!;
    const tried: string[] = [];
    const agent = agentOf({ address: follower.address }, tried);
    await agent.start();
    await waitFor(() => leader.cell.agents?.byId.has('a1') || undefined, {
      timeoutMs: 10_000,
      what: 'a1 at the leader',
    });
    expect(agent.address).toBe(leader.address);
    expect(tried).toEqual([follower.address, leader.address]);

    // The leader stops: the agent forgets its address and finds the new leader through the follower it was given.
    tried.length = 0;
    await leader.close(0);
    const rest = nodes.filter((r) => r !== leader);
    const next = await settledLeader(rest);
    await waitFor(() => (next.cell.agents?.byId.has('a1') && agent.state === 'connected') || undefined, {
      timeoutMs: 20_000,
      what: 'a1 at the new leader',
    });
    expect(agent.address).toBe(next.address);
    // Every stream since went to the given follower, the new leader, or the stopped leader (the follower
    // names it until it hears of the election; each such round ends in the backoff, so they are few).
    expect(tried.every((t) => [leader.address, follower.address, next.address].includes(t))).toBe(true);
    expect(tried.filter((t) => t === leader.address).length).toBeLessThan(20);
    expect(tried.at(-1)).toBe(next.address);
  });

  it("with leaderHints 'given' it does not follow a hint to an address it was not given", async () => {
    const nodes = await nodeCell();
    const leader = await settledLeader(nodes);
    const follower = nodes.find((r) => r !== leader)!;
    const tried: string[] = [];
    const agent = agentOf({ address: follower.address, leaderHints: 'given' }, tried);
    void agent.start().catch(() => undefined);
    await waitFor(() => (tried.length >= 3 && agent.lastStatus?.codeName === 'FAILED_PRECONDITION') || undefined, {
      timeoutMs: 10_000,
      what: 'three refused streams',
    });
    expect(new Set(tried)).toEqual(new Set([follower.address]));
    expect(leader.cell.agents?.byId.has('a1')).toBe(false);
  });
});
