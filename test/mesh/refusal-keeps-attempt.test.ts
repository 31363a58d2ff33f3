// A dispatch refused before any agent started it keeps its attempt number, over
// real gRPC on loopback: a real root (the home) and a real region /r, and below
// /r a zone /r/z played by the test on the raw LinkService stream. The zone
// accepts attempt 1 (holding its ack until its next summary, as a cell does) and
// refuses it at once for want of capacity below (`requeue:`). The refusal
// passes /r (which drops its route) to the home, which puts the attempt back in
// its queue under the same number and sends it again: the zone sees attempt 1
// twice, under two send numbers (Dispatch.send) on /r's link. The zone's late
// held ack of the first send, and a late give-back naming it, settle or name
// that send only: /r's credits stay exact and the second send stays routed to
// the zone. The task completes as attempt 1 with no failure counted; until
// session 15 it completed as attempt 2 (docs/mesh.md, "Attempt numbers and
// refusals").
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { MeshClient, TaskState } from '../../src/client/index.js';
import {
  LinkServiceClient,
  Summary,
  type DispatchAck,
  type OpenRequest,
  type OpenResponse,
} from '../../src/gen/meshlb/v1/link.js';
import { MeshFailure, ResultStatus, type Dispatch, type TaskResult } from '../../src/gen/meshlb/v1/task.js';
import { meshOf } from '../../src/mesh/mesh-identity.js';
import { Replica } from '../../src/mesh/replica.js';
import { routeKey } from '../../src/mesh/types.js';
import { parseTopology } from '../../src/topology/parse.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 15330);

const TOPO = parseTopology(`
name: refusals
tiers: { global: { policy: least-loaded }, region: { policy: least-loaded } }
defaults: { summaryIntervalMs: 100 }
addressing: { host: 127.0.0.1, basePort: 7000 }
cells:
  name: /
  children:
    - name: r
      children:
        - name: z
          children: [{ name: n }]
        - name: y
          children: [{ name: n }]
`);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const result = (d: Dispatch, ok: boolean): TaskResult => ({
  taskId: d.taskId,
  attempt: d.attempt,
  status: ok ? ResultStatus.RESULT_STATUS_OK : ResultStatus.RESULT_STATUS_ERROR,
  output: Buffer.from(ok ? 'done' : ''),
  error: ok ? '' : 'requeue: no capacity for kind work under /r/z',
  agentId: ok ? 'agent-1' : '',
  nodeCell: ok ? '/r/z/n' : '/r/z',
  runMicros: ok ? 10 : 0,
  meshFailure: ok ? MeshFailure.MESH_FAILURE_UNSPECIFIED : MeshFailure.MESH_FAILURE_REQUEUE,
  retryAfterMs: 0,
});

/** The zone /r/z on the raw stream: it answers as the test says. */
class FakeZone {
  readonly call: grpc.ClientDuplexStream<OpenRequest, OpenResponse>;
  readonly dispatches: Dispatch[] = [];
  private seq = 0;

  constructor(
    address: string,
    private readonly onDispatch: (d: Dispatch) => void,
    private readonly cell = '/r/z',
    private readonly free = 4,
  ) {
    const client = new LinkServiceClient(address, grpc.credentials.createInsecure());
    this.call = client.open();
    this.call.on('data', (m: OpenResponse) => {
      if (m.msg?.$case !== 'dispatches') return;
      for (const d of m.msg.value.tasks) {
        this.dispatches.push(d);
        this.onDispatch(d);
      }
    });
    this.call.on('error', () => {});
    const mesh = meshOf(TOPO);
    this.send({
      msg: {
        $case: 'hello',
        value: {
          cell: this.cell,
          replicaId: `${this.cell}#1`,
          term: 0,
          holding: [],
          mesh: mesh.name,
          meshId: mesh.id,
          parentCell: '/r',
          sendNumbers: true,
        },
      },
    });
    this.summary();
    cleanups.push(() => {
      this.call.cancel();
      client.close();
    });
  }

  send(m: OpenRequest): void {
    this.call.write(m);
  }

  /** A summary: 4 free slots of kind work. Returns its seq. */
  summary(): number {
    const s = Summary.fromPartial({
      cell: this.cell,
      seq: ++this.seq,
      kinds: [
        {
          kind: 'work',
          freeSlots: this.free,
          totalSlots: 4,
          healthyAgents: 1,
          largestFree: this.free,
          largestTotal: 4,
        },
      ],
      healthyAgents: 1,
      successEwma: 1,
    });
    this.send({ msg: { $case: 'summary', value: s } });
    return s.seq;
  }

  acks(acks: DispatchAck[]): void {
    this.send({ msg: { $case: 'acks', value: { acks } } });
  }

  results(results: TaskResult[]): void {
    this.send({ msg: { $case: 'results', value: { results } } });
  }
}

