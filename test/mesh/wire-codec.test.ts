// The link and agent codec (wire-codec.ts): a relayed dispatch or result goes
// as the bytes it came as, anything else as the generated code writes it.
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { describe, expect, it } from 'vitest';
import { ConnectResponse } from '../../src/gen/meshlb/v1/agent.js';
import { LedgerRecord } from '../../src/gen/meshlb/v1/ledger.js';
import { OpenRequest, OpenResponse } from '../../src/gen/meshlb/v1/link.js';
import {
  Dispatch,
  Priority,
  ResultStatus,
  SubmitBatchRequest,
  TaskResult,
  TaskSpec,
  TaskState,
} from '../../src/gen/meshlb/v1/task.js';
import { dispatchSize, wireDispatch } from '../../src/mesh/wire.js';
import {
  decodeOpenRequest,
  decodeOpenResponse,
  decodeSubmitBatchRequest,
  DISPATCH_FIELDS,
  encodeConnectResponse,
  encodeRecord,
  RECORD_FIELDS,
  finishView,
  resultBytes,
  encodeOpenRequest,
  encodeOpenResponse,
  relaysRaw,
} from '../../src/mesh/wire-codec.js';
import { makeItem, routeKey, FROM_PARENT } from '../../src/mesh/types.js';

const dispatch = (i: number): Dispatch =>
  Dispatch.fromPartial({
    taskId: `t${i}`,
    attempt: 1 + (i % 3),
    homeCell: '/',
    leaseMs: 30_000,
    spec: { kind: 'k', payload: Buffer.from([i, 1, 2]), priority: Priority.PRIORITY_HIGH, tenant: `n${i % 2}` },
    guaranteed: i % 2 === 0,
  });

const result = (i: number): TaskResult =>
  TaskResult.fromPartial({
    taskId: `t${i}`,
    attempt: 1,
    status: ResultStatus.RESULT_STATUS_OK,
    output: Buffer.from('out'),
    agentId: 'a1',
    nodeCell: '/r/z/n',
    runMicros: 10 + i,
  });

const dispatches = (tasks: Dispatch[]): OpenResponse => ({ msg: { $case: 'dispatches', value: { tasks } } });
const tasksOf = (m: OpenResponse): Dispatch[] => (m.msg?.$case === 'dispatches' ? m.msg.value.tasks : []);
const bytesOf = (m: OpenResponse): Buffer => Buffer.from(OpenResponse.encode(m).finish());

/** `d` encoded with an extra field 99 (a string) that this proto does not know. */
function withUnknownField(d: Dispatch): Uint8Array {
  const w = Dispatch.encode(d);
  w.uint32((99 << 3) | 2).string('from a newer root');
  return w.finish();
}

