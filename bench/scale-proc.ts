// The processes of `npm run bench:scale` (bench/scale.ts forks this file with IPC):
//
//   node TOPOLOGY_YAML PATH [UP]   one replica of the cell PATH (port 0), alone or
//                                  linked to a parent replica at address UP: the home of the tasks the bench
//                                  submits to it and records, per completed task,
//                                  submit-to-result latency from the submit time in the
//                                  payload; it reports its agent streams and the
//                                  heartbeat intervals it gave them.
//   stormnode TOPOLOGY_YAML PATH PORT RATE  a node replica on PORT (so a restart finds its agents again)
//                                  admitting RATE agent streams a second (0: no bound); it reports the
//                                  agent streams it ended by reason (meshlb_streams_ended_total's reasons)
//                                  and those it refused over the rate (bench/scale-storm.ts).
//   agentsim NODE_ADDR N PREFIX    N agents of the agent SDK (startAgentSim, the code of
//                                  `meshlb agent-sim`), 16 slots, kind `bench`, no-op
//                                  handlers, heartbeating as the node says; started on the
//                                  parent's {cmd: 'go'}, 1,000 at a time (ids PREFIX<group>-<i>),
//                                  each group once the previous one is welcomed.
//
// IPC as bench/lib/proc.ts (reset, report, count); it exits when the parent goes away.
import { TaskState } from '../src/gen/meshlb/v1/task.js';
import { NO_METER, type MeterFactory } from '../src/mesh/meter.js';
import { Replica } from '../src/mesh/replica.js';
import { parseTopology } from '../src/topology/parse.js';
import { startAgentSim, type AgentSim } from '../src/cli/agent-sim.js';
import { nowUs, payloadTimeUs } from './lib/clock.js';
import { ChildReporter } from './lib/child.js';

async function node(yaml: string, path: string, up: string | undefined): Promise<void> {
  const topology = parseTopology(yaml, '<bench:scale>');
  const parents = up ? [up] : [];
  const r = new Replica({ topology, cell: path, host: '127.0.0.1', port: 0, parentAddresses: () => parents });
  await r.start();
  const rep = new ChildReporter(() => {
    const agents = r.cell.agents;
    const intervals = new Map<number, number>();
    for (const s of agents?.byId.values() ?? []) {
      const i = s.heartbeat.intervalMs;
      intervals.set(i, (intervals.get(i) ?? 0) + 1);
    }
    return {
      agentsConnected: agents?.byId.size ?? 0,
      handshakes: agents?.handshakes,
      heartbeatIntervals: Object.fromEntries([...intervals].sort((a, b) => a[0] - b[0])),
      live: r.cell.ledger.liveCount,
    };
  });
  r.cell.ledger.onTerminal((rec) => {
    if (rec.state !== TaskState.TASK_STATE_COMPLETED) return;
    rep.record(nowUs() - payloadTimeUs(rec.spec.payload));
  });
  rep.listen();
  rep.ready({ addresses: { [path]: r.address } });
}

async function stormNode(yaml: string, path: string, port: number, rate: number): Promise<void> {
  const topology = parseTopology(yaml, '<bench:scale storm>');
  const ends: Record<string, number> = {};
  const meter: MeterFactory = () => ({
    ...NO_METER,
    streamEnded: (stream, reason) => void (ends[`${stream}/${reason}`] = (ends[`${stream}/${reason}`] ?? 0) + 1),
  });
  const r = new Replica({ topology, cell: path, host: '127.0.0.1', port, helloRatePerSecond: rate, meter });
  await r.start();
  const rep = new ChildReporter(() => ({
    agentsConnected: r.cell.agents?.byId.size ?? 0,
    handshakes: r.cell.agents?.handshakes,
    ends: { ...ends },
    refusedOverRate: r.cell.agents?.admission.refused ?? 0,
  }));
  rep.listen();
  rep.ready({ addresses: { [path]: r.address } });
}

/** What the agents of a process say of their streams: welcomed, given up for want of a Welcome, how the last ones ended. */
function agentFigures(sims: readonly AgentSim[]): Record<string, unknown> {
  let connected = 0;
  let welcomeTimeouts = 0;
  let connects = 0;
  const last: Record<string, number> = {};
  for (const sim of sims)
    for (const a of sim.agents) {
      if (a.state === 'connected') connected++;
      welcomeTimeouts += a.stats.welcomeTimeouts;
      connects += a.stats.connects;
      const st = a.lastStatus;
      if (st) {
        const k = `${st.codeName}: ${st.details.slice(0, 60)}`;
        last[k] = (last[k] ?? 0) + 1;
      }
    }
  return { connected, welcomeTimeouts, connects, lastStatus: last };
}

/** Agents are started this many at a time, each group once the previous one is welcomed (or after 30 s). */
const RAMP = 1000;

async function agentSim(address: string, n: number, prefix: string): Promise<void> {
  // A node that gets thousands of hellos at once on a starved machine cuts the streams whose hello took
  // longer than its timeout to arrive; their reconnects keep the storm going. A ramp converges.
  const sims: AgentSim[] = [];
  const rep = new ChildReporter(() => agentFigures(sims));
  rep.listen();
  rep.ready();
  // The parent says go once every agent-sim process is up, so starting processes does not compete with a storm.
  await new Promise<void>((resolve) => process.on('message', (m: { cmd?: string }) => m?.cmd === 'go' && resolve()));
  for (let start = 0; start < n; start += RAMP) {
    const sim = startAgentSim({
      address,
      agents: Math.min(RAMP, n - start),
      slots: 16,
      kinds: ['bench'],
      idPrefix: `${prefix}${start / RAMP}`,
      statsIntervalMs: 0,
    });
    sims.push(sim);
    await Promise.race([sim.ready(), new Promise((r) => setTimeout(r, 30_000))]);
  }
}

const [role, ...args] = process.argv.slice(2);
if (role === 'node') await node(args[0]!, args[1]!, args[2]);
else if (role === 'stormnode') await stormNode(args[0]!, args[1]!, Number(args[2]), Number(args[3]));
else if (role === 'agentsim') await agentSim(args[0]!, Number(args[1]), args[2]!);
