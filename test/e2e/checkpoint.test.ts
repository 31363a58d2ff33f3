// Live migration of long tasks over real gRPC: a 3-replica Raft root, a
// region, a zone and a node cell in one process (test/helpers/raft-cell-mesh.ts),
// SDK agents running a task in counted steps that checkpoints after each.
// - an agent killed mid-run: the task resumes on another agent from the last
//   checkpoint the node acknowledged, no step before it done twice;
// - a drain with migration: the running task moves to another agent,
//   handed back without using up an attempt, nothing redone;
// - the preemption hook (requestHandBack) moves a running task the same way;
// - an oversize checkpoint is refused with a clear reason; the task goes on;
// - the root leader killed: the new leader holds the checkpoint (GetTask shows
//   it), and the task resumes from it when its agent dies next.
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, CheckpointError, type AgentTask } from '../../src/agent/index.js';
import { MeshClient, outputJson } from '../../src/client/index.js';
import { AdminServiceClient, type DrainAgentRequest, type GetTaskResponse } from '../../src/gen/meshlb/v1/admin.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { requestHandBack } from '../../src/mesh/agent-checkpoint.js';
import type { Replica } from '../../src/mesh/replica.js';
import { DEFAULT_CHECKPOINT_MAX_BYTES } from '../../src/mesh/settings.js';
import { OpsMesh, SEED } from '../helpers/raft-cell-mesh.js';
import { waitFor } from '../helpers/wait.js';

interface StepState {
  next: number;
  sum: number;
}

/** What the agents did, across attempts: every step run, and where each attempt started. */
class Steps {
  readonly runs: { agent: string; attempt: number; step: number }[] = [];
  readonly resumedAt = new Map<number, number>();
  /** The last `next` the node acknowledged, per agent. */
  readonly acked = new Map<string, number>();

  handler(agent: string) {
    return async (t: AgentTask): Promise<StepState> => {
      const { steps, stepMs } = t.json<{ steps: number; stepMs: number }>();
      let st: StepState = t.resumeFrom ? (JSON.parse(t.resumeFrom.toString()) as StepState) : { next: 0, sum: 0 };
      this.resumedAt.set(t.attempt, st.next);
      for (let i = st.next; i < steps; i++) {
        // The work of one step; a hand-back or a cancel drops the step in progress (its checkpoint is the last).
        await work(stepMs, t);
        this.runs.push({ agent, attempt: t.attempt, step: i });
        st = { next: i + 1, sum: st.sum + i };
        await t.checkpoint(st, { progress: st.next / steps });
        this.acked.set(agent, st.next);
      }
      return st;
    };
  }

  /** How many times each step ran. */
  counts(): Map<number, number> {
    const n = new Map<number, number>();
    for (const r of this.runs) n.set(r.step, (n.get(r.step) ?? 0) + 1);
    return n;
  }
}

/** `ms` of work, ended early (throwing) when the attempt is cancelled or asked back. */
function work(ms: number, t: AgentTask): Promise<void> {
  return new Promise((resolve, reject) => {
    const stop = (): void => {
      clearTimeout(timer);
      reject(new Error('stopped'));
    };
    const timer = setTimeout(() => {
      t.signal.removeEventListener('abort', stop);
      t.handBack.removeEventListener('abort', stop);
      resolve();
    }, ms);
    if (t.signal.aborted || t.handBack.aborted) return stop();
    t.signal.addEventListener('abort', stop, { once: true });
    t.handBack.addEventListener('abort', stop, { once: true });
  });
}

const sumTo = (n: number): number => (n * (n - 1)) / 2;

interface Ctx {
  m: OpsMesh;
  agents: Agent[];
  clients: MeshClient[];
  admins: AdminServiceClient[];
}
let ctx: Ctx | undefined;

afterEach(async () => {
  if (!ctx) return;
  for (const a of ctx.agents) a.close();
  for (const c of ctx.clients) c.close();
  for (const c of ctx.admins) c.close();
  await ctx.m.close();
  ctx = undefined;
});

async function start(): Promise<{ c: Ctx; leader: Replica; node: Replica }> {
  const m = await OpsMesh.start();
  ctx = { m, agents: [], clients: [], admins: [] };
  // The helper's simulated agents take kind echo only; ours come and go per test.
  for (const a of m.agents.splice(0)) a.end();
  const leader = await waitFor(() => m.leader(), { timeoutMs: 10_000, what: 'a root leader' });
  await waitFor(() => leader.cell.children?.links.size === 1 || undefined, {
    timeoutMs: 10_000,
    what: 'the region linked to the root leader',
  });
  return { c: ctx, leader, node: m.others[2]! };
}

async function agent(c: Ctx, node: Replica, id: string, kind: string, steps: Steps): Promise<Agent> {
  const a = new Agent({ address: node.address, agentId: id, slots: 1 }).handle(kind, steps.handler(id));
  c.agents.push(a);
  await a.start();
  return a;
}

function client(c: Ctx, address: string[]): MeshClient {
  const cl = new MeshClient({ address, deadlineMs: 15_000 });
  c.clients.push(cl);
  return cl;
}