describe('wire codec', () => {
  it('writes what the generated code writes, and decodes to the same objects', () => {
    const m = dispatches([0, 1, 2, 3].map(dispatch));
    const bytes = bytesOf(m);
    expect(Buffer.compare(encodeOpenResponse(m), bytes)).toBe(0);
    const back = decodeOpenResponse(bytes);
    expect(OpenResponse.toJSON(back)).toEqual(OpenResponse.toJSON(OpenResponse.decode(bytes)));
    expect(tasksOf(back).every(relaysRaw)).toBe(true);
    // Written again, the decoded items are their own bytes.
    expect(Buffer.compare(encodeOpenResponse(back), bytes)).toBe(0);

    const up: OpenRequest = { msg: { $case: 'results', value: { results: [0, 1, 2].map(result) } } };
    const upBytes = Buffer.from(OpenRequest.encode(up).finish());
    expect(Buffer.compare(encodeOpenRequest(up), upBytes)).toBe(0);
    const upBack = decodeOpenRequest(upBytes);
    expect(OpenRequest.toJSON(upBack)).toEqual(OpenRequest.toJSON(OpenRequest.decode(upBytes)));
    expect(Buffer.compare(encodeOpenRequest(upBack), upBytes)).toBe(0);
    const spill: OpenRequest = { msg: { $case: 'spillUps', value: { tasks: [dispatch(5)] } } };
    const spillBytes = Buffer.from(OpenRequest.encode(spill).finish());
    expect(OpenRequest.toJSON(decodeOpenRequest(spillBytes))).toEqual(
      OpenRequest.toJSON(OpenRequest.decode(spillBytes)),
    );
    // Other messages: the generated code both ways.
    const acks: OpenRequest = { msg: { $case: 'acks', value: { acks: [] } } };
    expect(Buffer.compare(encodeOpenRequest(acks), Buffer.from(OpenRequest.encode(acks).finish()))).toBe(0);
    expect(decodeOpenRequest(encodeOpenRequest(acks))).toEqual(acks);
  });

  it('passes on fields it does not know, inside a relayed dispatch', () => {
    const inner = withUnknownField(dispatch(7));
    const w = new BinaryWriter();
    w.uint32(18).fork().uint32(10).bytes(inner).join();
    const bytes = w.finish();
    const got = decodeOpenResponse(bytes);
    expect(tasksOf(got)[0]!.taskId).toBe('t7');
    // Relayed down (a dispatch) and to an agent (an assignment): the unknown field is still there.
    expect(Buffer.from(encodeOpenResponse(got)).includes(Buffer.from('from a newer root'))).toBe(true);
    const assign: ConnectResponse = { msg: { $case: 'assignments', value: { tasks: tasksOf(got) } } };
    const out = encodeConnectResponse(assign);
    expect(out.includes(Buffer.from('from a newer root'))).toBe(true);
    expect(ConnectResponse.decode(out)).toEqual(ConnectResponse.decode(ConnectResponse.encode(assign).finish()));
  });

  it("writes a changed copy field by field: a traced dispatch names this cell's span", () => {
    const d = tasksOf(decodeOpenResponse(bytesOf(dispatches([dispatch(1)]))))[0]!;
    const item = makeItem(
      d.taskId,
      d.attempt,
      d.homeCell,
      d.spec!,
      FROM_PARENT,
      undefined,
      routeKey(d.taskId, 1),
      30_000,
      d,
      0,
    );
    expect(wireDispatch(item)).toBe(d);
    item.traceParent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const traced = wireDispatch(item);
    expect(relaysRaw(traced)).toBe(false);
    const sent = tasksOf(decodeOpenResponse(encodeOpenResponse(dispatches([traced]))))[0]!;
    expect(sent.traceParent).toBe(item.traceParent);
    expect(TaskSpec.toJSON(sent.spec!)).toEqual(TaskSpec.toJSON(d.spec!));
  });

  it('a message that fails to encode leaves nothing behind for the next one', () => {
    const bad = { ...dispatch(1), attempt: -1 };
    expect(() => encodeOpenResponse(dispatches([dispatch(2), bad]))).toThrow();
    const ok = dispatches([dispatch(3)]);
    expect(Buffer.compare(encodeOpenResponse(ok), bytesOf(ok))).toBe(0);
  });

  it('takes a message of several fields as the generated code does (the last of the oneof wins)', () => {
    const w = new BinaryWriter();
    OpenResponse.encode(dispatches([dispatch(1)]), w);
    OpenResponse.encode({ msg: { $case: 'drain', value: { reason: 'x', drain: true } } }, w);
    const bytes = w.finish();
    expect(OpenResponse.toJSON(decodeOpenResponse(bytes))).toEqual(OpenResponse.toJSON(OpenResponse.decode(bytes)));
    expect(decodeOpenResponse(bytes).msg?.$case).toBe('drain');
  });

  it('copies a message cut from a larger buffer, so a kept item holds only its own message', () => {
    const bytes = bytesOf(dispatches([dispatch(1), dispatch(2)]));
    // As a socket read delivers it: a view into a much larger buffer, other data around it.
    const read = new Uint8Array(64 * 1024);
    read.set(bytes, 1000);
    const view = read.subarray(1000, 1000 + bytes.length);
    const [kept] = tasksOf(decodeOpenResponse(view));
    read.fill(0); // the read buffer reused for the next read
    expect(relaysRaw(kept!)).toBe(true);
    expect(OpenResponse.decode(encodeOpenResponse(dispatches([kept!])))).toEqual(dispatches([dispatch(1)]));
  });

  it("counts a relayed item's batch size by the bytes it goes as (a newer sender's fields too)", () => {
    const w = Dispatch.encode(dispatch(3));
    w.uint32((99 << 3) | 2).bytes(new Uint8Array(20_000)); // a field this proto does not know
    const inner = w.finish();
    const outer = new BinaryWriter();
    outer.uint32(18).fork().uint32(10).bytes(inner).join();
    const [d] = tasksOf(decodeOpenResponse(outer.finish()));
    expect(dispatchSize(d!)).toBeGreaterThanOrEqual(inner.length);
    expect(dispatchSize(dispatch(3))).toBeLessThan(1000);
  });

  describe('a home dispatch carries its spec as the client submitted it', () => {
    const specs = [0, 1, 2].map((i) =>
      TaskSpec.fromPartial({
        kind: 'k',
        payload: Buffer.from([i, 9]),
        tenant: i === 2 ? '' : `n${i}`,
        labels: [{ key: 'a', value: `${i}` }],
        deadlineUnixMs: 1_700_000_000_000 + i,
      }),
    );
    const submitted = (): TaskSpec[] =>
      decodeSubmitBatchRequest(Buffer.from(SubmitBatchRequest.encode({ tasks: specs }).finish())).tasks;
    const home = (spec: TaskSpec, i: number): Dispatch =>
      Dispatch.fromPartial({
        taskId: `t${i}`,
        attempt: 1 + i,
        homeCell: '/',
        spec,
        leaseMs: 30_000,
        traceParent: i === 1 ? '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' : '',
        checkpoint: i === 2 ? { taskId: `t${i}`, attempt: 1, data: Buffer.from('cp'), progress: 0.5 } : undefined,
        guaranteed: i === 0,
      });

    it('decodes a SubmitBatch as the generated code does, and writes the same dispatch bytes', () => {
      const got = submitted();
      expect(got.map((s) => TaskSpec.toJSON(s))).toEqual(specs.map((s) => TaskSpec.toJSON(s)));
      expect(got.every(relaysRaw)).toBe(true);
      // Dispatch is spread (not copied whole) to keep the spec object, as the dispatcher's items do.
      const out = dispatches(got.map((s, i) => ({ ...home(s, i), spec: s })));
      expect(Buffer.compare(encodeOpenResponse(out), bytesOf(out))).toBe(0);
    });

    it('passes on a spec field this proto does not know', () => {
      const w = new BinaryWriter();
      const inner = TaskSpec.encode(specs[0]!);
      inner.uint32((99 << 3) | 2).string('from a newer client');
      w.uint32(10).bytes(inner.finish());
      const [spec] = decodeSubmitBatchRequest(w.finish()).tasks;
      const out = encodeOpenResponse(dispatches([{ ...home(spec!, 0), spec: spec! }]));
      expect(out.includes(Buffer.from('from a newer client'))).toBe(true);
    });

    it("writes a spec whose tenant was filled in after decoding (the auth guard's) field by field", () => {
      const spec = submitted()[2]!;
      spec.tenant = 'acme';
      expect(relaysRaw(spec)).toBe(false);
      const sent = tasksOf(decodeOpenResponse(encodeOpenResponse(dispatches([{ ...home(spec, 2), spec }]))));
      expect(sent[0]!.spec!.tenant).toBe('acme');
    });

    it('takes anything but a list of specs as the generated code does', () => {
      const w = new BinaryWriter();
      w.uint32((5 << 3) | 0).uint32(7); // a field SubmitBatchRequest does not have
      SubmitBatchRequest.encode({ tasks: specs }, w);
      const bytes = w.finish();
      expect(decodeSubmitBatchRequest(bytes)).toEqual(SubmitBatchRequest.decode(bytes));
    });

    it('names every Dispatch field (a new one must be written by encDispatch too)', () => {
      expect([...DISPATCH_FIELDS].sort()).toEqual(Object.keys(Dispatch.fromPartial({})).sort());
    });
  });

  it("writes a terminal ledger record's spec and result as the bytes they came as, read back the same", () => {
    const [spec] = decodeSubmitBatchRequest(
      Buffer.from(
        SubmitBatchRequest.encode({
          tasks: [TaskSpec.fromPartial({ kind: 'k', tenant: 'n', payload: Buffer.from('p') })],
        }).finish(),
      ),
    ).tasks;
    const up: OpenRequest = { msg: { $case: 'results', value: { results: [result(4)] } } };
    const back = decodeOpenRequest(Buffer.from(OpenRequest.encode(up).finish()));
    const r = back.msg?.$case === 'results' ? back.msg.value.results[0]! : result(0);
    expect(relaysRaw(spec!) && relaysRaw(r)).toBe(true);
    const rec = LedgerRecord.fromPartial({
      id: 't4',
      homeCell: '/',
      createdMs: 1.5,
      state: TaskState.TASK_STATE_COMPLETED,
      attempt: 2,
      updatedMs: 9.25,
      reason: 'done',
      preemptions: 1,
      preemptedBy: 't1',
      checkpoint: { taskId: 't4', attempt: 2, progress: 0.5, seq: 3 },
    });
    const w = new BinaryWriter();
    for (const [s, res] of [
      [spec!, r],
      [spec!, undefined],
      [TaskSpec.fromPartial({ kind: 'k' }), r],
      [TaskSpec.fromPartial({ kind: 'k' }), result(1)],
    ] as const) {
      // Byte for byte what the generated code writes (no field here it does not know).
      const full = { ...rec, spec: s, result: res };
      expect(Buffer.compare(encodeRecord(full, w), LedgerRecord.encode(full).finish())).toBe(0);
    }
    expect([...RECORD_FIELDS].sort()).toEqual(Object.keys(LedgerRecord.fromPartial({})).sort());
  });

  it('finishView gives what finish() would and resets the writer; messages are copies the next encode leaves alone', () => {
    const w = new BinaryWriter();
    const want = TaskResult.encode(result(3)).finish();
    TaskResult.encode(result(3), w);
    expect(Buffer.compare(finishView(w), want)).toBe(0);
    w.fork().uint32(1); // left unjoined, as by an encode that threw
    finishView(w);
    expect(Buffer.compare(finishView(TaskResult.encode(result(3), w)), want)).toBe(0);
    // A result's bytes (result-keeper.ts copies them): the same as the generated code's, and the link
    // then writes the result as those bytes (a node's rewritten result is encoded once).
    const mine = result(3);
    expect(relaysRaw(mine)).toBe(false);
    expect(Buffer.compare(resultBytes(mine), want)).toBe(0);
    expect(relaysRaw(mine)).toBe(true);
    const up: OpenRequest = { msg: { $case: 'results', value: { results: [mine, result(4)] } } };
    expect(Buffer.compare(encodeOpenRequest(up), Buffer.from(OpenRequest.encode(up).finish()))).toBe(0);
    const first = encodeOpenResponse(dispatches([dispatch(1)]));
    const copy = Buffer.from(first);
    encodeOpenResponse(dispatches([dispatch(2), dispatch(3)]));
    expect(Buffer.compare(first, copy)).toBe(0);
  });
});
