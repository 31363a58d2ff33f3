// Issue 13's concurrency target as one simulated run (npm run sim:flow-target):
// a key with limit 3 whose tasks spread over three zones never has more than
// 3 running at the agents, sampled over every start of N tasks (100,000 by
// default) through root leader failovers, and after K agent kills mid-lease
// (1,000 by default) every key's count returns to zero — at the agents and in
// the root's ledger. The real cells run on virtual time as in sim.ts; every
// check of invariants.ts runs every step, so the same run also proves that no
// task is lost or run twice on the way.
//
// Shape: a 3-replica Raft root, one region (3 replicas), three zones, one node
// per zone with four agents of two slots each (24 slots for a limit of 3: the
// key, not capacity, is what holds tasks back). Every task names the key and
// is LOGGED at the root. A kill crashes an agent that is running a keyed
// attempt and restarts it 200-800 ms later; the attempt's permit lingers (its
// agent might still run, as far as the mesh can tell) and comes back after
// the task's timeout plus the key's linger.
import { Durability, Priority, TaskSpec, TaskState } from '../../../src/gen/meshlb/v1/task.js';
import { isTerminal } from '../../../src/mesh/ledger.js';
import { VirtualScheduler } from '../../../src/mesh/virtual-scheduler.js';
import { parseTopology } from '../../../src/topology/parse.js';
import { Rng } from '../../../src/util/rng.js';
import { SimAgent, type AgentShape } from './agent.js';
import { Checker, type Violation } from './invariants.js';
import { SimMesh } from './mesh.js';
import { SimNet } from './net.js';
import { SIM_CELL_OPTIONS, settle } from './sim.js';

export interface FlowTargetOptions {
  readonly seed: number;
  readonly tasks: number;
  readonly kills: number;
  /** Root leader failovers (a crash of the leader, restarted 2 s later), spread over the run. */
  readonly failovers: number;
  /** Progress lines (the CLI prints them). */
  readonly log?: (line: string) => void;
}

export interface FlowTargetResult {
  readonly violations: readonly Violation[];
  readonly starts: number;
  readonly peak: number;
  readonly completed: number;
  readonly kills: number;
  readonly leaderChanges: number;
  readonly virtualMs: number;
  readonly wallMs: number;
  readonly permitsAtEnd: number;
  /** The plan is part of the claim: why the run proves less than asked ('' when it did all of it). */
  readonly shortfall: string;
}

const KEY = 'customer';
const LIMIT = 3;
const T0 = 1_760_000_000_000;
const STEP_MS = 10;
/** Tasks kept queued at the root: enough that the key is always at its limit, few enough to check every step. */
const BACKLOG = 200;
const TASK_TIMEOUT_MS = 600;
const LINGER_MS = 1000;

