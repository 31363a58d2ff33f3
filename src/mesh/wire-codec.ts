// The link and agent streams' codec: the generated protobuf code, except that
// a cell relays what it only routes as the bytes it received.
//
// A dispatch a region, zone or node cell passes on is the one it decoded
// (wire.ts: same attempt, lease and spec), and a result a middle cell passes
// up is the one its child sent. Decoding them here keeps each one's encoded
// bytes beside it (a view into the received message, no copy); encoding
// writes those bytes again instead of walking the object, so a relayed item
// costs one copy instead of an encode (docs/performance.md, "The mesh bench"). Fields
// this replica's proto does not know pass through as they came (protobuf
// readers skip fields they do not know).
//
// The bytes go with the object they were decoded as, not with copies of it:
// a copy (wire.ts's traced dispatch, `{ ...d, traceParent }`) carries the
// symbol along but names another owner, so it is encoded field by field. The
// mesh never changes a decoded dispatch, spec or result in place; a node
// rewrites what its agents send (agent-sessions.ts), which is decoded by the
// generated code and has no bytes kept until the node encodes the rewritten
// result once to remember it (resultBytes), and writes those bytes up.
//
// Every message is written with one writer per process, kept between
// messages, so a batch of hundreds of items does not regrow a buffer each time.
import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import { FRAME_HEADER_BYTES, withFramed, type FramingSerializer } from '../util/grpc-frame.js';
import { ConnectResponse } from '../gen/meshlb/v1/agent.js';
import { LedgerRecord } from '../gen/meshlb/v1/ledger.js';
import { OpenRequest, OpenResponse } from '../gen/meshlb/v1/link.js';
import {
  Dispatch,
  SubmitBatchRequest,
  SubmitBatchResponse,
  SubmitStreamResponse,
  TaskCheckpoint,
  TaskResult,
  TaskSpec,
} from '../gen/meshlb/v1/task.js';

const RAW = Symbol('meshlb.wire.raw');

/** The encoded bytes of `of`, as received: `buf` from `start` to `end` (a view is made only to write them). */
interface Raw {
  readonly of: object;
  readonly buf: Uint8Array;
  readonly start: number;
  readonly end: number;
  /**
   * A submitted spec's tenant as it came: the auth guard fills in a missing tenant in place
   * (security/guard.ts), and a spec so changed is written field by field.
   */
  readonly tenant?: string;
  /** A dispatch relayed with this cell's send number (withSend): the bytes, then Dispatch.send. */
  readonly send?: number;
}

type WithRaw = { [RAW]?: Raw };

/** Where `m` was decoded from, if it is that very object (and, a submitted spec, its tenant unchanged). */
function rawOf(m: object): Raw | undefined {
  const r = (m as WithRaw)[RAW];
  if (r === undefined || r.of !== m) return undefined;
  return r.tenant === undefined || r.tenant === (m as TaskSpec).tenant ? r : undefined;
}

/** Whether `m` will be written as the bytes it came as (tests). */
export const relaysRaw = (m: object): boolean => rawOf(m) !== undefined;

/** How many bytes `m` will be written as, if as it came (fields this proto does not know count too). */
export function keptBytes(m: object): number {
  const r = rawOf(m);
  return r === undefined ? 0 : r.end - r.start;
}

const writer = new BinaryWriter();

/** Slack, in bytes, a received message's backing buffer may have beyond twice its size before it is copied. */
const SMALL_BACKING = 4096;

/** BinaryWriter's own fields (private in its types), read by finishView where this version has them. */
interface WriterState {
  buffer: Uint8Array;
  pos: number;
  stackPos: number[];
}

const stateOf = (w: BinaryWriter): WriterState => w as unknown as WriterState;

const VIEWABLE = ((): boolean => {
  const s = stateOf(new BinaryWriter().uint32(1));
  return s.buffer instanceof Uint8Array && s.pos === 1 && Array.isArray(s.stackPos);
})();

