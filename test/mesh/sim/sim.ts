// One seeded run of the whole mesh on virtual time (npm run sim:mesh): a
// generated topology of real cells, simulated agents and clients, faults from
// the seed, and the invariants of invariants.ts checked every step. The run:
//   0 .. warm      agents connect, links come up;
//   warm .. heal   the workload and the faults;
//   heal ..        every fault healed; runs until every accepted task ended
//                  (or the bound, which is then a violation).
// Same seed, same run: every clock, timer, random draw and message order
// comes from the seed and the VirtualScheduler.
import { TaskState } from '../../../src/gen/meshlb/v1/task.js';
import { isTerminal, type TaskRecord } from '../../../src/mesh/ledger.js';
import type { CellOptions } from '../../../src/mesh/types.js';
import { VirtualScheduler } from '../../../src/mesh/virtual-scheduler.js';
import { Rng } from '../../../src/util/rng.js';
import { SimAgent } from './agent.js';
import { healAll, planFaults, type FaultEnv, type FaultStats } from './faults.js';
import { Checker, type Violation } from './invariants.js';
import { SimMesh, type SimReplica } from './mesh.js';
import { SimNet } from './net.js';
import { makeShape } from './topo.js';
import { planFlow, planPreemption } from './flow.js';
import { planDebounce } from './debounce.js';
import { planSlots } from './slots.js';
import { planShares } from './shares.js';
import { planGangs } from './gangs.js';
import { Workload, type WorkloadStats } from './workload.js';
import { checkedCodecs, PRODUCT_CODECS } from './wire-check.js';

export interface SimOptions {
  readonly seed: number;
  /** Replicas per cell drawn from 1..maxReplicas (1, 3 or 5; default 5). */
  readonly maxReplicas?: number;
  /** Every cell a Raft group (default), or every replica leading alone with its ledger in memory (`meshlb dev`). */
  readonly raft?: boolean;
  /** 0 = no faults; 1 = the default mix. */
  readonly faults?: number;
  /** Trace lines (--verbose). */
  readonly log?: (line: string) => void;
  /** Cell log level for verbose runs (pino level). */
  readonly cellLogLevel?: string;
  /** Called once the mesh is built, before the run (mutation tests break things here). */
  readonly tamper?: (mesh: SimMesh, agents: readonly SimAgent[]) => void;
}

export interface SimResult {
  readonly seed: number;
  readonly violations: readonly Violation[];
  readonly stats: {
    cells: number;
    replicas: number;
    agents: number;
    virtualMs: number;
    steps: number;
    messages: number;
    outcomes: Record<string, number>;
    /** NONE tasks gone with the leader that accepted them (by contract). */
    noneLost: number;
    /** Tasks cells gave back to their parents for idle siblings (work stealing; live replicas' counts). */
    givenBack: number;
    /** Attempts preempted for critical tasks (live replicas' counts); 0 in runs with preemption off. */
    preemptions: number;
    /** Guaranteed attempts (a tenant's minimum) cells sent past their children's credits (live replicas' counts). */
    guaranteedPast: number;
    /** Refusals of home attempts that kept their number, and those that took a new one past the bound (home-refusals.ts). */
    refusals: { kept: number; renumbered: number; backedOff: number; noMatchBelow: number };
    /** Node summaries that offered more queue room than the static prefetch, by forecast (live replicas' counts). */
    prepositioned: number;
    /** LOGGED tasks started in their `accepted` entry (start-at-accept.ts; live replicas' counts). */
    startedAtAccept: number;
    workload: WorkloadStats;
    faults: FaultStats;
    /** Per concurrency key: its limit, attempts started at agents, the most seen running at the agents at once. */
    flow: Record<string, { limit: number; starts: number; peak: number }>;
    /** Attempts that started from a checkpoint an earlier attempt saved. */
    resumed: number;
    /** Per capped tenant: its ceiling, attempts started at agents, the most seen running at the agents at once. */
    shares: Record<string, { limit: number; starts: number; peak: number }>;
    /** Debounced tasks (answered at least once), submits folded into one, and those that started (debounce.ts). */
    debounce: { tasks: number; folds: number; started: number };
    /** Attempts of several slots started at agents, and the most slots any agent held at once, of its slots. */
    multislot: { starts: number; peak: number };
    /** Gangs whose members were all at agents at once; `above`: those homed above their node. */
    gangs: { started: number; above: number };
    /** Tasks with affinity sent down by cells above the nodes; tasks that ended "no agent of kind X matches ...". */
    affinity: { sent: number; unmatched: number };
  };
}

const T0 = 1_760_000_000_000;
/** Virtual time per step; the invariants are checked after every step. */
const STEP_MS = 10;
/** After the heal, every accepted task must end within this (leases, backoffs, unplaceable wait). */
const DRAIN_BOUND_MS = 90_000;