export async function runFlowTarget(o: FlowTargetOptions): Promise<FlowTargetResult> {
  const t0 = performance.now();
  const rng = new Rng(o.seed);
  const zones = [0, 1, 2].map((z) => `        - name: z${z}\n          children: [{ name: n${z} }]`);
  const topology = parseTopology(
    [
      'name: flow-target',
      'addressing: { host: 127.0.0.1, basePort: 20000 }',
      `flow: { lingerMs: ${LINGER_MS}, concurrency: { ${KEY}: { limit: ${LIMIT} } } }`,
      'cells:',
      '  name: /',
      '  replicas: 3',
      '  children:',
      '    - name: r',
      '      replicas: 3',
      '      children:',
      ...zones,
    ].join('\n'),
  );
  const vs = new VirtualScheduler(T0);
  const net = new SimNet(vs, rng.fork());
  const checker = new Checker(() => vs.now() - T0, 50, new Map([[KEY, LIMIT]]));
  const mesh = new SimMesh({
    topology,
    vs,
    net,
    rng: rng.fork(),
    // Every task stays in the root's ledger until the end, where the run reads each outcome.
    cellOptions: { ...SIM_CELL_OPTIONS, retention: o.tasks + 10_000, queueCapacity: BACKLOG * 4 },
    raft: true,
    onCell: (r) => checker.attachLedger(r.id, r.cell.ledger),
  });
  const later = (ms: number, fn: () => void): void => void vs.setTimer(Math.max(0, Math.round(ms)), fn);
  const shapes: AgentShape[] = [];
  for (let z = 0; z < 3; z++)
    for (let i = 0; i < 4; i++)
      shapes.push({
        id: `z${z}.a${i}`,
        node: `/r/z${z}/n${z}`,
        kinds: ['work'],
        labels: [],
        slots: 2,
        serviceMs: 10,
        failRate: 0,
      });
  const agents = shapes.map(
    (s) => new SimAgent(s, net, rng.fork(), mesh.mesh, () => mesh.endpointsOf(s.node), checker),
  );
  for (const a of agents) later(rng.next() * 300, () => a.start());

  // The client: keeps BACKLOG tasks waiting at the root's leader, resubmitting by key on any doubt.
  const ids = new Set<string>();
  let submitted = 0;
  let inFlightSubmit = false;
  const specOf = (n: number): TaskSpec =>
    TaskSpec.fromPartial({
      idempotencyKey: `t${n}`,
      kind: 'work',
      priority: Priority.PRIORITY_NORMAL,
      tenant: 'acme',
      timeoutMs: TASK_TIMEOUT_MS,
      maxAttempts: 10,
      durability: Durability.DURABILITY_LOGGED,
      concurrencyKey: KEY,
    });
  let pending: TaskSpec[] = [];
  const topUp = (): void => {
    if (inFlightSubmit) return;
    const leader = mesh.leaderOf('/');
    if (!leader) return;
    if (pending.length === 0) {
      const room = BACKLOG - leader.cell.queue.size - (leader.cell.home.flow.backlog().get(`c:${KEY}`) ?? 0);
      const n = Math.min(Math.max(0, room), o.tasks - submitted, 100);
      if (n <= 0) return;
      for (let i = 0; i < n; i++) pending.push(specOf(submitted + i));
      submitted += n;
    }
    inFlightSubmit = true;
    const batch = pending.map((s) => TaskSpec.decode(TaskSpec.encode(s).finish()));
    leader.cell.submit(batch).then(
      (outs) => {
        for (const out of outs) ids.add(out.id);
        pending = [];
        inFlightSubmit = false;
      },
      () => {
        // Not the leader any more, or an outcome unknown across a leader change: the same keys again.
        inFlightSubmit = false;
      },
    );
  };

  // Kills: one agent running a keyed attempt, spread so the permits it strands come back in between.
  let kills = 0;
  const kill = (): void => {
    if (kills >= o.kills) return;
    const busy = agents.filter((a) => !a.crashed && a.held > 0);
    const victim = busy.length > 0 ? rng.pick(busy) : undefined;
    if (!victim) {
      // Nobody mid-lease right now (the key's attempts spend most of their time on the wire): look again soon.
      later(10 + rng.next() * 40, kill);
      return;
    }
    kills++;
    victim.crash();
    later(200 + rng.next() * 600, () => victim.start());
    later(TASK_TIMEOUT_MS + LINGER_MS / 2 + rng.next() * 500, kill);
  };
  later(1500, kill);

  // Failovers: the root's leader crashes at evenly spaced points of the submits, restarted 2 s later.
  let leaderChanges = 0;
  const failoverAt = new Set(
    Array.from({ length: o.failovers }, (_, i) => Math.floor(((i + 1) * o.tasks) / (o.failovers + 1))),
  );
  const failover = (): void => {
    const leader = mesh.leaderOf('/');
    if (!leader) return;
    leaderChanges++;
    o.log?.(`${Math.round(vs.now() - T0)} ms: root leader ${leader.id} crashes (${submitted} submitted)`);
    mesh.crash(leader.id);
    later(2000, () => mesh.restart(leader.id));
  };

  let steps = 0;
  let lastReport = 0;
  const root = () => mesh.leaderOf('/')?.cell.ledger;
  const ended = (): number => {
    const l = root();
    if (!l) return 0;
    let n = 0;
    for (const id of ids) if (isTerminal(l.get(id)?.state ?? TaskState.TASK_STATE_QUEUED)) n++;
    return n;
  };
  try {
    for (;;) {
      vs.advance(STEP_MS);
      await settle(vs);
      steps++;
      checker.step(mesh);
      for (const at of failoverAt)
        if (submitted >= at) {
          failoverAt.delete(at);
          failover();
        }
      if (steps % 5 === 0) topUp();
      if (steps % 100 === 0 && submitted >= o.tasks) {
        // Done when every task ended and every permit came back (lingering ones included).
        const l = root();
        if (l && l.flow.permits.total === 0 && ended() === ids.size && ids.size >= o.tasks) break;
      }
      const t = vs.now() - T0;
      if (o.log && t - lastReport >= 30_000) {
        lastReport = t;
        o.log(
          `${Math.round(t / 1000)} s virtual: ${submitted} submitted, ${checker.keyStarts.get(KEY) ?? 0} starts, peak ${checker.keyPeak.get(KEY) ?? 0}, ${kills} kills`,
        );
      }
      if (t > (o.tasks / 10) * 1000 + 120_000) {
        checker.add('ended', `run did not finish: ${submitted} submitted, ${ended()} ended, ${kills} kills`);
        break;
      }
    }
  } catch (err) {
    checker.add(
      'crash',
      err instanceof Error ? (err.stack ?? err.message).split('\n').slice(0, 4).join(' | ') : String(err),
    );
  }
  const l = root();
  checker.final(
    [...ids].map((id) => ({ id, home: '/', logged: true, ledger: l! })),
    (_home, id) => root()?.get(id),
    () => root(),
  );
  checker.flowAtEnd(l);
  let completed = 0;
  for (const id of ids) if (l?.get(id)?.state === TaskState.TASK_STATE_COMPLETED) completed++;
  mesh.close();
  return {
    violations: checker.violations,
    starts: checker.keyStarts.get(KEY) ?? 0,
    peak: checker.keyPeak.get(KEY) ?? 0,
    completed,
    kills,
    leaderChanges,
    virtualMs: Math.round(vs.now() - T0),
    wallMs: Math.round(performance.now() - t0),
    permitsAtEnd: l?.flow.permits.total ?? -1,
    shortfall:
      kills < o.kills
        ? `only ${kills} of ${o.kills} agent kills found an agent mid-lease before the tasks ran out`
        : '',
  };
}
