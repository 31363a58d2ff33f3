// Hello admission (src/mesh/agent-admission.ts): a node replica admits new agent streams at
// helloRatePerSecond and ends the rest RESOURCE_EXHAUSTED with a retry hint the SDK waits out (with
// jitter). The bucket's arithmetic on its own, then a storm of agents against a real node replica over
// real gRPC: all of them connect, each refusal is counted in meshlb_streams_ended_total (read from
// /metrics, and a link stream a zone ends likewise), and the agents came back when told rather than at their
// backoff (few refusals per agent).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { credentials, status, type StatusObject } from '@grpc/grpc-js';
import { createMetrics, startMetricsServer } from '../../src/admin/metrics.js';
import { Agent, seededRandom } from '../../src/agent/index.js';
import { AgentHello, AgentServiceClient } from '../../src/gen/meshlb/v1/agent.js';
import { LinkHello, LinkServiceClient, OpenRequest } from '../../src/gen/meshlb/v1/link.js';
import { HelloAdmission, MAX_RETRY_MS, MIN_RETRY_MS } from '../../src/mesh/agent-admission.js';
import { Replica } from '../../src/mesh/replica.js';
import { parseTopology } from '../../src/topology/parse.js';
import { freePort } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261208);
const NODE = '/r/z/n1';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** One sample of a Prometheus text body: the series of `name` whose labels include `labels`. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const l of (m[2] ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) have.set(l[1]!, l[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

describe('the hello admission bucket', () => {
  it('admits a burst, then one per 1/rate s; the k-th refused in a row is told to wait k/rate s', () => {
    const b = new HelloAdmission(10, 3);
    expect([b.take(0), b.take(0), b.take(0)]).toEqual([undefined, undefined, undefined]);
    expect([b.take(0), b.take(0), b.take(0)]).toEqual([100, 200, 300]);
    // 100 ms later one token is back: one admitted; the next refused is promised after the 3 before it.
    expect(b.take(100)).toBeUndefined();
    expect(b.take(100)).toBe(300);
    expect([b.admitted, b.refused]).toEqual([4, 4]);
    // Quiet for long: the bucket holds its burst, no more; the promises lapsed.
    expect([b.take(60_000), b.take(60_000), b.take(60_000), b.take(60_000)]).toEqual([
      undefined,
      undefined,
      undefined,
      100,
    ]);
  });

  it('keeps its hints within bounds, and admits all when off', () => {
    const b = new HelloAdmission(1000, 1);
    b.take(0);
    expect(b.take(0)).toBe(MIN_RETRY_MS);
    const slow = new HelloAdmission(1, 1);
    slow.take(0);
    let last = 0;
    for (let i = 0; i < 100; i++) last = slow.take(0)!;
    expect(last).toBe(MAX_RETRY_MS);
    const off = new HelloAdmission(0);
    for (let i = 0; i < 1000; i++) expect(off.take(0)).toBeUndefined();
  });
});

describe(`a connect storm against a node replica over real gRPC (seed ${SEED})`, () => {
  it('every agent connects at the admitted pace; refusals and a bad hello are counted in /metrics', async () => {
    const p = await Promise.all([0, 1, 2, 3].map(() => freePort()));
    const a = (i: number) => `{ address: "127.0.0.1:${p[i]}" }`;
    const topo = parseTopology(`
name: admission
cells:
  name: /
  replicas: [${a(1)}]
  children:
    - name: r
      replicas: [${a(2)}]
      children:
        - name: z
          replicas: [${a(3)}]
          children: [{ name: n1, replicas: [${a(0)}] }]
`);
    const dir = mkdtempSync(join(tmpdir(), 'meshlb-admission-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const m = createMetrics({ defaultMetrics: false });
    const RATE = 10;
    const node = await new Replica({
      topology: topo,
      cell: NODE,
      dataDir: join(dir, 'n1'),
      seed: SEED,
      meter: m.meter,
      helloRatePerSecond: RATE,
    }).start();
    cleanups.push(() => node.close(0));
    await waitFor(() => node.cell.leading || undefined, { timeoutMs: 10_000, what: 'the node leading' });
    const server = await startMetricsServer(0, { registry: m.registry });
    cleanups.push(() => server.close());

    const N = 30;
    const agents: Agent[] = [];
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const agent = new Agent({
        address: node.address,
        agentId: `storm-${i}`,
        kinds: ['echo'],
        slots: 1,
        random: seededRandom(SEED + i),
        backoff: { initialMs: 20, maxMs: 200 },
      });
      agents.push(agent);
      cleanups.push(() => agent.close());
      void agent.start().catch(() => undefined);
    }
    await waitFor(() => node.cell.agents!.byId.size >= N || undefined, {
      timeoutMs: 30_000,
      what: `${N} agents connected`,
    });
    const seconds = (performance.now() - t0) / 1000;
    const adm = node.cell.agents!.admission;
    console.log(`seed ${SEED}: ${N} agents in ${seconds.toFixed(2)} s at ${RATE}/s; refused ${adm.refused}`);
    // The burst (RATE/2) at once, the rest at the rate: it cannot be quicker than that.
    expect(seconds).toBeGreaterThanOrEqual((N - RATE / 2 - 1) / RATE - 0.2);
    expect(adm.refused).toBeGreaterThan(0);
    // Back when told: a handful of refusals each. At their 20-200 ms backoff instead, 25 agents
    // waiting 2.5 s would have been refused some 20 times each.
    expect(adm.refused).toBeLessThan(4 * N);
    expect(agents.filter((x) => x.lastStatus?.codeName === 'RESOURCE_EXHAUSTED').length).toBeGreaterThan(0);

    // A hello the node cannot take ends the stream INVALID_ARGUMENT: counted as bad_message (a stream
    // that comes while the bucket is empty is refused first, as any: tried again, a bounded number of times).
    const raw = new AgentServiceClient(node.address, credentials.createInsecure());
    cleanups.push(() => raw.close());
    const badHello = async (): Promise<StatusObject> => {
      const call = raw.connect();
      const ended = new Promise<StatusObject>((resolve) => call.on('status', resolve));
      call.on('error', () => undefined);
      call.write({
        msg: { $case: 'hello', value: AgentHello.fromPartial({ agentId: 'bad', kinds: ['echo'], slots: 0 }) },
      });
      return ended;
    };
    let bad = await badHello();
    for (let i = 0; i < 50 && bad.code === status.RESOURCE_EXHAUSTED; i++) {
      const until = performance.now() + Number(bad.metadata.get('meshlb-retry-after-ms')[0]);
      await waitFor(() => performance.now() >= until || undefined, { what: 'the retry hint to pass' });
      bad = await badHello();
    }
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.details).toMatch(/slots/);

    // A link stream the zone ends: a hello from a cell that is not its child (NOT_FOUND), counted as refused.
    const zone = await new Replica({
      topology: topo,
      cell: '/r/z',
      dataDir: join(dir, 'z'),
      seed: SEED + 1,
      meter: m.meter,
    }).start();
    cleanups.push(() => zone.close(0));
    await waitFor(() => zone.cell.leading || undefined, { timeoutMs: 10_000, what: 'the zone leading' });
    const links = new LinkServiceClient(zone.address, credentials.createInsecure());
    cleanups.push(() => links.close());
    const link = links.open();
    const linkEnded = new Promise<StatusObject>((resolve) => link.on('status', resolve));
    link.on('error', () => undefined);
    const hello = LinkHello.fromPartial({ cell: '/r/z/stranger', replicaId: 'x', mesh: 'admission' });
    link.write(OpenRequest.fromPartial({ msg: { $case: 'hello', value: hello } }));
    expect((await linkEnded).code).toBe(status.NOT_FOUND);

    const text = await (await fetch(server.url)).text();
    const ends = (reason: string) =>
      sample(text, 'meshlb_streams_ended_total', { cell: NODE, stream: 'agent', reason });
    expect(ends('hello_rate')).toBe(adm.refused);
    expect(ends('bad_message')).toBe(1);
    expect(sample(text, 'meshlb_streams_ended_total', { cell: '/r/z', stream: 'link', reason: 'refused' })).toBe(1);
  });
});