const accepted = (d: Dispatch): DispatchAck => ({
  taskId: d.taskId,
  attempt: d.attempt,
  accepted: true,
  reason: '',
  send: d.send,
});

describe(`a refused dispatch keeps its attempt number (seed ${SEED})`, () => {
  it('refused below a real region, sent again as attempt 1 under a new send number, completes as attempt 1', async () => {
    const root = await new Replica({ topology: TOPO, cell: '/', host: '127.0.0.1', port: 0, seed: SEED }).start();
    cleanups.push(() => root.close(0));
    const region = await new Replica({
      topology: TOPO,
      cell: '/r',
      host: '127.0.0.1',
      port: 0,
      seed: SEED + 1,
      parentAddresses: () => [root.address],
    }).start();
    cleanups.push(() => region.close(0));

    const zone = new FakeZone(region.address, (d) => {
      // The first send: accepted (its ack held for the next summary), then refused for want of capacity.
      if (zone.dispatches.length === 1) zone.results([result(d, false)]);
    });
    const link = () => region.cell.children!.links.get('/r/z');
    // A sibling zone with no free slot: never sent anything, it writes a stale refusal later.
    const other = new FakeZone(region.address, () => {}, '/r/y', 0);
    await waitFor(() => root.cell.children?.links.get('/r')?.summary?.kinds.some((k) => k.freeSlots > 0), {
      timeoutMs: 10_000,
      what: "the zone's capacity reported to the root through /r",
    });

    const client = new MeshClient({ address: root.address, deadlineMs: 10_000 });
    cleanups.push(() => client.close());
    const taskId = (await client.submitBatch([{ kind: 'work', timeoutMs: 30_000 }]))[0]!.taskId;
    await waitFor(() => zone.dispatches.length >= 2, { timeoutMs: 10_000, what: 'the attempt sent again' });
    const [first, second] = zone.dispatches as [Dispatch, Dispatch];
    expect([first.taskId, second.taskId]).toEqual([taskId, taskId]);
    expect([first.attempt, second.attempt]).toEqual([1, 1]);
    expect(first.send).toBeGreaterThan(0);
    expect(second.send).toBeGreaterThan(0);
    expect(second.send).not.toBe(first.send);
    // Both sends await their acks at /r: two entries, not one overwritten (session 14's `credits` cases).
    expect(link()!.sent.size).toBe(2);
    expect(link()!.unacked.get('work')).toBe(2);

    // The late ack of the first send settles the first send only.
    zone.acks([accepted(first)]);
    await waitFor(() => link()!.sent.size === 1, { timeoutMs: 5000, what: "/r to read the first send's ack" });
    expect(link()!.unacked.get('work')).toBe(1);
    expect(link()!.sent.get(second.send)?.taskId).toBe(taskId);
    // A late give-back naming the first send is not the second's: the attempt stays routed to the zone.
    zone.send({
      msg: { $case: 'givenBack', value: { refs: [{ taskId, attempt: 1, slots: 0 }], sends: [first.send] } },
    });
    zone.acks([accepted(second)]);
    const seq = zone.summary();
    await waitFor(() => (link()!.summary?.seq ?? 0) >= seq, { timeoutMs: 5000, what: '/r to read the summary' });
    expect(link()!.unacked.get('work')).toBeUndefined();
    expect(link()!.sent.size).toBe(0);
    const route = region.cell.routes.get(routeKey(taskId, 1));
    expect(route?.via).toEqual({ type: 'child', cell: '/r/z' });
    expect(route?.sendNo).toBe(second.send);
    expect(zone.dispatches).toHaveLength(2);
    // A refusal from another link than where the attempt went (as a child re-sending results after a
    // break would write one) answers no send of ours there: dropped, the route stays.
    other.results([result(first, false)]);
    const otherSeq = other.summary();
    await waitFor(() => (region.cell.children!.links.get('/r/y')?.summary?.seq ?? 0) >= otherSeq, {
      timeoutMs: 5000,
      what: "/r to read /r/y's summary",
    });
    expect(region.cell.routes.get(routeKey(taskId, 1))?.via).toEqual({ type: 'child', cell: '/r/z' });
    expect(root.cell.home.refusals.stats.kept).toBe(1);
    expect(other.dispatches).toHaveLength(0);

    zone.results([result(second, true)]);
    const done = await client.waitForResult(taskId, { timeoutMs: 10_000 });
    expect(TaskState[done.state]).toBe('TASK_STATE_COMPLETED');
    expect(done.attempt).toBe(1);
    expect(root.cell.ledger.get(taskId)?.failures).toBe(0);
    expect(root.cell.home.refusals.stats).toEqual({ kept: 1, renumbered: 0 });
    expect(zone.dispatches).toHaveLength(2);
  }, 60_000);
});