/** Short timers keep a seed's virtual run short; the logic is the same at any scale. */
export const SIM_CELL_OPTIONS: CellOptions = {
  tickMs: 50,
  summaryIntervalMs: 100,
  linkTimeoutMs: 1000,
  heartbeatIntervalMs: 250,
  heartbeatTimeoutMs: 1200,
  taskTimeoutMs: 3000,
  leaseSlackMs: 500,
  backoffBaseMs: 50,
  backoffMaxMs: 1000,
  maxAttempts: 3,
  unplaceableTimeoutMs: 4000,
  queueCapacity: 5000,
  retention: 100_000,
};

export function replayCommand(seed: number, o: { maxReplicas: number; raft: boolean; faults: number }): string {
  const flags = [
    o.raft ? (o.maxReplicas !== 5 ? `--replicas ${o.maxReplicas}` : '') : '--no-raft',
    o.faults !== 1 ? `--faults ${o.faults}` : '',
  ].filter(Boolean);
  return `npm run sim:mesh -- --seed ${seed} ${[...flags, '--verbose'].join(' ')}`;
}

export async function runSeed(o: SimOptions): Promise<SimResult> {
  const rng = new Rng(o.seed);
  const raft = o.raft ?? true;
  const maxReplicas = raft ? (o.maxReplicas ?? 5) : 1;
  const flow = planFlow(o.seed);
  const preemption = planPreemption(o.seed);
  const shares = planShares(o.seed);
  const flowYaml = [...flow.yaml, ...shares.keyYaml, ...shares.yaml, ...preemption];
  const shape = makeShape(rng.fork(), { maxReplicas, flowYaml });
  const vs = new VirtualScheduler(T0);
  const net = new SimNet(vs, rng.fork());
  const ceilings = [shares.ceilings, shares.keyCeilings] as const;
  const checker = new Checker(() => vs.now() - T0, 50, flow.limits, preemption.length > 0, ...ceilings);
  const log = o.log ?? (() => undefined);
  // Half of the seeds (both linger modes) check every message written against its object (wire-check.ts).
  const codecs = o.seed % 4 < 2 ? checkedCodecs((what) => checker.add('wire', what)) : PRODUCT_CODECS;
  const mesh = new SimMesh({
    topology: shape.topology,
    vs,
    net,
    rng: rng.fork(),
    // Odd seeds with the batcher's linger (the default: its waits and push order under faults), even seeds without.
    cellOptions: { ...SIM_CELL_OPTIONS, batcher: { lingerMs: o.seed % 2 === 1 ? 2 : 0 } },
    raft,
    onCell: (r: SimReplica) => checker.attachLedger(r.id, r.cell.ledger),
    codecs,
    ...(o.cellLogLevel ? { logLevel: o.cellLogLevel } : {}),
  });
  const later = (ms: number, fn: () => void): void => void vs.setTimer(Math.max(0, Math.round(T0 + ms - vs.now())), fn);
  const agents = shape.agents.map(
    (a) => new SimAgent(a, net, rng.fork(), mesh.mesh, () => mesh.endpointsOf(a.node), checker, codecs.agentResponse),
  );
  for (const a of agents) later(rng.next() * 300, () => a.start());
  o.tamper?.(mesh, agents);

  const warm = 800;
  const healAt = warm + 2000 + rng.next() * 6000;
  const workload = new Workload(
    rng.fork(),
    shape,
    mesh,
    checker,
    () => vs.now(),
    later,
    flow,
    planDebounce(o.seed),
    planSlots(o.seed),
    shares,
    planGangs(o.seed),
  );
  workload.contexts = new Rng(o.seed ^ 0x5eed_c7);
  workload.plan(warm, healAt);
  const env: FaultEnv = {
    rng: rng.fork(),
    net,
    mesh,
    agents,
    later,
    log: (l) => log(`${Math.round(vs.now() - T0)} ${l}`),
  };
  const faults = planFaults(env, warm, healAt, o.faults ?? 1);
  let healed = false;
  later(healAt, () => {
    healed = true;
    healAll(env);
  });
  log(
    `seed ${o.seed}: ${shape.topology.cells.length} cells, ${agents.length} agents, kinds ${shape.kinds.join(',')}, heal at ${Math.round(healAt)} ms`,
  );

  let steps = 0;
  const stateOf = (home: string, id: string) => mesh.leaderOf(home)?.cell.ledger.get(id) ?? anyLedger(mesh, home, id);
  const allEnded = (): boolean => {
    // Lingering permits go back too: a run ends with every key's count at zero (checked in final()).
    const rootFlow = mesh.leaderOf('/')?.cell.ledger.flow;
    if ((rootFlow?.permits.total ?? 0) > 0 || (rootFlow?.shares.permits.total ?? 0) > 0) return false;
    for (const t of workload.accepted.values()) {
      // A NONE task gone with the leader that accepted it is not waited for (final() counts it).
      if (!t.logged && mesh.leaderOf(t.home)?.cell.ledger !== t.ledger) continue;
      const rec = stateOf(t.home, t.id);
      if (!rec || !isTerminal(rec.state)) return false;
    }
    return true;
  };
  try {
    for (;;) {
      vs.advance(STEP_MS);
      await settle(vs);
      steps++;
      checker.step(mesh);
      const t = vs.now() - T0;
      if (healed && steps % 10 === 0 && allEnded()) break;
      if (t > healAt + DRAIN_BOUND_MS) break;
    }
  } catch (err) {
    checker.add(
      'crash',
      err instanceof Error ? (err.stack ?? err.message).split('\n').slice(0, 4).join(' | ') : String(err),
    );
  }
  const noneLost = checker.final(workload.accepted.values(), stateOf, (home) => mesh.leaderOf(home)?.cell.ledger);
  checker.flowAtEnd(mesh.leaderOf('/')?.cell.ledger);
  checker.debounceAtEnd();
  const outcomes: Record<string, number> = {};
  let unmatchedEnds = 0;
  for (const t of workload.accepted.values()) {
    const rec = t.logged ? stateOf(t.home, t.id) : t.ledger.get(t.id);
    if (rec?.state === TaskState.TASK_STATE_DEAD_LETTERED && / matches /.test(rec.reason)) unmatchedEnds++;
    const s = rec?.state;
    const name = s === undefined ? 'missing' : stateName(s);
    outcomes[name] = (outcomes[name] ?? 0) + 1;
  }
  let givenBack = 0;
  let preemptions = 0;
  let prepositioned = 0;
  let startedAtAccept = 0;
  let guaranteedPast = 0;
  const refusals = { kept: 0, renumbered: 0, backedOff: 0, noMatchBelow: 0 };
  for (const rep of mesh.replicas.values()) {
    refusals.kept += rep.cell.home.refusals.stats.kept;
    refusals.renumbered += rep.cell.home.refusals.stats.renumbered;
    refusals.backedOff += rep.cell.home.refusals.wait.counts.delayed;
    refusals.noMatchBelow += rep.cell.home.refusals.wait.counts.noMatchBelow;
    startedAtAccept += rep.cell.home.atAccept.started;
    givenBack += rep.cell.stats.givenBack;
    guaranteedPast += rep.cell.dispatcher.guaranteed.sent;
    for (const n of rep.cell.preemptor.byKind.values()) preemptions += n;
    prepositioned += rep.cell.forecasts.raised;
  }
  mesh.close();
  return {
    seed: o.seed,
    violations: checker.violations,
    stats: {
      cells: shape.topology.cells.length,
      replicas: mesh.replicas.size,
      agents: agents.length,
      virtualMs: Math.round(vs.now() - T0),
      steps,
      messages: net.stats.messages,
      outcomes,
      noneLost,
      givenBack,
      preemptions,
      guaranteedPast,
      refusals,
      prepositioned,
      startedAtAccept,
      workload: workload.stats,
      faults,
      multislot: { starts: checker.bigStarts, peak: checker.slotPeak },
      gangs: { started: checker.gangStarts, above: checker.gangStartsAbove },
      affinity: { sent: checker.affinity.sent, unmatched: unmatchedEnds },
      flow: Object.fromEntries(
        [...flow.limits].map(([k, limit]) => [
          k,
          { limit, starts: checker.keyStarts.get(k) ?? 0, peak: checker.keyPeak.get(k) ?? 0 },
        ]),
      ),
      shares: Object.fromEntries(
        [...shares.ceilings, ...[...shares.keyCeilings].map(([k, n]) => [`key ${k}`, n] as const)].map(([t, limit]) => [
          t,
          { limit, starts: checker.shares.starts.get(t) ?? 0, peak: checker.shares.peak.get(t) ?? 0 },
        ]),
      ),
      resumed: checker.resumedFromCheckpoint,
      debounce: checker.debounce.stats(),
    },
  };
}

/** Let promise continuations run (commits answered, submits resolved), then the turns they deferred, until quiet. */
export async function settle(vs: VirtualScheduler): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    await new Promise<void>((r) => setImmediate(r));
    if (vs.runDeferred() === 0) return;
  }
  throw new Error('simulation does not settle: deferred work keeps coming');
}

function stateName(s: TaskState): string {
  return TaskState[s].replace('TASK_STATE_', '').toLowerCase();
}

function anyLedger(mesh: SimMesh, home: string, id: string): TaskRecord | undefined {
  for (const ep of mesh.endpointsOf(home)) {
    const rep = mesh.replicas.get(ep);
    const rec = rep?.up ? rep.cell.ledger.get(id) : undefined;
    if (rec) return rec;
  }
  return undefined;
}
