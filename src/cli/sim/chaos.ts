// The chaos schedule of `meshlb sim`: a pure function of the seed and the
// topology's shape, so the same seed gives the same schedule (what is hit, at
// which tier, when, for how long). Only who leads a cell is found at run time:
// kill-leader names a cell, and the sim kills whichever replica leads it then.
//
// Events come in rounds; each round holds every enabled kind once, in a seeded
// order, so a short run still sees every kind and a long one mixes them. Gaps
// between events are drawn around `everyMs`. The sim runs events one at a time
// (each is undone before the next, and an event on a cell whose replica was
// restarted waits until that replica serves again), so at most one fault is in
// force: a minority of any 3-replica cell, never its quorum.
import { seededRandom } from '../../util/rng.js';
import { TIERS, type Tier } from '../../topology/types.js';

export const CHAOS_KINDS = ['kill-leader', 'kill-agents', 'partition', 'restart', 'pause'] as const;
export type ChaosKind = (typeof CHAOS_KINDS)[number];

export interface ChaosCell {
  readonly path: string;
  readonly tier: Tier;
  readonly replicas: number;
}

export interface ChaosPlanInput {
  seed: number;
  /** Enabled kinds (order does not matter: the schedule orders them from the seed). */
  kinds: readonly ChaosKind[];
  cells: readonly ChaosCell[];
  /** The workload's entry cell: spared when it has a single replica (the workload could not reach the mesh). */
  entry: string;
  /** kill-leader at this tier only; absent = a random tier each time. */
  killTier?: Tier;
  /** Mean gap between events. */
  everyMs: number;
  /** Base time a fault stays in force (killed, paused, cut). */
  downMs: number;
  /** The topology's linkTimeoutMs: a cut is held at least about twice this, so both ends notice it. */
  linkTimeoutMs?: number;
}

export interface PlannedChaos {
  /** 0, 1, 2, ... in schedule order. */
  seq: number;
  /** When to start it, from the start of the workload (later if the previous event is still in force). */
  atMs: number;
  kind: ChaosKind;
  tier: Tier;
  cell: string;
  /** The replica to hit; 0 for kill-leader (whoever leads at that moment) and kill-agents (the node's agent-sim). */
  replica: number;
  /** How long the fault stays in force before it is undone (0 for restart: it comes back at once). */
  holdMs: number;
}

/** Which cells each kind may hit. */
function targets(input: ChaosPlanInput): Record<ChaosKind, ChaosCell[]> {
  const spared = (c: ChaosCell) => c.path === input.entry && c.replicas < 2;
  const replicaCells = input.cells.filter((c) => !spared(c) && c.replicas > 0);
  return {
    'kill-leader': replicaCells.filter((c) => input.killTier === undefined || c.tier === input.killTier),
    'kill-agents': input.cells.filter((c) => c.tier === 'node'),
    partition: replicaCells,
    restart: replicaCells,
    pause: replicaCells,
  };
}

/** Kinds that are enabled and have something to hit, in CHAOS_KINDS order. */
export function usableKinds(input: ChaosPlanInput): ChaosKind[] {
  const t = targets(input);
  return CHAOS_KINDS.filter((k) => input.kinds.includes(k) && t[k].length > 0);
}

/** The schedule, endless: take what the run has time for. Same input, same events. */
export function* chaosSchedule(input: ChaosPlanInput): Generator<PlannedChaos, void, undefined> {
  const kinds = usableKinds(input);
  if (!kinds.length) return;
  const t = targets(input);
  const rnd = seededRandom(input.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const span = (base: number) => Math.round(base * (0.75 + 0.5 * rnd()));
  let atMs = 0;
  let seq = 0;
  // kill-leader with no tier chosen walks the tiers in turn from a seeded start, so a few kills cover them all.
  const killTiers = TIERS.filter((x) => t['kill-leader'].some((c) => c.tier === x));
  let killTurn = Math.floor(rnd() * Math.max(1, killTiers.length));
  for (;;) {
    const round = [...kinds];
    for (let i = round.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [round[i], round[j]] = [round[j]!, round[i]!];
    }
    for (const kind of round) {
      atMs += Math.max(1, Math.round(input.everyMs * (0.5 + rnd())));
      let cells = t[kind];
      if (kind === 'kill-leader' && input.killTier === undefined) {
        const tier = killTiers[killTurn++ % killTiers.length]!;
        cells = cells.filter((c) => c.tier === tier);
      }
      const cell = pick(cells);
      const replica = kind === 'kill-leader' || kind === 'kill-agents' ? 0 : 1 + Math.floor(rnd() * cell.replicas);
      // A cut is held past a couple of link timeouts so both ends notice; a restart holds nothing.
      const cutMs = Math.max(input.downMs, input.linkTimeoutMs ?? 0) * 2;
      const holdMs = kind === 'restart' ? 0 : span(kind === 'partition' ? cutMs : input.downMs);
      yield { seq: seq++, atMs, kind, tier: cell.tier, cell: cell.path, replica, holdMs };
    }
  }
}

/** The first n events of the schedule (for printing and tests). */
export function planChaos(input: ChaosPlanInput, n: number): PlannedChaos[] {
  const out: PlannedChaos[] = [];
  if (n <= 0) return out;
  for (const e of chaosSchedule(input)) {
    out.push(e);
    if (out.length >= n) break;
  }
  return out;
}
