// A binary min-heap that tells each element its position, so an element can
// be removed from the middle in O(log n) (cancel, expiry) without lazy
// tombstones that would let memory grow past the queue's capacity.

export class IndexedHeap<T> {
  private readonly a: T[] = [];

  constructor(
    private readonly less: (x: T, y: T) => boolean,
    private readonly setPos: (x: T, pos: number) => void,
    private readonly getPos: (x: T) => number,
  ) {}

  get size(): number {
    return this.a.length;
  }

  peek(): T | undefined {
    return this.a[0];
  }

  push(x: T): void {
    this.a.push(x);
    this.setPos(x, this.a.length - 1);
    this.up(this.a.length - 1);
  }

  pop(): T | undefined {
    const top = this.a[0];
    if (top !== undefined) this.removeAt(0);
    return top;
  }

  /** Removes x, which must be in this heap. */
  remove(x: T): void {
    const i = this.getPos(x);
    if (this.a[i] !== x) throw new Error('IndexedHeap.remove: element not in heap');
    this.removeAt(i);
  }

  private removeAt(i: number): void {
    const removed = this.a[i]!;
    const last = this.a.pop()!;
    this.setPos(removed, -1);
    if (i < this.a.length) {
      this.a[i] = last;
      this.setPos(last, i);
      this.down(i);
      this.up(this.getPos(last));
    }
  }

  private up(i: number): void {
    const a = this.a;
    const x = a[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const y = a[p]!;
      if (!this.less(x, y)) break;
      a[i] = y;
      this.setPos(y, i);
      i = p;
    }
    a[i] = x;
    this.setPos(x, i);
  }

  private down(i: number): void {
    const a = this.a;
    const n = a.length;
    const x = a[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.less(a[r]!, a[l]!) ? r : l;
      const y = a[c]!;
      if (!this.less(y, x)) break;
      a[i] = y;
      this.setPos(y, i);
      i = c;
    }
    a[i] = x;
    this.setPos(x, i);
  }
}
