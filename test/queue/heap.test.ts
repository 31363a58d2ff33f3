// IndexedHeap (src/queue/heap.ts) against a sorted list: pushes in order and
// out of order, minimums taken, elements removed from the middle, and the
// positions it tells each element always where the element is.
import { describe, expect, it } from 'vitest';
import { IndexedHeap } from '../../src/queue/heap.js';
import { Rng } from '../../src/util/rng.js';

interface El {
  readonly key: number;
  readonly seq: number;
  pos: number;
}

function heap(): IndexedHeap<El> {
  return new IndexedHeap<El>(
    (a, b) => a.key < b.key || (a.key === b.key && a.seq < b.seq),
    (e, p) => {
      e.pos = p;
    },
    (e) => e.pos,
  );
}

const byOrder = (a: El, b: El): number => a.key - b.key || a.seq - b.seq;

describe('IndexedHeap', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`matches a sorted list under random pushes, pops and removals (seed ${seed})`, () => {
      const rng = new Rng(seed);
      const h = heap();
      const model: El[] = [];
      let seq = 0;
      let clock = 0;
      // Mostly in order (as a queue's keys come), sometimes older (a requeue), with runs long enough to compact.
      for (let step = 0; step < 20_000; step++) {
        const r = rng.next();
        if (r < 0.5) {
          clock += rng.int(0, 2);
          const key = rng.chance(0.02) ? clock - rng.int(1, 50) : clock;
          const e = { key, seq: seq++, pos: -1 };
          h.push(e);
          model.push(e);
        } else if (r < 0.9) {
          model.sort(byOrder);
          const want = model.shift();
          expect(h.pop(), `seed ${seed} step ${step}`).toBe(want);
          if (want) expect(want.pos).toBe(-1);
        } else if (model.length > 0) {
          const e = model.splice(rng.int(0, model.length - 1), 1)[0]!;
          h.remove(e);
          expect(e.pos).toBe(-1);
        }
        expect(h.size).toBe(model.length);
        if (model.length > 0) expect(h.peek()).toBe([...model].sort(byOrder)[0]);
      }
    });
  }

  it('takes thousands of minimums in order without sifting, and refuses what it does not hold', () => {
    const h = heap();
    const els = Array.from({ length: 5000 }, (_, i) => ({ key: i, seq: i, pos: -1 }));
    for (const e of els) h.push(e);
    for (let i = 0; i < 3000; i++) expect(h.pop()).toBe(els[i]);
    // Positions still name the slots after the front was dropped.
    h.remove(els[4000]!);
    expect(h.peek()).toBe(els[3000]);
    expect(() => h.remove(els[0]!)).toThrow();
    expect(() => h.remove(els[4000]!)).toThrow();
    for (let i = 3000; i < 5000; i++) if (i !== 4000) expect(h.pop()).toBe(els[i]);
    expect(h.size).toBe(0);
  });
});
