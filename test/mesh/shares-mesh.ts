// The seeded mesh the share targets run on (tenant-shares-target.test.ts,
// tenant-minimum-target.test.ts, key-shares-target.test.ts): the mesh simulator's SimMesh and SimAgents on
// virtual time, no faults, four tiers (/ → r0 → z0 → 8 nodes), 2 agents of 4
// slots per node (64 slots), tasks of 0.2-1.8 s, every task submitted at the
// root. `flowYaml` is the topology's `flow:` section.
import { Priority, TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import { parseTopology } from '../../src/topology/parse.js';
import { Rng } from '../../src/util/rng.js';
import { SimAgent, type AgentObserver } from './sim/agent.js';
import { SimMesh } from './sim/mesh.js';
import { SimNet } from './sim/net.js';
import { SIM_CELL_OPTIONS, settle } from './sim/sim.js';

export const T0 = 1_760_000_000_000;
export const NODES = 8;
export const AGENT_SLOTS = 4;
export const SLOTS = NODES * 2 * AGENT_SLOTS;

export interface SharesMesh {
  readonly vs: VirtualScheduler;
  readonly mesh: SimMesh;
  readonly agents: readonly SimAgent[];
  /** Advance virtual time by `ms`, 10 ms at a time, settling the mesh after each. */
  step(ms: number): Promise<void>;
  /**
   * Submit `n` tasks of kind k for `tenant` at the root, with `extra` fields (a concurrency key,
   * a durability); idempotency keys `${concurrency key or tenant}-${seq}-${i}`.
   */
  submit(tenant: string, n: number, seq: number, extra?: Partial<TaskSpec>): Promise<void>;
  close(): void;
}

export function topologyYaml(flowYaml: string): string {
  const nodes = Array.from({ length: NODES }, (_, i) => `            - name: n${i}`).join('\n');
  return `name: shares
addressing: { host: 127.0.0.1, basePort: 20000 }
${flowYaml}
cells:
  name: /
  children:
    - name: r0
      children:
        - name: z0
          children:
${nodes}
`;
}

/** Observe every start and end at the agents: `started(tenant, taskId, agent, key)`, `finished(taskId)`. */
export function sharesMesh(
  seed: number,
  flowYaml: string,
  started: (tenant: string, taskId: string, agent: string, key: string) => void,
  finished: (taskId: string) => void,
): SharesMesh {
  const rng = new Rng(seed);
  const vs = new VirtualScheduler(T0);
  const net = new SimNet(vs, rng.fork());
  const topo = parseTopology(topologyYaml(flowYaml));
  const mesh = new SimMesh({ topology: topo, vs, net, rng: rng.fork(), cellOptions: SIM_CELL_OPTIONS });
  const obs: AgentObserver = {
    overSlots: () => undefined,
    slotsInUse: () => undefined,
    resumed: () => undefined,
    started: (agent, taskId, _n, key = '', tenant = '') => started(tenant, taskId, agent, key),
    finished: (_a, taskId) => finished(taskId),
  };
  const agents: SimAgent[] = [];
  for (let i = 0; i < NODES; i++)
    for (let j = 0; j < 2; j++) {
      const shape = {
        id: `n${i}.a${j}`,
        node: `/r0/z0/n${i}`,
        kinds: ['k'],
        labels: [],
        slots: AGENT_SLOTS,
        serviceMs: 1000,
        failRate: 0,
      };
      agents.push(new SimAgent(shape, net, rng.fork(), mesh.mesh, () => mesh.endpointsOf(shape.node), obs));
    }
  for (const a of agents) a.start();
  return {
    vs,
    mesh,
    agents,
    async step(ms) {
      for (let t = 0; t < ms; t += 10) {
        vs.advance(10);
        await settle(vs);
      }
    },
    async submit(tenant, n, seq, extra = {}) {
      const specs = Array.from({ length: n }, (_, i) =>
        TaskSpec.fromPartial({
          kind: 'k',
          tenant,
          priority: Priority.PRIORITY_NORMAL,
          ...extra,
          idempotencyKey: `${extra.concurrencyKey || tenant}-${seq}-${i}`,
        }),
      );
      await mesh.leaderOf('/')!.cell.submit(specs.map((s) => TaskSpec.decode(TaskSpec.encode(s).finish())));
    },
    close: () => mesh.close(),
  };
}
