// What a picker is told of the task it places (TaskInfo), built by the
// dispatcher for every pick. One object reused for every pick: pickers read it
// during pick() and explain() only, and a pump makes thousands of picks.
import type { TaskInfo } from '../policies/index.js';
import { labelsKey } from './label-groups.js';
import type { Links } from './port.js';
import type { WorkItem } from './types.js';

export class PickInfo {
  /** The TaskInfo of the last pick (what explain() is asked about). */
  readonly task: { -readonly [K in keyof TaskInfo]: TaskInfo[K] } = {
    kind: '',
    priority: 'normal',
    tenant: '',
    attempt: 0,
    affinity: undefined,
    exclude: undefined,
    contextKey: undefined,
    contextHard: false,
    noMatchBelow: undefined,
  };
  private readonly excludeOne: string[] = [''];
  private readonly noMatchOne: string[] = [''];

  constructor(private readonly links: Links) {}

  /** `ahead`: set aside before it this pump; `waited`: ms here. A node holds back home tasks only (hold-back.ts). */
  of(item: WorkItem, ahead: number, waited: number): TaskInfo {
    const t = this.task;
    const agents = this.links.agents;
    t.queuedAhead = agents && item.origin.type === 'home' ? ahead : undefined;
    t.waitedMs = waited;
    t.kind = item.kind;
    t.priority = item.priority;
    t.tenant = item.tenant;
    t.attempt = item.attempt;
    // Affinity names agent labels: a node checks its agents' (with the task's side of a version ramp), a cell
    // above its children's label sets (label-groups.ts, src/policies/affinity.ts).
    t.affinity = agents
      ? agents.versions.affinity(item)
      : item.spec.affinity.length > 0
        ? item.spec.affinity
        : undefined;
    if (item.exclude !== undefined) {
      this.excludeOne[0] = item.exclude;
      t.exclude = this.excludeOne;
    } else t.exclude = undefined;
    t.noMatchBelow = this.noMatchBelow(item);
    // Every tier places a keyed task by its key, so it returns to the same subtree and agent.
    t.contextKey = item.spec.contextKey || undefined;
    t.contextHard = item.spec.contextHard;
    t.slots = item.spec.slots;
    return t;
  }

  /**
   * The child that said no agent below it matches `item`, while its label description is unchanged
   * (refusal-wait.ts); or the child that spilled a task with affinity up, having no candidate below it
   * (so, with none elsewhere, it waits here as unplaceable and ends "no agent ... matches", not by a lease).
   */
  private noMatchBelow(item: WorkItem): readonly string[] | undefined {
    if (item.exclude !== undefined && item.spec.affinity.length > 0) {
      this.noMatchOne[0] = item.exclude;
      return this.noMatchOne;
    }
    const note = item.refused;
    if (note === undefined || note.noMatchChild === '') return undefined;
    const now = labelsKey(this.links.children?.links.get(note.noMatchChild)?.summary, item.kind);
    if (now !== note.noMatchLabels) {
      note.noMatchChild = ''; // it changed: the child may be asked again
      return undefined;
    }
    this.noMatchOne[0] = note.noMatchChild;
    return this.noMatchOne;
  }
}
