// Traces of tasks, over real gRPC: the four tiers in one process (the
// harness, free ports), an SDK agent and the client SDK.
//
// 1. Tracing on, spans kept in memory: one trace runs from the caller's own
//    span through the client's submit, the home's submit, one dispatch span
//    per tier (each the child of the tier above), the agent's run (and the
//    handler's own span inside it), and the result passing back at every
//    tier; every mesh span names the task. A dead-lettered task's log line
//    names its task and trace ids.
// 2. Tracing off: no span anywhere (even with a global tracer provider
//    registered, nothing falls back to it), the caller's context still travels
//    to the agent untouched, and a forwarded Dispatch is sent on as the very
//    object it arrived as (the hot path makes no copy).
// 3. `meshlb serve --otlp-endpoint`: a real process exports its spans over
//    OTLP/HTTP to a tiny receiver on a free port.
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_CONTEXT, trace, type Span } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, seededRandom, type AgentTask } from '../../src/agent/index.js';
import { Supervisor } from '../../src/cli/supervisor.js';
import { MeshClient, TaskState } from '../../src/client/index.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { Dispatch, TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import { FROM_PARENT, makeItem } from '../../src/mesh/types.js';
import { wireDispatch } from '../../src/mesh/wire.js';
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { parseTopology } from '../../src/topology/parse.js';
import { cellTracer, startTracing, type Tracing } from '../../src/trace/index.js';
import { formatTraceParent } from '../../src/util/trace-context.js';
import { freePort, serveArgs } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261216);
const TOPOLOGY = parseTopology(chainTopologyYaml({ name: 'traces', basePort: 7700 }));
const TIERS = [
  ['/', 'global'],
  ['/r', 'region'],
  ['/r/z', 'zone'],
  ['/r/z/n1', 'node'],
] as const;
const NODE = '/r/z/n1';
const FAST = { heartbeatIntervalMs: 100, heartbeatTimeoutMs: 1500, summaryIntervalMs: 100 } as const;

const attr = (s: ReadableSpan, key: string): unknown => s.attributes[key];
const parentId = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;
const id = (s: ReadableSpan | Span): string => s.spanContext().spanId;

/** The one span of `spans` named `name` (at `cell`, when given). */
function one(spans: readonly ReadableSpan[], name: string, cell?: string): ReadableSpan {
  const found = spans.filter((s) => s.name === name && (cell === undefined || attr(s, 'meshlb.cell') === cell));
  expect(found, `${name}${cell ? ` at ${cell}` : ''}`).toHaveLength(1);
  return found[0]!;
}

