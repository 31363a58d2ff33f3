// What the simulated clients do: bursts and a trickle of submits at cells of
// every tier, with kinds, affinities, priorities, tenants, deadlines,
// timeouts, attempt limits and durability drawn from the seed; cancels; and
// resubmits of an earlier idempotency key, which must name the same task.
import { status } from '@grpc/grpc-js';
import { Durability, Priority, TaskSpec } from '../../../src/gen/meshlb/v1/task.js';
import { MeshError } from '../../../src/util/errors.js';
import type { Ledger } from '../../../src/mesh/ledger.js';
import type { Rng } from '../../../src/util/rng.js';
import type { Checker } from './invariants.js';
import type { SimMesh } from './mesh.js';
import type { Shape } from './topo.js';
import { keyedSpec, type FlowPlan } from './flow.js';
import { debounceBurst } from './debounce.js';
import { bigSpec, type SlotPlan } from './slots.js';
import { shareSpec, type SharePlan } from './shares.js';
import { gangSpecs, type GangPlan } from './gangs.js';

export interface Accepted {
  readonly id: string;
  readonly home: string;
  /** LOGGED (replicated) or NONE (kept in the accepting leader's memory only). */
  readonly logged: boolean;
  /** The ledger of the leader that accepted it: a NONE task lives only there. */
  readonly ledger: Ledger;
}

export interface WorkloadStats {
  submitted: number;
  accepted: number;
  rejected: number;
  cancels: number;
  resubmits: number;
  /** Submits given up on: no leader for the home cell within the client's retries. */
  unanswered: number;
}

/** A kind no agent serves: such tasks wait, then end DEAD_LETTERED "no agent of kind ghost". */
const GHOST = 'ghost';

export class Workload {
  readonly accepted = new Map<string, Accepted>();
  private readonly keys: { key: string; spec: TaskSpec; home: string; id?: string }[] = [];
  readonly stats: WorkloadStats = { submitted: 0, accepted: 0, rejected: 0, cancels: 0, resubmits: 0, unanswered: 0 };
  private seq = 0;

  constructor(
    private readonly rng: Rng,
    private readonly shape: Shape,
    private readonly mesh: SimMesh,
    private readonly checker: Checker,
    private readonly now: () => number,
    private readonly later: (ms: number, fn: () => void) => void,
    /** Keyed tasks (flow.ts), drawn from their own stream. */
    private readonly flow?: FlowPlan,
    /** Debounced bursts (debounce.ts), drawn from their own stream. */
    private readonly debounce?: Rng,
    /** Tasks of several slots (slots.ts), drawn from their own stream. */
    private readonly slots?: SlotPlan,
    /** Tasks of tenants with a share (shares.ts), drawn from their own stream. */
    private readonly shares?: SharePlan,
    /** Gangs at node cells (gangs.ts), drawn from their own stream. */
    private readonly gangs?: GangPlan,
  ) {}
  /** Context keys (soft, and a quarter hard), drawn from their own stream so the other draws stay. */
  contexts: Rng | undefined;
  private shareSeq = 0;
  private gangSeq = 0;
  private flowSeq = 0;
  private debounceBursts = 0;
  private slotSeq = 0;

