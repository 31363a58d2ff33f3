// ResultKeeper: what a child re-sends to its parent after a break (results
// held while unlinked, and those written in the last window), bounded, oldest
// dropped first.
import { describe, expect, it } from 'vitest';
import { TaskResult } from '../../src/gen/meshlb/v1/task.js';
import { ResultKeeper } from '../../src/mesh/result-keeper.js';
import { decodeOpenRequest, encodeOpenRequest } from '../../src/mesh/wire-codec.js';

const r = (i: number): TaskResult => TaskResult.fromPartial({ taskId: `t${i}`, attempt: 1 });
const ids = (rs: readonly TaskResult[]) => rs.map((x) => x.taskId);

describe('ResultKeeper', () => {
  it('re-sends recent results only after a break, and only those inside the window', () => {
    const k = new ResultKeeper(1000);
    k.wrote(r(1), 0);
    k.wrote(r(2), 500);
    k.wrote(r(3), 1200);
    // Welcomed with no break in between: nothing to write again.
    expect(k.takeForResend(1300)).toEqual({ recent: [], held: [] });
    k.wrote(r(4), 1600);
    k.wrote(r(5), 2100);
    k.broken();
    k.hold(r(6));
    const again = k.takeForResend(2500);
    expect(ids(again.recent)).toEqual(['t4', 't5']);
    expect(ids(again.held)).toEqual(['t6']);
    // Taken once: a second welcome has nothing.
    expect(k.takeForResend(2600)).toEqual({ recent: [], held: [] });
  });

  it('keeps at most its capacity, dropping the oldest', () => {
    const k = new ResultKeeper(10_000, 3);
    for (let i = 1; i <= 5; i++) k.hold(r(i));
    for (let i = 1; i <= 5; i++) k.wrote(r(10 + i), i);
    k.broken();
    const again = k.takeForResend(10);
    expect(ids(again.held)).toEqual(['t3', 't4', 't5']);
    expect(ids(again.recent)).toEqual(['t13', 't14', 't15']);
  });

  it('forgets everything on clear (this replica stopped leading)', () => {
    const k = new ResultKeeper(1000);
    k.hold(r(1));
    k.wrote(r(2), 0);
    k.broken();
    k.clear();
    expect(k.takeForResend(1)).toEqual({ recent: [], held: [] });
  });
});

describe('ResultKeeper keeps written results as their bytes', () => {
  it('gives back equal results, across chunks, big ones on their own, in order', () => {
    const k = new ResultKeeper(60_000, 5_000);
    const big = Buffer.alloc(40_000, 7);
    const sent: TaskResult[] = [];
    for (let i = 0; i < 3_000; i++) {
      const x = TaskResult.fromPartial({
        taskId: `t${i}`,
        attempt: 1 + (i % 3),
        output: i % 500 === 0 ? big : Buffer.from([i & 255]),
      });
      sent.push(x);
      k.wrote(x, i);
    }
    k.broken();
    const again = k.takeForResend(3_000).recent;
    expect(again).toHaveLength(3_000);
    again.forEach((x, i) => expect(TaskResult.toJSON(x)).toEqual(TaskResult.toJSON(sent[i]!)));
  });

  it('re-sends a relayed result as the bytes it came as (fields this replica does not know included)', () => {
    const known = TaskResult.encode(TaskResult.fromPartial({ taskId: 'a', attempt: 2 })).finish();
    // Field 999 (varint 5): unknown to this proto.
    const withUnknown = new Uint8Array([...known, 0xb8, 0x3e, 5]);
    // The generated decoder drops unknown fields; a result decoded from the link keeps its bytes.
    const raw = decodeOpenRequest(Buffer.from([34, withUnknown.length + 2, 10, withUnknown.length, ...withUnknown]));
    const r = (raw.msg as { value: { results: TaskResult[] } }).value.results[0]!;
    const k = new ResultKeeper(1000);
    k.wrote(r, 0);
    k.broken();
    const [back] = k.takeForResend(1).recent;
    expect(back!.taskId).toBe('a');
    const out = encodeOpenRequest({ msg: { $case: 'results', value: { results: [back!] } } });
    expect([...out.subarray(out.length - 3)]).toEqual([0xb8, 0x3e, 5]);
  });

  it('prunes by the window and frees its chunks when empty', () => {
    const k = new ResultKeeper(100);
    for (let i = 0; i < 1_000; i++) k.wrote(r(i), i);
    k.prune(1_000);
    k.broken();
    expect(ids(k.takeForResend(1_000).recent)).toEqual(Array.from({ length: 100 }, (_, i) => `t${900 + i}`));
    const inside = k as unknown as { recent: { chunks: unknown[] } };
    expect(inside.recent.chunks.length).toBeLessThanOrEqual(1);
  });
});
