// An agent of a node cell with three replicas (a Raft group on data dirs, in
// one process over real gRPC): given every replica's address, followers first,
// it is refused by a follower naming the leader and connects to the leader at
// once, instead of waiting out a reconnect backoff.
import { afterEach, describe, expect, it } from 'vitest';
import { credentials } from '@grpc/grpc-js';
import { Agent } from '../../src/agent/index.js';
import { AgentServiceClient } from '../../src/gen/meshlb/v1/agent.js';
import { startNodeCell } from '../helpers/node-cell.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261209);
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe(`an agent of a replicated node cell (seed ${SEED})`, () => {
  it('follows a follower’s leader hint to the leader among its addresses', async () => {
    const nodes = await startNodeCell('agentleader', SEED, cleanups);
    const leader = await waitFor(() => nodes.find((r) => r.cell.leading), { timeoutMs: 15_000, what: 'a leader' });
    const followers = nodes.filter((r) => r !== leader);
    await waitFor(() => followers.every((f) => f.cell.leaderHint().leader === leader.cell.replicaId) || undefined, {
      timeoutMs: 10_000,
      what: 'followers that know the leader',
    });
    // Followers first: a plain rotation would try both (with backoff) before the leader.
    const tried: string[] = [];
    const clients = new Map<string, AgentServiceClient>();
    cleanups.push(() => clients.forEach((c) => c.close()));
    const agent = new Agent({
      address: [followers[0]!.address, followers[1]!.address, leader.address],
      agentId: 'a1',
      kinds: ['echo'],
      slots: 2,
      // Every stream the agent opens goes through here: the addresses it tried, in order.
      clientFor: (address) => {
        tried.push(address);
        let c = clients.get(address);
        if (!c) clients.set(address, (c = new AgentServiceClient(address, credentials.createInsecure())));
        return c;
      },
    });
    cleanups.push(() => agent.close());
    await agent.start();
    await waitFor(() => leader.cell.agents?.byId.has('a1') || undefined, {
      timeoutMs: 10_000,
      what: 'the agent at the leader',
    });
    expect(agent.address).toBe(leader.address);
    // Refused by the first follower, then straight to the leader (not via the second follower).
    expect(tried).toEqual([followers[0]!.address, leader.address]);
  });
});
