// Link liveness over real gRPC on loopback: a parent ends the link of a child
// that goes silent (stream open, nothing sent) within about linkTimeoutMs and
// re-dispatches its in-flight attempts at once, not after the lease; a child
// cancels and reconnects to a parent that goes silent; quiet but live links
// (summaries one way, keepalives the other) stay up; GetCell tells the truth.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminServiceClient, type GetCellResponse } from '../../src/gen/meshlb/v1/admin.js';
import {
  LinkServiceClient,
  LinkServiceService,
  Summary,
  type OpenRequest,
  type OpenResponse,
} from '../../src/gen/meshlb/v1/link.js';
import { MeshFailure, ResultStatus, TaskSpec, TaskState, type Dispatch } from '../../src/gen/meshlb/v1/task.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { Replica } from '../../src/mesh/replica.js';
import { parseTopology } from '../../src/topology/parse.js';
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { stallMeter, type StallMeter } from '../helpers/stall-meter.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 31337);
const LINK_TIMEOUT_MS = 400;
const SUMMARY_MS = 100;
/**
 * Detection must come after the timeout and within this much past it (ticks, the suspect tick), plus the
 * time this process stood still meanwhile (a cell leaves its own stalls out of a silence: stall-meter.ts).
 */
const DETECT_SLACK_MS = 1500;
/** How long a wait for a detection may take before the test gives up (a loaded machine stalls it for seconds). */
const DETECT_WAIT_MS = 15_000;
const TASK_TIMEOUT_MS = 30_000; // lease 32 s: anything faster than that was not the lease

const TOPO = parseTopology(`
name: liveness
tiers: { global: { policy: least-loaded }, region: { policy: least-loaded } }
defaults: { summaryIntervalMs: ${SUMMARY_MS}, linkTimeoutMs: ${LINK_TIMEOUT_MS} }
addressing: { host: 127.0.0.1, basePort: 7000 }
cells:
  name: /
  children: [{ name: a }, { name: b }]
`);

const CHAIN = parseTopology(
  chainTopologyYaml({
    name: 'liveness-chain',
    policies: { global: 'least-loaded', region: 'least-loaded', zone: 'least-loaded' },
    defaults: { summaryIntervalMs: SUMMARY_MS, linkTimeoutMs: LINK_TIMEOUT_MS },
  }),
);

const cleanups: (() => Promise<void> | void)[] = [];
/** A stall meter started now, stopped after the test. */
function meter(): StallMeter {
  const m = stallMeter();
  cleanups.push(() => m.stop());
  return m;
}
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function summary(cell: string, seq: number, free: number): Summary {
  return Summary.fromPartial({
    cell,
    seq,
    kinds: [{ kind: 'k', freeSlots: free, totalSlots: 4, healthyAgents: 1, prefetchSlots: 0 }],
    healthyAgents: 1,
    successEwma: 1,
  });
}

/** A child cell on the raw LinkService stream, driven by the test. */
class FakeChild {
  readonly client: LinkServiceClient;
  readonly call: grpc.ClientDuplexStream<OpenRequest, OpenResponse>;
  readonly dispatches: Dispatch[] = [];
  keepalives = 0;
  welcomed = false;
  status: grpc.StatusObject | undefined;
  lastWriteMs = 0;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    address: string,
    readonly cell: string,
    private readonly onDispatch?: (d: Dispatch, child: FakeChild) => void,
  ) {
    this.client = new LinkServiceClient(address, grpc.credentials.createInsecure());
    this.call = this.client.open();
    this.call.on('data', (m: OpenResponse) => {
      const msg = m.msg;
      if (msg?.$case === 'welcome') this.welcomed = true;
      else if (msg?.$case === 'acks' && msg.value.acks.length === 0) this.keepalives++;
      else if (msg?.$case === 'dispatches') {
        for (const d of msg.value.tasks) {
          this.dispatches.push(d);
          this.onDispatch?.(d, this);
        }
      }
    });
    this.call.on('status', (s) => (this.status = s));
    this.call.on('error', () => {});
    this.send({
      msg: {
        $case: 'hello',
        value: {
          cell,
          replicaId: `${cell}#1`,
          term: 0,
          holding: [],
          mesh: '',
          meshId: '',
          parentCell: '',
          sendNumbers: false,
        },
      },
    });
    this.sendSummary(4);
    cleanups.push(() => this.close());
  }

  send(m: OpenRequest): void {
    this.call.write(m);
    this.lastWriteMs = Date.now();
  }

  sendSummary(free: number): void {
    this.send({ msg: { $case: 'summary', value: summary(this.cell, ++this.seq, free) } });
  }

  /** Behave like a live child: a summary every SUMMARY_MS. */
  keepReporting(free: () => number): void {
    this.timer = setInterval(() => this.sendSummary(free()), SUMMARY_MS);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.call.cancel();
    this.client.close();
  }
}

