// Runs the chaos schedule against the running processes, one event at a time,
// each undone before the next (restart the killed, SIGCONT the paused, heal
// the cut). Kill-leader starts a failover measurement beside it; a netns
// partition watches for the cut-off replica to see a link go down.
//   kill-leader  kill -9 the replica leading the cell, restart it (same --data-dir) after the hold
//   kill-agents  kill -9 a node's agent-sim, restart it after the hold
//   partition    --netns: blackhole routes between the replica and every other
//                replica (real packets vanish), healed after the hold;
//                otherwise SIGSTOP/SIGCONT, the closest stand-in on one host
//   pause        SIGSTOP for the hold, then SIGCONT: a gray failure
//   restart      kill -9 and start again at once with the same --data-dir
import type { NetnsLab } from '../netns.js';
import { checkHealth } from '../health-check.js';
import type { Supervisor } from '../supervisor.js';
import type { CellSpec, Tier, Topology } from '../../topology/types.js';
import type { ChaosKind, PlannedChaos } from './chaos.js';
import { pause, type Observer } from './observe.js';
import type { FailoverSample } from './report.js';

export interface ChaosEvent {
  seq: number;
  /** When it started, ms since the sim started. */
  atMs: number;
  kind: ChaosKind;
  tier: Tier;
  cell: string;
  /** The process hit. */
  target: string;
  /** How long the fault was in force. */
  downMs: number;
  how: 'kill -9' | 'kill -9, restart' | 'SIGSTOP' | 'netns blackhole';
  /** kill-leader: whether GetCell named the leader (else replica 1 was taken). */
  leaderKnown?: boolean;
  failoverMs?: number;
  dispatchResumedMs?: number;
  /** Restarted: ms from the restart until it is SERVING again. */
  backMs?: number;
  /** netns partition: ms from the cut until the cut-off replica reported a link down. */
  linkDownSeenMs?: number;
}

export interface ChaosTargets {
  sup: Supervisor;
  observer: Observer;
  /** The topology as run (netns addresses when --netns): what this process can reach. */
  topology: Topology;
  lab?: NetnsLab;
  member: (cell: string, replica: number) => string;
  replicaProc: (cell: string, replica: number) => string;
  agentProc: (cell: string) => string;
  say: (line: string) => void;
  /** Sim start (event times are from here) and workload start (the schedule's zero). */
  startedAt: number;
  workloadAt: number;
}

export interface ChaosOutcome {
  events: ChaosEvent[];
  failovers: FailoverSample[];
  restarts: number;
}

/** Run events until `stop` fires (the workload ended, or the sim was interrupted). */
export async function runChaos(
  ctx: ChaosTargets,
  schedule: Iterable<PlannedChaos>,
  stop: AbortSignal,
  out: ChaosOutcome,
): Promise<void> {
  const background: Array<Promise<unknown>> = [];
  // A cell's replica restarted by the last event may still be starting when the next event comes: a second
  // fault on that cell then would take its quorum (a killed leader's cell losing a second replica to a
  // partition stalled a global failover for 4 s). So an event on a cell waits until its restarted replica
  // serves again (bounded by untilServing's 60 s and by `stop`).
  const back = new Map<string, Promise<unknown>>();
  for (const plan of schedule) {
    await pause(ctx.workloadAt + plan.atMs - Date.now(), stop);
    await back.get(plan.cell);
    back.delete(plan.cell);
    if (stop.aborted) break;
    await runOne(ctx, plan, stop, out, background, back);
  }
  await Promise.all(background);
}

async function runOne(
  ctx: ChaosTargets,
  plan: PlannedChaos,
  stop: AbortSignal,
  out: ChaosOutcome,
  background: Array<Promise<unknown>>,
  back: Map<string, Promise<unknown>>,
): Promise<void> {
  const { sup } = ctx;
  const cell: CellSpec = ctx.topology.byPath.get(plan.cell)!;
  let replica = plan.replica;
  const ev: ChaosEvent = {
    seq: plan.seq,
    atMs: 0,
    kind: plan.kind,
    tier: plan.tier,
    cell: plan.cell,
    target: '',
    downMs: plan.holdMs,
    how: 'kill -9',
  };
  if (plan.kind === 'kill-leader') {
    const found = cell.replicas.length === 1 ? 1 : await leaderWithin(ctx.observer, cell, 3000, stop);
    ev.leaderKnown = found !== undefined;
    replica = found ?? 1;
  }
  const name = plan.kind === 'kill-agents' ? ctx.agentProc(plan.cell) : ctx.replicaProc(plan.cell, replica);
  ev.target = name;
  const restart = () => {
    const at = Date.now();
    sup.restart(name);
    out.restarts++;
    const address = cell.replicas.find((r) => r.replica === replica)?.address;
    if (plan.kind !== 'kill-agents' && address) {
      const serving = untilServing(address, stop).then((ok) => {
        if (ok) ev.backMs = Date.now() - at;
      });
      background.push(serving);
      back.set(plan.cell, serving);
    }
  };
  const now = Date.now();
  ev.atMs = now - ctx.startedAt;
  out.events.push(ev);
  ctx.say(`sim: chaos #${plan.seq} ${plan.kind} ${name} (${plan.tier}) for ${plan.holdMs} ms`);
  switch (plan.kind) {
    case 'kill-leader': {
      const measuring = ctx.observer.measureFailover(cell, replica, now, stop).then((s) => {
        out.failovers.push(s);
        ev.failoverMs = s.failoverMs;
        ev.dispatchResumedMs = s.dispatchResumedMs;
      });
      background.push(measuring);
      await sup.kill(name);
      await pause(plan.holdMs, stop);
      if (!sup.get(name).running) restart();
      return;
    }
    case 'kill-agents':
      await sup.kill(name);
      await pause(plan.holdMs, stop);
      if (!sup.get(name).running) restart();
      return;
    case 'restart':
      ev.how = 'kill -9, restart';
      await sup.kill(name);
      restart();
      return;
    case 'partition':
    case 'pause':
      if (plan.kind === 'partition' && ctx.lab) {
        ev.how = 'netns blackhole';
        const held = new AbortController();
        const address = cell.replicas.find((r) => r.replica === replica)!.address;
        const watching = ctx.observer.linkDownSeen(address, held.signal).then((ms) => {
          if (ms !== undefined) ev.linkDownSeenMs = ms;
        });
        ctx.lab.isolate(ctx.member(plan.cell, replica));
        await pause(plan.holdMs, stop);
        held.abort();
        await watching;
        ctx.lab.heal();
        return;
      }
      // Without namespaces a partition is a pause: the replica goes silent, its sockets stay open.
      ev.how = 'SIGSTOP';
      sup.pause(name);
      await pause(plan.holdMs, stop);
      sup.resume(name);
      return;
  }
}

/** Who leads `cell`, waiting up to boundMs while replicas answer but none leads (an election). */
async function leaderWithin(
  observer: Observer,
  cell: CellSpec,
  boundMs: number,
  stop: AbortSignal,
): Promise<number | undefined> {
  const end = Date.now() + boundMs;
  while (!stop.aborted) {
    const { leader, answered } = await observer.leaderOf(cell);
    if (leader !== undefined || answered === 0 || Date.now() > end) return leader;
    await pause(100, stop);
  }
  return undefined;
}

async function untilServing(address: string, stop: AbortSignal): Promise<boolean> {
  const end = Date.now() + 60_000;
  while (!stop.aborted && Date.now() < end) {
    if ((await checkHealth(address, '', 500)) === 'SERVING') return true;
    await pause(50, stop);
  }
  return false;
}
