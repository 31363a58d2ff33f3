// Concurrency permits, pure: per key, the attempts that hold one. A permit is
// held by one attempt (`taskId#attempt`) of a task naming the key, from its
// dispatch until the agent is known to have stopped running it:
//   held     (until 0) while the attempt is out;
//   linger   (until T) once the home stopped waiting for it (lost, lease
//            lapsed, cancelled, dead-lettered): its agent may still be running
//            it, so the permit stays until the agent answers or T passes.
// Invariant: for every key, held(key) never grows past the limit passed to
// acquire() (test/flow/permits.test.ts checks it as a property).
export interface PermitEntry {
  readonly key: string;
  readonly ref: string;
  /** 0 = held by its live attempt; else held until then (ms). */
  readonly untilMs: number;
}

export class PermitTable {
  /** key → (ref → untilMs). */
  private readonly byKey = new Map<string, Map<string, number>>();
  /** ref → key, for release by ref alone. */
  private readonly keyOf = new Map<string, string>();
  /** Lingering refs (untilMs > 0): the only ones a sweep looks at. */
  private readonly lingering = new Map<string, number>();

  /** Permits held for `key` (lingering included). */
  held(key: string): number {
    return this.byKey.get(key)?.size ?? 0;
  }

  /** The oldest permit of `key` held by a live attempt (not lingering) whose ref `skip` does not refuse. */
  oldestLive(key: string, skip: (ref: string) => boolean): string | undefined {
    for (const [ref, until] of this.byKey.get(key) ?? []) if (until === 0 && !skip(ref)) return ref;
    return undefined;
  }

  /** Lingering permits of `key` (O(lingering)). */
  lingeringOf(key: string): number {
    let n = 0;
    for (const ref of this.lingering.keys()) if (this.keyOf.get(ref) === key) n++;
    return n;
  }

  /** Every permit held, all keys. */
  get total(): number {
    return this.keyOf.size;
  }

  has(ref: string): boolean {
    return this.keyOf.has(ref);
  }

  isLingering(ref: string): boolean {
    return this.lingering.has(ref);
  }

  /** Take a permit of `key` for `ref` if fewer than `limit` are held; false (nothing changed) otherwise. */
  acquire(key: string, ref: string, limit: number): boolean {
    if (this.keyOf.has(ref)) return true;
    let refs = this.byKey.get(key);
    if ((refs?.size ?? 0) >= limit) return false;
    if (!refs) this.byKey.set(key, (refs = new Map()));
    refs.set(ref, 0);
    this.keyOf.set(ref, key);
    return true;
  }

  /** Keep `ref`'s permit until `untilMs` (its agent may still run it). Returns its key, or undefined. */
  linger(ref: string, untilMs: number): string | undefined {
    const key = this.keyOf.get(ref);
    if (key === undefined) return undefined;
    this.byKey.get(key)!.set(ref, untilMs);
    this.lingering.set(ref, untilMs);
    return key;
  }

  /** Give `ref`'s permit back. Returns its key, or undefined if it held none. */
  release(ref: string): string | undefined {
    const key = this.keyOf.get(ref);
    if (key === undefined) return undefined;
    this.keyOf.delete(ref);
    this.lingering.delete(ref);
    const refs = this.byKey.get(key)!;
    refs.delete(ref);
    if (refs.size === 0) this.byKey.delete(key);
    return key;
  }

  /** Lingering permits whose time has come (the leader returns them through the log). */
  due(now: number): string[] {
    const out: string[] = [];
    for (const [ref, until] of this.lingering) if (until <= now) out.push(ref);
    return out;
  }

  /** Keys with permits held and how many. */
  counts(): Map<string, number> {
    const m = new Map<string, number>();
    for (const [k, refs] of this.byKey) m.set(k, refs.size);
    return m;
  }

  entries(): PermitEntry[] {
    const out: PermitEntry[] = [];
    for (const [key, refs] of this.byKey) for (const [ref, untilMs] of refs) out.push({ key, ref, untilMs });
    return out;
  }

  /** Replace everything (restore); entries as entries() gave them. */
  load(entries: readonly PermitEntry[]): void {
    this.byKey.clear();
    this.keyOf.clear();
    this.lingering.clear();
    for (const e of entries) {
      let refs = this.byKey.get(e.key);
      if (!refs) this.byKey.set(e.key, (refs = new Map()));
      refs.set(e.ref, e.untilMs);
      this.keyOf.set(e.ref, e.key);
      if (e.untilMs > 0) this.lingering.set(e.ref, e.untilMs);
    }
  }
}