/**
 * What `w` holds, and `w` reset, as finish() does, but as a view into the writer's own buffer: finish()
 * copies into a new ArrayBuffer, which past 64 bytes is an allocation outside the heap (a terminal
 * record at the root, a result kept at the node: one per task). Valid only until `w` is written
 * again: copy it out at once. finish() itself where the writer lacks those fields.
 */
export function finishView(w: BinaryWriter): Uint8Array {
  if (!VIEWABLE) return w.finish();
  const s = stateOf(w);
  const v = s.buffer.subarray(0, s.pos);
  s.pos = 0;
  s.stackPos.length = 0;
  return v;
}

/**
 * `write(m)` run on the shared writer, its bytes copied once into a Buffer (grpc-js wants one; a small
 * one is cut from Node's pool, not a new ArrayBuffer); `framed`: behind gRPC's 5-byte length prefix, so
 * the lean transports write it as it is (util/grpc-frame.ts `frameOf`: one copy and one Buffer per
 * message, not two). The writer is reset either way: an encode that throws (a value out of range) leaves
 * nothing behind. No closure per message: the writing function and its message are passed apart.
 */
function encodeWith<T>(write: (m: T) => unknown, m: T, framed: boolean): Buffer {
  let u: Uint8Array;
  try {
    write(m);
  } finally {
    u = finishView(writer);
  }
  const head = framed ? FRAME_HEADER_BYTES : 0;
  const b = Buffer.allocUnsafe(head + u.length);
  if (framed) {
    b[0] = 0;
    b.writeUInt32BE(u.length, 1);
  }
  b.set(u, head);
  return b;
}

/** A serializer of `write`'s messages, plain (grpc-js) and framed (the lean transports). */
const serializer = <T>(write: (m: T) => unknown): FramingSerializer<T> =>
  withFramed(
    (m: T) => encodeWith(write, m, false),
    (m: T) => encodeWith(write, m, true),
  );

/** Field `tag` (length-delimited) holding `items` as repeated field 1, each as it came or encoded. */
function writeList<T extends object>(tag: number, items: readonly T[], enc: (m: T, w: BinaryWriter) => unknown): void {
  writer.uint32(tag).fork();
  for (const m of items) {
    const raw = rawOf(m);
    if (raw !== undefined && raw.send !== undefined) {
      // Protobuf keeps the last of a repeated scalar field: this send number wins over the one it came with.
      // Its length is known (the tag takes 2 bytes), so no fork and join.
      const len = raw.end - raw.start + 2 + varintSize(raw.send);
      writer.uint32(10).uint32(len).raw(raw.buf.subarray(raw.start, raw.end));
      writer.uint32(DISPATCH_SEND).uint32(raw.send);
    } else if (raw !== undefined) writer.uint32(10).bytes(raw.buf.subarray(raw.start, raw.end));
    else {
      enc(m, writer.uint32(10).fork());
      writer.join();
    }
  }
  writer.join();
}

/**
 * A dispatch made here (a home's attempt) as Dispatch.encode writes it, field for field, except its
 * spec: the bytes the client submitted it as, when the spec is that very object (decodeSubmitBatchRequest).
 * At the root that encode was 7% of the cell's time at full rate (docs/performance.md, "Full rate: session 13").
 */
function encDispatch(d: Dispatch, w: BinaryWriter): void {
  const spec = d.spec === undefined ? undefined : rawOf(d.spec);
  if (spec === undefined) {
    Dispatch.encode(d, w);
    return;
  }
  if (d.taskId !== '') w.uint32(10).string(d.taskId);
  if (d.attempt !== 0) w.uint32(16).uint32(d.attempt);
  if (d.homeCell !== '') w.uint32(26).string(d.homeCell);
  w.uint32(34).bytes(spec.buf.subarray(spec.start, spec.end));
  if (d.leaseMs !== 0) w.uint32(40).uint32(d.leaseMs);
  if (d.traceParent !== '') w.uint32(50).string(d.traceParent);
  if (d.checkpoint !== undefined) TaskCheckpoint.encode(d.checkpoint, w.uint32(322).fork()).join();
  if (d.guaranteed) w.uint32(1040).bool(true);
  if (d.send !== 0) w.uint32(DISPATCH_SEND).uint32(d.send);
}

