// Issue 13's target "a key with a minimum of 10 slots gets them within 1 s on a
// saturated mesh", over many seeds: the mesh of shares-mesh.ts (four tiers, 64
// slots, tasks of 0.2-1.8 s) saturated by three weighted tenants' backlogs;
// then tenant vip (minimum 10) submits 30 tasks at the root. On every seed its
// home must count 10 slots for it and 10 of its attempts must have started at
// the agents within 1 s of virtual time (docs/flow-control.md, "The minimum
// through the tiers": guaranteed attempts go past the credits at every tier and
// take the first slot that frees at their node). The figures' distribution is
// printed at the end.
import { afterAll, describe, expect, it } from 'vitest';
import { sharesMesh, SLOTS } from './shares-mesh.js';

/** Seeds 1-40 (MESHLB_SEEDS=n: 1-n), 77 and 1313; MESHLB_SEED=n runs that one alone. */
const SEEDS = process.env.MESHLB_SEED
  ? [Number(process.env.MESHLB_SEED)]
  : Array.from({ length: Number(process.env.MESHLB_SEEDS ?? 40) }, (_, i) => i + 1).concat([77, 1313]);
const FLOW = `flow:
  tenants:
    gold: { weight: 5 }
    silver: { weight: 3 }
    bronze: { weight: 2 }
    vip: { min: 10 }`;

interface Figures {
  readonly held10Ms: number;
  readonly started10Ms: number;
  /** The most vip attempts running at once within 1 s of its submit. */
  readonly peak: number;
  /** Slots busy when vip submitted (of 64). */
  readonly busyAtSubmit: number;
}

async function run(seed: number): Promise<Figures> {
  let submitted = 0;
  let started = 0;
  let started10Ms = Infinity;
  let held10Ms = Infinity;
  let running = 0;
  let peak = 0;
  const vipTasks = new Set<string>();
  const m = sharesMesh(
    seed,
    FLOW,
    (tenant, taskId) => {
      if (tenant !== 'vip') return;
      vipTasks.add(taskId);
      running++;
      if (++started === 10) started10Ms = m.vs.now() - submitted;
      if (m.vs.now() - submitted <= 1000) peak = Math.max(peak, running);
    },
    (taskId) => {
      if (vipTasks.has(taskId)) running--;
    },
  );
  try {
    await m.step(800); // agents connect, links come up
    for (let b = 0; b < 4; b++) for (const t of ['gold', 'silver', 'bronze']) await m.submit(t, 50, b);
    await m.step(2000 + (seed % 7) * 70); // saturated, vip arrives at a different phase on each seed
    const busyAtSubmit = m.agents.reduce((s, a) => s + a.held, 0);
    submitted = m.vs.now();
    await m.submit('vip', 30, 0);
    const root = m.mesh.leaderOf('/')!.cell.ledger.flow.shares.permits;
    for (let t = 0; t < 1500 && (held10Ms === Infinity || started10Ms === Infinity); t += 10) {
      await m.step(10);
      if (root.held('vip') >= 10 && held10Ms === Infinity) held10Ms = m.vs.now() - submitted;
    }
    return { held10Ms, started10Ms, peak, busyAtSubmit };
  } finally {
    m.close();
  }
}

const all: Figures[] = [];

describe(`a minimum of 10 slots on a saturated mesh, ${SEEDS.length} seeds`, () => {
  for (const seed of SEEDS)
    it(`seed ${seed}: vip (min 10) has 10 attempts started at the agents within 1 s`, async () => {
      const r = await run(seed);
      all.push(r);
      const figures = `seed ${seed}: ${r.busyAtSubmit} of ${SLOTS} slots busy at vip's submit; vip holds 10 slots after ${r.held10Ms} ms, 10 started after ${r.started10Ms} ms, at most ${r.peak} at once in its first second`;
      expect(r.busyAtSubmit, figures).toBeGreaterThanOrEqual(SLOTS - 4); // saturated: 94% busy at least
      expect(r.held10Ms, figures).toBeLessThanOrEqual(1000);
      expect(r.started10Ms, figures).toBeLessThanOrEqual(1000);
    }, 60_000);

  afterAll(() => {
    const dist = (xs: number[]): string => {
      const s = [...xs].sort((a, b) => a - b);
      return `min ${s[0]} median ${s[Math.floor((s.length - 1) / 2)]} max ${s[s.length - 1]}`;
    };
    if (all.length === 0) return;
    console.log(
      `${all.length} seeds: held 10 after ${dist(all.map((r) => r.held10Ms))} ms; ` +
        `10 started after ${dist(all.map((r) => r.started10Ms))} ms; ` +
        `peak in the first second ${dist(all.map((r) => r.peak))}`,
    );
  });
});
