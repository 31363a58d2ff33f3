// `npm run bench:two-speed -- --phases`: where the slow tasks' time went, phase by phase, joined from the
// client's clock, the node's record of each task (accepted and completed) and its placement decision
// (AdminService.ExplainTask: when the node picked the agent). One machine, one clock (unix ms).
//   submit:  the client's submit call to the node's acceptance (the client's send, the node's accept path)
//   queued:  acceptance to the pick (waiting in the node's queue: held for a faster agent, or no credit)
//   agent:   the pick to the node's completion, less the agent's own run (the start's commit, the
//            assignment out, the agent-sim's own path, the result back)
//   run:     the agent's run time as it reported it (run_micros)
//   deliver: the node's completion to the client holding the final record (the result's commit, WatchMany)
// The node keeps its last 1,024 decisions (src/mesh/dispatcher-trail.ts): the first second of a run is
// explained only in a run of at most about 1,000 tasks (`--tasks=1000`); what is not is counted, not guessed.
import { appendFileSync } from 'node:fs';
import { credentials, Metadata } from '@grpc/grpc-js';
import { AdminServiceClient } from '../src/gen/meshlb/v1/admin.js';
import { quantile, type RunSample } from './two-speed-lib.js';

export type PhaseSample = RunSample & {
  readonly taskId: string;
  readonly startUnixMs: number;
  readonly endUnixMs: number;
  readonly createdUnixMs: number;
  readonly updatedUnixMs: number;
};

export const PHASES = ['submit', 'queued', 'agent', 'run', 'deliver'] as const;

const hasTimes = (s: RunSample): s is PhaseSample =>
  s.completed && typeof (s as Partial<PhaseSample>).taskId === 'string';

/** When the node picked each task's agent (unix ms), for the tasks still in its decision ring. */
async function pickTimes(address: string, ids: readonly string[]): Promise<Map<string, number>> {
  const c = new AdminServiceClient(address, credentials.createInsecure());
  const out = new Map<string, number>();
  const one = (taskId: string): Promise<void> =>
    new Promise((resolve) =>
      c.explainTask(
        { taskId, cell: '', hereOnly: false },
        new Metadata(),
        { deadline: Date.now() + 5000 },
        (err, res) => {
          const d = res?.trail[0];
          if (!err && d && d.action === 'agent') out.set(taskId, Number(d.atUnixMs));
          resolve();
        },
      ),
    );
  try {
    for (let i = 0; i < ids.length; i += 32) await Promise.all(ids.slice(i, i + 32).map(one));
  } finally {
    c.close();
  }
  return out;
}

/** A task's time, phase by phase (ms), given when the node picked its agent (unix ms). */
export function phasesOf(s: PhaseSample, pickUnixMs: number): Record<(typeof PHASES)[number], number> {
  const run = s.runMs ?? NaN;
  return {
    submit: s.createdUnixMs - s.startUnixMs,
    queued: pickUnixMs - s.createdUnixMs,
    agent: s.updatedUnixMs - pickUnixMs - run,
    run,
    deliver: s.endUnixMs - s.updatedUnixMs,
  };
}

const fmt = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');

function row(name: string, xs: readonly PhaseSample[], pick: Map<string, number>, slowPrefix: string): string {
  const with_ = xs.filter((s) => pick.has(s.taskId));
  const ph = with_.map((s) => phasesOf(s, pick.get(s.taskId)!));
  const med = (k: (typeof PHASES)[number]) =>
    fmt(
      quantile(
        ph.map((p) => p[k]).sort((a, b) => a - b),
        0.5,
      ),
    );
  const p90 = (k: (typeof PHASES)[number]) =>
    fmt(
      quantile(
        ph.map((p) => p[k]).sort((a, b) => a - b),
        0.9,
      ),
    );
  const slow = xs.filter((s) => s.agent.startsWith(`${slowPrefix}-`)).length;
  const queued5 = ph.filter((p) => p.queued > 5).length;
  const client = fmt(
    quantile(
      xs.map((s) => s.clientMs).sort((a, b) => a - b),
      0.5,
    ),
  );
  return (
    `${name}: ${xs.length} tasks (${with_.length} explained), client median ${client} ms, on slow agents ${slow}, ` +
    `queued > 5 ms ${queued5}; phase median (p90) ms: ` +
    PHASES.map((k) => `${k} ${med(k)} (${p90(k)})`).join(', ')
  );
}

/**
 * The phases of four sets of a run's tasks: the slowest 1% of the run, those of them submitted in the first
 * second, every first-second task, and every later one.
 */
export async function phaseReport(
  address: string,
  samples: readonly RunSample[],
  slowPrefix = 'slow',
): Promise<string> {
  const done = samples.filter(hasTimes);
  const slowest = [...done].sort((a, b) => b.clientMs - a.clientMs).slice(0, Math.ceil(done.length / 100));
  const first = done.filter((s) => (s.atMs ?? 0) < 1000);
  const later = done.filter((s) => (s.atMs ?? 0) >= 1000);
  const pick = await pickTimes(
    address,
    [...new Set([...slowest, ...first, ...later.slice(-400)])].map((s) => s.taskId),
  );
  // BENCH_PHASES_DUMP=FILE: the slowest 1%, task by task (appended, one JSON line a run), to match against other records.
  const dump = process.env.BENCH_PHASES_DUMP;
  if (dump) {
    const one = (s: PhaseSample) => ({ at: s.startUnixMs, on: s.agent, ...phasesOf(s, pick.get(s.taskId) ?? NaN) });
    appendFileSync(dump, `${JSON.stringify(slowest.map(one))}\n`);
  }
  return [
    row('slowest 1%', slowest, pick, slowPrefix),
    row(
      'slowest 1%, first second',
      slowest.filter((s) => (s.atMs ?? 0) < 1000),
      pick,
      slowPrefix,
    ),
    row('first second, all', first, pick, slowPrefix),
    row('after the first second, all', later, pick, slowPrefix),
  ].join('\n');
}
