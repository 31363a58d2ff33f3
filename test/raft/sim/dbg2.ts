import { runSeed } from './sim.js';
const hits: number[] = [];
const t0 = Date.now();
for (let seed = 1; seed <= 3000; seed++) {
  const r = runSeed({
    seed,
    replicas: seed % 2 ? 3 : 5,
    knobs: { unsafeCommitPriorTermByCount: true },
    maxSizePerMsg: 1,
  });
  if (r.violations.length > 0) {
    hits.push(seed);
    console.log(seed, r.violations[0]!.slice(0, 150));
  }
}
console.log('hits', hits.length, `${Date.now() - t0}ms`);
