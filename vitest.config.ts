import { defineConfig } from 'vitest/config';

// Tests that measure failover times on a dozen real processes run after the
// rest, alone: run beside other test files on a 2-core machine, the CPU they
// wait for is what they would measure.
const ALONE = ['test/e2e/raft-chaos-netns.test.ts'];

export default defineConfig({
  test: {
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
    // Integration tests start real gRPC servers and processes; each waits on
    // conditions with its own bounded timeout, this is only the outer guard.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
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
