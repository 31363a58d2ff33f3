// A binary min-heap that tells each element its position, so an element can
// be removed from the middle in O(log n) (cancel, expiry) without lazy
// tombstones that would let memory grow past the queue's capacity.
//
// In order: a queue's elements mostly arrive in the order they leave (a
// tenant's EDF keys are enqueue time plus a constant), and a sorted array is
// a heap whose minimum can leave without sifting. So while every push is no
// less than the last element, the elements sit in arrival order from `head`
// on: push appends, taking the minimum moves `head` (O(1), no comparisons).
// The first push out of order, or a removal from the middle, turns the rest
// into a plain heap (it is one already, once moved to the front); an empty
// heap starts in order again. At full rate this took the root's queue from
// ~4% of its CPU in sift-downs to ~0 (docs/performance.md, "The mesh bench").

/** Taken minimums that leave this many slots before `head` (and half the array) are dropped by a copy. */
const COMPACT_AT = 1024;

export class IndexedHeap<T> {
  private a: (T | undefined)[] = [];
  /** In order (see above): the elements are a[head..], ascending. Else a heap from 0 (head 0). */
  private inOrder = true;
  private head = 0;

  constructor(
    private readonly less: (x: T, y: T) => boolean,
    private readonly setPos: (x: T, pos: number) => void,
    private readonly getPos: (x: T) => number,
  ) {}

  get size(): number {
    return this.a.length - this.head;
  }

  peek(): T | undefined {
    return this.a[this.head];
  }

  push(x: T): void {
    const a = this.a;
    if (this.inOrder) {
      const n = a.length;
      if (n === this.head || !this.less(x, a[n - 1]!)) {
        a.push(x);
        this.setPos(x, n);
        return;
      }
      this.toHeap();
    }
    this.a.push(x);
    this.setPos(x, this.a.length - 1);
    this.up(this.a.length - 1);
  }

  pop(): T | undefined {
    const top = this.a[this.head];
    if (top !== undefined) this.remove(top);
    return top;
  }

  /** Removes x, which must be in this heap. */
  remove(x: T): void {
    const i = this.getPos(x);
    if (i < this.head || this.a[i] !== x) throw new Error('IndexedHeap.remove: element not in heap');
    if (this.inOrder && (i === this.head || i === this.a.length - 1)) {
      this.setPos(x, -1);
      if (i === this.a.length - 1) this.a.pop();
      else {
        this.a[i] = undefined;
        this.head++;
      }
      if (this.head === this.a.length) {
        // Emptied by popping, not `length = 0`, which would drop the backing store and make the next
        // push allocate one (a tenant's heap empties with every task at low rates).
        while (this.a.length > 0) this.a.pop();
        this.head = 0;
      } else if (this.head >= COMPACT_AT && 2 * this.head >= this.a.length) this.compact();
      return;
    }
    if (this.inOrder) this.toHeap(); // from the middle: x's position moves with the rest
    this.removeAt(this.getPos(x));
    if (this.a.length === 0) this.inOrder = true;
  }

  /** Drop the slots before `head`: the elements move to the front (positions told). */
  private compact(): void {
    const a = this.a.slice(this.head);
    this.a = a;
    this.head = 0;
    for (let i = 0; i < a.length; i++) this.setPos(a[i]!, i);
  }

  /** From in order to a heap: moved to the front, the ascending elements are one. */
  private toHeap(): void {
    if (this.head > 0) this.compact();
    this.inOrder = false;
  }

  private removeAt(i: number): void {
    const a = this.a;
    const removed = a[i]!;
    const last = a.pop()!;
    this.setPos(removed, -1);
    if (i < a.length) {
      a[i] = last;
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