function admin(c: Ctx, address: string) {
  const a = new AdminServiceClient(address, credentials.createInsecure());
  c.admins.push(a);
  const p = <Res>(f: (cb: (err: ServiceError | null, res: Res) => void) => void): Promise<Res> =>
    new Promise((resolve, reject) => f((err, res) => (err ? reject(err) : resolve(res))));
  return {
    drainAgent: (req: Partial<DrainAgentRequest>) =>
      p((cb) => a.drainAgent({ agentId: '', reason: '', migrate: false, graceMs: 0, ...req }, cb)),
    getTask: (taskId: string) => p<GetTaskResponse>((cb) => a.getTask({ taskId, cell: '' }, cb)),
  };
}

describe(`checkpoints and live migration over real gRPC (seed ${SEED})`, () => {
  it('an agent killed mid-run: the task resumes elsewhere from the last acknowledged checkpoint; a drain with migration moves a task; an oversize checkpoint is refused', async () => {
    const { c, leader, node } = await start();
    const cl = client(c, [leader.address]);

    // 1. Killed mid-run.
    const s1 = new Steps();
    const a = await agent(c, node, 'kill-a', 'steps-kill', s1);
    const { taskId } = await cl.submit({ kind: 'steps-kill', payload: { steps: 12, stepMs: 60 }, maxAttempts: 3 });
    await waitFor(() => ((s1.acked.get('kill-a') ?? 0) >= 5 ? true : undefined), {
      timeoutMs: 15_000,
      what: 'five steps checkpointed by kill-a',
    });
    await agent(c, node, 'kill-b', 'steps-kill', s1);
    const ackedAtKill = s1.acked.get('kill-a')!;
    a.close(); // abrupt: the stream is cancelled, the node fails the attempt back as lost
    const done = await cl.waitForResult(taskId, { timeoutMs: 20_000 });
    expect(done.stateName).toBe('completed');
    expect(outputJson(done)).toEqual({ next: 12, sum: sumTo(12) });
    expect(done.attempt).toBe(2);
    const resumed = s1.resumedAt.get(2)!;
    expect(resumed).toBeGreaterThanOrEqual(ackedAtKill);
    const counts = s1.counts();
    for (let i = 0; i < 12; i++) expect(counts.get(i), `step ${i}`).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < resumed; i++) expect(counts.get(i), `step ${i} before the checkpoint`).toBe(1);
    // At most the step in flight when the agent died (its checkpoint unsent) ran twice.
    expect(s1.runs.length - 12).toBeLessThanOrEqual(1);
    expect(s1.runs.filter((r) => r.agent === 'kill-b').every((r) => r.step >= resumed)).toBe(true);

    // 2. A drain with migration: the running task moves, handed back, no attempt spent, nothing redone.
    const s2 = new Steps();
    const cA = await agent(c, node, 'drain-a', 'steps-drain', s2);
    const second = await cl.submit({ kind: 'steps-drain', payload: { steps: 10, stepMs: 60 }, maxAttempts: 1 });
    await waitFor(() => ((s2.acked.get('drain-a') ?? 0) >= 3 ? true : undefined), {
      timeoutMs: 15_000,
      what: 'three steps checkpointed by drain-a',
    });
    await agent(c, node, 'drain-b', 'steps-drain', s2);
    await admin(c, node.address).drainAgent({
      agentId: 'drain-a',
      reason: 'maintenance',
      migrate: true,
      graceMs: 5000,
    });
    const moved = await cl.waitForResult(second.taskId, { timeoutMs: 20_000 });
    expect(moved.stateName).toBe('completed');
    expect(outputJson(moved)).toEqual({ next: 10, sum: sumTo(10) });
    // maxAttempts 1 and still completed: the handed-back attempt did not count.
    expect(leader.cell.ledger.get(second.taskId)).toMatchObject({ attempt: 2, failures: 0 });
    expect(s2.resumedAt.get(2)).toBe(s2.acked.get('drain-a'));
    expect(s2.runs.length).toBe(10); // nothing redone
    expect(new Set(s2.runs.map((r) => r.agent))).toEqual(new Set(['drain-a', 'drain-b']));
    await waitFor(() => (cA.state === 'closed' ? true : undefined), { what: 'drain-a left after its drain' });
    expect(cA.stats.tasksHandedBack).toBe(1);

    // 3. The preemption hook (agent-checkpoint.ts requestHandBack): the attempt is asked back, moves, no attempt spent.
    const s3 = new Steps();
    await agent(c, node, 'pre-a', 'steps-pre', s3);
    const fourth = await cl.submit({ kind: 'steps-pre', payload: { steps: 8, stepMs: 60 }, maxAttempts: 1 });
    await waitFor(() => ((s3.acked.get('pre-a') ?? 0) >= 2 ? true : undefined), {
      timeoutMs: 15_000,
      what: 'two steps checkpointed by pre-a',
    });
    await agent(c, node, 'pre-b', 'steps-pre', s3);
    const asked = requestHandBack(
      node.cell.agents!.byId,
      'pre-a',
      [{ taskId: fourth.taskId, attempt: 1, slots: 0 }],
      'preempted',
    );
    expect(asked).toHaveLength(1);
    expect(
      requestHandBack(node.cell.agents!.byId, 'pre-b', [{ taskId: fourth.taskId, attempt: 1, slots: 0 }], 'x'),
    ).toEqual([]);
    const preempted = await cl.waitForResult(fourth.taskId, { timeoutMs: 20_000 });
    expect(preempted.stateName).toBe('completed');
    expect(outputJson(preempted)).toEqual({ next: 8, sum: sumTo(8) });
    expect(leader.cell.ledger.get(fourth.taskId)).toMatchObject({ attempt: 2, failures: 0 });
    expect(s3.runs.length).toBe(8);

    // 4. Oversize: refused with the limit named; the stream and the task go on.
    const refusals: string[] = [];
    const big = new Agent({ address: node.address, agentId: 'big', slots: 1 }).handle('big', async (t) => {
      try {
        await t.checkpoint(Buffer.alloc(DEFAULT_CHECKPOINT_MAX_BYTES + 1));
      } catch (err) {
        refusals.push(err instanceof CheckpointError ? err.message : `not a CheckpointError: ${String(err)}`);
      }
      await t.checkpoint('small');
      return 'fine';
    });
    c.agents.push(big);
    await big.start();
    const third = await cl.submit({ kind: 'big', payload: '' });
    const fine = await cl.waitForResult(third.taskId, { timeoutMs: 20_000 });
    expect(fine.stateName).toBe('completed');
    expect(refusals).toEqual([
      `checkpoint of ${DEFAULT_CHECKPOINT_MAX_BYTES + 1} bytes is over the node's limit of ${DEFAULT_CHECKPOINT_MAX_BYTES} bytes (Welcome.max_checkpoint_bytes)`,
    ]);
    expect(big.stats).toMatchObject({ checkpointsRefused: 1, checkpointsAccepted: 1 });
    expect(big.welcome?.maxCheckpointBytes).toBe(DEFAULT_CHECKPOINT_MAX_BYTES);
  });

  it('the root leader killed: the new leader holds the logged checkpoint and the task resumes from it', async () => {
    const { c, leader, node } = await start();
    const m = c.m;
    const s = new Steps();
    const f = await agent(c, node, 'fo-a', 'steps-fo', s);
    const cl = client(
      c,
      [...m.roots.values()].map((r) => r.address),
    );
    const { taskId } = await cl.submit({ kind: 'steps-fo', payload: { steps: 40, stepMs: 60 }, maxAttempts: 3 });
    // A checkpoint every replica of the root applied from the log.
    const durable = await waitFor(
      () => {
        const nexts = [...m.roots.values()].map((r) => r.cell.ledger.get(taskId)?.checkpoint);
        if (nexts.some((x) => x === undefined || x.seq < 3)) return undefined;
        return Math.min(...nexts.map((x) => (JSON.parse(Buffer.from(x!.data).toString()) as StepState).next));
      },
      { timeoutMs: 15_000, what: 'a checkpoint on every root replica' },
    );
    const oldId = leader.cell.replicaId;
    m.roots.delete(m.numberOf(leader));
    await leader.close(0);
    const next = await waitFor(() => m.leader(), { timeoutMs: 10_000, what: 'a new root leader' });
    expect(next.cell.replicaId).not.toBe(oldId);
    const kept = next.cell.ledger.get(taskId)!.checkpoint!;
    expect((JSON.parse(Buffer.from(kept.data).toString()) as StepState).next).toBeGreaterThanOrEqual(durable);
    // GetTask shows what, when and how big; never the bytes.
    const got = await admin(c, next.address).getTask(taskId);
    expect(got.task!.checkpoint).toMatchObject({ attempt: 1, taskId });
    expect(got.task!.checkpoint!.sizeBytes).toBeGreaterThan(0);
    expect(got.task!.checkpoint!.atUnixMs).toBeGreaterThan(0);
    expect(got.task!.checkpoint!.data.length).toBe(0);

    // Its agent dies after the failover: the next attempt starts from a checkpoint no older than the durable one.
    await waitFor(() => next.cell.children?.links.size === 1 || undefined, {
      timeoutMs: 10_000,
      what: 'the region linked to the new leader',
    });
    await agent(c, node, 'fo-b', 'steps-fo', s);
    f.close();
    const done = await cl.waitForResult(taskId, { timeoutMs: 30_000 });
    expect(done.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(outputJson(done)).toEqual({ next: 40, sum: sumTo(40) });
    const resumedAt = s.resumedAt.get(done.attempt)!;
    expect(done.attempt).toBeGreaterThanOrEqual(2);
    expect(resumedAt).toBeGreaterThanOrEqual(durable);
    const counts = s.counts();
    for (let i = 0; i < resumedAt; i++) expect(counts.get(i), `step ${i} before the checkpoint`).toBe(1);
  });
});