/** Dispatch.send's tag (field 330, varint): two bytes on the wire. */
const DISPATCH_SEND = 2640;

/** Bytes of a uint32 as a varint. */
const varintSize = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

/**
 * `d` as this cell sends it on one link: numbered `send` there (Dispatch.send, docs/mesh.md "The link
 * protocol"). A copy (the decoded dispatch is never changed in place); a relayed one is still written
 * as the bytes it came as, with the new number after them.
 */
export function withSend(d: Dispatch, send: number): Dispatch {
  const out = { ...d, send };
  const r = rawOf(d);
  if (r !== undefined) (out as WithRaw)[RAW] = { of: out, buf: r.buf, start: r.start, end: r.end, send };
  return out;
}

/** The Dispatch fields encDispatch writes (a test fails when the proto gains one it does not). */
export const DISPATCH_FIELDS = [
  'taskId',
  'attempt',
  'homeCell',
  'spec',
  'leaseMs',
  'traceParent',
  'checkpoint',
  'guaranteed',
  'send',
] as const;
const encResult = (r: TaskResult, w: BinaryWriter): unknown => TaskResult.encode(r, w);

// Tags (field << 3 | 2) of the lists relayed as they came.
const RESPONSE_DISPATCHES = 18; // OpenResponse.dispatches
const REQUEST_RESULTS = 34; // OpenRequest.results
const REQUEST_SPILL_UPS = 42; // OpenRequest.spill_ups
const AGENT_ASSIGNMENTS = 18; // ConnectResponse.assignments

export const encodeOpenResponse = serializer((m: OpenResponse): void => {
  const msg = m.msg;
  if (msg?.$case === 'dispatches') writeList(RESPONSE_DISPATCHES, msg.value.tasks, encDispatch);
  else OpenResponse.encode(m, writer);
});

export const encodeOpenRequest = serializer((m: OpenRequest): void => {
  const msg = m.msg;
  if (msg?.$case === 'results') writeList(REQUEST_RESULTS, msg.value.results, encResult);
  else if (msg?.$case === 'spillUps') writeList(REQUEST_SPILL_UPS, msg.value.tasks, encDispatch);
  else OpenRequest.encode(m, writer);
});

export const encodeConnectResponse = serializer((m: ConnectResponse): void => {
  const msg = m.msg;
  if (msg?.$case === 'assignments') writeList(AGENT_ASSIGNMENTS, msg.value.tasks, encDispatch);
  else ConnectResponse.encode(m, writer);
});

// A home cell's answers to SubmitStream and SubmitBatch on the shared writer: the generated
// serializers make a writer and copy its bytes for every answer (one per task at low rates).
export const encodeSubmitStreamResponse = serializer((m: SubmitStreamResponse) =>
  SubmitStreamResponse.encode(m, writer),
);
export const encodeSubmitBatchResponse = serializer((m: SubmitBatchResponse) => SubmitBatchResponse.encode(m, writer));

/**
 * A ledger record as LedgerRecord.encode writes it, field for field and in its order, except its spec
 * and result when they are the very objects decoded with their bytes (a spec as the client submitted
 * it, a result as a child sent it): those bytes. A terminal record is encoded once (ledger-retained.ts);
 * at the root at full rate that encode was ~8% of the cell. A view into `w` (finishView): copy it out
 * before `w` writes again.
 */
