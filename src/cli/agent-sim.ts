// `meshlb agent-sim`: many simulated agents in one process against a node cell.
// Each agent has its own stream; streams share a small pool of HTTP/2
// connections (AgentChannelPool), so thousands of agents cost one socket each
// per channel, not one per agent. Service time and failures come from one seed.
import type { Label } from '../gen/meshlb/v1/task.js';
import { Agent, AgentChannelPool, seededRandom, type AgentTask, type LeaderHints } from '../agent/index.js';
import { progressLines, progressTo } from './progress.js';
import { callerCredentials, type CallerSecurity } from '../security/caller.js';

export interface AgentSimOptions {
  /** TLS and a bearer token for the node (docs/security.md); default plaintext. */
  security?: CallerSecurity;
  /** Node cell replica address, or several (a list or "h1:p1,h2:p2") to fail over across. */
  address: string | readonly string[];
  /** Agents to run (default 10). */
  agents?: number;
  /** Slots per agent (default 4). */
  slots?: number;
  /** Kinds every agent takes (default ['default']). */
  kinds?: readonly string[];
  labels?: Record<string, string> | readonly Label[];
  /** Mean simulated service time, ms (default 0: handlers return at once). */
  serviceTimeMs?: number;
  /** Service time varies uniformly by +- this much, ms (default 0). */
  serviceJitterMs?: number;
  /**
   * The run time each agent declares to its node (AgentOptions.expectedRunMs), ms; the node places by it
   * until it has measured the agent. Default: serviceTimeMs, the mean the agents are configured to run for
   * (they know it, so a cold node need not try each one a task at a time); 0: declare nothing.
   */
  expectedRunMs?: number;
  /** Fraction of attempts that fail with an ERROR (default 0). */
  failureRate?: number;
  /** Seed for service times, failures and reconnect jitter (default 1). */
  seed?: number;
  /** Run this long, then drain and exit; 0/absent = until SIGINT/SIGTERM (or `signal`). */
  durationS?: number;
  /** The mesh (topology name) the agents expect; a node of another mesh refuses them. Default: any. */
  mesh?: string;
  /** Agent ids are `${idPrefix}-${i}` (default 'sim'). */
  idPrefix?: string;
  /** Print one JSON summary on stdout at exit (progress lines still go to stderr). */
  json?: boolean;
  /** Leader hints to addresses not given: 'follow' (default) or 'given' (AgentOptions.leaderHints). */
  leaderHints?: LeaderHints;
  /** HTTP/2 connections shared by the agents (default: one per 1000 agents). */
  channels?: number;
  /** Progress line period, ms (default 1000; 0 = none). */
  statsIntervalMs?: number;
  heartbeatIntervalMs?: number;
  /** How long the final drain may take (default 10 s). */
  drainTimeoutMs?: number;
  /** Stop (gracefully) when aborted: for embedding and tests. */
  signal?: AbortSignal;
  /** Output sinks (default process.stdout / process.stderr). */
  stdout?: (line: string) => void;
  stderr?: (line: string) => void;
}

export interface AgentSimStats {
  agents: number;
  connected: number;
  in_flight: number;
  completed: number;
  failed: number;
  started: number;
  /** Assignments beyond an agent's slots (refused): must stay 0 against a correct node. */
  refused_over_slots: number;
  /** Highest concurrent tasks seen on any one agent (never above slots). */
  max_in_flight_per_agent: number;
  reconnects: number;
  results_dropped: number;
  elapsed_s: number;
  throughput_per_s: number;
}

export interface AgentSim {
  readonly agents: readonly Agent[];
  stats(): AgentSimStats;
  /** Resolves when every agent has had its first Welcome (or closed). */
  ready(): Promise<void>;
  /** Drain every agent (or close abruptly with graceful=false), then release the channels. */
  stop(opts?: { graceful?: boolean; timeoutMs?: number }): Promise<AgentSimStats>;
}

/** "h1:p1,h2:p2" (as the CLI passes it) or a list -> a list of addresses. */
export function splitAddresses(a: string | readonly string[]): string[] {
  const list = typeof a === 'string' ? a.split(',') : [...a];
  return list.map((x) => x.trim()).filter(Boolean);
}

