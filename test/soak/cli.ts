// `npm run soak -- --minutes N`: the example mesh (deploy/topologies/example.yaml,
// 15 replicas, on free ports) under steady load with agent churn, resident
// memory and open fds sampled per replica (./soak.ts). Prints the table of
// samples and the slopes, writes the figures to bench/results/soak-<time>.json
// (or --out), and exits 1 when a slope passes its bound, a replica exits, or
// tasks go unfinished.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { soak } from './soak.js';
import { DEFAULT_BOUNDS } from './bounds.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const { values: a } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    topology: { type: 'string', default: join(repo, 'deploy', 'topologies', 'example.yaml') },
    rate: { type: 'string', default: '40' },
    'agents-per-sim': { type: 'string', default: '4' },
    'churn-every': { type: 'string', default: '10' },
    'sample-every': { type: 'string', default: '5' },
    warmup: { type: 'string' },
    'rss-slope': { type: 'string', default: String(DEFAULT_BOUNDS.rssMbPerMin) },
    'home-rss-slope': { type: 'string', default: String(DEFAULT_BOUNDS.homeRssMbPerMin) },
    'fd-slope': { type: 'string', default: String(DEFAULT_BOUNDS.fdsPerMin) },
    seed: { type: 'string', default: '1' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (a.help) {
  process.stdout.write(
    [
      'npm run soak -- [--minutes 10] [--topology deploy/topologies/example.yaml] [--rate 40]',
      '  [--agents-per-sim 4] [--churn-every 10] [--sample-every 5] [--warmup S]',
      `  [--rss-slope ${DEFAULT_BOUNDS.rssMbPerMin}] [--home-rss-slope ${DEFAULT_BOUNDS.homeRssMbPerMin}] [--fd-slope ${DEFAULT_BOUNDS.fdsPerMin}]`,
      '  [--seed 1] [--out FILE]',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

const num = (name: string, v: string | undefined): number => {
  const n = Number(v);
  if (v === undefined || !Number.isFinite(n) || n <= 0) {
    process.stderr.write(`soak: --${name} must be a positive number, got ${String(v)}\n`);
    process.exit(2);
  }
  return n;
};

const out = a.out ?? join(repo, 'bench', 'results', `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
mkdirSync(dirname(out), { recursive: true });
const result = await soak({
  minutes: num('minutes', a.minutes),
  topologyYaml: readFileSync(a.topology!, 'utf8'),
  rate: num('rate', a.rate),
  agentsPerSim: num('agents-per-sim', a['agents-per-sim']),
  churnEverySec: num('churn-every', a['churn-every']),
  sampleEverySec: num('sample-every', a['sample-every']),
  ...(a.warmup !== undefined ? { warmupSec: num('warmup', a.warmup) } : {}),
  bounds: {
    rssMbPerMin: num('rss-slope', a['rss-slope']),
    homeRssMbPerMin: num('home-rss-slope', a['home-rss-slope']),
    fdsPerMin: num('fd-slope', a['fd-slope']),
  },
  seed: num('seed', a.seed),
  out,
});
const t = result.tasks;
process.stdout.write(
  [
    ...result.table,
    '',
    `tasks: ${t.submitted} submitted, ${t.completed} completed (p50 ${t.p50Ms} ms, p99 ${t.p99Ms} ms), ${t.failed} failed, ${t.unfinished} unfinished, ${t.refused} refused, ${t.skipped} skipped`,
    `churn: ${result.churn.kills} agent-sims killed (-9), ${result.churn.terms} stopped (TERM), ${result.churn.starts} started`,
    `bounds after a ${result.warmupSec} s warm-up, per replica: RSS < ${result.bounds.rssMbPerMin} MB/min (the home's < ${result.bounds.homeRssMbPerMin}), fds < ${result.bounds.fdsPerMin}/min`,
    result.ok ? 'soak: ok' : `soak: FAILED\n  ${result.problems.join('\n  ')}`,
    `figures: ${out}`,
    '',
  ].join('\n'),
);
process.exit(result.ok ? 0 : 1);