export function encodeRecord(rec: LedgerRecord, w: BinaryWriter): Uint8Array {
  const spec = rec.spec === undefined ? undefined : rawOf(rec.spec);
  const result = rec.result === undefined ? undefined : rawOf(rec.result);
  if (spec === undefined && result === undefined) return finishView(LedgerRecord.encode(rec, w));
  if (rec.id !== '') w.uint32(10).string(rec.id);
  if (spec !== undefined) w.uint32(18).bytes(spec.buf.subarray(spec.start, spec.end));
  else if (rec.spec !== undefined) TaskSpec.encode(rec.spec, w.uint32(18).fork()).join();
  if (rec.homeCell !== '') w.uint32(26).string(rec.homeCell);
  if (rec.createdMs !== 0) w.uint32(33).double(rec.createdMs);
  if (rec.state !== 0) w.uint32(40).int32(rec.state);
  if (rec.attempt !== 0) w.uint32(48).uint32(rec.attempt);
  if (rec.failures !== 0) w.uint32(56).uint32(rec.failures);
  if (rec.updatedMs !== 0) w.uint32(65).double(rec.updatedMs);
  if (result !== undefined) w.uint32(74).bytes(result.buf.subarray(result.start, result.end));
  else if (rec.result !== undefined) TaskResult.encode(rec.result, w.uint32(74).fork()).join();
  if (rec.reason !== '') w.uint32(82).string(rec.reason);
  if (rec.replays !== 0) w.uint32(88).uint32(rec.replays);
  if (rec.attemptBase !== 0) w.uint32(96).uint32(rec.attemptBase);
  if (rec.preemptions !== 0) w.uint32(480).uint32(rec.preemptions);
  if (rec.preemptedBy !== '') w.uint32(490).string(rec.preemptedBy);
  if (rec.checkpoint !== undefined) TaskCheckpoint.encode(rec.checkpoint, w.uint32(322).fork()).join();
  return finishView(w);
}

/** The LedgerRecord fields encodeRecord writes (a test fails when the proto gains one it does not). */
export const RECORD_FIELDS = [
  'id',
  'spec',
  'homeCell',
  'createdMs',
  'state',
  'attempt',
  'failures',
  'updatedMs',
  'result',
  'reason',
  'replays',
  'attemptBase',
  'preemptions',
  'preemptedBy',
  'checkpoint',
] as const;

/**
 * `bytes` as one length-delimited field `tag` holding only repeated field 1 (a list of items),
 * each decoded with `dec` and kept with its bytes; undefined if the message is anything else
 * (the generated decoder takes it then).
 */
function readList<T extends object>(
  bytes: Uint8Array,
  tag: number,
  dec: (r: BinaryReader, len: number) => T,
): T[] | undefined {
  if (bytes.length === 0 || bytes[0] !== tag) return undefined;
  bytes = own(bytes);
  const reader = new BinaryReader(bytes);
  reader.uint32();
  const end = reader.uint32() + reader.pos;
  // One field, the whole message: otherwise (a later field of the oneof wins) leave it to the generated code.
  if (end !== bytes.length) return undefined;
  const out: T[] = [];
  while (reader.pos < end) {
    if (reader.uint32() !== 10) return undefined;
    const len = reader.uint32();
    const start = reader.pos;
    const m = dec(reader, len);
    if (reader.pos !== start + len) return undefined;
    (m as WithRaw)[RAW] = { of: m, buf: bytes, start, end: start + len };
    out.push(m);
  }
  return out;
}

/** `bytes` as items kept with their bytes may hold them. */
function own(bytes: Uint8Array): Uint8Array {
  // Read through a plain Uint8Array: views cut from a Buffer (each item's payload or output, and
  // its bytes when relayed) are Buffers too, and making one costs more than a plain view.
  if (bytes instanceof Buffer) bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // A message cut from a larger buffer (a socket read of 64 KiB, a pool slab) is copied first: an
  // item kept (queued, awaiting its result) then holds its own message, not all that came with it.
  if (bytes.buffer.byteLength > 2 * bytes.byteLength + SMALL_BACKING) bytes = bytes.slice();
  return bytes;
}

