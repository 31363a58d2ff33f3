// The tasks a Ledger (ledger.ts) holds and how they are read: live tasks as
// their record objects, terminal ones compact (ledger-retained.ts) up to the
// retention, the idempotency keys, the live count. The Ledger's transitions
// change records; this part decides how they are kept, found and evicted.
import type { TaskState } from '../gen/meshlb/v1/task.js';
import { RetainedRecords } from './ledger-retained.js';
import type { ApplyResult, TaskRecord } from './ledger-record.js';

/** A retained task as ListTasks filters and orders it: a terminal one's is read without decoding it. */
export interface TaskEntry {
  readonly id: string;
  readonly state: TaskState;
  readonly createdMs: number;
}

export class LedgerTasks {
  /**
   * Every retained task: a live one as its record, a terminal one as its handle in `retained`.
   * Insertion order is acceptance order (the snapshot's).
   */
  protected readonly tasks = new Map<string, TaskRecord | number>();
  private readonly byKey = new Map<string, string>();
  /** Terminal tasks, oldest first: eviction takes the oldest. */
  protected readonly retained = new RetainedRecords();

  /** `retention`: terminal tasks kept; the oldest is evicted first. */
  constructor(private readonly retention: number) {}

  /** The task's record; a terminal one is decoded afresh on every call (a copy: see live()). */
  get(id: string): TaskRecord | undefined {
    const v = this.tasks.get(id);
    return typeof v === 'number' ? this.retained.record(v) : v;
  }

  /** The record of a task that has not ended, else undefined: the cheap look-up for the mesh's own paths. */
  live(id: string): TaskRecord | undefined {
    const v = this.tasks.get(id);
    return typeof v === 'number' ? undefined : v;
  }

  has(id: string): boolean {
    return this.tasks.has(id);
  }

  /** The task's state without decoding a terminal record. */
  stateOf(id: string): TaskState | undefined {
    const v = this.tasks.get(id);
    return typeof v === 'number' ? this.retained.state(v) : v?.state;
  }

  idForKey(key: string): string | undefined {
    return this.byKey.get(key);
  }

  /** Tasks not yet terminal: every task held but those held compact. */
  get liveCount(): number {
    return this.tasks.size - this.retained.size;
  }

  get size(): number {
    return this.tasks.size;
  }

  /** Every retained record in acceptance order, terminal ones decoded (copies): for admin and restores. */
  *records(): IterableIterator<TaskRecord> {
    for (const v of this.tasks.values()) yield typeof v === 'number' ? this.retained.record(v) : v;
  }

  /** Every retained task's id, state and creation time, in acceptance order (a live one's record itself). */
  *entries(): IterableIterator<TaskEntry> {
    for (const [id, v] of this.tasks) {
      if (typeof v !== 'number') yield v;
      else yield { id, state: this.retained.state(v), createdMs: this.retained.createdMs(v) };
    }
  }

  /** The records of the tasks that have not ended. */
  *liveRecords(): IterableIterator<TaskRecord> {
    for (const v of this.tasks.values()) if (typeof v !== 'number') yield v;
  }

  /** A task just accepted. */
  protected added(rec: TaskRecord): void {
    this.tasks.set(rec.id, rec);
    if (rec.spec.idempotencyKey) this.byKey.set(rec.spec.idempotencyKey, rec.id);
  }

  /** A task ended: held compact from now on (whoever was told keeps the object), the oldest evicted. */
  protected ended(rec: TaskRecord): void {
    this.tasks.set(rec.id, this.retained.add(rec));
    while (this.retained.size > this.retention) {
      const { id, key } = this.retained.evictOldest()!;
      this.tasks.delete(id);
      if (key && this.byKey.get(key) === id) this.byKey.delete(key);
    }
  }

  /** A terminal task (handle `h`) is live again (a replay): its record, an object once more. */
  protected reopened(id: string, h: number): TaskRecord {
    const rec = this.retained.record(h);
    this.retained.drop(h);
    this.tasks.set(id, rec);
    return rec;
  }

  /** The answer for a submit naming a task already here. */
  protected known(id: string): ApplyResult {
    const v = this.tasks.get(id)!;
    if (typeof v !== 'number') return { ok: true, id, existing: true, state: v.state, attempt: v.attempt };
    return { ok: true, id, existing: true, state: this.retained.state(v), attempt: this.retained.attempt(v) };
  }

  protected terminal(id: string, h: number): ApplyResult {
    return { ok: false, id, why: 'terminal', state: this.retained.state(h) };
  }

  /**
   * Replace every task: `records` in acceptance order, the terminal ones among them in eviction order
   * (all of them: decodeSnapshot checks it, so what is not held compact is live).
   */
  protected restoreTasks(records: readonly TaskRecord[], terminal: readonly TaskRecord[]): void {
    this.tasks.clear();
    this.byKey.clear();
    this.retained.clear();
    for (const rec of records) {
      this.tasks.set(rec.id, rec);
      if (rec.spec.idempotencyKey) this.byKey.set(rec.spec.idempotencyKey, rec.id);
    }
    // Held compact in eviction order (a map's set keeps a key's place).
    for (const rec of terminal) this.tasks.set(rec.id, this.retained.add(rec));
  }
}
