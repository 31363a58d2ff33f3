import { afterEach, describe, expect, it } from 'vitest';
import { Agent, FatalTaskError, ResultStatus, seededRandom, type AgentTask } from '../../src/agent/index.js';
import { dispatch, FakeNode } from '../helpers/fake-node.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startNode(opts: Parameters<typeof FakeNode.start>[0] = {}): Promise<FakeNode> {
  const node = await FakeNode.start(opts);
  cleanups.push(() => node.stop());
  return node;
}

function newAgent(opts: Partial<ConstructorParameters<typeof Agent>[0]> & { address: string | string[] }): Agent {
  const agent = new Agent({ agentId: 'a1', slots: 4, ...opts });
  cleanups.push(() => agent.close());
  return agent;
}

/** A gate a handler can await; the test opens it. */
function gate() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

describe('Agent', () => {
  it('says hello with kinds, labels and slots, runs a task and reports the result', async () => {
    const node = await startNode();
    const agent = newAgent({ address: node.address, labels: { gpu: 'a100' }, slots: 3 }).handle(
      'echo',
      async (t) => `echo:${t.text()}:${t.labels.k}`,
    );
    await agent.start();
    expect(agent.state).toBe('connected');
    const s = node.session('a1')!;
    expect(s.hello).toMatchObject({
      agentId: 'a1',
      kinds: ['echo'],
      slots: 3,
      labels: [{ key: 'gpu', value: 'a100' }],
    });
    s.assign([dispatch('t1', 'echo', 'hi')]);
    const r = await waitFor(() => s.resultFor('t1'), { what: 'result of t1' });
    expect(r.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(Buffer.from(r.output).toString()).toBe('echo:hi:v');
    expect(r).toMatchObject({ attempt: 1, agentId: 'a1', nodeCell: '/test/n1' });
    expect(agent.stats.tasksOk).toBe(1);
    // It finished within the same turn: its result implies the start, no separate ack.
    expect(s.started).toEqual([]);
  });

  it('acks the start of a task that is still running at the flush', async () => {
    const node = await startNode();
    const g = gate();
    const agent = newAgent({ address: node.address }).handle('echo', () => g.p);
    await agent.start();
    const s = node.session()!;
    s.assign([dispatch('t1', 'echo', '', 3)]);
    await waitFor(() => s.started.length === 1, { what: 'started ack' });
    expect(s.started).toEqual([{ taskId: 't1', attempt: 3, slots: 0 }]);
    g.open();
    await waitFor(() => s.resultFor('t1'), { what: 'result' });
    expect(s.resultFor('t1')!.attempt).toBe(3);
  });

  it('coalesces results: many finished tasks travel in few messages', async () => {
    const node = await startNode();
    const agent = newAgent({ address: node.address, slots: 500 }).handle('echo', (t) => t.payload);
    await agent.start();
    const s = node.session()!;
    s.assign(Array.from({ length: 400 }, (_, i) => dispatch(`t${i}`)));
    await waitFor(() => s.results.length === 400, { what: '400 results' });
    expect(s.resultMessages).toBeLessThanOrEqual(4);
    expect(agent.stats.messagesSent).toBeLessThan(20);
  });

  it('never runs more than slots at once: over-assigned tasks are refused as "over slots" and counted', async () => {
    const node = await startNode();
    const g = gate();
    const agent = newAgent({ address: node.address, slots: 3 }).handle('echo', async () => {
      await g.p;
      return 'done';
    });
    await agent.start();
    const s = node.session()!;
    s.assign(Array.from({ length: 10 }, (_, i) => dispatch(`t${i}`)));
    await waitFor(() => s.results.length === 7, { what: '7 refusals' });
    expect(agent.inFlight).toBe(3);
    expect(agent.stats.maxInFlight).toBe(3);
    expect(agent.stats.refusedOverSlots).toBe(7);
    for (const r of s.results) {
      expect(r.status).toBe(ResultStatus.RESULT_STATUS_ERROR);
      expect(r.error).toMatch(/over slots/);
    }
    g.open();
    await waitFor(() => s.results.length === 10, { what: 'all results' });
    expect(s.results.slice(7).map((r) => r.status)).toEqual([1, 1, 1]);
    expect(agent.stats.maxInFlight).toBe(3);
  });

  it('keeps refusedOverSlots at 0 when the node respects slots (credit loop of 300 tasks)', async () => {
    const node = await startNode();
    let running = 0;
    let peak = 0;
    const agent = newAgent({ address: node.address, slots: 5 }).handle('echo', async () => {
      peak = Math.max(peak, ++running);
      await new Promise((r) => setImmediate(r));
      running--;
    });
    await agent.start();
    const s = node.session()!;
    let sent = 0;
    let seen = 0;
    const topUp = () => {
      const free = 5 - (sent - s.results.length);
      const batch = [];
      for (let i = 0; i < free && sent < 300; i++) batch.push(dispatch(`t${sent++}`));
      if (batch.length) s.assign(batch);
    };
    topUp();
    await waitFor(
      () => {
        if (s.results.length !== seen) {
          seen = s.results.length;
          topUp();
        }
        return s.results.length === 300;
      },
      { intervalMs: 1, what: '300 results' },
    );
    expect(agent.stats.refusedOverSlots).toBe(0);
    expect(agent.stats.maxInFlight).toBeLessThanOrEqual(5);
    expect(peak).toBeLessThanOrEqual(5);
    expect(s.results.every((r) => r.status === ResultStatus.RESULT_STATUS_OK)).toBe(true);
  });

  it('maps handler outcomes: JSON output, ERROR for a throw, FATAL for FatalTaskError, ERROR for an unknown kind', async () => {
    const node = await startNode();
    const agent = newAgent({ address: node.address, kinds: ['ok', 'bad', 'fatal', 'other'] })
      .handle('ok', (t) => ({ got: t.json<{ n: number }>().n + 1 }))
      .handle('bad', async () => {
        throw new Error('boom');
      })
      .handle('fatal', () => {
        throw new FatalTaskError('cannot ever work');
      });
    await agent.start();
    const s = node.session()!;
    s.assign([dispatch('a', 'ok', '{"n":41}'), dispatch('b', 'bad'), dispatch('c', 'fatal'), dispatch('d', 'other')]);
    await waitFor(() => s.results.length === 4, { what: '4 results' });
    expect(JSON.parse(Buffer.from(s.resultFor('a')!.output).toString())).toEqual({ got: 42 });
    expect(s.resultFor('b')).toMatchObject({ status: ResultStatus.RESULT_STATUS_ERROR, error: 'boom' });
    expect(s.resultFor('c')).toMatchObject({ status: ResultStatus.RESULT_STATUS_FATAL, error: 'cannot ever work' });
    expect(s.resultFor('d')!.status).toBe(ResultStatus.RESULT_STATUS_ERROR);
    expect(s.resultFor('d')!.error).toMatch(/no handler/);
  });

  it('cuts result batches to fit the max message size the node announced', async () => {
    const node = await startNode({ maxMessageBytes: 64 * 1024 });
    const big = Buffer.alloc(20 * 1024, 7);
    const agent = newAgent({ address: node.address, slots: 10 }).handle('echo', () => big);
    await agent.start();
    const s = node.session()!;
    s.assign(Array.from({ length: 10 }, (_, i) => dispatch(`t${i}`)));
    await waitFor(() => s.results.length === 10, { what: '10 big results' });
    expect(s.resultMessages).toBeGreaterThanOrEqual(5);
    expect(s.results.every((r) => r.output.length === big.length)).toBe(true);
    expect(agent.state).toBe('connected');
  });

  it('refuses to start with nothing to declare; a "*" handler catches any kind', async () => {
    const node = await startNode();
    expect(() => new Agent({ address: node.address, agentId: 'x', slots: 1 }).start()).toThrow(/no kinds/);
    const agent = newAgent({ address: node.address, kinds: ['a', 'b'] }).handle('*', (t) => t.kind);
    await agent.start();
    expect(node.session()!.hello!.kinds).toEqual(['a', 'b']);
    node.session()!.assign([dispatch('t1', 'b')]);
    const r = await waitFor(() => node.session()!.resultFor('t1'), { what: 'result' });
    expect(r.output.toString()).toBe('b');
  });

  it('sends heartbeats with load at the Welcome interval', async () => {
    const node = await startNode({ heartbeatIntervalMs: 40 });
    const g = gate();
    const agent = newAgent({ address: node.address, slots: 2 }).handle('echo', () => g.p);
    await agent.start();
    const s = node.session()!;
    s.assign([dispatch('t1')]);
    await waitFor(() => s.loads.length >= 6, { timeoutMs: 5000, what: '6 heartbeats' });
    // The first load goes at once on Welcome; the next five follow the 40 ms cadence.
    const span = s.loads[5]!.at - s.loads[1]!.at;
    expect(span).toBeGreaterThanOrEqual(4 * 40 * 0.8);
    const l = s.loads[s.loads.length - 1]!.load;
    expect(l.inFlight).toBe(1);
    expect(l.cpu).toBeGreaterThanOrEqual(0);
    expect(l.cpu).toBeLessThanOrEqual(1);
    expect(l.memory).toBeGreaterThan(0);
    expect(l.draining).toBe(false);
    g.open();
  });

  it('an explicit heartbeatIntervalMs overrides the Welcome', async () => {
    const node = await startNode({ heartbeatIntervalMs: 60_000 });
    const agent = newAgent({ address: node.address, heartbeatIntervalMs: 20 }).handle('echo', () => undefined);
    await agent.start();
    await waitFor(() => node.session()!.loads.length >= 4, { timeoutMs: 5000, what: '4 heartbeats' });
  });

  it('cancel from the node aborts the handler signal', async () => {
    const node = await startNode();
    const seen: AgentTask[] = [];
    const agent = newAgent({ address: node.address }).handle(
      'echo',
      (t) =>
        new Promise((_, reject) => {
          seen.push(t);
          t.signal.addEventListener('abort', () => reject(t.signal.reason));
        }),
    );
    await agent.start();
    const s = node.session()!;
    s.assign([dispatch('t1'), dispatch('t2')]);
    await waitFor(() => seen.length === 2, { what: 'handlers running' });
    s.cancel([{ taskId: 't1', attempt: 1, slots: 0 }]);
    const r = await waitFor(() => s.resultFor('t1'), { what: 'result of cancelled t1' });
    expect(r.status).toBe(ResultStatus.RESULT_STATUS_ERROR);
    expect(r.error).toMatch(/cancel/);
    expect(seen[0]!.signal.aborted).toBe(true);
    expect(seen[1]!.signal.aborted).toBe(false);
    expect(agent.stats.tasksCancelled).toBe(1);
    expect(agent.inFlight).toBe(1);
  });

  it('reconnects with seeded backoff after the node kills the stream, and re-sends results', async () => {
    const node = await startNode();
    const draws: number[] = [];
    const rnd = seededRandom(7);
    const g = gate();
    const agent = newAgent({
      address: node.address,
      slots: 4,
      backoff: { initialMs: 20, maxMs: 200 },
      random: () => {
        const x = rnd();
        draws.push(x);
        return x;
      },
    })
      .handle('echo', () => 'quick')
      .handle('slow', async () => {
        await g.p;
        return 'slow';
      });
    const disconnected: number[] = [];
    agent.on('disconnected', (st) => disconnected.push(st.code));
    await agent.start();
    const s1 = node.session()!;
    s1.assign([dispatch('fast'), dispatch('s1', 'slow'), dispatch('s2', 'slow')]);
    await waitFor(() => s1.resultFor('fast'), { what: 'fast result' });
    s1.kill();
    await waitFor(() => disconnected.length === 1, { what: 'disconnected event' });
    expect(disconnected[0]).toBe(14); // UNAVAILABLE
    // Finished while (possibly) disconnected: must reach the next session.
    g.open();
    await waitFor(() => node.sessions.length === 2 && node.session()!.hello, { what: 'second session' });
    const s2 = node.session()!;
    await waitFor(() => s2.resultFor('s1') && s2.resultFor('s2'), { what: 'slow results on the new stream' });
    // Anything still running at the reconnect was re-announced as started on the new stream.
    for (const ref of s2.started) expect(['s1', 's2']).toContain(ref.taskId);
    // The result sent just before the break is sent again (the node fences by attempt).
    await waitFor(() => s2.resultFor('fast'), { what: 're-sent fast result' });
    expect(agent.stats.resultsResent).toBeGreaterThanOrEqual(1);
    expect(agent.stats.connects).toBe(2);
    expect(draws.length).toBeGreaterThanOrEqual(1);
    expect(agent.stats.refusedOverSlots).toBe(0);
  });

  it('after a reconnect, re-announces attempts still running (started + in_flight in the first load)', async () => {
    const node = await startNode();
    const g = gate();
    const agent = newAgent({
      address: node.address,
      backoff: { initialMs: 5, maxMs: 20 },
      random: seededRandom(2),
    }).handle('echo', () => g.p);
    await agent.start();
    node.session()!.assign([dispatch('r1'), dispatch('r2')]);
    await waitFor(() => agent.inFlight === 2, { what: 'two running' });
    node.session()!.kill();
    await waitFor(() => node.sessions.length === 2 && node.session()!.started.length === 2, {
      what: 're-announced on the new stream',
    });
    const s2 = node.session()!;
    expect(s2.started.map((r) => r.taskId).sort()).toEqual(['r1', 'r2']);
    expect(s2.loads[0]!.load.inFlight).toBe(2);
    g.open();
    await waitFor(() => s2.results.length === 2, { what: 'results on the new stream' });
  });

  it('a heartbeat in the turn a task ends counts it until its result is written (the node would drop a carried result)', async () => {
    const node = await startNode({ heartbeatIntervalMs: 60_000 });
    const g = gate();
    const agent = newAgent({ address: node.address, slots: 2 }).handle('echo', () => g.p);
    await agent.start();
    const s = node.session()!;
    s.assign([dispatch('t1')]);
    await waitFor(() => agent.inFlight === 1, { what: 't1 running' });
    // The handler ends; its result waits for the outbox's flush (setImmediate), and a heartbeat due in
    // this turn's timers goes first: as on a loaded machine, where timers bunch up in one turn.
    g.open();
    for (let i = 0; i < 20 && agent.stats.tasksOk === 0; i++) await Promise.resolve(); // microtasks only: no flush
    expect(agent.stats.tasksOk).toBe(1);
    expect(agent.inFlight).toBe(0);
    const loads = s.loads.length;
    (agent as unknown as { connection: { sendLoad(): void } }).connection.sendLoad();
    await waitFor(() => s.loads.length > loads && s.resultFor('t1'), { what: 'the load and the result' });
    expect(s.loads[loads]!.load.inFlight, 'the load written before the result').toBe(1);
    expect(s.results.length).toBe(1);
  });

  it('keeps retrying while the node is down and comes back when it returns on the same port', async () => {
    const node = await startNode();
    const agent = newAgent({
      address: node.address,
      backoff: { initialMs: 10, maxMs: 50 },
      random: seededRandom(3),
    }).handle('echo', () => 'x');
    await agent.start();
    const port = node.port;
    await node.stop();
    await waitFor(() => agent.state === 'connecting', { what: 'agent notices' });
    const node2 = await FakeNode.start({}, port);
    cleanups.push(() => node2.stop());
    await waitFor(() => agent.state === 'connected' && node2.session('a1'), { what: 'reconnect to restarted node' });
    node2.session('a1')!.assign([dispatch('t9')]);
    await waitFor(() => node2.session('a1')!.resultFor('t9'), { what: 'task after reconnect' });
  });

  it('fails over across an address list', async () => {
    const dead = await startNode();
    const deadAddr = dead.address;
    await dead.stop();
    const node = await startNode();
    const agent = newAgent({
      address: [deadAddr, node.address],
      backoff: { initialMs: 5, maxMs: 20 },
      random: seededRandom(1),
    }).handle('echo', () => 1);
    await agent.start();
    expect(agent.address).toBe(node.address);
    expect(node.session('a1')).toBeDefined();
  });

  it('drain: refuses new work, finishes in-flight, sends every result, then closes the stream', async () => {
    const node = await startNode();
    const g = gate();
    const agent = newAgent({ address: node.address, slots: 4 }).handle('echo', async () => {
      await g.p;
      return 'ok';
    });
    await agent.start();
    const s = node.session()!;
    s.assign([dispatch('t1'), dispatch('t2')]);
    await waitFor(() => agent.inFlight === 2, { what: 'two running' });
    const drained = agent.drain({ timeoutMs: 10_000 });
    await waitFor(() => s.loads.some((l) => l.load.draining), { what: 'draining load' });
    s.assign([dispatch('t3')]);
    await waitFor(() => s.resultFor('t3'), { what: 'refusal of t3' });
    expect(s.resultFor('t3')!.error).toMatch(/draining/);
    expect(agent.state).toBe('connected');
    g.open();
    await drained;
    expect(agent.state).toBe('closed');
    expect(s.resultFor('t1')!.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(s.resultFor('t2')!.status).toBe(ResultStatus.RESULT_STATUS_OK);
    await waitFor(() => s.agentEnded, { what: 'agent half-close' });
    expect(node.sessions.length).toBe(1);
  });

  it('drain past its timeout aborts stuck handlers, reports them, and closes', async () => {
    const node = await startNode();
    const agent = newAgent({ address: node.address }).handle(
      'echo',
      (t) => new Promise((_, reject) => t.signal.addEventListener('abort', () => reject(t.signal.reason))),
    );
    await agent.start();
    const s = node.session()!;
    s.assign([dispatch('stuck')]);
    await waitFor(() => agent.inFlight === 1, { what: 'running' });
    await agent.drain({ timeoutMs: 100 });
    expect(agent.state).toBe('closed');
    const r = s.resultFor('stuck')!;
    expect(r.status).toBe(ResultStatus.RESULT_STATUS_ERROR);
    expect(r.error).toMatch(/drain timed out/);
  });

  it('holds at most maxBufferedResults while the node is away, dropping the oldest', async () => {
    const node = await startNode();
    const port = node.port;
    const g = gate();
    const agent = newAgent({
      address: node.address,
      slots: 5,
      maxBufferedResults: 3,
      backoff: { initialMs: 10, maxMs: 50 },
      random: seededRandom(4),
    }).handle('echo', async (t) => {
      await g.p;
      return t.id;
    });
    await agent.start();
    node.session()!.assign(['a', 'b', 'c', 'd', 'e'].map((id) => dispatch(id)));
    await waitFor(() => agent.inFlight === 5, { what: 'five running' });
    await node.stop();
    await waitFor(() => agent.state === 'connecting', { what: 'disconnected' });
    g.open();
    await waitFor(() => agent.inFlight === 0, { what: 'all finished offline' });
    expect(agent.stats.resultsDropped).toBe(2);
    const node2 = await FakeNode.start({}, port);
    cleanups.push(() => node2.stop());
    await waitFor(() => node2.session('a1')?.results.length === 3, { what: 'the three newest results' });
    expect(node2.session('a1')!.results.map((r) => r.taskId)).toEqual(['c', 'd', 'e']);
  });

  it('a DrainOrder from the node drains and closes without reconnecting', async () => {
    const node = await startNode();
    const g = gate();
    const agent = newAgent({ address: node.address }).handle('echo', async () => {
      await g.p;
    });
    const closed = new Promise<void>((r) => agent.once('closed', r));
    await agent.start();
    const s = node.session()!;
    s.assign([dispatch('t1')]);
    await waitFor(() => agent.inFlight === 1, { what: 'running' });
    s.drain('node going away');
    await waitFor(() => agent.draining, { what: 'draining' });
    g.open();
    await closed;
    expect(s.resultFor('t1')!.status).toBe(ResultStatus.RESULT_STATUS_OK);
    expect(node.sessions.length).toBe(1);
  });

  it('close() is abrupt: aborts running handlers', async () => {
    const node = await startNode();
    let signal: AbortSignal | undefined;
    const agent = newAgent({ address: node.address }).handle('echo', (t) => {
      signal = t.signal;
      return new Promise(() => {});
    });
    await agent.start();
    node.session()!.assign([dispatch('t1')]);
    await waitFor(() => signal, { what: 'running' });
    agent.close();
    expect(signal!.aborted).toBe(true);
    expect(agent.state).toBe('closed');
    await waitFor(() => node.session()!.closed, { what: 'stream closed at the node' });
  });

  it('ignores a duplicate assignment of a running attempt', async () => {
    const node = await startNode();
    const g = gate();
    let runs = 0;
    const agent = newAgent({ address: node.address }).handle('echo', async () => {
      runs++;
      await g.p;
    });
    await agent.start();
    const s = node.session()!;
    s.assign([dispatch('t1'), dispatch('t1')]);
    await waitFor(() => agent.stats.duplicateAssignments === 1, { what: 'duplicate seen' });
    g.open();
    await waitFor(() => s.results.length === 1, { what: 'one result' });
    expect(runs).toBe(1);
  });
});