/**
 * A SubmitBatch (repeated TaskSpec tasks = 1, nothing else) with each spec kept with its bytes, so
 * the home's dispatches carry them as they came (encDispatch); anything else the generated code decodes.
 */
export function decodeSubmitBatchRequest(bytes: Uint8Array): SubmitBatchRequest {
  bytes = own(bytes);
  const reader = new BinaryReader(bytes);
  const tasks: TaskSpec[] = [];
  while (reader.pos < bytes.length) {
    if (reader.uint32() !== 10) return SubmitBatchRequest.decode(bytes);
    const len = reader.uint32();
    const start = reader.pos;
    const m = TaskSpec.decode(reader, len);
    if (reader.pos !== start + len) return SubmitBatchRequest.decode(bytes);
    (m as WithRaw)[RAW] = { of: m, buf: bytes, start, end: start + len, tenant: m.tenant };
    tasks.push(m);
  }
  return { tasks };
}

const decDispatch = (r: BinaryReader, len: number): Dispatch => Dispatch.decode(r, len);
const decResult = (r: BinaryReader, len: number): TaskResult => TaskResult.decode(r, len);

export function decodeOpenResponse(bytes: Uint8Array): OpenResponse {
  const tasks = readList(bytes, RESPONSE_DISPATCHES, decDispatch);
  if (tasks !== undefined) return { msg: { $case: 'dispatches', value: { tasks } } };
  return OpenResponse.decode(bytes);
}

export function decodeOpenRequest(bytes: Uint8Array): OpenRequest {
  if (bytes.length > 0 && bytes[0] === REQUEST_RESULTS) {
    const results = readList(bytes, REQUEST_RESULTS, decResult);
    if (results !== undefined) return { msg: { $case: 'results', value: { results } } };
  } else if (bytes.length > 0 && bytes[0] === REQUEST_SPILL_UPS) {
    const tasks = readList(bytes, REQUEST_SPILL_UPS, decDispatch);
    if (tasks !== undefined) return { msg: { $case: 'spillUps', value: { tasks } } };
  }
  return OpenRequest.decode(bytes);
}

/**
 * `r` as encoded bytes (result-keeper.ts keeps results so, not as objects, and copies them): those it
 * came as, or encoded now and kept with it, so the link writes them as they are instead of encoding
 * the result again (a node's results: it names itself and the agent in them). `r` must not change after.
 */
export function resultBytes(r: TaskResult): Uint8Array {
  const raw = rawOf(r);
  if (raw !== undefined) return raw.buf.subarray(raw.start, raw.end);
  try {
    TaskResult.encode(r, writer);
  } catch (err) {
    finishView(writer);
    throw err;
  }
  // Its own copy (a result's few dozen bytes sit in the heap, not in an ArrayBuffer outside it).
  const bytes = finishView(writer).slice();
  (r as WithRaw)[RAW] = { of: r, buf: bytes, start: 0, end: bytes.length };
  return bytes;
}

/** A result from bytes resultBytes gave (and the caller copied): relayed again as those very bytes. */
export function decodeResult(bytes: Uint8Array): TaskResult {
  const m = TaskResult.decode(bytes);
  (m as WithRaw)[RAW] = { of: m, buf: bytes, start: 0, end: bytes.length };
  return m;
}

/** The codecs as the mesh simulator's streams take them (test/mesh/sim/net.ts). */
export const LINK_REQUEST_CODEC = {
  encode: (m: OpenRequest) => ({ finish: () => encodeOpenRequest(m) }),
  decode: decodeOpenRequest,
};
export const LINK_RESPONSE_CODEC = {
  encode: (m: OpenResponse) => ({ finish: () => encodeOpenResponse(m) }),
  decode: decodeOpenResponse,
};
export const AGENT_RESPONSE_CODEC = {
  encode: (m: ConnectResponse) => ({ finish: () => encodeConnectResponse(m) }),
  decode: (b: Uint8Array) => ConnectResponse.decode(b),
};