function adminGetCell(address: string): Promise<GetCellResponse> {
  const admin = new AdminServiceClient(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) =>
    admin.getCell({ path: '' }, (err, res) => {
      admin.close();
      if (err) reject(err);
      else resolve(res);
    }),
  );
}

describe(`link liveness (seed ${SEED})`, () => {
  it('a parent ends the link of a silent child within ~linkTimeoutMs and re-dispatches its attempts at once', async () => {
    const root = await new Replica({
      topology: TOPO,
      cell: '/',
      host: '127.0.0.1',
      port: 0,
      seed: SEED,
      taskTimeoutMs: TASK_TIMEOUT_MS,
    }).start();
    cleanups.push(() => root.close(0));
    const cell = root.cell;

    // Child a: hello and one summary (4 free), then nothing, stream left open.
    const a = new FakeChild(root.address, '/a');
    await waitFor(() => cell.children!.links.get('/a')?.summary, { timeoutMs: 5000, what: '/a summary at the root' });
    const outcomes = await cell.submit(
      Array.from({ length: 3 }, () => TaskSpec.fromPartial({ kind: 'k', timeoutMs: TASK_TIMEOUT_MS })),
    );
    const ids = outcomes.map((o) => o.id);
    await waitFor(() => a.dispatches.length === 3, { timeoutMs: 5000, what: 'three dispatches at /a' });
    expect(a.dispatches.every((d) => d.attempt === 1)).toBe(true);
    const stalls = meter();
    expect((await adminGetCell(root.address)).children.find((c) => c.cell === '/a')?.connected).toBe(true);

    const detectedAt = await waitFor(() => (!cell.children!.links.has('/a') ? Date.now() : undefined), {
      timeoutMs: DETECT_WAIT_MS,
      intervalMs: 5,
      what: 'the root to drop the silent /a',
    });
    const silence = detectedAt - a.lastWriteMs;
    const stalled = stalls.stalledMs;
    const why = `silence before detection ${silence} ms, this process stalled ${Math.round(stalled)} ms`;
    expect(silence, why).toBeGreaterThanOrEqual(LINK_TIMEOUT_MS);
    expect(silence, why).toBeLessThan(LINK_TIMEOUT_MS + DETECT_SLACK_MS + stalled);
    expect(cell.children!.stats.timedOut).toBe(1);
    // GetCell says so, and /a's stream was ended with DEADLINE_EXCEEDED.
    expect((await adminGetCell(root.address)).children.find((c) => c.cell === '/a')?.connected).toBe(false);
    await waitFor(() => a.status, { timeoutMs: 5000, what: "/a's stream status" });
    expect(a.status!.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    // The attempts /a held failed back as lost at once: attempt 1 is over, nothing waits for the lease.
    for (const id of ids) {
      const rec = cell.ledger.get(id)!;
      expect(rec.state, `${id} ${TaskState[rec.state]}`).toBe(TaskState.TASK_STATE_QUEUED);
    }

    // A live child b appears: it gets attempt 2 of every task at once and completes them.
    const b = new FakeChild(root.address, '/b', (d, child) =>
      child.send({
        msg: {
          $case: 'results',
          value: {
            results: [
              {
                taskId: d.taskId,
                attempt: d.attempt,
                status: ResultStatus.RESULT_STATUS_OK,
                output: Buffer.from('ok'),
                error: '',
                agentId: 'x',
                nodeCell: '/b',
                runMicros: 1,
                meshFailure: MeshFailure.MESH_FAILURE_UNSPECIFIED,
                retryAfterMs: 0,
              },
            ],
          },
        },
      }),
    );
    b.keepReporting(() => 4);
    await waitFor(() => ids.every((id) => cell.ledger.get(id)!.state === TaskState.TASK_STATE_COMPLETED), {
      timeoutMs: 5000,
      what: 'every task completed on /b',
    });
    const doneAt = Date.now();
    expect(doneAt - a.lastWriteMs, 'recovered long before the 32 s lease').toBeLessThan(
      LINK_TIMEOUT_MS + DETECT_SLACK_MS + 3000 + stalls.stalledMs,
    );
    for (const id of ids) expect(cell.ledger.get(id)!.attempt).toBe(2);
    expect(b.dispatches.map((d) => d.attempt)).toEqual([2, 2, 2]);
    expect(a.dispatches.length).toBe(3);

    // b, quiet but reporting, stays linked well past the timeout, and hears keepalives (counted, not
    // timed: a stalled process sends fewer in a given wall time).
    const kaBefore = b.keepalives;
    const until = Date.now() + 3 * LINK_TIMEOUT_MS;
    await waitFor(() => (Date.now() > until && b.keepalives - kaBefore >= 4) || !cell.children!.links.has('/b'), {
      timeoutMs: DETECT_WAIT_MS,
      what: 'three link timeouts to pass and four keepalives at /b',
    });
    expect(cell.children!.links.has('/b')).toBe(true);
    expect(cell.children!.stats.timedOut).toBe(1);
    expect(b.status).toBeUndefined();
  }, 60_000);

  it('a stream that never says hello is ended DEADLINE_EXCEEDED after linkTimeoutMs', async () => {
    const root = await new Replica({ topology: TOPO, cell: '/', host: '127.0.0.1', port: 0, seed: SEED }).start();
    cleanups.push(() => root.close(0));
    const c = new LinkServiceClient(root.address, grpc.credentials.createInsecure());
    cleanups.push(() => c.close());
    const call = c.open();
    let status: grpc.StatusObject | undefined;
    call.on('status', (st) => (status = st));
    call.on('error', () => {});
    const t0 = Date.now();
    await waitFor(() => status, { timeoutMs: DETECT_WAIT_MS, what: 'the hello-less stream ended' });
    expect(status!.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(LINK_TIMEOUT_MS);
  }, 60_000);

  it('a child cancels a silent parent (welcomed, or never welcomed) within ~linkTimeoutMs and reconnects; a parent sending keepalives keeps it', async () => {
    // The fake parent: per stream, `mode` decides what it does after the hello.
    type Mode = 'welcome-then-silent' | 'silent' | 'keepalive';
    let mode: Mode = 'welcome-then-silent';
    const opened: { mode: Mode; at: number; welcomedAt?: number; cancelledAt?: number }[] = [];
    const server = new grpc.Server();
    server.addService(LinkServiceService, {
      open: (call: grpc.ServerDuplexStream<OpenRequest, OpenResponse>) => {
        const rec: (typeof opened)[number] = { mode, at: Date.now() };
        opened.push(rec);
        let ka: NodeJS.Timeout | undefined;
        call.on('data', (m: OpenRequest) => {
          if (m.msg?.$case !== 'hello') return;
          if (rec.mode === 'silent') return;
          rec.welcomedAt = Date.now();
          call.write({
            msg: {
              $case: 'welcome',
              value: { parentCell: '/', replicaId: '/#1', leader: true, leaderId: '/#1', mesh: '', meshId: '' },
            },
          });
          if (rec.mode === 'keepalive')
            ka = setInterval(() => call.write({ msg: { $case: 'acks', value: { acks: [] } } }), SUMMARY_MS);
        });
        call.on('cancelled', () => {
          rec.cancelledAt ??= Date.now();
          if (ka) clearInterval(ka);
        });
        call.on('error', () => {});
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    cleanups.push(() => new Promise<void>((r) => server.tryShutdown(() => r())));
    const parentAddr = `127.0.0.1:${port}`;

    const child = await new Replica({
      topology: TOPO,
      cell: '/a',
      host: '127.0.0.1',
      port: 0,
      seed: SEED,
      parentAddresses: () => [parentAddr],
    }).start();
    cleanups.push(() => child.close(0));
    const link = child.cell.parent!;

    // 1. Welcomed, then silence: parent_connected goes false after the timeout, the stream is cancelled.
    // Timed from the welcome's writing (the parent's last word; the test sees the link connected later
    // when this process stalls), with the stalls since it.
    const stalls = meter();
    await waitFor(() => link.connected, { timeoutMs: 5000, what: 'the child to be welcomed' });
    const welcomedAt = opened.at(-1)!.welcomedAt!;
    expect((await adminGetCell(child.address)).parentConnected).toBe(true);
    mode = 'silent'; // the next stream gets no welcome at all
    const lostAt = await waitFor(() => (!link.connected ? Date.now() : undefined), {
      timeoutMs: DETECT_WAIT_MS,
      intervalMs: 5,
      what: 'the child to notice the silent parent',
    });
    const why = `lost after ${lostAt - welcomedAt} ms, this process stalled ${Math.round(stalls.stalledMs)} ms`;
    expect(lostAt - welcomedAt, why).toBeGreaterThanOrEqual(LINK_TIMEOUT_MS - 20);
    expect(lostAt - welcomedAt, why).toBeLessThan(LINK_TIMEOUT_MS + DETECT_SLACK_MS + stalls.stalledMs);
    expect((await adminGetCell(child.address)).parentConnected).toBe(false);
    await waitFor(() => opened[0]!.cancelledAt, { timeoutMs: 5000, what: 'the first stream cancelled at the parent' });
    expect(link.stats.timedOut).toBe(1);

    // 2. It reconnects (backoff); a stream that never gets a welcome is given up after the timeout too.
    await waitFor(() => opened.length >= 2, { timeoutMs: 5000, what: 'a reconnect' });
    expect(opened[1]!.mode).toBe('silent');
    mode = 'keepalive';
    await waitFor(() => opened[1]!.cancelledAt, { timeoutMs: DETECT_WAIT_MS, what: 'the unwelcomed stream cancelled' });
    expect(opened[1]!.cancelledAt! - opened[1]!.at).toBeGreaterThanOrEqual(LINK_TIMEOUT_MS - 50);
    expect(link.stats.timedOut).toBe(2);

    // 3. A parent that only sends keepalives keeps the child linked past several timeouts.
    await waitFor(() => link.connected, { timeoutMs: 10_000, what: 'the child linked again' });
    const streams = opened.length;
    const until = Date.now() + 3 * LINK_TIMEOUT_MS;
    await waitFor(() => Date.now() > until || !link.connected, {
      timeoutMs: 10_000,
      what: 'three link timeouts to pass',
    });
    expect(link.connected).toBe(true);
    expect(opened.length).toBe(streams);
    expect(link.stats.timedOut).toBe(2);
    expect((await adminGetCell(child.address)).parentConnected).toBe(true);
  }, 60_000);

  it('an idle real mesh keeps every link up across several timeouts (summaries up, keepalives down)', async () => {
    const mesh: MeshHarness = await startMesh(CHAIN, { seed: SEED });
    cleanups.push(() => mesh.close());
    await mesh.ready();
    const until = Date.now() + 4 * LINK_TIMEOUT_MS;
    await waitFor(() => Date.now() > until, { timeoutMs: 10_000, intervalMs: 50, what: 'four link timeouts to pass' });
    for (const r of mesh.replicas.values()) {
      const c = r.cell;
      if (c.parent) {
        expect(c.parent.connected, c.path).toBe(true);
        expect(c.parent.stats.timedOut, c.path).toBe(0);
        expect(c.parent.stats.opened, c.path).toBe(1);
      }
      if (c.children) {
        expect(c.children.stats.timedOut, c.path).toBe(0);
        expect(c.children.links.size, c.path).toBe(c.spec.children.length);
      }
    }
  }, 60_000);
});
