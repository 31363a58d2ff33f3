// A cell sent a task none of its subtree can match gives it back at once,
// "no match below", over real gRPC (docs/mesh.md, "Affinity through the
// tiers"). Node /a/z/n1's agents carry too many label keys for a summary to
// describe (past the bounds: labels_known false), so every tier above it says
// "may match anything" and the root sends a gpu=a100 task down there, where no
// agent matches. Until session 16 the task waited at the node for its lease,
// was retried there and ended DEAD_LETTERED "lease lapsed"; now the node gives
// it back, the root skips /a for it while /a's label description stays as it
// is (one refusal, not one per retry), GetTask at the root says it waits and
// why, and it ends "no agent of kind echo matches gpu=a100" after
// unplaceableTimeoutMs, as a task nothing matches does at its home.
//
// The second mesh makes the root's summary of /a stale (its link keeps the
// summary from when n1 had a gpu=a100 agent): the root sends the task there,
// /a gives it back, the root holds it without asking /a again while that view
// stands, and sends it down once /a's labels change and name the agent again.
import { credentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { AdminServiceClient, type GetCellResponse, type GetTaskResponse } from '../../src/gen/meshlb/v1/admin.js';
import type { Summary } from '../../src/gen/meshlb/v1/link.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import type { SimAgent } from '../../src/dev/sim-agent.js';
import { parseTopology } from '../../src/topology/parse.js';
import { waitFor } from '../helpers/wait.js';
import { SEED, startTestMesh, type TestMesh } from './mesh-helpers.js';

const TOPOLOGY = parseTopology(`
name: no-match-below
tiers:
  global: { policy: global-geo }
  region: { policy: region-wrr }
  zone: { policy: zone-least-conn }
  node: { policy: node-score }
addressing: { host: 127.0.0.1, basePort: 7300 }
cells:
  name: /
  children:
    - name: a
      children:
        - { name: z, children: [{ name: n1 }, { name: n2 }] }
`);

const WAIT_MS = 4000;
/** Agents of n1 (more label sets than a summary describes, each with 17 keys of its own values: undescribed). */
const CROWD = 9;

describe(`a task no agent below matches is given back at once, over real gRPC (seed ${SEED})`, () => {
  let t: TestMesh;
  let admin: AdminServiceClient;
  let client: MeshClient;

  beforeAll(async () => {
    // Leases of 2.5 s: before session 16 the task lapsed three of them at n1 and ended "lease lapsed".
    t = await startTestMesh(
      { unplaceableTimeoutMs: WAIT_MS, taskTimeoutMs: 2000, leaseSlackMs: 500, maxAttempts: 3 },
      TOPOLOGY,
    );
    for (let i = 0; i < CROWD; i++) {
      const labels = Array.from({ length: 17 }, (_, k) => ({ key: `k${k}`, value: `agent${i}-${k}` }));
      await t.addAgent('/a/z/n1', { agentId: `crowd-${i}`, labels, serviceTimeMs: 5 });
    }
    await t.addAgent('/a/z/n2', { agentId: 'plain', serviceTimeMs: 5 });
    await t.mesh.ready();
    admin = new AdminServiceClient(t.mesh.address('/'), credentials.createInsecure());
    client = new MeshClient({ address: t.mesh.address('/') });
  });

  afterAll(async () => {
    admin?.close();
    client?.close();
    await t?.close();
  });

  const rootCell = () =>
    new Promise<GetCellResponse>((resolve, reject) =>
      admin.getCell({ path: '' }, (err, res) => (err ? reject(err) : resolve(res))),
    );

  it('n1 gives it back "no match below", the root holds it as unplaceable, saying why, and it ends "no agent ... matches"', async () => {
    // The root sees /a's agents of echo undescribed (any affinity may match there).
    await waitFor(
      () =>
        t.mesh.replicas
          .get('/')!
          .cell.children!.candidates(Date.now())
          .some((c) => c.id === '/a' && c.slots.get('echo') !== undefined && !c.kindLabels?.has('echo')),
      { timeoutMs: 5000, what: "the root's view of /a: echo, its labels undescribed" },
    );
    const plain = await client.submit({ kind: 'echo' });
    const sent = await client.submit({ kind: 'echo', affinity: { gpu: 'a100' } });
    // One homed at /a: given back by n1 to /a, which hands it up to the root (nothing else below /a may
    // match); the root, /a excluded, holds it as unplaceable, and its home ends it with the same reason.
    const atRegion = new MeshClient({ address: t.mesh.address('/a') });
    const fromA = await atRegion.submit({ kind: 'echo', affinity: { gpu: 'a100' } });
    expect((await client.waitForResult(plain.taskId, { timeoutMs: 10_000 })).state).toBe(
      TaskState.TASK_STATE_COMPLETED,
    );
    // Given back by n1 and held at the root for want of a match: counted there as unplaceable.
    await waitFor(async () => (await rootCell()).unplaceable === 2, { timeoutMs: 5000, what: '2 unplaceable at "/"' });
    const waiting = await client.get(sent.taskId);
    expect({ state: TaskState[waiting.state], attempt: waiting.attempt }).toEqual({
      state: 'TASK_STATE_QUEUED',
      attempt: 1,
    });
    expect(waiting.waiting).toBe(
      'refused by /a/z/n1: no match below /a/z/n1: no agent of kind echo matches gpu=a100; ' +
        'now waiting: no agent of kind echo matches gpu=a100',
    );
    const done = await client.waitForResult(sent.taskId, { timeoutMs: 20_000 });
    expect({ state: TaskState[done.state], reason: done.reason, attempt: done.attempt }).toEqual({
      state: 'TASK_STATE_DEAD_LETTERED',
      reason: 'no agent of kind echo matches gpu=a100',
      attempt: 1,
    });
    // It waited the limit at the root, not leases at n1; /a was not asked again (its labels unchanged).
    expect(done.updatedUnixMs - done.createdUnixMs).toBeGreaterThanOrEqual(WAIT_MS);
    const doneA = await atRegion.waitForResult(fromA.taskId, { timeoutMs: 20_000 });
    atRegion.close();
    expect({ state: TaskState[doneA.state], reason: doneA.reason, attempt: doneA.attempt }).toEqual({
      state: 'TASK_STATE_DEAD_LETTERED',
      reason: 'no agent of kind echo matches gpu=a100',
      attempt: 1,
    });
    const root = await rootCell();
    expect(root.refusals).toMatchObject({ noMatchBelow: 1, kept: 1, renumbered: 0 });
  }, 40_000);
});

describe(`a task sent on a stale summary comes back "no match below", over real gRPC (seed ${SEED})`, () => {
  let t: TestMesh;
  let admin: AdminServiceClient;
  let client: MeshClient;
  const a100 = [{ key: 'gpu', value: 'a100' }];
  let first: SimAgent;

  beforeAll(async () => {
    t = await startTestMesh({ unplaceableTimeoutMs: 30_000, taskTimeoutMs: 2000, leaseSlackMs: 500 }, TOPOLOGY);
    first = await t.addAgent('/a/z/n1', { agentId: 'a100-first', labels: a100, serviceTimeMs: 5 });
    await t.addAgent('/a/z/n2', { agentId: 'plain', serviceTimeMs: 5 });
    await t.mesh.ready();
    admin = new AdminServiceClient(t.mesh.address('/'), credentials.createInsecure());
    client = new MeshClient({ address: t.mesh.address('/') });
  });

  afterAll(async () => {
    admin?.close();
    client?.close();
    await t?.close();
  });

  const rootCell = () =>
    new Promise<GetCellResponse>((resolve, reject) =>
      admin.getCell({ path: '' }, (err, res) => (err ? reject(err) : resolve(res))),
    );
  /** Whether `cell`'s view of its child `child` names a gpu=a100 agent of echo. */
  const sees = (cell: string, child: string) =>
    t.mesh.replicas
      .get(cell)!
      .cell.children!.candidates(Date.now())
      .some(
        (c) =>
          c.id === child && c.kindLabels?.get('echo')?.groups.some((g) => g.labels.some((l) => l.value === 'a100')),
      );

  it('sent to /a on a view that names an agent gone, it is held at the root until /a says otherwise, then runs there', async () => {
    await waitFor(() => sees('/', '/a'), { timeoutMs: 5000, what: "the root's view of /a names gpu=a100" });
    // Freeze the root's view of /a: its link keeps this summary, whatever /a sends next.
    const link = t.mesh.replicas.get('/')!.cell.children!.links.get('/a')!;
    let latest: [Summary, number] | undefined;
    link.applySummary = (s, now) => void (latest = [s, now]);
    first.end();
    // Below the root everyone knows it left.
    await waitFor(() => !sees('/a', '/a/z') && !sees('/a/z', '/a/z/n1'), { timeoutMs: 5000, what: 'the agent gone' });
    expect(sees('/', '/a')).toBe(true); // stale
    const sent = await client.submit({ kind: 'echo', affinity: { gpu: 'a100' } });
    await waitFor(async () => (await rootCell()).unplaceable === 1, { timeoutMs: 5000, what: '1 unplaceable at "/"' });
    const waiting = await client.get(sent.taskId);
    expect([TaskState[waiting.state], waiting.attempt]).toEqual(['TASK_STATE_QUEUED', 1]);
    expect(waiting.waiting).toMatch(/^refused by \/a: no match below \/a: no agent of kind echo matches gpu=a100; /);
    // AdminService.GetTask says so too, in `location`.
    const adminView = await new Promise<GetTaskResponse>((resolve, reject) =>
      admin.getTask({ taskId: sent.taskId, cell: '/' }, (err, res) => (err ? reject(err) : resolve(res))),
    );
    expect(adminView.task?.state).toBe(TaskState.TASK_STATE_QUEUED);
    expect(adminView.location).toMatch(/^waiting: refused by \/a: no match below \/a: /);
    // Not asked again while the view stands: the root's picker is rebuilt (each summary /a still sends
    // marks it stale, and a pump reconsiders the held task) several times over with no second send.
    const dispatcher = t.mesh.replicas.get('/')!.cell.dispatcher;
    const rebuilds = dispatcher.rebuilds;
    await waitFor(() => dispatcher.rebuilds >= rebuilds + 5, {
      timeoutMs: 5000,
      what: '5 more picker rebuilds at "/"',
    });
    expect((await rootCell()).refusals).toMatchObject({ noMatchBelow: 1, kept: 1 });
    // The view moves on (summaries from /a are taken again), and a gpu=a100 agent comes back to n1.
    delete (link as Partial<typeof link>).applySummary;
    if (latest) link.applySummary(...latest);
    await t.addAgent('/a/z/n1', { agentId: 'a100-again', labels: a100, serviceTimeMs: 5 });
    const done = await client.waitForResult(sent.taskId, { timeoutMs: 15_000 });
    expect([TaskState[done.state], done.result?.agentId, done.attempt]).toEqual([
      'TASK_STATE_COMPLETED',
      'a100-again',
      1,
    ]);
    expect((await rootCell()).refusals).toMatchObject({ noMatchBelow: 1, renumbered: 0 });
  }, 40_000);
});
