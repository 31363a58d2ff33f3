// An agent answers RATE_LIMITED (docs/flow-control.md, "An agent says
// RATE_LIMITED"), over real gRPC through a four-tier chain, with the SDK's
// RateLimitedError: the attempt is not spent (a task with max_attempts 1 is
// answered RATE_LIMITED twice and still completes), it runs again no sooner
// than the hint, and the task's rate-limit key pauses mesh-wide for as long,
// then resumes at its sustained rate rather than with a burst.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, RateLimitedError, seededRandom } from '../../src/agent/index.js';
import { MeshClient, TaskState } from '../../src/client/index.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { parseTopology } from '../../src/topology/parse.js';
import type { Topology } from '../../src/topology/types.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 515151);
const HINT_MS = 400;
const base = parseTopology(chainTopologyYaml({ name: 'rate-limited', basePort: 7300 }));
// 20 per second sustained (one per 50 ms), bursts of 5 from idle.
const TOPOLOGY: Topology = {
  ...base,
  flow: {
    lingerMs: 300,
    concurrency: new Map(),
    rateLimits: new Map([['llm', { units: 20, periodMs: 1000, burst: 5 }]]),
  },
};

describe(`RATE_LIMITED answers over gRPC (seed ${SEED})`, () => {
  let mesh: MeshHarness;
  let client: MeshClient;
  let agent: Agent;
  /** payload → the agent's clock at each start of it. */
  const starts = new Map<string, number[]>();
  /** payload → how many more times to answer RATE_LIMITED. */
  const refuse = new Map<string, number>();

  beforeAll(async () => {
    mesh = await startMesh(TOPOLOGY, { seed: SEED, heartbeatIntervalMs: 100, summaryIntervalMs: 100 });
    agent = new Agent({
      address: mesh.address('/r/z/n1'),
      agentId: 'caller',
      slots: 8,
      random: seededRandom(SEED),
      backoff: { initialMs: 10, maxMs: 100 },
    }).handle('call', (t) => {
      const p = t.payload.toString();
      starts.set(p, [...(starts.get(p) ?? []), Date.now()]);
      const n = refuse.get(p) ?? 0;
      if (n > 0) {
        refuse.set(p, n - 1);
        throw new RateLimitedError('429 Too Many Requests', HINT_MS);
      }
      return { ok: p };
    });
    await agent.start();
    await mesh.ready();
    client = new MeshClient({ address: mesh.address('/'), deadlineMs: 10_000 });
  });

  afterAll(async () => {
    agent?.close();
    client?.close();
    await mesh?.close();
  });

  it('a task answered RATE_LIMITED twice with max_attempts 1 completes, each retry no sooner than the hint', async () => {
    refuse.set('plain', 2);
    const { taskId } = await client.submit({ kind: 'call', payload: 'plain', maxAttempts: 1 });
    const done = await client.waitForResult(taskId, { timeoutMs: 15_000 });
    expect(done.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(done.attempt).toBe(3);
    const s = starts.get('plain')!;
    expect(s).toHaveLength(3);
    // The home's clock starts the wait a little after the agent's; never before it.
    expect(s[1]! - s[0]!).toBeGreaterThanOrEqual(HINT_MS - 5);
    expect(s[2]! - s[1]!).toBeGreaterThanOrEqual(HINT_MS - 5);
  });

  it("pauses the task's rate key mesh-wide for the hint, then resumes at the sustained rate", async () => {
    refuse.set('first', 1);
    const first = await client.submit({ kind: 'call', payload: 'first', rateLimitKey: 'llm', maxAttempts: 1 });
    // Wait until the home has committed the answer: the task is QUEUED again after attempt 1.
    await waitFor(
      async () => {
        const t = await client.get(first.taskId);
        return t.attempt >= 1 && t.state === TaskState.TASK_STATE_QUEUED ? t : undefined;
      },
      { timeoutMs: 10_000, what: 'the RATE_LIMITED answer committed' },
    );
    const answeredAt = starts.get('first')![0]!;
    // Five more calls of the key: an idle key would start all five at once (burst 5).
    const rest = await client.submitBatch(
      Array.from({ length: 5 }, (_, i) => ({ kind: 'call', payload: `more-${i}`, rateLimitKey: 'llm' })),
    );
    const all = [first.taskId, ...rest.map((r) => r.taskId)];
    const done = await Promise.all(all.map((id) => client.waitForResult(id, { timeoutMs: 15_000 })));
    expect(done.every((t) => t.state === TaskState.TASK_STATE_COMPLETED)).toBe(true);
    const later = [starts.get('first')![1]!, ...rest.map((_, i) => starts.get(`more-${i}`)![0]!)].sort((a, b) => a - b);
    // Nothing of the key started during the pause...
    expect(later[0]! - answeredAt).toBeGreaterThanOrEqual(HINT_MS - 5);
    // ...and after it one per emission interval (50 ms): six starts span at least five intervals
    // (an unpaced key would start all six within a few ms). The times are the agent's, one stream
    // hop after the home let each go: on a loaded machine the first can arrive late by tens of ms
    // (CI at load 25 saw a span of 239 ms), so the bound allows half an interval of delivery skew.
    expect(later[later.length - 1]! - later[0]!).toBeGreaterThanOrEqual(5 * 50 - 25);
  });
});
