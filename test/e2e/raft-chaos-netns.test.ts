// The product's central promise on real processes: every replica a real
// `meshlb serve` process in its own network namespace, the global, region and
// zone cells 3-replica Raft groups on fsync'd lmdb, two node cells with
// simulated agents, and during thousands of acknowledged tasks the leader of
// a cell at every tier killed with SIGKILL in turn (and restarted on its data
// dir) and real partitions (blackhole routes). Asserted from `meshlb sim`'s
// report: no acknowledged task lost, exactly one terminal record per task, no
// agent over its slots, a new leader within 2 s (p99) at every replicated tier.
// Needs root (skipped with the reason printed otherwise; under CI it must run).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { simulate } from '../../src/cli/sim.js';
import { netnsGate } from '../helpers/netns.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? Date.now() % 1_000_000);
const TASKS = Number(process.env.MESHLB_CHAOS_TASKS ?? 6000);
const gate = netnsGate();

// Ports are per namespace (--netns rewrites the hosts), so fixed ones never collide on the host.
const TOPOLOGY = `name: raftchaos
defaults:
  summaryIntervalMs: 100
  linkTimeoutMs: 1000
  heartbeatIntervalMs: 200
  heartbeatTimeoutMs: 1500
  taskTimeoutMs: 3000
  maxAttempts: 20
tiers:
  global: { replicas: 3 }
  region: { replicas: 3 }
  zone: { replicas: 3 }
  node: { replicas: 1 }
addressing: { host: 127.0.0.1, basePort: 7000 }
cells:
  name: /
  children:
    - name: r
      children:
        - name: z
          children: [{ name: n1 }, { name: n2 }]
`;

describe.skipIf(gate.skip)(`Raft cells under kill -9 and partitions, real processes (seed ${SEED})`, () => {
  it(`loses no acknowledged task of ${TASKS} while leaders die at every tier`, { timeout: 240_000 }, async () => {
    if (gate.failure) throw new Error(gate.failure);
    const dir = mkdtempSync(join(tmpdir(), 'meshlb-raft-chaos-'));
    const file = join(dir, 'topology.yaml');
    writeFileSync(file, TOPOLOGY);
    const lines: string[] = [];
    try {
      const { result } = await simulate({
        topologyFile: file,
        durationS: 24,
        tasks: TASKS,
        rate: TASKS / 24,
        agentsPerNode: 10,
        chaos: { killLeaders: true, killAgents: false, partition: true },
        chaosEveryS: 1,
        downMs: 1000,
        netns: true,
        seed: SEED,
        json: false,
        readyTimeoutMs: 60_000,
        progress: (l) => lines.push(l),
      });
      const why = `seed ${SEED} (rerun with MESHLB_TEST_SEED=${SEED})\n${lines.join('\n')}\n${JSON.stringify(result)}`;
      // The figures, for the record (the assertions below judge them).
      console.log(
        JSON.stringify({
          seed: SEED,
          acknowledged: result.acknowledged,
          lost: result.lost,
          chaos: result.chaos.map((e) => `${e.kind} ${e.cell}`),
          failover: result.failover,
        }),
      );
      expect(result.ok, why).toBe(true);
      expect(result.submit?.accepted, why).toBeGreaterThanOrEqual(5000);
      expect(result.lost, why).toBe(0);
      expect(result.recorded_twice, why).toBe(0);
      for (const a of result.agent_sims) expect(a.refused_over_slots ?? 0, why).toBe(0);
      expect(
        result.chaos.some((e) => e.kind === 'partition' && e.how === 'netns blackhole'),
        why,
      ).toBe(true);
      // A leader killed at every replicated tier, and a new leader within 2 s (p99) each time.
      for (const tier of ['global', 'region', 'zone'] as const) {
        const f = result.failover[tier];
        expect(f.kills, `${tier} kills\n${why}`).toBeGreaterThanOrEqual(1);
        expect(f.failover_ms, `${tier} failover measured\n${why}`).not.toBeNull();
        expect(f.failover_ms!.p99, `${tier} failover p99\n${why}`).toBeLessThan(2000);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
