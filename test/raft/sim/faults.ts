// Fault injection for the simulator: partitions (symmetric and one-way),
// crashes and whole-cluster power cuts, membership changes driven like an
// operator would, leadership transfers, and snapshots with compaction. Every
// choice comes from the simulation's seeded PRNG; rates scale with its storm.

import { MemoryStorage } from '../../../src/raft/core/memory-storage.js';
import type { NodeId } from '../../../src/raft/core/types.js';
import type { Replica } from './replica.js';
import type { Simulation } from './sim.js';

export class Faults {
  constructor(private readonly sim: Simulation) {}

  private partition(): void {
    const ids = this.sim.up().map((r) => r.id);
    if (ids.length < 2) return;
    this.sim.blocked.clear();
    const kind = this.sim.rng.int(0, 2);
    if (kind === 0) {
      // symmetric split
      const side = new Set(this.sim.rng.shuffle([...ids]).slice(0, this.sim.rng.int(1, Math.floor(ids.length / 2))));
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.sim.blocked.add(`${a}>${b}`);
      this.sim.log(`t${this.sim.now} partition ${[...side].join(',')} | rest`);
    } else {
      // asymmetric: some one-way links cut
      const n = this.sim.rng.int(1, ids.length);
      for (let i = 0; i < n; i++) {
        const a = this.sim.rng.pick(ids);
        const b = this.sim.rng.pick(ids);
        if (a !== b) this.sim.blocked.add(`${a}>${b}`);
      }
      this.sim.log(`t${this.sim.now} one-way cuts ${[...this.sim.blocked].join(' ')}`);
    }
    this.sim.healAt = this.sim.now + this.sim.rng.int(10, 60);
    this.sim.bump('partitions');
  }

  private membershipChange(): void {
    const l = this.sim.leader();
    if (!l) return;
    const conf = l.node.status().conf;
    const r = this.sim.rng;
    const total = conf.voters.length + conf.learners.length;
    const choice = r.int(0, 2);
    let cc: { type: 'addLearner' | 'addVoter' | 'removeNode'; node: NodeId } | undefined;
    if (choice === 0 && total < 6) {
      const id = String(this.sim.nextId++);
      this.sim.addReplica(id, new MemoryStorage());
      cc = { type: 'addLearner', node: id };
    } else if (choice === 1 && conf.learners.length > 0) {
      cc = { type: 'addVoter', node: r.pick(conf.learners) };
    } else if (choice === 2) {
      // Usually keep three voters; sometimes shrink to two or one (a single voter is its own quorum).
      const voterOk = conf.voters.length > 3 || (conf.voters.length > 1 && r.chance(0.3));
      const pool = voterOk ? [...conf.voters, ...conf.learners] : [...conf.learners];
      if (pool.length === 0) return;
      cc = { type: 'removeNode', node: r.pick(pool) };
    }
    if (!cc) return;
    let ok = false;
    this.sim.guard(l, 'proposeConfChange', () => {
      ok = l.node.proposeConfChange({ ...cc, context: '' }).ok;
    });
    this.sim.log(`t${this.sim.now} propose ${cc.type} ${cc.node} via ${l.id}: ${ok ? 'accepted' : 'refused'}`);
    if (ok) this.sim.bump('confChangesProposed');
    else if (cc.type === 'addLearner') {
      const rep = this.sim.replicas.get(cc.node)!;
      rep.removed = true;
      this.sim.stop(rep);
    }
    this.sim.process(l);
  }

  private transfer(): void {
    const l = this.sim.leader();
    if (!l) return;
    const voters = l.node.status().conf.voters.filter((v) => v !== l.id);
    if (voters.length === 0) return;
    const to = this.sim.rng.pick(voters);
    this.sim.log(`t${this.sim.now} transfer leadership ${l.id} -> ${to}`);
    this.sim.bump('transfers');
    this.sim.guard(l, 'transferLeader', () => l.node.transferLeader(to));
    this.sim.process(l);
  }

  maybeSnapshot(rep: Replica): void {
    const s = rep.disk.live;
    const snapIndex = s.snapshot().meta.index;
    if (rep.kv.applied - snapIndex < 20 || !this.sim.rng.chance(0.3)) return;
    s.createSnapshot(rep.kv.applied, rep.conf, rep.kv.snapshot());
    s.compact(Math.max(s.firstIndex() - 1, rep.kv.applied - this.sim.rng.int(0, 8)));
    this.sim.bump('snapshots');
  }

  chaos(): void {
    const r = this.sim.rng;
    const alive = this.sim.up().filter((x) => !x.removed);
    const members = [...this.sim.replicas.values()].filter((x) => !x.removed);
    const k = this.sim.storm;
    if (r.chance(0.01 * k) && alive.length > Math.floor(members.length / 2) + 1)
      this.sim.crash(r.pick(alive), r.int(3, 40));
    if (r.chance(0.002 * k) && alive.length > 0) {
      // Every replica crashes at once (a power cut): only synced state survives anywhere.
      for (const x of alive) this.sim.crash(x, r.int(1, 20));
    }
    for (const x of this.sim.replicas.values())
      if (!x.up && !x.removed && x.restartAt <= this.sim.now) this.sim.restart(x);
    if (this.sim.healAt > 0 && this.sim.now >= this.sim.healAt) {
      this.sim.blocked.clear();
      this.sim.healAt = 0;
    }
    if (r.chance(0.012 * k)) this.partition();
    if (r.chance(0.006 * k)) this.membershipChange();
    if (r.chance(0.005 * k)) this.transfer();
  }
}
