import { describe, expect, it } from 'vitest';
import { checkHistory, checkRegister, type Operation } from './linearizability.js';
import { Rng } from '../../../src/util/rng.js';

const put = (client: number, value: string, call: number, ret: number, key = 'k'): Operation => ({
  client,
  kind: 'put',
  key,
  value,
  call,
  ret,
});
const get = (client: number, value: string | null, call: number, ret: number, key = 'k'): Operation => ({
  client,
  kind: 'get',
  key,
  value,
  call,
  ret,
});

describe('linearizability checker', () => {
  const accept: Array<[string, Operation[]]> = [
    ['empty history', []],
    ['sequential put then get', [put(1, 'a', 1, 2), get(2, 'a', 3, 4)]],
    ['read of the initial value', [get(1, null, 1, 2)]],
    ['concurrent put and get may see either (old)', [put(1, 'a', 1, 4), get(2, null, 2, 3)]],
    ['concurrent put and get may see either (new)', [put(1, 'a', 1, 4), get(2, 'a', 2, 3)]],
    ['concurrent puts in either order', [put(1, 'a', 1, 4), put(2, 'b', 2, 5), get(3, 'a', 6, 7)]],
    ['unknown-outcome put seen later', [put(1, 'a', 1, Infinity), get(2, 'a', 5, 6)]],
    ['unknown-outcome put never seen', [put(1, 'a', 1, Infinity), get(2, null, 5, 6)]],
    [
      'unknown-outcome put seen, then overwritten',
      [put(1, 'a', 1, Infinity), get(2, 'a', 3, 4), put(3, 'b', 5, 6), get(2, 'b', 7, 8)],
    ],
  ];
  it.each(accept)('accepts: %s', (_n, ops) => expect(checkHistory(ops).ok).toBe(true));

  const reject: Array<[string, Operation[]]> = [
    ['stale read after a completed put', [put(1, 'a', 1, 2), get(2, null, 3, 4)]],
    ['read of a value never written', [get(1, 'zzz', 1, 2)]],
    ['read goes back in time', [put(1, 'a', 1, 2), put(1, 'b', 3, 4), get(2, 'b', 5, 6), get(3, 'a', 7, 8)]],
    [
      'two readers see opposite orders',
      [put(1, 'a', 1, 10), put(2, 'b', 1.5, 10.5), get(3, 'a', 11, 12), get(3, 'b', 13, 14), get(4, 'a', 15, 16)],
    ],
    ['read sees a put before its call', [get(1, 'a', 1, 2), put(2, 'a', 3, 4)]],
    ['unknown-outcome put seen, disappears', [put(1, 'a', 1, Infinity), get(2, 'a', 3, 4), get(2, null, 5, 6)]],
  ];
  it.each(reject)('rejects: %s', (_n, ops) => expect(checkHistory(ops).ok).toBe(false));

  it('names the offending key', () => {
    const r = checkHistory([
      put(1, 'a', 1, 2, 'x'),
      get(1, 'a', 3, 4, 'x'),
      put(1, 'a', 1, 2, 'y'),
      get(1, 'q', 3, 4, 'y'),
    ]);
    expect(r).toMatchObject({ ok: false, key: 'y' });
  });

  it('agrees with brute force on small random histories (seeded)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rng = new Rng(seed);
      const ops: Operation[] = [];
      let t = 0;
      const n = rng.int(1, 6);
      for (let i = 0; i < n; i++) {
        const call = (t += rng.int(0, 2) + 0.001 * i);
        const ret = rng.chance(0.15) ? Infinity : call + rng.int(1, 6) + 0.0005;
        ops.push(
          rng.chance(0.5)
            ? put(i, `v${rng.int(0, 2)}`, call, ret)
            : get(i, rng.chance(0.2) ? null : `v${rng.int(0, 2)}`, call, ret),
        );
      }
      expect(checkRegister(ops).ok, `seed ${seed}`).toBe(bruteForce(ops));
    }
  });
});

/** Try every permutation that respects real-time order; unknown-outcome puts may also be left out. */
function bruteForce(ops: Operation[]): boolean {
  const n = ops.length;
  const used = new Array<boolean>(n).fill(false);
  const rec = (count: number, state: string | null): boolean => {
    if (count === n) return true;
    for (let i = 0; i < n; i++) {
      if (used[i]) continue;
      const o = ops[i]!;
      // o can go next only if no unused op returned before o was called
      if (ops.some((p, j) => !used[j] && j !== i && p.ret < o.call)) continue;
      if (o.kind === 'get' && o.value !== state) continue;
      used[i] = true;
      const ok = rec(count + 1, o.kind === 'put' ? o.value : state);
      used[i] = false;
      if (ok) return true;
    }
    return false;
  };
  return rec(0, null);
}