describe(`traces on: one trace per task across every tier (seed ${SEED})`, () => {
  const exporter = new InMemorySpanExporter();
  const logLines: Record<string, unknown>[] = [];
  let tracing: Tracing;
  let mesh: MeshHarness;
  let agent: Agent;
  let client: MeshClient;
  /** What the handler saw of its task's trace. */
  const seen: { traceId: string; traceParent: string }[] = [];

  beforeAll(async () => {
    tracing = (await startTracing({ exporter }))!;
    const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });
    mesh = await startMesh(TOPOLOGY, {
      seed: SEED,
      ...FAST,
      unplaceableTimeoutMs: 300,
      log,
      tracer: cellTracer(tracing.tracer),
    });
    agent = new Agent({
      address: mesh.address(NODE),
      agentId: 'agent-0',
      slots: 2,
      random: seededRandom(SEED),
      backoff: { initialMs: 10, maxMs: 100 },
      tracer: tracing.tracer,
    }).handle('echo', (t: AgentTask) => {
      seen.push({ traceId: t.traceId, traceParent: t.traceParent });
      // The handler's own work, under the run span.
      tracing.tracer.startSpan('handler.work', {}, t.context).end();
      return t.payload;
    });
    await agent.start();
    await mesh.ready();
    client = new MeshClient({ address: mesh.address('/'), deadlineMs: 10_000, tracer: tracing.tracer });
  }, 60_000);

  afterAll(async () => {
    agent?.close();
    client?.close();
    await mesh?.close();
    await tracing?.shutdown();
  });

  it("carries the caller's trace from submit through every tier to the agent and back", async () => {
    const app = tracing.tracer.startSpan('app.request');
    const traceId = app.spanContext().traceId;
    const { taskId } = await client.submit(
      { kind: 'echo', payload: 'hi' },
      { context: trace.setSpan(ROOT_CONTEXT, app) },
    );
    const done = await client.waitForResult(taskId, { timeoutMs: 10_000 });
    expect(done.state).toBe(TaskState.TASK_STATE_COMPLETED);
    app.end();
    const inTrace = (): ReadableSpan[] =>
      exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    // The home's result span is made as the result reaches it, before the ledger records it; wait for all the same.
    await waitFor(() => inTrace().some((s) => s.name === 'meshlb.result' && attr(s, 'meshlb.cell') === '/'), {
      what: 'the result span at the home',
    });
    const spans = inTrace();

    const clientSubmit = one(spans, 'meshlb.client.submit');
    expect(parentId(clientSubmit)).toBe(id(app));
    expect(attr(clientSubmit, 'meshlb.task.id')).toBe(taskId);
    const homeSubmit = one(spans, 'meshlb.submit', '/');
    expect(parentId(homeSubmit)).toBe(id(clientSubmit));
    // The ledger keeps the home's submit span as the task's trace context: Get shows it.
    expect(done.spec!.traceParent).toBe(formatTraceParent(homeSubmit.spanContext()));

    let above = homeSubmit;
    for (const [cell, tier] of TIERS) {
      const d = one(spans, 'meshlb.dispatch', cell);
      expect(parentId(d), `dispatch at ${cell}`).toBe(id(above));
      expect(d.attributes).toMatchObject({
        'meshlb.task.id': taskId,
        'meshlb.task.attempt': 1,
        'meshlb.task.kind': 'echo',
        'meshlb.tier': tier,
        'meshlb.dispatch.via': cell === NODE ? 'agent' : 'child',
        'meshlb.dispatch.to': cell === NODE ? 'agent-0' : TIERS.find(([c]) => c.startsWith(cell) && c !== cell)![0],
      });
      // Back: the result passed every tier, each under that tier's dispatch span.
      const r = one(spans, 'meshlb.result', cell);
      expect(parentId(r), `result at ${cell}`).toBe(id(d));
      expect(r.attributes).toMatchObject({ 'meshlb.task.id': taskId, 'meshlb.result.status': 'ok' });
      above = d;
    }
    const run = one(spans, 'meshlb.run');
    expect(parentId(run)).toBe(id(above));
    expect(run.attributes).toMatchObject({ 'meshlb.task.id': taskId, 'meshlb.agent.id': 'agent-0' });
    expect(run.attributes['meshlb.result.status']).toBe('ok');
    expect(parentId(one(spans, 'handler.work'))).toBe(id(run));
    // The agent saw the trace: the node's dispatch span as its parent.
    expect(seen).toContainEqual({ traceId, traceParent: formatTraceParent(above.spanContext()) });
    // Nothing of this task went to another trace; every mesh span names the task.
    expect(exporter.getFinishedSpans().filter((s) => s.attributes['meshlb.task.id'] === taskId)).toHaveLength(
      spans.filter((s) => s.attributes['meshlb.task.id'] === taskId).length,
    );
    for (const s of spans.filter((x) => x.name.startsWith('meshlb.'))) expect(attr(s, 'meshlb.task.id')).toBe(taskId);
    expect(spans).toHaveLength(1 + 1 + 1 + 4 + 4 + 1 + 1); // app, client, home submit, 4 dispatch, 4 result, run, handler
  }, 30_000);

  it('starts a trace for a task submitted with none, and logs a dead-lettered task with its task and trace ids', async () => {
    const { taskId } = await client.submit({ kind: 'nobody-serves-this' });
    const done = await client.waitForResult(taskId, { timeoutMs: 10_000 });
    expect(done.state).toBe(TaskState.TASK_STATE_DEAD_LETTERED);
    const ofTask = exporter.getFinishedSpans().filter((s) => s.attributes['meshlb.task.id'] === taskId);
    const clientSubmit = one(ofTask, 'meshlb.client.submit');
    expect(parentId(clientSubmit)).toBeUndefined(); // a new trace, started by the client
    const traceId = clientSubmit.spanContext().traceId;
    expect(done.spec!.traceParent.slice(3, 35)).toBe(traceId);
    const line = await waitFor(() => logLines.find((l) => l.msg === 'task dead-lettered' && l.taskId === taskId), {
      what: 'the dead-letter log line',
    });
    expect(line).toMatchObject({ taskId, traceId });
    expect(String(line.reason)).toContain('nobody-serves-this');
  }, 30_000);
});

