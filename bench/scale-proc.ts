// The processes of `npm run bench:scale` (bench/scale.ts forks this file with IPC):
//
//   node TOPOLOGY_YAML PATH        one replica of the node cell PATH, alone (no parent
//                                  link, port 0): it is the home of the tasks the bench
//                                  submits to it and records, per completed task,
//                                  submit-to-result latency from the submit time in the
//                                  payload; it reports its agent streams and the
//                                  heartbeat intervals it gave them.
//   agentsim NODE_ADDR N PREFIX    N agents of the agent SDK (startAgentSim, the code of
//                                  `meshlb agent-sim`), ids PREFIX-0..N-1, 4 slots, kind
//                                  `bench`, no-op handlers, heartbeating as the node says.
//
// IPC as bench/lib/proc.ts (reset, report, count); it exits when the parent goes away.
import { TaskState } from '../src/gen/meshlb/v1/task.js';
import { Replica } from '../src/mesh/replica.js';
import { parseTopology } from '../src/topology/parse.js';
import { startAgentSim } from '../src/cli/agent-sim.js';
import { nowUs, payloadTimeUs } from './lib/clock.js';
import { ChildReporter } from './lib/child.js';

async function node(yaml: string, path: string): Promise<void> {
  const topology = parseTopology(yaml, '<bench:scale>');
  const r = new Replica({ topology, cell: path, host: '127.0.0.1', port: 0, parentAddresses: () => [] });
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

async function agentSim(address: string, n: number, prefix: string): Promise<void> {
  const sim = startAgentSim({
    address,
    agents: n,
    slots: 4,
    kinds: ['bench'],
    idPrefix: prefix,
    statsIntervalMs: 0,
  });
  const rep = new ChildReporter(() => ({ connected: sim.stats().connected }));
  rep.listen();
  rep.ready();
}

const [role, ...args] = process.argv.slice(2);
if (role === 'node') await node(args[0]!, args[1]!);
else if (role === 'agentsim') await agentSim(args[0]!, Number(args[1]), args[2]!);