function labelsRecord(l: AgentSimOptions['labels']): Record<string, string> | undefined {
  if (!l) return undefined;
  if (Array.isArray(l)) {
    const out: Record<string, string> = {};
    for (const { key, value } of l as readonly Label[]) out[key] = value;
    return out;
  }
  return l as Record<string, string>;
}

/** Start the simulated agents (for embedding: dev, sim, tests). */
export function startAgentSim(opts: AgentSimOptions): AgentSim {
  const n = opts.agents ?? 10;
  const slots = opts.slots ?? 4;
  const kinds = opts.kinds?.length ? [...opts.kinds] : ['default'];
  const seed = opts.seed ?? 1;
  const mean = opts.serviceTimeMs ?? 0;
  const jitter = opts.serviceJitterMs ?? 0;
  const declared = opts.expectedRunMs ?? mean;
  const failureRate = opts.failureRate ?? 0;
  const prefix = opts.idPrefix ?? 'sim';
  const labels = labelsRecord(opts.labels);
  const address = splitAddresses(opts.address);
  const credentials = opts.security ? callerCredentials(opts.security) : undefined;
  const pool = new AgentChannelPool({
    channels: opts.channels ?? Math.max(1, Math.ceil(n / 1000)),
    ...(credentials ? { credentials } : {}),
    ...(opts.security ? { security: opts.security } : {}),
  });
  const t0 = performance.now();
  const agents: Agent[] = [];
  for (let i = 0; i < n; i++) {
    const rnd = seededRandom((seed * 1_000_003 + i) >>> 0);
    const handler = (task: AgentTask): Promise<void> | void => {
      const fail = failureRate > 0 && rnd() < failureRate;
      const delay = mean > 0 || jitter > 0 ? Math.max(0, mean + (rnd() * 2 - 1) * jitter) : 0;
      if (delay <= 0) {
        if (fail) throw new Error('simulated failure');
        return;
      }
      return new Promise<void>((resolve, reject) => {
        const signal = task.signal;
        const timer = setTimeout(() => {
          signal.removeEventListener('abort', onAbort);
          if (fail) reject(new Error('simulated failure'));
          else resolve();
        }, delay);
        const onAbort = () => {
          clearTimeout(timer);
          reject(signal.reason);
        };
        signal.addEventListener('abort', onAbort, { once: true });
      });
    };
    const agent = new Agent({
      address,
      agentId: `${prefix}-${i}`,
      kinds,
      labels,
      slots,
      heartbeatIntervalMs: opts.heartbeatIntervalMs,
      ...(declared > 0 ? { expectedRunMs: declared } : {}),
      random: seededRandom((seed * 7919 + i) >>> 0),
      openStream: pool.openStream,
      leaderHints: opts.leaderHints,
      ...(opts.mesh ? { mesh: opts.mesh } : {}),
    });
    for (const k of kinds) agent.handle(k, handler);
    agents.push(agent);
  }
  // A start that fails (no address is a node cell) says why through the agent's events.
  for (const a of agents) a.start().catch(() => undefined);

  const stats = (): AgentSimStats => {
    const s: AgentSimStats = {
      agents: n,
      connected: 0,
      in_flight: 0,
      completed: 0,
      failed: 0,
      started: 0,
      refused_over_slots: 0,
      max_in_flight_per_agent: 0,
      reconnects: 0,
      results_dropped: 0,
      elapsed_s: 0,
      throughput_per_s: 0,
    };
    for (const a of agents) {
      const st = a.stats;
      if (a.state === 'connected') s.connected++;
      s.in_flight += a.inFlight;
      s.completed += st.tasksOk;
      s.failed += st.tasksFailed;
      s.started += st.tasksStarted;
      s.refused_over_slots += st.refusedOverSlots;
      if (st.maxInFlight > s.max_in_flight_per_agent) s.max_in_flight_per_agent = st.maxInFlight;
      s.reconnects += Math.max(0, st.connects - 1);
      s.results_dropped += st.resultsDropped;
    }
    s.elapsed_s = round3((performance.now() - t0) / 1000);
    s.throughput_per_s = s.elapsed_s > 0 ? Math.round((s.completed + s.failed) / s.elapsed_s) : 0;
    return s;
  };

  let stopping: Promise<AgentSimStats> | undefined;
  return {
    agents,
    stats,
    ready: () => Promise.all(agents.map((a) => a.start())).then(() => undefined),
    stop: ({ graceful = true, timeoutMs = opts.drainTimeoutMs ?? 10_000 } = {}) => {
      stopping ??= (async () => {
        if (graceful) await Promise.all(agents.map((a) => a.drain({ timeoutMs })));
        for (const a of agents) a.close();
        const s = stats();
        pool.close();
        return s;
      })();
      return stopping;
    },
  };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Resolves with why we stop: 'duration', 'SIGINT', 'SIGTERM' or 'aborted'. */
export function waitForStop(durationS: number, signal?: AbortSignal): Promise<string> {
  return new Promise<string>((resolve) => {
    const finish = (why: string) => {
      if (timer) clearTimeout(timer);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      signal?.removeEventListener('abort', onAbort);
      resolve(why);
    };
    const onInt = () => finish('SIGINT');
    const onTerm = () => finish('SIGTERM');
    const onAbort = () => finish('aborted');
    const timer = durationS > 0 ? setTimeout(() => finish('duration'), durationS * 1000) : undefined;
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
  });
}

/** The CLI entry: run until durationS or a signal, print progress and a summary; returns the exit code. */
export async function runAgentSim(opts: AgentSimOptions): Promise<number> {
  const out = opts.stdout ?? ((l: string) => process.stdout.write(l + '\n'));
  const progress = opts.stderr ? progressLines(opts.stderr) : progressTo(process.stderr);
  const err = (l: string): void => {
    progress.done();
    (opts.stderr ?? ((line: string) => process.stderr.write(line + '\n')))(l);
  };
  const sim = startAgentSim(opts);
  // Stop early when the agents give up (no address is a node cell), else at the duration or a signal.
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) stop.abort();
  // A refused hello (another mesh, a bad hello) or a wrong address is the same for every agent: say it once.
  let refusal = '';
  let gaveUp = '';
  for (const a of sim.agents) {
    a.on('helloRefused', (r) => {
      if (r.details === refusal) return;
      refusal = r.details;
      err(`agent-sim: ${r.address} refused the agents (${r.codeName}): ${r.details}`);
    });
    a.on('disconnected', (st) => {
      if (st.codeName !== 'UNIMPLEMENTED' || gaveUp) return;
      gaveUp = st.details;
      err(`agent-sim: ${st.details}`);
      stop.abort();
    });
  }
  const statsEvery = opts.statsIntervalMs ?? 1000;
  let lastDone = 0;
  let lastAt = performance.now();
  const ticker =
    statsEvery > 0
      ? setInterval(() => {
          const s = sim.stats();
          const now = performance.now();
          const done = s.completed + s.failed;
          const rate = Math.round(((done - lastDone) * 1000) / Math.max(1, now - lastAt));
          lastDone = done;
          lastAt = now;
          progress.line(
            `agent-sim ${s.elapsed_s.toFixed(1)}s connected ${s.connected}/${s.agents} in-flight ${s.in_flight} completed ${s.completed} failed ${s.failed} rate ${rate}/s`,
          );
        }, statsEvery)
      : undefined;

  const stopped = await waitForStop(opts.durationS ?? 0, stop.signal);
  const reason = gaveUp ? 'no node cell' : stopped;
  opts.signal?.removeEventListener('abort', onAbort);
  if (ticker) clearInterval(ticker);
  err(`agent-sim: stopping (${reason}), draining ${sim.agents.length} agents`);
  const everConnected = sim.agents.some((a) => a.stats.connects > 0);
  const final = await sim.stop({ graceful: true });
  if (opts.json) out(JSON.stringify({ ...final, stop_reason: reason }));
  else
    out(
      `agent-sim: ${final.agents} agents, completed ${final.completed}, failed ${final.failed}, ` +
        `${final.throughput_per_s}/s over ${final.elapsed_s}s, reconnects ${final.reconnects}, ` +
        `refused over slots ${final.refused_over_slots}, max in-flight per agent ${final.max_in_flight_per_agent}`,
    );
  if (!everConnected) {
    // Why, as far as the agents know: the last way a stream to the node ended.
    const last = gaveUp ? undefined : sim.agents.find((a) => a.lastStatus)?.lastStatus;
    const why = last ? ` (last: ${last.codeName}: ${last.details})` : '';
    if (!gaveUp) err(`agent-sim: no agent ever connected to ${String(opts.address)}${why}`);
    return 1;
  }
  return 0;
}
