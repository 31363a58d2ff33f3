// npm run raft:demo — kill the Raft leader of a 3-process KV cluster over and
// over under a write load; assert no acknowledged write is lost and failover
// p99 stays under 1.5 s. Options: --kills N (default 20), --writers N (default 8).
import { parseArgs } from 'node:util';
import { percentile, runKillChaos } from './chaos.js';

const USAGE = `usage: npm run raft:demo -- [--kills N] [--writers N]
  Starts 3 Raft KV replicas as processes (examples/raft-kv/server.ts), SIGKILLs the
  leader --kills times (default and minimum 20) while --writers clients (default 8)
  write, then reads every acknowledged write back from every replica. Exits 0 (PASS)
  when none is lost and the failover p99 is at most 1.5 s.`;

const { values } = parseArgs({
  options: { kills: { type: 'string' }, writers: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const kills = Math.max(20, Number(values.kills ?? 20));
const writers = Number(values.writers ?? 8);

const res = await runKillChaos({ kills, writers, log: (l) => console.log(l) });
const p50 = percentile(res.failoversMs, 50);
const p99 = percentile(res.failoversMs, 99);
const max = Math.max(...res.failoversMs);
console.log('');
console.log(
  `kills: ${res.failoversMs.length}   acknowledged writes: ${res.acked}   replicas read back: ${res.replicasChecked}`,
);
console.log(
  `failover (kill -> new leader seen via Status): p50 ${p50.toFixed(0)} ms   p99 ${p99.toFixed(0)} ms   max ${max.toFixed(0)} ms`,
);
console.log(
  `lost acknowledged writes: ${res.lost.length}${res.lost.length ? ` (e.g. ${res.lost.slice(0, 5).join(', ')})` : ''}`,
);
const ok = res.lost.length === 0 && p99 <= 1500 && res.failoversMs.length >= 20;
console.log(ok ? 'PASS' : 'FAIL');
process.exit(ok ? 0 : 1);
