// A debounce window is held for its length in time, not only by the leader's
// clock: a clock that jumps forward during a window does not end it early.
// Found by the mesh simulator (npm run sim:mesh -- --seed 65 --no-raft, and
// seed 108, with the debounce workload on): the root's clock jumped 112 ms after
// the last submit of a burst; its hold timer, armed for an earlier end, read
// the clock on firing, found the window over and queued the task, which
// started 96 ms before its window could end. And a new leader whose clock
// is ahead of the old one's (seed 132, Raft cells: 280 ms) holds a window it
// took over for a full period rather than by its clock.
import { describe, expect, it } from 'vitest';
import { Durability, TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import { parseTopology } from '../../src/topology/parse.js';
import { Rng } from '../../src/util/rng.js';
import { SimAgent } from './sim/agent.js';
import { Checker } from './sim/invariants.js';
import { SimMesh } from './sim/mesh.js';
import { SimNet } from './sim/net.js';
import { settle, SIM_CELL_OPTIONS } from './sim/sim.js';

const topo = (rootReplicas: number) =>
  parseTopology(`
name: debounce-clock
addressing: { host: 127.0.0.1, basePort: 20000 }
cells: { name: /, replicas: ${rootReplicas}, children: [{ name: r, children: [{ name: z, children: [{ name: n }] }] }] }
`);
const NODE = '/r/z/n';

const deb = (i: number, periodMs = 500): TaskSpec =>
  TaskSpec.fromPartial({
    kind: 'k',
    idempotencyKey: `d${i}`,
    durability: Durability.DURABILITY_LOGGED,
    debounceKey: 'd',
    debouncePeriodMs: periodMs,
    payload: Buffer.from(`p${i}`),
  });

function setup(raft: boolean) {
  const T0 = 1_000_000;
  const vs = new VirtualScheduler(T0);
  const rng = new Rng(7);
  const net = new SimNet(vs, rng.fork(), [1, 1]);
  const checker = new Checker(() => vs.now() - T0);
  const topology = topo(raft ? 3 : 1);
  const mesh = new SimMesh({ topology, vs, net, rng: rng.fork(), cellOptions: SIM_CELL_OPTIONS, raft });
  const shape = { id: 'x', node: NODE, kinds: ['k'], labels: [], slots: 2, serviceMs: 20, failRate: 0 };
  const agent = new SimAgent(shape, net, rng.fork(), mesh.mesh, () => mesh.endpointsOf(NODE), checker);
  agent.start();
  const step = async (): Promise<void> => {
    vs.advance(5);
    await settle(vs);
  };
  const runUntil = async (cond: () => boolean, limitMs: number, what: string): Promise<void> => {
    for (let t = 0; !cond(); t += 5) {
      if (t > limitMs) throw new Error(`${limitMs} virtual ms passed waiting for ${what}`);
      await step();
    }
  };
  return { vs, mesh, agent, checker, runUntil };
}

describe('a debounce window across a forward clock jump at the root', () => {
  it('holds the task until the window ends in time, then runs it once with the last payload', async () => {
    const { vs, mesh, agent, checker, runUntil } = setup(false);
    const node = mesh.leaderOf(NODE)!.cell;
    await runUntil(() => node.agents!.byId.get('x') !== undefined, 2000, 'the agent connected');
    const root = mesh.leaderOf('/')!;
    const [first] = await root.cell.submit([deb(1)]);
    const t0 = vs.now();
    await runUntil(() => vs.now() - t0 >= 100, 200, '100 ms');
    // Folded in at +100 ms: the window ends at +600 ms.
    const [second] = await root.cell.submit([deb(2)]);
    expect(second!.id).toBe(first!.id);
    const lastAt = vs.now();
    await runUntil(() => vs.now() - t0 >= 200, 200, '200 ms');
    root.skewMs += 300; // the root's clock jumps 300 ms forward
    let startedAt = 0;
    await runUntil(
      () => {
        if (startedAt === 0 && (root.cell.ledger.get(first!.id)?.attempt ?? 0) > 0) startedAt = vs.now();
        return startedAt > 0;
      },
      2000,
      'the debounced task started',
    );
    expect(startedAt - lastAt).toBeGreaterThanOrEqual(500);
    await runUntil(() => agent.stats.completed === 1, 2000, 'the task ran');
    expect(root.cell.ledger.get(first!.id)!.spec.payload.toString()).toBe('p2');
    expect(checker.violations).toEqual([]);
    mesh.close();
  });

  it('a new leader whose clock is ahead holds a window it took over for a full period', async () => {
    const { vs, mesh, agent, checker, runUntil } = setup(true);
    const node = mesh.leaderOf(NODE)?.cell;
    await runUntil(() => mesh.leaderOf('/') !== undefined, 3000, 'a root leader');
    await runUntil(() => mesh.leaderOf(NODE)?.cell.agents?.byId.get('x') !== undefined, 3000, 'the agent connected');
    expect(node === undefined || node === mesh.leaderOf(NODE)!.cell).toBe(true);
    const old = mesh.leaderOf('/')!;
    const submittedAt = vs.now();
    let id = '';
    void old.cell.submit([deb(1, 1000)]).then((r) => (id = r[0]!.id));
    await runUntil(() => id !== '', 1000, 'the submit committed');
    // The other root replicas' clocks run 700 ms ahead; the leader hands over.
    for (const r of mesh.replicas.values()) if (r.spec.path === '/' && r !== old) r.skewMs = 700;
    old.cell.ledgerLog.transferLeader(undefined, 2000).catch(() => undefined);
    await runUntil(() => (mesh.leaderOf('/') ?? old) !== old, 3000, 'a new root leader');
    const started = (): boolean => (mesh.leaderOf('/')?.cell.ledger.get(id)?.attempt ?? 0) > 0;
    await runUntil(started, 4000, 'the debounced task started');
    expect(vs.now() - submittedAt).toBeGreaterThanOrEqual(1000);
    await runUntil(() => agent.stats.completed === 1, 3000, 'the task ran');
    expect(checker.violations).toEqual([]);
    mesh.close();
  });
});