describe('traces off: no spans, the context still travels, no copies on the hot path', () => {
  /** A global provider: anything that fell back to the global API tracer would show here. */
  const global = new InMemorySpanExporter();
  /** The caller's own tracing, apart from the mesh. */
  const callers = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())] });
  let mesh: MeshHarness;
  let agent: Agent;
  let client: MeshClient;
  const seen: { id: string; traceId: string; traceParent: string }[] = [];

  beforeAll(async () => {
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(global)] }));
    mesh = await startMesh(TOPOLOGY, { seed: SEED + 1, ...FAST });
    agent = new Agent({
      address: mesh.address(NODE),
      agentId: 'agent-0',
      slots: 2,
      random: seededRandom(SEED + 1),
      backoff: { initialMs: 10, maxMs: 100 },
    }).handle('echo', (t: AgentTask) => {
      seen.push({ id: t.id, traceId: t.traceId, traceParent: t.traceParent });
      return t.payload;
    });
    await agent.start();
    await mesh.ready();
    client = new MeshClient({ address: mesh.address('/'), deadlineMs: 10_000 });
  }, 60_000);

  afterAll(async () => {
    agent?.close();
    client?.close();
    await mesh?.close();
    trace.disable();
  });

  it("makes no span, and hands the caller's context to the agent as it was given", async () => {
    for (const [cell] of TIERS) expect(mesh.replicas.get(cell)!.cell.tracer.enabled).toBe(false);
    const caller = callers.getTracer('caller').startSpan('caller.request');
    const callerParent = formatTraceParent(caller.spanContext());
    const traced = await client.submit(
      { kind: 'echo', payload: 'a' },
      { context: trace.setSpan(ROOT_CONTEXT, caller) },
    );
    const plain = await client.submit({ kind: 'echo', payload: 'b' });
    const [t1, t2] = await Promise.all(
      [traced, plain].map((s) => client.waitForResult(s.taskId, { timeoutMs: 10_000 })),
    );
    caller.end();
    expect([t1!.state, t2!.state]).toEqual([TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_COMPLETED]);
    expect(t1!.spec!.traceParent).toBe(callerParent);
    expect(t2!.spec!.traceParent).toBe('');
    expect(seen).toContainEqual({
      id: traced.taskId,
      traceId: caller.spanContext().traceId,
      traceParent: callerParent,
    });
    expect(seen).toContainEqual({ id: plain.taskId, traceId: '', traceParent: '' });
    expect(global.getFinishedSpans()).toEqual([]);
  }, 30_000);

  it('sends a forwarded Dispatch on as the object it arrived as; a traced one as a copy', () => {
    const spec = TaskSpec.fromPartial({ kind: 'k' });
    const wire = Dispatch.fromPartial({ taskId: 't', attempt: 1, homeCell: '/', spec, leaseMs: 1000 });
    const item = makeItem('t', 1, '/', spec, FROM_PARENT, undefined, 't#1', 1000, wire, 0);
    expect(item.traceParent).toBe('');
    expect(wireDispatch(item)).toBe(wire);
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    item.traceParent = tp;
    const sent = wireDispatch(item);
    expect(sent).not.toBe(wire);
    expect(sent).toStrictEqual({ ...wire, traceParent: tp });
    expect(wire.traceParent).toBe('');
  });
});

describe('meshlb serve --otlp-endpoint (real process)', () => {
  const sup = new Supervisor();
  let receiver: Server | undefined;
  afterAll(async () => {
    await sup.stopAll(2000);
    await new Promise((r) => (receiver ? receiver.close(r) : r(undefined)));
  });

  it('exports its spans over OTLP/HTTP to the endpoint it was given', async () => {
    const bodies: { path: string; body: unknown }[] = [];
    receiver = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString('utf8')));
      req.on('end', () => {
        bodies.push({ path: req.url ?? '', body: JSON.parse(text) });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => receiver!.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as { port: number }).port;
    const dir = mkdtempSync(join(tmpdir(), 'meshlb-serve-traces-'));
    try {
      const address = `127.0.0.1:${await freePort()}`;
      const topo = join(dir, 'topology.yaml');
      writeFileSync(
        topo,
        `name: one\ndefaults: { unplaceableTimeoutMs: 200 }\ncells:\n  name: /\n  replicas: [{ address: "${address}" }]\n`,
      );
      sup.start({
        name: 'serve',
        command: process.execPath,
        args: serveArgs(topo, '/', ['--data-dir', join(dir, 'data')]),
        env: { ...process.env, MESHLB_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_BSP_SCHEDULE_DELAY: '100' },
      });
      const client = new MeshClient({ address, deadlineMs: 10_000 });
      let taskId = '';
      try {
        taskId = await waitFor(
          async () => {
            try {
              return (await client.submit({ kind: 'nobody' })).taskId;
            } catch {
              return undefined; // not serving yet
            }
          },
          { timeoutMs: 30_000, what: 'serve accepting' },
        );
        const done = await client.waitForResult(taskId, { timeoutMs: 10_000 });
        expect(done.state).toBe(TaskState.TASK_STATE_DEAD_LETTERED);
      } finally {
        client.close();
      }
      const submit = await waitFor(
        () => {
          for (const { path, body } of bodies) {
            for (const rs of (body as OtlpBody).resourceSpans ?? [])
              for (const ss of rs.scopeSpans ?? [])
                for (const s of ss.spans ?? [])
                  if (s.name === 'meshlb.submit' && s.attributes?.some((a) => a.value?.stringValue === taskId))
                    return { path, rs, s };
          }
          return undefined;
        },
        { timeoutMs: 15_000, what: 'the submit span at the receiver' },
      );
      expect(submit.path).toBe('/v1/traces');
      expect(submit.rs.resource?.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'meshlb' } });
      expect(submit.s.attributes).toContainEqual({ key: 'meshlb.cell', value: { stringValue: '/' } });
    } finally {
      await sup.stopAll(2000);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

/** The parts of an OTLP/HTTP JSON export body the test reads. */
interface OtlpBody {
  resourceSpans?: {
    resource?: { attributes?: OtlpAttr[] };
    scopeSpans?: { spans?: { name: string; attributes?: OtlpAttr[] }[] }[];
  }[];
}
interface OtlpAttr {
  key: string;
  value?: { stringValue?: string };
}
