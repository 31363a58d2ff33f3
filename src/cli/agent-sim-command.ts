// `meshlb agent-sim`'s flags, out of main.ts (which holds the other commands and is at the size bound):
// the options of src/cli/agent-sim.ts as flags. Its security flags are added with the other commands'
// (security-flags.ts).
import { Option, type Command } from 'commander';
import { applyLogLevel, int, labels, list, logLevelOption, num, type Opts } from './flags.js';
import { load } from './load.js';
import { callerSecurityFrom } from './security-flags.js';

export function addAgentSimCommand(program: Command, run: (code: Promise<number>) => void): void {
  program
    .command('agent-sim')
    .description('many simulated agents in one process, connected to a node cell')
    .requiredOption('--address <host:port>', 'node cell replica address')
    .option('--agents <n>', 'agents to run', int(1), 10)
    .option('--slots <n>', 'slots per agent', int(1), 4)
    .option('--kinds <list>', 'task kinds the agents take', list(), ['default'])
    .option('--labels <k=v,...>', 'agent labels', labels)
    .option('--service-time-ms <n>', 'mean simulated service time', num(0))
    .option('--service-jitter-ms <n>', 'uniform jitter added to the service time', num(0))
    .option('--expected-run-ms <n>', 'run time the agents declare to the node until it measures them', num(0))
    .option('--failure-rate <f>', 'fraction of attempts that fail', num(0, 1))
    .option('--duration <s>', 'run this long, then drain and exit (default: until signalled)', num(0))
    .option('--id-prefix <p>', 'agent ids are <prefix>-<i>')
    .option('--mesh <name>', 'the mesh (topology name) the agents expect; a node of another mesh refuses them')
    .option('--channels <n>', 'HTTP/2 connections shared by the agents (default one per 1000 agents)', int(1))
    .option('--seed <s>', 'random seed', int(0))
    .addOption(
      new Option(
        '--leader-hints <mode>',
        "follow a follower's leader hint to an address not given, or only to given ones",
      )
        .choices(['follow', 'given'])
        .default('follow'),
    )
    .option('--json', 'print one JSON summary on stdout at exit')
    .addOption(logLevelOption())
    .action((o: Opts) => {
      applyLogLevel(o);
      run(
        (async () => {
          const runAgentSim = await load<(opts: Opts) => Promise<number>>('agent-sim.js', 'runAgentSim');
          return runAgentSim({
            address: o.address,
            agents: o.agents,
            slots: o.slots,
            kinds: o.kinds,
            labels: o.labels ?? [],
            serviceTimeMs: o.serviceTimeMs,
            serviceJitterMs: o.serviceJitterMs,
            expectedRunMs: o.expectedRunMs,
            failureRate: o.failureRate,
            durationS: o.duration,
            idPrefix: o.idPrefix,
            mesh: o.mesh,
            channels: o.channels,
            leaderHints: o.leaderHints,
            seed: o.seed,
            json: o.json === true,
            security: callerSecurityFrom(o),
          });
        })(),
      );
    });
}
