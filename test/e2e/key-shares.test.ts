// Key shares over real gRPC through the four tiers (docs/flow-control.md,
// "Key shares"): SetKeyShare asked at a zone is answered by the root and
// recorded in its log; a key with a ceiling of 3 (and no limit) never has more
// than 3 attempts running at the agents (counted at every start) while other
// work fills the slots, its waiting tasks say why in GetTask, GetFlow shows its
// count; bad shares are refused with INVALID_ARGUMENT; all 0 return the key to
// the topology's (none here).
import { status } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { seededRandom } from '../../src/policies/index.js';
import { adminAt } from '../admin/admin-client.js';
import { waitFor } from '../helpers/wait.js';
import { SEED, startTestMesh, type TestMesh } from './mesh-helpers.js';

const CEILING = 3;

describe(`key shares over gRPC (seed ${SEED})`, () => {
  let t: TestMesh | undefined;
  let client: MeshClient | undefined;
  afterAll(async () => {
    client?.close();
    await t?.close();
  });

  it('a ceiling of 3 holds at the agents, waiting tasks say why, GetFlow counts; bad shares are refused', async () => {
    t = await startTestMesh();
    const keyOf = new Map<string, string>();
    let cappedStarts = 0;
    let cappedPeak = 0;
    let n = 0;
    const cappedRunning = (): number => {
      let c = 0;
      for (const a of t!.agents)
        for (const ref of a.heldRefs()) if (keyOf.get(ref.slice(0, ref.lastIndexOf('#'))) === 'capped') c++;
      return c;
    };
    for (const node of t.mesh.nodes)
      await t.addAgent(node, {
        agentId: `w${n++}`,
        slots: 2,
        serviceTimeMs: 150,
        random: seededRandom(SEED + n),
        onStart: (d) => {
          const key = d.spec?.concurrencyKey ?? '';
          keyOf.set(d.taskId, key);
          if (key !== 'capped') return;
          cappedStarts++;
          cappedPeak = Math.max(cappedPeak, cappedRunning() + 1); // called before the agent holds it
        },
      });
    await t.mesh.ready();

    const admin = adminAt(t.mesh.address('/eu/west-1a'));
    const set = await admin.call('setKeyShare', { key: 'capped', weight: 2, minSlots: 1, maxSlots: CEILING });
    expect(set.key).toMatchObject({ key: 'capped', weight: 2, minSlots: 1, maxSlots: CEILING, runtime: true });
    for (const [req, why] of [
      [{ key: 'capped', minSlots: 5, maxSlots: 2 }, /min_slots \(5\) must not exceed max_slots \(2\)/],
      [{ key: '', maxSlots: 2 }, /key is required/],
      [{ key: 'tenant:*', weight: 2 }, /tenant:\* is a template/],
      [{ key: 'capped', weight: 5000 }, /weight must be 0..1000, got 5000/],
      [{ key: 'capped', maxSlots: 2, cell: '/eu' }, /root cell/],
    ] as const) {
      const bad = await admin.refused('setKeyShare', req);
      expect(bad.code).toBe(status.INVALID_ARGUMENT);
      expect(bad.details).toMatch(why);
    }

    client = new MeshClient({ address: t.mesh.address('/'), deadlineMs: 20_000 });
    const specs: { kind: string; concurrencyKey?: string; payload: string }[] = [];
    for (let i = 0; i < 40; i++) {
      specs.push({ kind: 'echo', concurrencyKey: 'capped', payload: `c${i}` });
      specs.push({ kind: 'echo', payload: `b${i}` }, { kind: 'echo', payload: `x${i}` });
    }
    const items = await client.submitBatch(specs);
    expect(items.every((it) => it.ok)).toBe(true);
    const cappedIds = items.filter((_, i) => specs[i]!.concurrencyKey === 'capped').map((it) => it.taskId);

    // While capped tasks wait: one says why, and GetFlow shows the count at the ceiling with tasks waiting.
    const root = adminAt(t.mesh.address('/'));
    let sawWaiting = false;
    await waitFor(
      async () => {
        const flow = await root.call('getFlow', {});
        const share = flow.keyShares.find((s) => s.key === 'capped');
        expect(share?.inFlight ?? 0).toBeLessThanOrEqual(CEILING);
        if (!share || share.waiting === 0) return false;
        for (const id of cappedIds) {
          const got = await root.call('getTask', { taskId: id });
          if (got.location === `waiting: concurrency key capped at its ceiling of ${CEILING}`) sawWaiting = true;
          if (sawWaiting) break;
        }
        return sawWaiting;
      },
      { timeoutMs: 20_000, what: 'a capped task waiting for its ceiling' },
    );

    await waitFor(() => cappedStarts >= 40, { timeoutMs: 60_000, what: 'every capped task started' });
    const results = await Promise.all(items.map((it) => client!.waitForResult(it.taskId, { timeoutMs: 60_000 })));
    expect(results.every((r) => r.stateName === 'completed')).toBe(true);
    console.log(
      `capped: ${cappedStarts} starts, at most ${cappedPeak} running at once at the agents (ceiling ${CEILING})`,
    );
    expect(cappedPeak).toBe(CEILING); // reached, never passed
    const flow = await root.call('getFlow', {});
    expect(flow.keyShares).toEqual([
      {
        key: 'capped',
        weight: 2,
        minSlots: 1,
        maxSlots: CEILING,
        inFlight: 0,
        lingering: 0,
        waiting: 0,
        runtime: true,
      },
    ]);
    // All 0: back to the topology's share (none here): the key is no longer listed.
    await root.call('setKeyShare', { key: 'capped' });
    expect((await root.call('getFlow', {})).keyShares).toEqual([]);
    root.close();
    admin.close();
  });
});
