// The `meshlb` command line. Each command's module is imported only when that
// command runs, so startup stays fast and a broken or missing module breaks
// only its own command. Exit codes: what the command returns (0 ok), 1 for a
// failure it reports, 2 for bad usage (unknown flags, bad values).
import { Command, CommanderError, Option } from 'commander';
import {
  applyLogLevel,
  int,
  list,
  logLevelOption,
  num,
  otlpEndpointOption,
  traceSampleOption,
  type Opts,
} from './flags.js';
import { reportFailure, wantsStack } from './errors.js';
import { annotateHelp, packageVersion } from './help.js';
import { addTopologyCommands } from './topology-commands.js';
import { addAgentSimCommand } from './agent-sim-command.js';
import { load, withTelemetry } from './load.js';
import { addSecurityCommands, callerSecurityFrom } from './security-flags.js';
import { watchParent } from './parent-watch.js';

export const EXIT_USAGE = 2;

export const CHAOS = ['kill-leaders', 'kill-agents', 'partition', 'restart', 'pause'] as const;

export function buildProgram(run: (code: Promise<number>) => void): Command {
  const program = new Command('meshlb')
    .description('A gRPC hierarchical mesh of balancer cells that distributes tasks to fleets of agents')
    .version(packageVersion())
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('serve')
    .description('run one replica of one cell of a topology')
    .requiredOption('--topology <file>', 'topology YAML')
    .requiredOption('--cell <path>', 'cell path, e.g. / or /eu/west-1a/n1')
    .option('--replica <n>', 'replica number (1-based)', int(1, 5), 1)
    .option(
      '--data-dir <dir>',
      "this replica's own directory for its Raft log and snapshots (default: <topology defaults.dataDir>/<mesh name>-<mesh id>/<cell>-<replica>)",
    )
    .option('--listen <host>', 'bind host, overriding the topology address host (e.g. 0.0.0.0 in containers)')
    .option(
      '--join',
      "join the cell's running Raft group with an empty log, to be added with AdminService/AddReplica (docs/topology.md)",
    )
    .option('--metrics-port <port>', 'serve Prometheus /metrics on this port', int(0, 65535))
    .option('--metrics-host <host>', 'bind host for /metrics', '127.0.0.1')
    .addOption(otlpEndpointOption())
    .addOption(traceSampleOption())
    .option('--http-port <port>', 'serve the live page and its JSON on this port (0 = any free port)', int(0, 65535))
    .option('--http-host <host>', 'bind host for the live page', '127.0.0.1')
    .addOption(logLevelOption())
    .action((o: Opts) => {
      applyLogLevel(o);
      run(
        withTelemetry(o, async (meter, tracer) => {
          const runServe = await load<(opts: Opts) => Promise<number>>('serve.js', 'runServe');
          return runServe({
            meter,
            tracer,
            topologyFile: o.topology,
            cell: o.cell,
            replica: o.replica,
            dataDir: o.dataDir,
            listenHost: o.listen,
            httpPort: o.httpPort,
            httpHost: o.httpHost,
            join: o.join === true,
            logLevel: o.logLevel,
          });
        }),
      );
    });

  program
    .command('dev')
    .description('the whole mesh in one process with simulated agents and a workload')
    .option('--tasks <n>', 'tasks to submit', int(0))
    .option('--agents <n>', 'simulated agents in total', int(1))
    .option('--rate <r>', 'submissions per second (default 2000; 0 = as fast as admitted)', num(0))
    .option('--duration <s>', 'stop submitting after this many seconds', num(0))
    .option('--seed <s>', 'random seed', int(0))
    .option('--json', 'print one JSON summary on stdout')
    .option('--topology <file>', 'topology YAML (default: the built-in example)')
    .option('--service-time-ms <n>', 'mean simulated service time', num(0))
    .option('--failure-rate <f>', 'fraction of attempts that fail', num(0, 1))
    .option('--metrics-port <port>', 'serve Prometheus /metrics on this port', int(0, 65535))
    .addOption(otlpEndpointOption())
    .addOption(traceSampleOption())
    .option('--http-port <port>', 'serve the live page on this port while it runs (0 = any free port)', int(0, 65535))
    .addOption(logLevelOption())
    .action((o: Opts) => {
      // Fifteen in-process replicas logging at info drown the progress line:
      // dev logs warnings and errors only unless asked.
      if (o.logLevel === undefined && !process.env.MESHLB_LOG_LEVEL) process.env.MESHLB_LOG_LEVEL = 'warn';
      applyLogLevel(o);
      run(
        withTelemetry(o, async (meter, tracer) => {
          const runDev = await load<(opts: Opts) => Promise<number>>('dev.js', 'runDev');
          return runDev({
            meter,
            tracer,
            tasks: o.tasks,
            agents: o.agents,
            rate: o.rate,
            durationS: o.duration,
            seed: o.seed,
            json: o.json === true,
            topologyFile: o.topology,
            httpPort: o.httpPort,
            serviceTimeMs: o.serviceTimeMs,
            failureRate: o.failureRate,
          });
        }),
      );
    });

  addAgentSimCommand(program, run);

  program
    .command('submit')
    .description('a bounded load generator: submit tasks and wait for their results')
    .requiredOption('--address <host:port>', 'any replica address (usually the root cell)')
    .option('--tasks <n>', 'tasks to submit', int(1), 1000)
    .option('--rate <r>', 'submissions per second (0 = as fast as admitted)', num(0), 0)
    .option('--kind <k>', 'task kind', 'default')
    .option('--payload-bytes <n>', 'payload size', int(0), 0)
    .addOption(
      new Option('--priority <p>', 'priority').choices(['critical', 'high', 'normal', 'low']).default('normal'),
    )
    .option('--concurrency <n>', 'max tasks in flight', int(1))
    .option('--timeout-ms <n>', 'task timeout', int(1))
    .option('--duration <s>', 'stop submitting after this many seconds', num(0))
    .option('--wait-ms <n>', 'how long to wait for results after the last submit', int(0))
    .addOption(new Option('--durability <d>', 'durability').choices(['logged', 'none']))
    .option(
      '--batch <n>',
      'specs per SubmitBatch call made by the generator (1 = one submit per task, coalesced by the client)',
      int(1, 10_000),
      1,
    )
    .option(
      '--coalesce-window-ms <ms>',
      'a submit made while others are in flight waits this long to share a SubmitBatch (0 = same event-loop turn only)',
      num(0),
      2,
    )
    .option('--no-coalesce', 'one Submit call per task (no shared SubmitStream, no client-side coalescing)')
    .option('--no-shared-submit', 'submits as Submit/SubmitBatch calls (coalesced) instead of one shared SubmitStream')
    .option('--no-shared-watch', 'one Watch stream per task instead of one shared WatchMany stream')
    .option('--wait', 'wait for every result (the default)')
    .option('--no-wait', 'do not wait for results')
    .option('--seed <s>', 'random seed', int(0))
    .option('--json', 'print one JSON summary on stdout')
    .addOption(logLevelOption())
    .action((o: Opts) => {
      applyLogLevel(o);
      run(
        (async () => {
          const runSubmit = await load<(opts: Opts) => Promise<number>>('submit.js', 'runSubmit');
          return runSubmit({
            address: o.address,
            tasks: o.tasks,
            rate: o.rate,
            kind: o.kind,
            payloadBytes: o.payloadBytes,
            priority: o.priority,
            concurrency: o.concurrency,
            timeoutMs: o.timeoutMs,
            durationS: o.duration,
            waitMs: o.waitMs,
            durability: o.durability,
            batch: o.batch,
            coalesce: o.coalesce !== false,
            sharedSubmit: o.sharedSubmit === false ? false : undefined, // default: submitLoad's (with coalescing)
            coalesceWindowMs: o.coalesceWindowMs,
            sharedWatch: o.sharedWatch !== false,
            wait: o.wait !== false,
            seed: o.seed,
            json: o.json === true,
            tenant: o.tenant,
            security: callerSecurityFrom(o),
          });
        })(),
      );
    });

  program
    .command('deploy')
    .description('generate docker-compose.yml and k8s/ manifests from a topology')
    .requiredOption('--topology <file>', 'topology YAML')
    .requiredOption('--out <dir>', 'output directory (e.g. deploy)')
    .option('--image <image>', 'container image', 'meshlb:latest')
    .option('--namespace <ns>', 'Kubernetes namespace', 'meshlb')
    .option('--agents-per-node <n>', 'simulated agents per node cell in the generated agent-sim services', int(0), 20)
    .action((o: Opts) => {
      run(
        (async () => {
          const { runDeploy } = await import('./deploy.js');
          return runDeploy({
            topologyFile: o.topology as string,
            outDir: o.out as string,
            image: o.image as string,
            namespace: o.namespace as string,
            agentsPerNode: o.agentsPerNode as number,
          });
        })(),
      );
    });

  program
    .command('sim')
    .description(
      'the topology as separate processes (on loopback, or one network namespace per replica), with seeded chaos',
    )
    .requiredOption('--topology <file>', 'topology YAML')
    .option('--duration <s>', 'workload duration', num(1), 20)
    .option('--agents-per-node <n>', 'simulated agents per node cell', int(1), 10)
    .option('--rate <r>', 'submissions per second', num(1), 200)
    .option('--tasks <n>', 'tasks to submit (default: rate x duration)', int(1))
    .option('--chaos <list>', `faults to inject: ${CHAOS.join(', ')}`, list(CHAOS), [])
    .addOption(
      new Option('--kill-tier <tier>', 'kill-leaders at this tier only (default: a random tier each time)').choices([
        'global',
        'region',
        'zone',
        'node',
      ]),
    )
    .option('--chaos-every <s>', 'mean seconds between chaos events (default: duration/4, 0.5 to 10)', num(0.1))
    .option(
      '--down <s>',
      'how long a fault stays in force (a partition twice this; with --netns at least twice the link timeout)',
      num(0),
      1.5,
    )
    .option('--netns', 'one network namespace per replica; partitions cut real links (Linux, root)')
    .option('--keep-data', "keep the replicas' data directories (the path is in the result)")
    .option('--seed <s>', 'random seed (same seed, same chaos schedule)', int(0), 1)
    .option('--ready-timeout <s>', 'how long to wait for every replica to be SERVING', num(1), 90)
    .option('--json', 'print one JSON summary on stdout')
    .addOption(logLevelOption())
    .action((o: Opts) => {
      applyLogLevel(o);
      run(
        (async () => {
          const { runSim } = await import('./sim.js');
          const chaos = o.chaos as string[];
          return runSim({
            topologyFile: o.topology as string,
            durationS: o.duration as number,
            agentsPerNode: o.agentsPerNode as number,
            rate: o.rate as number,
            tasks: o.tasks as number | undefined,
            chaos: {
              killLeaders: chaos.includes('kill-leaders'),
              killAgents: chaos.includes('kill-agents'),
              partition: chaos.includes('partition'),
              restart: chaos.includes('restart'),
              pause: chaos.includes('pause'),
            },
            killTier: o.killTier as 'global' | 'region' | 'zone' | 'node' | undefined,
            chaosEveryS: o.chaosEvery as number | undefined,
            downMs: (o.down as number) * 1000,
            netns: o.netns === true,
            keepData: o.keepData === true,
            seed: o.seed as number,
            json: o.json === true,
            logLevel: o.logLevel as string | undefined,
            readyTimeoutMs: (o.readyTimeout as number) * 1000,
          });
        })(),
      );
    });

  program
    .command('health')
    .description('grpc.health.v1 Check against a replica: exit 0 if SERVING, 1 otherwise')
    .requiredOption('--address <host:port>', 'replica address')
    .option('--service <name>', 'service name ("" = the whole replica)', '')
    .option('--timeout-ms <n>', 'deadline', int(1), 2000)
    .action((o: Opts) => {
      run(
        (async () => {
          const { checkHealth } = await import('./health-check.js');
          const status = await checkHealth(
            o.address as string,
            o.service as string,
            o.timeoutMs as number,
            callerSecurityFrom(o),
          );
          process.stdout.write(`${status}\n`);
          return status === 'SERVING' ? 0 : 1;
        })(),
      );
    });

  program
    .command('status')
    .description(
      'the mesh as a tree: per cell its health, leader, agents, free slots, queue, in flight and rates (asks twice)',
    )
    .requiredOption('--address <host:port>', 'any replica address (the whole mesh is shown from any cell)')
    .option(
      '--interval <s>',
      'seconds between the two answers the rates come from (0 = one answer, no rates)',
      num(0),
      1,
    )
    .option('--timeout-ms <n>', 'deadline of each answer', int(1), 5000)
    .option('--json', 'print one JSON object on stdout')
    .action((o: Opts) => {
      run(
        (async () => {
          const runStatus = await load<(opts: Opts) => Promise<number>>('status.js', 'runStatus');
          return runStatus({
            address: o.address,
            intervalS: o.interval,
            timeoutMs: o.timeoutMs,
            json: o.json === true,
            security: callerSecurityFrom(o),
          });
        })(),
      );
    });

  addTopologyCommands(program, run);
  addSecurityCommands(program, run);
  // Required options marked, every default shown (help.ts).
  annotateHelp(program);
  return program;
}

/** Parse argv and run; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let pending: Promise<number> | undefined;
  const program = buildProgram((p) => {
    pending = p;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; every parse error is a usage error
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    throw err;
  }
  if (!pending) return 0;
  try {
    return await pending;
  } catch (err) {
    // One line that says what went wrong (errors.ts); the stack only when debugging.
    return reportFailure(err);
  }
}

function isEntry(): boolean {
  const entry = process.argv[1];
  return entry !== undefined && /(^|[\\/])(main\.(ts|js)|meshlb(\.js)?)$/.test(entry);
}

if (isEntry()) {
  watchParent(); // a child of `meshlb sim` stops with it (parent-watch.ts)
  // grpc-js logs some failures itself ("E No address added ..."); GRPC_VERBOSITY or debug keeps them.
  if (process.env.GRPC_VERBOSITY === undefined && !wantsStack() && !process.argv.includes('debug'))
    process.env.GRPC_VERBOSITY = 'NONE';
  const code = await main(process.argv.slice(2));
  // Let stdout drain (a --json summary piped to another program), then exit
  // even if a library left a timer or socket behind.
  process.stdout.write('', () => process.exit(code));
}