  /** Plan the submits of the window [fromMs, toMs) of the run (relative times). */
  plan(fromMs: number, toMs: number): void {
    const bursts = this.rng.int(2, 8);
    for (let b = 0; b < bursts; b++) {
      const at = fromMs + this.rng.next() * (toMs - fromMs);
      const n = this.rng.int(1, 40);
      this.later(at, () => this.burst(n));
    }
    for (let t = fromMs; t < toMs; t += 50 + this.rng.next() * 250) this.later(t, () => this.burst(1));
    const d = this.debounce;
    if (d) {
      for (let b = d.int(1, 3); b > 0; b--) {
        const at = fromMs + d.next() * (toMs - fromMs);
        const submits = debounceBurst(d, this.shape.kinds, this.debounceBursts++);
        this.later(at, () => this.debounced(at, submits));
      }
    }
    const s = this.slots;
    if (s?.on) {
      for (let b = s.rng.int(1, 4); b > 0; b--) {
        const at = fromMs + s.rng.next() * (toMs - fromMs);
        const n = s.rng.int(2, 12);
        const home = s.rng.pick(this.shape.topology.cells).path;
        this.later(at, () => this.bigBurst(s, home, n));
      }
    }
    const sp = this.shares;
    for (let b = sp ? sp.rng.int(2, 5) : 0; b > 0; b--) {
      const at = fromMs + sp!.rng.next() * (toMs - fromMs);
      const n = sp!.rng.int(3, 20);
      this.later(at, () => this.shareBurst(sp!, n));
    }
    const g = this.gangs;
    if (g?.on) {
      const cells = this.shape.topology.cells;
      const nodes = cells.filter((c) => c.tier === 'node');
      for (let b = g.rng.int(1, 4); b > 0; b--) {
        const at = fromMs + g.rng.next() * (toMs - fromMs);
        // Half at a node cell, half above one (it goes down whole to one node: gang-route.ts).
        const home = g.rng.pick(g.rng.chance(0.5) ? nodes : cells.filter((c) => c.tier !== 'node')).path;
        this.later(at, () => this.gangBurst(g, home));
      }
    }
    const f = this.flow;
    if (!f) return;
    for (let b = f.rng.int(2, 6); b > 0; b--) {
      const at = fromMs + f.rng.next() * (toMs - fromMs);
      const n = f.rng.int(3, 25);
      this.later(at, () => this.keyedBurst(f, n));
    }
  }

  /** One debounce key's submits at the root, one after another; the checker learns each answer. */
  private debounced(at: number, submits: readonly { spec: TaskSpec; atMs: number }[]): void {
    const watch = this.checker.debounce;
    const burstMs = watch.clock();
    for (const { spec, atMs } of submits)
      this.later(at + atMs, () => {
        const sentMs = watch.clock();
        this.submit('/', [spec], 0, (ids, ledger) => {
          const id = ids[0]!;
          if (!this.accepted.has(id)) this.accepted.set(id, { id, home: '/', logged: true, ledger });
          this.checker.debounce.answered(id, spec, burstMs, sentMs);
        });
      });
  }

  /** Tasks naming concurrency keys, at the root (which holds the keys' counters). */
  private keyedBurst(f: FlowPlan, n: number): void {
    const specs: TaskSpec[] = [];
    for (let i = 0; i < n; i++) specs.push(keyedSpec(f, this.shape.kinds, this.flowSeq++, this.now()));
    this.submit('/', specs, 0, (ids, ledger) => {
      for (const id of ids) {
        if (!this.accepted.has(id)) this.accepted.set(id, { id, home: '/', logged: true, ledger });
        if (f.rng.chance(0.05)) this.later(f.rng.int(0, 3000), () => this.cancel('/', id));
      }
    });
  }

  /** Tasks of several slots at `home`. */
  private bigBurst(s: SlotPlan, home: string, n: number): void {
    const specs: TaskSpec[] = [];
    for (let i = 0; i < n; i++) specs.push(bigSpec(s, this.shape.kinds, this.slotSeq++, this.now()));
    this.submit(home, specs, 0, (ids, ledger) => {
      ids.forEach((id, i) => {
        const logged = specs[i]!.durability !== Durability.DURABILITY_NONE;
        if (!this.accepted.has(id)) this.accepted.set(id, { id, home, logged, ledger });
        if (s.rng.chance(0.05)) this.later(s.rng.int(0, 3000), () => this.cancel(home, id));
      });
    });
  }

  /** Tasks of tenants with a ceiling, at the root (a share is counted at the tasks' home). */
  private shareBurst(p: SharePlan, n: number): void {
    const specs: TaskSpec[] = [];
    for (let i = 0; i < n; i++) specs.push(shareSpec(p, this.shape.kinds, this.shareSeq++));
    this.submit('/', specs, 0, (ids, ledger) => {
      for (const id of ids) {
        if (!this.accepted.has(id)) this.accepted.set(id, { id, home: '/', logged: true, ledger });
        if (p.rng.chance(0.05)) this.later(p.rng.int(0, 3000), () => this.cancel('/', id));
      }
    });
  }

  /** One gang, whole, at cell `home`; now and then the client cancels a member. */
  private gangBurst(g: GangPlan, home: string): void {
    const specs = gangSpecs(g, this.shape.kinds, this.gangSeq++, this.now());
    this.submit(home, specs, 0, (ids, ledger) => {
      for (const id of ids) if (!this.accepted.has(id)) this.accepted.set(id, { id, home, logged: true, ledger });
      if (g.rng.chance(0.1)) this.later(g.rng.int(0, 3000), () => this.cancel(home, g.rng.pick(ids)));
    });
  }

