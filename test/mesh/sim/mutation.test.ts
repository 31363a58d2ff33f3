// Each check of the mesh simulator's Checker shown firing: a realistic bug
// (mutations.ts) is put into the real product code for one run, and the
// simulator must report a violation of exactly the check that guards against
// it. A checker that never fires proves nothing when the full run is clean.
//
// Seeds are searched, not hard-coded: the first of 1..SEARCH whose run shows
// the check, so a change to the generator or the workload moves the seed, not
// the verdict (a mutation's `seenAt`, the seed that showed it last, is tried
// first: only a hint). The found seed then replays to the same violations, and
// runs clean without the bug (the violation is the bug's, not the seed's).
//
// A seed's clean run is the same run every time (same seed, same run: the
// replay below and sim.test.ts show it), so it is run once per seed and mode
// and shared by the mutations found on that seed: 17 of them on seed 1.
import { describe, expect, it } from 'vitest';
import { WALL_GUARD_MS, withinCpu } from '../../helpers/cpu-budget.js';
import type { Check } from './invariants.js';
import { MUTATIONS, type Mutation } from './mutations.js';
import { replayCommand, runSeed, type SimResult } from './sim.js';

/** Seeds tried per mutation before the test gives up (most fire within the first few). */
const SEARCH = 40;
/**
 * CPU a mutation's search, replay and clean run may spend before it is called hung (the slowest took
 * 4.4 s alone): bounded by CPU, not by the wall clock, which on a loaded machine is that CPU times the load
 * (under load 18-40 the file took 385 s and two of its tests passed the 60 s wall bound).
 */
const CPU_MS = 60_000;

async function withBug(m: Mutation, seed: number): Promise<SimResult> {
  const undo = m.apply();
  try {
    return await runSeed({ seed, raft: m.raft ?? false });
  } finally {
    undo();
  }
}

/** Runs without a bug, by seed and mode: each runs once in this file. */
const cleanRuns = new Map<string, Promise<SimResult>>();

function cleanRun(seed: number, raft: boolean): Promise<SimResult> {
  const key = `${seed}:${raft}`;
  let r = cleanRuns.get(key);
  if (r === undefined) cleanRuns.set(key, (r = runSeed({ seed, raft })));
  return r;
}

const checksOf = (r: SimResult): Check[] => [...new Set(r.violations.map((v) => v.check))].sort();

describe('mesh simulator: each check fires on the bug it guards against', () => {
  it('covers every check the Checker names', () => {
    const named: Check[] = [
      'place',
      'terminal',
      'attempts',
      'slots',
      'multislot',
      'affinity',
      'gang', // two bugs: a gang half-held at its node, and a gang split over nodes from above them
      'gang',
      'capacity',
      'credits', // acks counted twice
      'credits', // a minimum's guaranteed attempts unbounded
      'credits', // any task sent past the credits
      'stale',
      'blocked',
      'trail',
      'ended',
      'idempotency',
      'flow',
      'checkpoint',
      'debounce',
      'share', // a tenant's ceiling
      'share', // a key's ceiling
      'wire',
      'crash',
    ];
    expect(MUTATIONS.map((m) => m.check).sort()).toEqual([...named].sort());
  });

  for (const m of MUTATIONS) {
    it(`${m.check}: ${m.what}`, { timeout: WALL_GUARD_MS }, () =>
      withinCpu(CPU_MS, `${m.check} mutation`, () => shown(m)),
    );
  }
});

/** The first seed that shows `m`'s check with the bug in, shown to replay exactly and to run clean without it. */
async function shown(m: Mutation): Promise<void> {
  let hit: SimResult | undefined;
  const tried: string[] = [];
  const order = m.seenAt === undefined ? [] : [m.seenAt];
  for (let seed = 1; seed <= SEARCH; seed++) if (seed !== m.seenAt) order.push(seed);
  for (const seed of order) {
    if (hit !== undefined) break;
    const r = await withBug(m, seed);
    if (r.violations.some((v) => v.check === m.check)) hit = r;
    else tried.push(`${seed}:${checksOf(r).join(',') || '-'}`);
  }
  expect(hit, `no seed of 1..${SEARCH} shows ${m.check} (seed:checks ${tried.join(' ')})`).toBeDefined();
  const found = hit!;
  const raft = m.raft ?? false;
  const where = `seed ${found.seed}: ${replayCommand(found.seed, { maxReplicas: 5, raft, faults: 1 })}`;
  // Exactly this check, beside the consequences the mutation names (and says why).
  const others = checksOf(found).filter((c) => c !== m.check && !(m.alsoMay ?? []).includes(c));
  expect(others, `${where}\n${found.violations.map((v) => `[${v.check}] ${v.what}`).join('\n')}`).toEqual([]);
  // The seed replays the same run, violation for violation.
  const again = await withBug(m, found.seed);
  expect(again.violations, where).toEqual(found.violations);
  // And without the bug the same seed is clean.
  const clean = await cleanRun(found.seed, raft);
  expect(clean.violations, where).toEqual([]);
}
