// Version ramps over real gRPC through the four tiers (docs/flow-control.md,
// "Version ramps"): two node cells each run agents of v1 and v2 of one kind;
// SetVersionRamp (every node cell) sends 20% to v2, and every task runs on
// the version its pin chose (retries and sessions included); at 100% v1 takes
// nothing new and GetVersionRamp shows it draining, then drained; ListAgents
// shows each agent's version.
import { status } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import type { Dispatch } from '../../src/gen/meshlb/v1/task.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { toNewVersion } from '../../src/policies/version-split.js';
import { adminAt } from '../admin/admin-client.js';
import { waitFor } from '../helpers/wait.js';
import { SEED, startTestMesh, type TestMesh } from './mesh-helpers.js';

describe(`version ramps over gRPC (seed ${SEED})`, () => {
  let t: TestMesh | undefined;
  let client: MeshClient | undefined;
  afterAll(async () => {
    client?.close();
    await t?.close();
  });

  it('a 20% ramp: every task runs on the version its pin chose; sessions stay on one version', async () => {
    t = await startTestMesh();
    const ranOn = new Map<string, string>(); // taskId -> version of the agent that started it
    const nodes = [t.mesh.nodes[0]!, t.mesh.nodes[5]!];
    for (const [n, node] of nodes.entries())
      for (const version of ['v1', 'v2'])
        await t.addAgent(node, {
          agentId: `${version}-${n}`,
          version,
          slots: 8,
          serviceTimeMs: 5,
          kinds: ['ramp'],
          onStart: (d: Dispatch) => ranOn.set(d.taskId, version),
        });
    await t.mesh.ready();
    client = new MeshClient({ address: t.mesh.address('/') });
    // Asked at a zone for every node cell: each node cell's leader commits it.
    const admin = adminAt(t.mesh.address('/eu/west-1a'));
    try {
      const set = await admin.call('setVersionRamp', { kind: 'ramp', version: 'v2', percent: 20 });
      expect(set.cells).toHaveLength(t.mesh.nodes.length);
      expect(set.cells.every((c) => c.error === '')).toBe(true);

      const items = await client.submitBatch(
        Array.from({ length: 600 }, (_, i) => ({
          kind: 'ramp',
          payload: `${i}`,
          ...(i % 3 === 0 ? { contextKey: `chat-${i % 12}` } : {}),
        })),
      );
      const root = t.mesh.replicas.get('/')!.cell;
      await waitFor(() => items.every((it) => root.ledger.get(it.taskId)!.state === TaskState.TASK_STATE_COMPLETED), {
        timeoutMs: 30_000,
        what: 'every ramped task completed',
      });
      let v2 = 0;
      items.forEach((it, i) => {
        const pin = i % 3 === 0 ? `chat-${i % 12}` : it.taskId;
        const want = toNewVersion(pin, 20) ? 'v2' : 'v1';
        expect(ranOn.get(it.taskId), `task ${i} (${pin})`).toBe(want);
        if (want === 'v2') v2++;
      });
      // Both sides got work (the split's figure itself is the unit test's: test/policies/version-split.test.ts).
      expect(v2).toBeGreaterThan(60);
      expect(v2).toBeLessThan(240);

      const status1 = await admin.call('getVersionRamp', { kind: 'ramp' });
      const total = status1.ramps.find((r) => r.cell === '')!;
      expect(total).toMatchObject({ kind: 'ramp', version: 'v2', percent: 20 });
      expect(total.versions.map((v) => [v.version, v.ramped, v.agents, v.state])).toEqual([
        ['v2', true, 2, 'serving'],
        ['v1', false, 2, 'serving'],
      ]);
      expect(status1.ramps.filter((r) => r.cell !== '')).toHaveLength(t.mesh.nodes.length);
      const agents = await admin.call('listAgents', {});
      expect(agents).toBeDefined();
      const atNode = adminAt(t.mesh.address(nodes[0]!));
      try {
        const listed = await atNode.call('listAgents', {});
        expect(listed.agents.map((a) => [a.agentId, a.version]).sort()).toEqual([
          ['v1-0', 'v1'],
          ['v2-0', 'v2'],
        ]);
      } finally {
        atNode.close();
      }
    } finally {
      admin.close();
    }
  });

  it('at 100%: v1 takes nothing new, shows draining while it runs its last tasks, then drained', async () => {
    const admin = adminAt(t!.mesh.address('/'));
    const node = t!.mesh.nodes[0]!;
    try {
      // A slow v1-only kind pair: the long tasks hold v1 busy while the ramp moves to 100%.
      const started: string[] = [];
      const slow = await t!.addAgent(node, {
        agentId: 'old-slow',
        version: 'v1',
        slots: 2,
        serviceTimeMs: 1500,
        kinds: ['slow'],
      });
      await t!.addAgent(node, {
        agentId: 'new-slow',
        version: 'v2',
        slots: 4,
        serviceTimeMs: 20,
        kinds: ['slow'],
        onStart: (d) => started.push(d.taskId),
      });
      await t!.mesh.ready();
      await admin.call('setVersionRamp', { cell: node, kind: 'slow', version: 'v2', percent: 0 });
      const first = await client!.submitBatch([{ kind: 'slow' }, { kind: 'slow' }]);
      await waitFor(() => slow.inFlight === 2, { timeoutMs: 10_000, what: 'v1 running two tasks' });
      await admin.call('setVersionRamp', { cell: node, kind: 'slow', version: 'v2', percent: 100 });
      const draining = await admin.call('getVersionRamp', { cell: node, kind: 'slow' });
      expect(draining.ramps[0]!.versions.find((v) => v.version === 'v1')).toMatchObject({
        inFlight: 2,
        state: 'draining',
      });
      const next = await client!.submitBatch(Array.from({ length: 10 }, () => ({ kind: 'slow' })));
      const root = t!.mesh.replicas.get('/')!.cell;
      const done = [...first, ...next];
      await waitFor(() => done.every((it) => root.ledger.get(it.taskId)!.state === TaskState.TASK_STATE_COMPLETED), {
        timeoutMs: 20_000,
        what: 'all slow tasks completed',
      });
      expect(started.sort()).toEqual(next.map((it) => it.taskId).sort());
      expect(slow.completed).toBe(2);
      const drained = await admin.call('getVersionRamp', { cell: node, kind: 'slow' });
      expect(drained.ramps[0]!.versions).toEqual([
        { version: 'v2', ramped: true, agents: 1, inFlight: 0, state: 'serving' },
        { version: 'v1', ramped: false, agents: 1, inFlight: 0, state: 'drained' },
      ]);
      // Reset: every agent of the kind serves it again.
      await admin.call('setVersionRamp', { cell: node, kind: 'slow', reset: true });
      expect((await admin.call('getVersionRamp', { cell: node })).ramps.map((r) => r.kind)).toEqual(['ramp']);
    } finally {
      admin.close();
    }
  });

  it('refuses bad ramps: a cell that is not a node, a percent over 100, no version', async () => {
    const admin = adminAt(t!.mesh.address('/'));
    try {
      const code = (p: Promise<unknown>) =>
        p.then(
          () => status.OK,
          (e: { code: status }) => e.code,
        );
      expect(await code(admin.call('setVersionRamp', { cell: '/eu', kind: 'k', version: 'v2', percent: 5 }))).toBe(
        status.FAILED_PRECONDITION,
      );
      expect(await code(admin.call('setVersionRamp', { kind: 'k', version: 'v2', percent: 101 }))).toBe(
        status.INVALID_ARGUMENT,
      );
      expect(await code(admin.call('setVersionRamp', { kind: 'k', percent: 5 }))).toBe(status.INVALID_ARGUMENT);
      expect(await code(admin.call('getVersionRamp', { cell: '/us' }))).toBe(status.FAILED_PRECONDITION);
    } finally {
      admin.close();
    }
  });
});
