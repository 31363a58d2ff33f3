// The simulator's clients: each has at most one operation outstanding, sent to
// a random live replica. Puts are proposals (completed when that replica
// applies them); gets go through ReadIndex (served once the replica has
// applied up to the read index). A put whose fate is unknown (timeout, crash)
// enters the history with ret = Infinity; an unanswered get is left out (it
// had no effect). The history feeds the linearizability checker.

import type { Snapshot } from '../../../src/raft/core/types.js';
import { KvStore, encodePut, type PutCommand } from './kv.js';
import type { Operation } from './linearizability.js';
import type { PendingOp, Replica } from './replica.js';
import type { Simulation } from './sim.js';

const KEYS = ['a', 'b', 'c'];
const CLIENTS = 4;
const TIMEOUT_TICKS = 50;

interface Client {
  readonly id: number;
  seq: number;
  /** Where the outstanding op waits, if any. */
  busy: { rep: Replica; op: PendingOp } | undefined;
}

export class Workload {
  readonly history: Operation[] = [];
  private readonly clients: Client[];

  constructor(private readonly sim: Simulation) {
    // Client 0 is reserved for the liveness probe.
    this.clients = Array.from({ length: CLIENTS }, (_, i) => ({ id: i + 1, seq: 0, busy: undefined }));
  }

  issue(active: boolean): void {
    if (!active) return;
    const rng = this.sim.rng;
    for (const c of this.clients) {
      if (c.busy || !rng.chance(0.25)) continue;
      const reps = this.sim.up();
      if (reps.length === 0) return;
      const rep = rng.pick(reps);
      c.seq++;
      const key = rng.pick(KEYS);
      const call = ++this.sim.clock;
      const deadline = this.sim.now + TIMEOUT_TICKS;
      if (rng.chance(0.5)) {
        const value = `c${c.id}.${c.seq}`;
        let accepted = false;
        this.sim.guard(rep, 'propose', () => {
          accepted = rep.node.propose(encodePut({ client: c.id, seq: c.seq, key, value })).ok;
        });
        // A refused proposal was never appended anywhere: it cannot take effect.
        if (!accepted) continue;
        const op: PendingOp = { client: c.id, seq: c.seq, kind: 'put', key, value, call, deadline };
        rep.pendingPuts.set(`${c.id}:${c.seq}`, op);
        c.busy = { rep, op };
      } else {
        const op: PendingOp = { client: c.id, seq: c.seq, kind: 'get', key, value: null, call, deadline };
        const ctx = `g${c.id}.${c.seq}`;
        rep.pendingReads.set(ctx, op);
        c.busy = { rep, op };
        if (this.sim.opts.unsafeLocalReads) {
          // The mutation: whatever this replica has applied, possibly stale.
          this.complete(rep, op, rep.kv.data.get(key) ?? null, ctx);
          continue;
        }
        this.sim.guard(rep, 'readIndex', () => rep.node.readIndex(ctx));
      }
      this.sim.bump('opsIssued');
      this.sim.process(rep);
    }
  }

  private complete(rep: Replica, op: PendingOp, value: string | null, pendingKey: string): void {
    const ret = ++this.sim.clock;
    this.history.push({ client: op.client, kind: op.kind, key: op.key, value, call: op.call, ret });
    if (op.kind === 'put') rep.pendingPuts.delete(pendingKey);
    else rep.pendingReads.delete(pendingKey);
    const c = this.clients[op.client - 1];
    if (c?.busy?.op === op) c.busy = undefined;
    this.sim.bump(op.kind === 'put' ? 'putsDone' : 'getsDone');
  }

  /** Outcome unknown: a put may or may not take effect later; a get is dropped. */
  private abandon(rep: Replica, op: PendingOp, pendingKey: string): void {
    if (op.kind === 'put') {
      this.history.push({ client: op.client, kind: 'put', key: op.key, value: op.value, call: op.call, ret: Infinity });
      rep.pendingPuts.delete(pendingKey);
    } else {
      rep.pendingReads.delete(pendingKey);
    }
    const c = this.clients[op.client - 1];
    if (c?.busy?.op === op) c.busy = undefined;
    this.sim.bump('opsAbandoned');
  }

  onApply(rep: Replica, put: PutCommand | undefined): void {
    if (!put) return;
    const k = `${put.client}:${put.seq}`;
    const op = rep.pendingPuts.get(k);
    if (op) this.complete(rep, op, op.value, k);
  }

  onSnapshot(rep: Replica, snap: Snapshot): void {
    // The state machine jumps: rebuild it from the snapshot; puts it covers are done.
    rep.kv = KvStore.restore(snap.data);
    for (const [k, op] of [...rep.pendingPuts]) {
      if ((rep.kv.sessions.get(op.client) ?? 0) >= op.seq) this.complete(rep, op, op.value, k);
    }
  }

  onReadState(rep: Replica, ctx: string, index: number): void {
    const op = rep.pendingReads.get(ctx);
    if (op && op.readIndex === undefined) op.readIndex = index;
  }

  serveReads(rep: Replica): void {
    for (const [ctx, op] of [...rep.pendingReads]) {
      if (op.readIndex !== undefined && rep.kv.applied >= op.readIndex) {
        this.complete(rep, op, rep.kv.data.get(op.key) ?? null, ctx);
      }
    }
  }

  onDown(rep: Replica): void {
    for (const [k, op] of [...rep.pendingPuts]) this.abandon(rep, op, k);
    for (const [k, op] of [...rep.pendingReads]) this.abandon(rep, op, k);
  }

  expire(): void {
    for (const c of this.clients) {
      const b = c.busy;
      if (!b || b.op.deadline > this.sim.now) continue;
      const key = b.op.kind === 'put' ? `${b.op.client}:${b.op.seq}` : `g${b.op.client}.${b.op.seq}`;
      this.abandon(b.rep, b.op, key);
    }
  }

  /** End of run: whatever is still pending has an unknown outcome. */
  finish(): void {
    for (const rep of this.sim.replicas.values()) this.onDown(rep);
  }
}
