import { relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// Tests that measure failover times on a dozen real processes run after the
// rest, alone: run beside other test files on a 2-core machine, the CPU they
// wait for is what they would measure.
const ALONE = ['test/e2e/raft-chaos-netns.test.ts'];

// The slowest files, longest first (seconds in session 13's fresh-clone CI run, vitest 700 s; "now": the
// same files' CPU after session 14's changes, docs/architecture.md "How it is tested"). Two workers take files
// in order: a long file taken last runs on alone at the end while the other worker idles (a fresh clone has
// no timings cached, so vitest's own order is by file, not by time). The soak goes first: it waits on the
// clock (2 minutes of load), and meta/repo beside it runs tsc, eslint and prettier at once on the core the
// soak leaves.
const SLOW_FIRST = [
  'test/soak/soak.test.ts', // 130 s, wall-bound (2 minutes of load): beside CPU-bound files
  'test/meta/repo.test.ts', // 84 (tsc, eslint, prettier ~30 s of CPU each, now at once)
  'test/cli/operations-sims.test.ts', // 131 (processes from dist/ now: about half the CPU)
  'test/mesh/sim/mutation.test.ts', // 91 (now 52 simulator runs, was 93)
  'test/mesh/sim/sim.test.ts', // 85 (60 seeds a mode)
  'test/cli/operations-recipes.test.ts', // 79 (processes from dist/ now)
  'test/cli/readme-recipes.test.ts', // 69 (the sim's processes from dist/ now)
  'test/cli/flow-failover.test.ts', // 26
  'test/fuzz/grpc-fuzz.test.ts', // 21
  'test/e2e/mesh-partition-netns.test.ts', // 19
  'test/e2e/raft-kill.test.ts', // 18
  'test/client/watch-many.test.ts', // 18
  'test/security/serve-secure.test.ts', // 15
  'test/cli/sim-e2e.test.ts', // 14
  'test/e2e/flow-limits.test.ts', // 14
  'test/cli/sim-netns.test.ts', // 13
  'test/e2e/live-page.test.ts', // 10
  'test/e2e/raft-partition-netns.test.ts', // 9
];

class SlowFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const base = await super.sort(files);
    const rank = (f: TestSpecification): number => {
      const i = SLOW_FIRST.indexOf(relative(f.project.config.root, f.moduleId));
      return i < 0 ? SLOW_FIRST.length : i;
    };
    const group = (f: TestSpecification): number => f.project.config.sequence.groupOrder;
    // Stable: the groups' order first (ALONE last), then the slow files, then vitest's own order.
    return base
      .map((f, i) => ({ f, i }))
      .sort((a, b) => group(a.f) - group(b.f) || rank(a.f) - rank(b.f) || a.i - b.i)
      .map((x) => x.f);
  }
}

export default defineConfig({
  test: {
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
    // Integration tests start real gRPC servers and processes; each waits on
    // conditions with its own bounded timeout, this is only the outer guard.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
    sequence: { sequencer: SlowFirst },
    projects: [
      {
        extends: true,
        test: { name: 'main', include: ['test/**/*.test.ts'], exclude: ALONE, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'alone', include: ALONE, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
