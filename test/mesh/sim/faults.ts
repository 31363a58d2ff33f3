// The faults of one simulated run, drawn from the seed and laid out in time:
// broken and partitioned links, slow hosts, clock jumps, and agents that
// crash, hang, slow down, drain, lose their node or answer twice; replica
// crashes and restarts and leader changes where cells are Raft groups. All of
// it ends by `healAt`: partitions heal, crashed parts restart, clocks and
// speeds come back, so the run can show every accepted task ends.
import type { Rng } from '../../../src/util/rng.js';
import type { SimAgent } from './agent.js';
import type { SimMesh } from './mesh.js';
import type { SimNet } from './net.js';

export interface FaultStats {
  linkBreaks: number;
  partitions: number;
  agentCrashes: number;
  agentPartitions: number;
  agentHangs: number;
  agentDrains: number;
  slowdowns: number;
  clockJumps: number;
  replicaCrashes: number;
  leaderChanges: number;
}

export interface FaultEnv {
  readonly rng: Rng;
  readonly net: SimNet;
  readonly mesh: SimMesh;
  readonly agents: readonly SimAgent[];
  readonly later: (ms: number, fn: () => void) => void;
  readonly log: (line: string) => void;
}

/** How hard a run is hit: 0 = no faults at all, 1 = the default mix. */
export function planFaults(env: FaultEnv, fromMs: number, healAt: number, intensity: number): FaultStats {
  const { rng, net, mesh, agents, later, log } = env;
  const stats: FaultStats = {
    linkBreaks: 0,
    partitions: 0,
    agentCrashes: 0,
    agentPartitions: 0,
    agentHangs: 0,
    agentDrains: 0,
    slowdowns: 0,
    clockJumps: 0,
    replicaCrashes: 0,
    leaderChanges: 0,
  };
  if (intensity <= 0) return stats;
  const when = (): number => fromMs + rng.next() * (healAt - fromMs);
  const until = (at: number, maxMs: number): number => Math.min(healAt, at + 100 + rng.next() * maxMs);
  const replicas = [...mesh.replicas.values()];
  const children = replicas.filter((r) => r.spec.parent !== '');
  const count = (n: number): number => Math.round(rng.int(0, n) * intensity);

  // A link's connection resets.
  for (let i = count(8); i > 0 && children.length > 0; i--) {
    const child = rng.pick(children);
    later(when(), () => {
      for (const p of mesh.endpointsOf(child.spec.parent))
        if (net.breakOne(child.id, p, 'connection reset')) stats.linkBreaks++;
    });
  }
  // A cell cut off from its parent for a while (shorter or longer than the link timeout).
  for (let i = count(3); i > 0 && children.length > 0; i--) {
    const child = rng.pick(children);
    const at = when();
    const end = until(at, 3000);
    const parents = mesh.endpointsOf(child.spec.parent);
    later(at, () => {
      stats.partitions++;
      log(`partition ${child.id} | ${child.spec.parent} for ${Math.round(end - at)} ms`);
      for (const p of parents) net.partition(child.id, p, true);
    });
    later(end, () => {
      for (const p of parents) net.partition(child.id, p, false);
    });
  }
  // A slow host.
  for (let i = count(2); i > 0; i--) {
    const r = rng.pick(replicas);
    const at = when();
    later(at, () => {
      stats.slowdowns++;
      net.setSlow(r.id, rng.int(20, 220));
    });
    later(until(at, 2000), () => net.setSlow(r.id, 0));
  }
  // A clock jump on one replica (bounded: -300 ms .. +1 s), undone at the heal.
  for (let i = count(2); i > 0; i--) {
    const r = rng.pick(replicas);
    later(when(), () => {
      stats.clockJumps++;
      r.skewMs += rng.int(-300, 1000);
    });
  }
  // Raft cells: a replica crashes and restarts from its storage, a replica's host drops off the
  // network for a while, a leader hands over (as on SIGTERM). Several may overlap, quorum or not.
  if (mesh.raftNet) {
    for (let i = count(4); i > 0; i--) {
      const r = rng.pick(replicas);
      const at = when();
      later(at, () => {
        if (!r.up) return;
        stats.replicaCrashes++;
        log(`replica ${r.id} crashes${r.cell.leading ? ' (leader)' : ''}`);
        mesh.crash(r.id);
      });
      later(until(at, 3000), () => mesh.restart(r.id));
    }
    for (let i = count(2); i > 0; i--) {
      const r = rng.pick(replicas);
      const at = when();
      later(at, () => {
        stats.partitions++;
        log(`replica ${r.id} isolated${r.cell.leading ? ' (leader)' : ''}`);
        mesh.isolate(r.id, true);
      });
      later(until(at, 3000), () => mesh.isolate(r.id, false));
    }
    const groups = replicas.filter((r) => r.spec.replicas.length > 1);
    for (let i = count(3); i > 0 && groups.length > 0; i--) {
      const path = rng.pick(groups).spec.path;
      later(when(), () => {
        const leader = mesh.leaderOf(path);
        if (!leader) return;
        stats.leaderChanges++;
        log(`leader ${leader.id} of ${path} hands over`);
        leader.cell.ledgerLog.transferLeader(undefined, 2000).catch(() => undefined);
      });
    }
  }

  // Agents: crash and restart, lose their node for a while, hang, slow down, drain, answer twice.
  for (const a of agents) {
    if (rng.chance(0.25 * intensity)) {
      const at = when();
      later(at, () => {
        stats.agentCrashes++;
        log(`agent ${a.shape.id} crashes`);
        a.crash();
      });
      later(until(at, 3000), () => a.start());
    }
    if (rng.chance(0.15 * intensity)) {
      const at = when();
      const nodes = mesh.endpointsOf(a.shape.node);
      later(at, () => {
        stats.agentPartitions++;
        for (const n of nodes) net.partition(a.shape.id, n, true);
      });
      later(until(at, 4000), () => {
        for (const n of nodes) net.partition(a.shape.id, n, false);
      });
    }
    if (rng.chance(0.15 * intensity)) {
      later(when(), () => {
        stats.agentHangs++;
        a.hang(300 + rng.next() * 3000);
      });
    }
    if (rng.chance(0.15 * intensity)) {
      const at = when();
      later(at, () => {
        stats.slowdowns++;
        a.slowFactor = 5;
      });
      later(until(at, 3000), () => (a.slowFactor = 1));
    }
    if (rng.chance(0.1 * intensity)) {
      const at = when();
      later(at, () => {
        stats.agentDrains++;
        a.drain();
      });
      // Redeployed: the drained process goes, a fresh one with the same id comes.
      later(until(at, 3000), () => {
        a.crash();
        a.start();
      });
    }
    if (rng.chance(0.2 * intensity)) a.duplicateResults = true;
  }
  return stats;
}

/** Everything back to health at the end of the fault window. */
export function healAll(env: FaultEnv): void {
  env.net.healAll();
  for (const r of env.mesh.replicas.values()) {
    env.mesh.isolate(r.id, false);
    if (!r.up) env.mesh.restart(r.id);
  }
  for (const r of env.mesh.replicas.values()) r.skewMs = 0;
  for (const a of env.agents) {
    a.slowFactor = 1;
    if (a.crashed) a.start();
  }
}
