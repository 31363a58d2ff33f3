// A linearizability checker for a key-value register history (Wing & Gong's
// search with Lowe's just-in-time linearization and memoization, as in
// Porcupine). Keys are independent registers, so the history is checked per
// key (P-compositionality), which keeps each search small.
//
// An operation with an unknown outcome (a put whose client timed out or whose
// replica crashed) has ret = Infinity: it may take effect at any point after
// its call, or never observed at all (placing it last is always possible).

export interface Operation {
  readonly client: number;
  readonly kind: 'put' | 'get';
  readonly key: string;
  /** put: the value written; get: the value read (null = never written). */
  readonly value: string | null;
  /** Logical times; call < ret. ret = Infinity when the outcome is unknown. */
  readonly call: number;
  readonly ret: number;
}

export interface CheckResult {
  readonly ok: boolean;
  /** The first key whose history is not linearizable. */
  readonly key?: string;
  /** Search steps spent (to keep an eye on cost). */
  readonly steps: number;
}

interface Node {
  readonly op: number; // index into ops
  readonly isCall: boolean;
  readonly time: number;
  prev: Node | undefined;
  next: Node | undefined;
  match: Node | undefined; // call -> its return
}

function step(state: string | null, op: Operation): [boolean, string | null] {
  if (op.kind === 'put') return [true, op.value];
  return [op.value === state, state];
}

/** Check one register's history. */
export function checkRegister(ops: readonly Operation[], budget = 2_000_000): { ok: boolean; steps: number } {
  for (const o of ops) if (!(o.call < o.ret)) throw new Error(`bad op times ${o.call}..${o.ret}`);
  // Event list: calls before returns at equal times would be wrong; times are distinct by construction,
  // Infinity returns sort last (ties among them are harmless).
  const events: Node[] = [];
  ops.forEach((o, i) => {
    const call: Node = { op: i, isCall: true, time: o.call, prev: undefined, next: undefined, match: undefined };
    const ret: Node = { op: i, isCall: false, time: o.ret, prev: undefined, next: undefined, match: undefined };
    call.match = ret;
    events.push(call, ret);
  });
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? 0 : a.isCall ? 1 : -1));
  const head: Node = { op: -1, isCall: false, time: -Infinity, prev: undefined, next: undefined, match: undefined };
  let prev = head;
  for (const e of events) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  const lift = (n: Node) => {
    n.prev!.next = n.next;
    if (n.next) n.next.prev = n.prev;
    const m = n.match!;
    m.prev!.next = m.next;
    if (m.next) m.next.prev = m.prev;
  };
  const unlift = (n: Node) => {
    const m = n.match!;
    m.prev!.next = m;
    if (m.next) m.next.prev = m;
    n.prev!.next = n;
    if (n.next) n.next.prev = n;
  };
  const words = new Uint32Array(Math.ceil(ops.length / 32) + 1);
  const flip = (i: number) => {
    words[i >>> 5]! ^= 1 << (i & 31);
  };
  const cache = new Set<string>();
  const stack: Array<{ node: Node; state: string | null }> = [];
  let state: string | null = null;
  let entry = head.next;
  let steps = 0;
  while (head.next !== undefined) {
    if (++steps > budget) throw new Error('linearizability: search budget exhausted');
    if (entry === undefined) throw new Error('linearizability: ran off the event list');
    if (entry.isCall) {
      const op = ops[entry.op]!;
      const [ok, next] = step(state, op);
      if (ok) {
        flip(entry.op);
        const key = `${words.join(',')}|${next}`;
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ node: entry, state });
          state = next;
          lift(entry);
          entry = head.next;
          continue;
        }
        flip(entry.op);
      }
      entry = entry.next;
    } else {
      // A return reached before its call was linearized: backtrack.
      const top = stack.pop();
      if (!top) return { ok: false, steps };
      state = top.state;
      flip(top.node.op);
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return { ok: true, steps };
}

export function checkHistory(ops: readonly Operation[]): CheckResult {
  const byKey = new Map<string, Operation[]>();
  for (const o of ops) {
    const list = byKey.get(o.key);
    if (list) list.push(o);
    else byKey.set(o.key, [o]);
  }
  let steps = 0;
  for (const [key, list] of [...byKey].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const r = checkRegister(list);
    steps += r.steps;
    if (!r.ok) return { ok: false, key, steps };
  }
  return { ok: true, steps };
}