  private spec(): TaskSpec {
    const r = this.rng;
    const kind = r.chance(0.03) ? GHOST : r.pick(this.shape.kinds);
    const c = this.contexts;
    const keyed = c !== undefined && c.chance(0.2);
    return TaskSpec.fromPartial({
      contextKey: keyed ? `ctx-${c.int(0, 11)}` : '',
      contextHard: keyed && c.chance(0.25),
      idempotencyKey: `k${this.seq++}`,
      kind,
      affinity: r.chance(0.1) ? [r.pick(this.shape.gpuLabels)] : [],
      priority: r.pick([
        Priority.PRIORITY_LOW,
        Priority.PRIORITY_NORMAL,
        Priority.PRIORITY_HIGH,
        Priority.PRIORITY_CRITICAL,
      ]),
      tenant: r.pick(['t0', 't1', 't2']),
      deadlineUnixMs: r.chance(0.1) ? this.now() + r.int(300, 8000) : 0,
      timeoutMs: r.chance(0.3) ? r.int(500, 3000) : 0,
      maxAttempts: r.chance(0.5) ? r.int(1, 4) : 0,
      durability: r.chance(0.5) ? Durability.DURABILITY_NONE : Durability.DURABILITY_LOGGED,
    });
  }

  private burst(n: number): void {
    const homes = this.shape.topology.cells;
    const home = this.rng.pick(homes).path;
    const specs: TaskSpec[] = [];
    for (let i = 0; i < n; i++) specs.push(this.spec());
    // Now and then an earlier task is submitted again with its key: it must name the same task.
    if (this.keys.length > 0 && this.rng.chance(0.2)) {
      const again = this.rng.pick(this.keys);
      if (again.id !== undefined) {
        this.stats.resubmits++;
        this.submit(again.home, [again.spec], 0, (ids, ledger) => {
          // A NONE task's key is known only to the leader that accepted it (by contract).
          const first = this.accepted.get(again.id!);
          if (first && !first.logged && first.ledger !== ledger) return;
          if (ids[0] !== again.id)
            this.checker.add('idempotency', `key ${again.key} at ${again.home} named ${ids[0]}, first ${again.id}`);
        });
      }
    }
    this.submit(home, specs, 0, (ids, ledger) => {
      ids.forEach((id, i) => {
        const logged = specs[i]!.durability !== Durability.DURABILITY_NONE;
        this.keys.push({ key: specs[i]!.idempotencyKey, spec: specs[i]!, home, id });
        if (!this.accepted.has(id)) this.accepted.set(id, { id, home, logged, ledger });
        if (this.rng.chance(0.05)) this.later(this.rng.int(0, 3000), () => this.cancel(home, id));
      });
    });
  }

  /** Submit at the home's leader; no leader (an election): the client retries, as the SDK does. */
  private submit(home: string, specs: TaskSpec[], tries: number, done: (ids: string[], ledger: Ledger) => void): void {
    const leader = this.mesh.leaderOf(home);
    if (!leader) {
      if (tries >= 40) {
        this.stats.unanswered += specs.length;
        return;
      }
      this.later(100, () => this.submit(home, specs, tries + 1, done));
      return;
    }
    if (tries === 0) this.stats.submitted += specs.length;
    // What a client sends arrives decoded from the wire, as TaskService hands it to the cell.
    const wire = specs.map((s) => TaskSpec.decode(TaskSpec.encode(s).finish()));
    leader.cell.submit(wire).then(
      (outs) => {
        for (const o of outs) if (!o.existing) this.stats.accepted++;
        done(
          outs.map((o) => o.id),
          leader.cell.ledger,
        );
      },
      (err: unknown) => {
        // Saturated: the client is told so (no retry here). Anything else (not the leader, an
        // outcome unknown across a leader change): the same keys again, as the client SDK retries.
        if (err instanceof MeshError && err.code === status.RESOURCE_EXHAUSTED) {
          this.stats.rejected += specs.length;
          return;
        }
        this.later(100, () => this.submit(home, specs, tries + 1, done));
      },
    );
  }

  private cancel(home: string, id: string): void {
    const leader = this.mesh.leaderOf(home);
    if (!leader) return;
    this.stats.cancels++;
    leader.cell.cancel(id, 'cancelled by the simulated client').catch(() => undefined);
  }
}
