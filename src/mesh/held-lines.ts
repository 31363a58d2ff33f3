// A node's lines of tasks held back for a faster agent (node-score: src/policies/hold-back.ts), as the
// dispatcher's pump meets them. A picker routes while some agent has a credit, so a held task is set aside for the
// pump and the pump goes on to the next of its kind; the hold is a queue threshold, monotone in the place in line,
// so when the last task of the line would be held too, so would every one between: the pump leaves the line queued
// instead of taking out, asking and putting back each of its tasks. That was once per pump and held task: at
// 800 tasks/s into a node whose fast agents were full, up to 60,000 tasks a second (bench:two-speed, loaded), and
// most of a cold node's extra CPU in its first second. The tick's pump (every tickMs while a task is held) still
// scans every line whole, for what the hold does not apply to behind a held task (affinity, exclusions, a task from
// the parent, one that waited out maxHoldMs behind a younger one of a higher rank): it goes within a tick.
import type { Picker, TaskInfo } from '../policies/index.js';

export class HeldLines {
  /** A task was held back in the last pump: the cell's tick pumps again (liveness: maxHoldMs). */
  held = false;
  private scanNext = false;
  private scanAll = false;
  /** The kind whose line the last probe found longer than the hold (this pump): no second probe. */
  private longLine: string | undefined;

  /** From the cell's tick: whether to pump (something is held), that pump scanning whole. */
  tick(): boolean {
    if (this.held) this.scanNext = true;
    return this.held;
  }

  /** A pump starts. */
  pumping(): void {
    this.scanAll = this.scanNext;
    this.held = this.scanNext = false;
    this.longLine = undefined;
  }

  /**
   * The task just picked (`task`, as the picker saw it) was held, `behind` tasks of its kind still queued: whether
   * the last of them would be held too, so the pump leaves them queued (ends its kind).
   */
  leaveLine(picker: Picker, task: { -readonly [K in keyof TaskInfo]: TaskInfo[K] }, behind: number): boolean {
    this.held = true;
    if (this.scanAll || picker.wouldHold === undefined || task.queuedAhead === undefined) return false;
    // Past the threshold the last would go (to a slower agent): so it stays for every later held task of this
    // pump's kind (the last place stays where it is), whose own picks decide.
    if (this.longLine === task.kind) return false;
    task.queuedAhead += behind;
    if (picker.wouldHold(task)) return true;
    this.longLine = task.kind;
    return false;
  }
}
