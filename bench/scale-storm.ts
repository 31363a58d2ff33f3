// `npm run bench:scale -- --only=storm`: a reconnect storm against one node replica, with and without hello
// admission (src/mesh/agent-admission.ts), alternated in the same minutes.
//
// Per round: a node replica (its own process, bench/scale-proc.ts `stormnode`, on a fixed port) and
// --storm-agents agents from agent-sim processes (ramped in, 1,000 at a time, as bench:scale does); once
// all are connected the node process goes away and a new one starts on the same port: every agent's stream
// broke at once, and every agent reconnects within its first backoff (100 ms). Measured from the new node's
// start: seconds until 90% and all of the agents are connected again (bounded by --storm-seconds, 120 by
// default: past it the run did not converge and says how many were in), the streams the node ended by reason
// (hello_timeout, silent, hello_rate: refused over the rate), and the agents' own Welcome timeouts. The
// rounds alternate: helloRatePerSecond 0 (no bound, as before) and --storm-rate (default: the topology's
// default, 2,000), --storm-rounds of each (default 2).
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { DEFAULTS } from '../src/topology/defaults.js';
import { chainTopology } from './lib/chain-mesh.js';
import { round, sleep } from './lib/phases.js';
import { freePort } from './lib/ports.js';
import { Proc } from './lib/proc.js';
import { renderTable } from './lib/table.js';
import { splitAgents } from './scale-table.js';

const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const num = (name: string, def: number): number => Number(arg(name) ?? def);
const AGENTS = num('storm-agents', 12_500);
const RATE = num('storm-rate', DEFAULTS.helloRatePerSecond);
const ROUNDS = num('storm-rounds', 2);
const MAX_S = num('storm-seconds', 120);
const PER_SIM = num('per-sim', 5000);
const PROC = fileURLToPath(new URL('./scale-proc.ts', import.meta.url));
const NODE = '/r/z/n';
const log = (s: string): void => void process.stderr.write(`[bench:scale storm] ${s}\n`);

export interface StormRound {
  helloRatePerSecond: number;
  agents: number;
  /** Agents connected again when the round ended (all, or as many as were in at --storm-seconds). */
  connected: number;
  secondsTo90: number | null;
  secondsToAll: number | null;
  /** Streams the new node ended, by `stream/reason` (meshlb_streams_ended_total's labels). */
  ends: Record<string, number>;
  /** The agents' streams given up for want of a Welcome (their 30 s), during the storm. */
  agentWelcomeTimeouts: number;
  loadAverage: number[];
}

/** The node processes' sum of `agentsConnected`. */
const held = async (node: Proc): Promise<number> => ((await node.report()).agentsConnected as number) ?? 0;

async function sims(address: string, n: number, prefix: string): Promise<Proc[]> {
  const out: Proc[] = [];
  for (const [i, k] of splitAgents(n, PER_SIM).entries())
    out.push((await Proc.start(`agent-sim ${prefix}${i}`, ['agentsim', address, String(k), `${prefix}${i}`], PROC))[0]);
  for (const p of out) p.child.send({ cmd: 'go' });
  return out;
}

const welcomeTimeouts = async (ps: Proc[]): Promise<number> =>
  (await Promise.all(ps.map((p) => p.report()))).reduce((s, r) => s + ((r.welcomeTimeouts as number) ?? 0), 0);

async function round1(rate: number, index: number): Promise<StormRound> {
  const yaml = chainTopology();
  const port = await freePort();
  const args = ['stormnode', yaml, NODE, String(port), String(rate)];
  let [node] = await Proc.start(`storm node`, args, PROC);
  const agents: Proc[] = [];
  try {
    agents.push(...(await sims(`127.0.0.1:${port}`, AGENTS, `s${index}-`)));
    const t = Date.now();
    while ((await held(node)) < AGENTS && Date.now() - t < 60_000 + AGENTS * 5) await sleep(250);
    log(`rate ${rate || 'unbounded'}: ${await held(node)}/${AGENTS} agents in before the restart`);
    const before = await welcomeTimeouts(agents);
    await node.stop();
    [node] = await Proc.start(`storm node (restarted)`, args, PROC);
    const t0 = Date.now();
    let in90: number | null = null;
    let inAll: number | null = null;
    let n = 0;
    let said = t0;
    while (Date.now() - t0 < MAX_S * 1000) {
      n = await held(node);
      const s = round((Date.now() - t0) / 1000);
      if (in90 === null && n >= AGENTS * 0.9) in90 = s;
      if (n >= AGENTS) {
        inAll = s;
        break;
      }
      if (Date.now() - said >= 10_000) {
        said = Date.now();
        log(`${s} s: ${n}/${AGENTS} connected; ends ${JSON.stringify((await node.report()).ends)}`);
      }
      await sleep(100);
    }
    const rep = await node.report();
    const r: StormRound = {
      helloRatePerSecond: rate,
      agents: AGENTS,
      connected: n,
      secondsTo90: in90,
      secondsToAll: inAll,
      ends: rep.ends as Record<string, number>,
      agentWelcomeTimeouts: (await welcomeTimeouts(agents)) - before,
      loadAverage: os.loadavg().map((x) => round(x)),
    };
    log(JSON.stringify(r));
    return r;
  } finally {
    for (const a of agents) await a.stop();
    await node.stop();
  }
}

/** The rounds, alternated: no bound, then the rate; a table of them. */
export async function stormRuns(): Promise<{ rounds: StormRound[]; table: string }> {
  const rounds: StormRound[] = [];
  for (let i = 0; i < ROUNDS; i++) for (const rate of [0, RATE]) rounds.push(await round1(rate, rounds.length));
  const rows = rounds.map((r) => [
    r.helloRatePerSecond ? `${r.helloRatePerSecond}/s` : 'unbounded',
    `${r.connected} / ${r.agents}`,
    r.secondsTo90 ?? `> ${MAX_S}`,
    r.secondsToAll ?? `> ${MAX_S}`,
    r.ends['agent/hello_timeout'] ?? 0,
    r.ends['agent/silent'] ?? 0,
    r.ends['agent/hello_rate'] ?? 0,
    r.agentWelcomeTimeouts,
    r.loadAverage[0]!,
  ]);
  const head = [
    'hello admission',
    'connected',
    's to 90%',
    's to all',
    'hello timeouts',
    'silent',
    'over rate',
    'agent welcome timeouts',
    'load 1m',
  ];
  return { rounds, table: renderTable(head, rows) };
}
