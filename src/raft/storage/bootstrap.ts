// The first entries of a new group, the same in every store: one committed
// addVoter per initial voter at term 1, in id order, so every initial member
// holds the same log. The address rides in the context so the runtime learns
// it from the log like any later member's.
import { encodeConfChange } from '../core/confchange.js';
import { EntryType, NONE, type Entry, type HardState, type NodeId } from '../core/types.js';

export function bootstrapLog(voters: Readonly<Record<NodeId, string>>): { entries: Entry[]; hardState: HardState } {
  const ids = Object.keys(voters).sort();
  const entries: Entry[] = ids.map((node, i) => ({
    term: 1,
    index: i + 1,
    type: EntryType.ConfChange,
    data: encodeConfChange({ type: 'addVoter', node, context: voters[node] ?? '' }),
  }));
  return { entries, hardState: { term: 1, vote: NONE, commit: entries.length } };
}
