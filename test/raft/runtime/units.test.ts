// Pure pieces of the runtime: wire codec, envelopes. (The error -> status map
// is the product's: test/util/raft-status.test.ts.)
import { describe, expect, it } from 'vitest';
import { EntryType, type Message } from '../../../src/raft/core/types.js';
import { unwrap, unwrapSnapshot, wrap, wrapSnapshot } from '../../../src/raft/runtime/envelope.js';
import { messageFromWire, messageToWire } from '../../../src/raft/runtime/wire.js';
import { RaftMessage, RaftMessageType } from '../../../src/gen/meshlb/v1/raft.js';

const base: Message = {
  type: 'app',
  from: 'a',
  to: 'b',
  term: 7,
  logTerm: 6,
  index: 41,
  entries: [
    { index: 42, term: 7, type: EntryType.Normal, data: new Uint8Array([1, 2, 3]) },
    { index: 43, term: 7, type: EntryType.ConfChange, data: new Uint8Array([9]) },
  ],
  commit: 40,
  reject: false,
  rejectHint: 0,
};

describe('wire codec', () => {
  it.each<Partial<Message>>([
    {},
    { type: 'appResp', entries: [], reject: true, rejectHint: 30, hintTerm: 5 },
    { type: 'readIndex', entries: [], context: 'ctx-1' },
    { type: 'heartbeat', entries: [], context: '' },
  ])('round-trips %o through protobuf bytes', (over) => {
    const m: Message = { ...base, ...over };
    const bytes = RaftMessage.encode(messageToWire(m)).finish();
    const back = messageFromWire(RaftMessage.decode(bytes));
    expect({ ...back, entries: back.entries.map((e) => ({ ...e, data: [...e.data] })) }).toEqual({
      ...m,
      entries: m.entries.map((e) => ({ ...e, data: [...e.data] })),
    });
  });

  it('carries snapshot meta without data; data is joined from chunks', () => {
    const m: Message = {
      ...base,
      type: 'snap',
      entries: [],
      snapshot: { meta: { index: 9, term: 2, conf: { voters: ['a'], learners: ['c'] } }, data: new Uint8Array([5, 5]) },
    };
    const w = messageToWire(m);
    expect(RaftMessage.encode(w).finish().length).toBeLessThan(60);
    expect(messageFromWire(w, new Uint8Array([5, 5])).snapshot).toEqual(m.snapshot);
  });

  it('refuses an unknown message type', () => {
    expect(() =>
      messageFromWire({ ...messageToWire(base), type: RaftMessageType.RAFT_MESSAGE_TYPE_UNSPECIFIED }),
    ).toThrow(/bad message type/);
  });
});

describe('envelopes', () => {
  it('round-trip request ids and payloads, and refuse garbage', () => {
    const e = unwrap(wrap('abc.1', new Uint8Array([7, 8])));
    expect([e.id, [...e.payload]]).toEqual(['abc.1', [7, 8]]);
    expect(() => unwrap(new Uint8Array([2, 0]))).toThrow(/malformed/);
    expect(() => unwrap(new Uint8Array([1, 200, 1]))).toThrow(/malformed/);
    const s = unwrapSnapshot(wrapSnapshot({ a: '1:2' }, new Uint8Array([4])));
    expect([s.addresses, [...s.sm]]).toEqual([{ a: '1:2' }, [4]]);
  });
});
