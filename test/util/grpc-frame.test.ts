// gRPC length-prefixed framing (src/util/grpc-frame.ts): messages come out
// whole and in order however the bytes are chunked (split inside a header,
// inside a body, many messages in one chunk, empty messages), and a header
// announcing more than the maximum or a compressed message is refused before
// any body is buffered.
import { describe, expect, it } from 'vitest';
import { Deframer, FRAME_HEADER_BYTES, FrameError, frameMessage } from '../../src/util/grpc-frame.js';
import { seededRandom } from '../../src/util/rng.js';

const SEED = Number(process.env.TEST_SEED ?? 20261206);

function messages(rand: () => number, n: number, max: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    // Some empty, most small, a few near the maximum.
    const r = rand();
    const len = r < 0.1 ? 0 : r < 0.9 ? Math.floor(rand() * 200) : max - Math.floor(rand() * 10);
    const b = Buffer.alloc(len);
    for (let j = 0; j < len; j++) b[j] = (i + j) & 0xff;
    out.push(b);
  }
  return out;
}

describe(`gRPC framing (seed ${SEED})`, () => {
  it('frames as flags 0, big-endian length, body', () => {
    const f = frameMessage(Buffer.from('abc'));
    expect([...f]).toEqual([0, 0, 0, 0, 3, 97, 98, 99]);
    expect(frameMessage(new Uint8Array(0)).length).toBe(FRAME_HEADER_BYTES);
  });

  it('reads back every message whole and in order, whatever the chunking', () => {
    const rand = seededRandom(SEED);
    const max = 70_000;
    for (let round = 0; round < 50; round++) {
      const sent = messages(rand, 40, max);
      const wire = Buffer.concat(sent.map((m) => frameMessage(m)));
      // Chunk boundaries anywhere: 1 byte (splits every header), a few bytes, or large (merges many messages).
      const got: Buffer[] = [];
      const d = new Deframer(max);
      let at = 0;
      while (at < wire.length) {
        const r = rand();
        const n = r < 0.2 ? 1 : r < 0.5 ? 1 + Math.floor(rand() * 7) : 1 + Math.floor(rand() * 100_000);
        for (const m of d.push(wire.subarray(at, at + n))) got.push(Buffer.from(m));
        at += n;
      }
      expect(d.partial, `seed ${SEED} round ${round}`).toBe(false);
      expect(got.length, `seed ${SEED} round ${round}`).toBe(sent.length);
      for (let i = 0; i < sent.length; i++)
        expect(got[i]!.equals(sent[i]!), `seed ${SEED} round ${round} #${i}`).toBe(true);
    }
  });

  it('a message cut short is partial; the rest completes it', () => {
    const d = new Deframer(100);
    const wire = frameMessage(Buffer.from('hello'));
    expect(d.push(wire.subarray(0, 3))).toEqual([]);
    expect(d.partial).toBe(true);
    expect(d.push(wire.subarray(3, 7))).toEqual([]);
    const [m] = d.push(wire.subarray(7));
    expect(Buffer.from(m!).toString()).toBe('hello');
    expect(d.partial).toBe(false);
  });

  it('refuses a message over the maximum from its header alone, RESOURCE_EXHAUSTED', () => {
    const d = new Deframer(1000);
    // Only the header of a 1001-byte message: refused before the body arrives.
    const header = frameMessage(Buffer.alloc(1001)).subarray(0, FRAME_HEADER_BYTES);
    let err: unknown;
    try {
      d.push(header);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FrameError);
    expect((err as FrameError).code).toBe('RESOURCE_EXHAUSTED');
    expect((err as FrameError).message).toBe('Received message larger than max (1001 vs. 1000)');
    // Exactly the maximum is fine, also after a good message in the same chunk.
    const ok = new Deframer(1000);
    const two = Buffer.concat([frameMessage(Buffer.alloc(3)), frameMessage(Buffer.alloc(1000))]);
    expect(ok.push(two).map((m) => m.length)).toEqual([3, 1000]);
  });

  it('refuses a compressed message (the client asks for identity only), INTERNAL', () => {
    const f = frameMessage(Buffer.from('x'));
    f[0] = 1;
    expect(() => new Deframer(10).push(f)).toThrow(expect.objectContaining({ code: 'INTERNAL' }) as Error);
  });
});
